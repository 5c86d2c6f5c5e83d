"""warren-httpd's Prometheus endpoint /metrics: the text format, what it reports
about the running suite (daemons, connections per listener, store size,
configuration, its own requests) and the http.metrics_allow access list."""

import http.client
import re
import time

import pytest

from warren import LISTENERS, SECRET_HASH, WarrenInstance
from protocols import LineConn, start_instance, warren_check

METRICS_LISTENERS = dict(LISTENERS)
METRICS_LISTENERS["http"] = ("http", "none")
DOMAINS = {
    "example.test": f'mailbox alice {{ password = "{SECRET_HASH}" }}\n'
                    f'mailbox bob {{ password = "{SECRET_HASH}" }}\n'
                    'alias info { to = { "alice", "bob" } }\n',
    "example.org": f'mailbox carol {{ password = "{SECRET_HASH}" }}\n',
}

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? (-?[0-9.e+]+)$')


@pytest.fixture(scope="module")
def suite():
    inst = start_instance(listeners=METRICS_LISTENERS, domains=DOMAINS)
    yield inst
    inst.cleanup()


def get(inst, path="/metrics"):
    conn = http.client.HTTPConnection(inst.address, inst.port("http"), timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    data = resp.read().decode()
    conn.close()
    return resp, data


def parse(text):
    """{(name, frozenset(labels)): value}, checking every line's syntax and that
    each sample's family was declared with # TYPE first."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("gauge", "counter"), line
            typed.add(name)
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not Prometheus text format: {line!r}"
        assert m.group(1) in typed, f"{m.group(1)} has no # TYPE line"
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(5))
    return samples


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def test_metrics_format_and_configuration(suite):
    resp, text = get(suite)
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    s = parse(text)
    assert value(s, "warren_up") == 1
    assert value(s, "warren_config_generation") == 1
    assert value(s, "warren_domains") == 2
    assert value(s, "warren_mailboxes") == 3
    assert value(s, "warren_aliases") == 1
    for name, (service, tls) in suite.listeners.items():
        assert value(s, "warren_listener_info", listener=name, service=service,
                     port=str(suite.port(name)), tls=tls) == 1
    assert abs(value(s, "warren_httpd_start_time_seconds") - time.time()) < 600


def test_metrics_daemons(suite):
    s = parse(get(suite)[1])
    children = suite.children()
    assert set(children) == {"smtpd", "imapd", "pop3d", "httpd"}
    for daemon, pid in children.items():
        started = value(s, "warren_daemon_start_time_seconds", daemon=daemon, pid=str(pid))
        assert abs(started - time.time()) < 600


def test_metrics_connections_per_listener(suite):
    def counts():
        s = parse(get(suite)[1])
        return {name: value(s, "warren_connections", listener=name, service=service)
                for name, (service, _) in suite.listeners.items()}

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and counts()["imaps"] != 0:
        time.sleep(0.1)
    conns = [LineConn.open(suite, "imaps") for _ in range(3)]
    conns.append(LineConn.open(suite, "pop3"))
    for c in conns:
        c.readline()      # greeted: the daemon has the connection
    now = counts()
    assert now["imaps"] == 3
    assert now["pop3"] == 1
    assert now["http"] == 1          # the metrics request itself
    assert now["smtp"] == 0
    for c in conns:
        c.sock.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and counts()["imaps"] != 0:
        time.sleep(0.1)
    assert counts()["imaps"] == 0


def test_metrics_store_size(suite):
    s = parse(get(suite)[1])
    assert value(s, "warren_store_disk_bytes", part="store") > 0
    assert value(s, "warren_store_files", part="store") > 0
    assert ("warren_store_disk_bytes", frozenset({("part", "blobs")})) in s


def test_metrics_count_requests(suite):
    before = parse(get(suite)[1])
    key = ("warren_http_requests_total", frozenset({("endpoint", "other"), ("code", "4xx")}))
    assert get(suite, "/no-such-page")[0].status == 404
    assert get(suite, "/mail/config-v1.1.xml")[0].status == 200
    after = parse(get(suite)[1])
    assert after[key] == before.get(key, 0) + 1
    assert value(after, "warren_http_requests_total", endpoint="autoconfig", code="2xx") == \
        value(before, "warren_http_requests_total", endpoint="autoconfig", code="2xx") + 1
    assert value(after, "warren_http_requests_total", endpoint="metrics", code="2xx") >= 2


def test_metrics_refused_outside_the_allow_list(make_warren):
    inst = make_warren(listeners={"imaps": ("imap", "implicit"), "http": ("http", "none")},
                       domains=DOMAINS, extra='http { metrics_allow = { "192.0.2.0/24" } }\n')
    inst.start()
    resp, _ = get(inst)
    assert resp.status == 403
    assert "/metrics refused (not in http.metrics_allow)" in \
        inst.wait_log("not in http.metrics_allow")
    # the rest of the daemon is not affected
    assert get(inst, "/mail/config-v1.1.xml")[0].status == 200
    # a reload that allows loopback opens it
    inst.extra = 'http { metrics_allow = { "192.0.2.0/24", "127.0.0.1" } }\n'
    inst.write_config()
    inst.reload()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and get(inst)[0].status != 200:
        time.sleep(0.1)
    assert get(inst)[0].status == 200


def test_metrics_allow_must_be_networks(tmp_path):
    inst = WarrenInstance(listeners={"http": ("http", "none")}, domains=DOMAINS,
                          extra='http {\n    metrics_allow = { "127.0.0.1", "300.0.0.0/8" }\n}\n')
    try:
        out = warren_check(inst.config_path)
        assert out.returncode != 0
        assert re.search(r'warren\.conf:\d+: http: metrics_allow: "300\.0\.0\.0/8" is not an '
                         r'address or network', out.stdout + out.stderr), out.stdout + out.stderr
    finally:
        inst.cleanup()


def counter(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0)


def test_metrics_count_messages_and_logins(suite):
    """The daemons' counters (state_dir/metrics, shared by every process) after
    real SMTP, IMAP and POP3 sessions: what Prometheus scrapes moves by exactly
    what was done."""
    import base64
    import imaplib
    import poplib
    import smtplib
    from warren import client_context
    before = parse(get(suite)[1])
    # one message to an alias with two members: received once, delivered twice
    with smtplib.SMTP(suite.address, suite.port("smtp"), timeout=15) as s:
        s.sendmail("someone@example.net", ["info@example.test"],
                   b"Subject: counted\r\n\r\nhello\r\n")
    # logins: SMTP AUTH (one good, one wrong), IMAP (good, wrong x2), POP3 (good, wrong)
    with smtplib.SMTP(suite.address, suite.port("submission"), timeout=15) as s:
        s.starttls(context=client_context())
        s.login("alice@example.test", "secret")
    with smtplib.SMTP(suite.address, suite.port("submission"), timeout=15) as s:
        s.starttls(context=client_context())
        s.ehlo()
        # one AUTH command (smtplib's login() would try every mechanism in turn)
        code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(
            b"\0alice@example.test\0wrong").decode())
        assert code == 535
    m = imaplib.IMAP4_SSL(suite.address, suite.port("imaps"), ssl_context=client_context(),
                          timeout=15)
    m.login("bob@example.test", "secret")
    m.logout()
    for user in ("bob@example.test", "nosuch@example.test"):
        m = imaplib.IMAP4_SSL(suite.address, suite.port("imaps"),
                              ssl_context=client_context(), timeout=15)
        with pytest.raises(imaplib.IMAP4.error):
            m.login(user, "wrong")
        m.logout()
    p = poplib.POP3_SSL(suite.address, suite.port("pop3s"), context=client_context(),
                        timeout=15)
    p.user("carol@example.org")
    p.pass_("secret")
    p.quit()
    p = poplib.POP3_SSL(suite.address, suite.port("pop3s"), context=client_context(),
                        timeout=15)
    p.user("carol@example.org")
    with pytest.raises(poplib.error_proto):
        p.pass_("wrong")
    p.close()

    after = parse(get(suite)[1])

    def delta(name, **labels):
        return counter(after, name, **labels) - counter(before, name, **labels)

    assert delta("warren_messages_received_total") == 1
    assert delta("warren_messages_delivered_total") == 2
    assert delta("warren_deliveries_total", daemon="smtpd", relay="local", status="sent") == 2
    assert delta("warren_messages_bounced_total") == 0
    # local mail never enters the outbound queue
    assert counter(after, "warren_queue_messages") == 0
    assert counter(after, "warren_queue_oldest_message_age_seconds") == 0
    assert delta("warren_auth_total", protocol="smtp", result="success") == 1
    assert delta("warren_auth_total", protocol="smtp", result="failure") == 1
    assert delta("warren_auth_total", protocol="imap", result="success") == 1
    assert delta("warren_auth_total", protocol="imap", result="failure") == 2
    assert delta("warren_auth_total", protocol="pop3", result="success") == 1
    assert delta("warren_auth_total", protocol="pop3", result="failure") == 1
    for name in ("warren_messages_received_total", "warren_auth_total",
                 "warren_deliveries_total", "warren_notices_total"):
        assert f"# TYPE {name} counter" in get(suite)[1]


def test_metrics_counters_survive_a_daemon_restart(suite):
    """The counters live in a file, not in a process: a restarted smtpd goes on
    from where the dead one was."""
    import os
    import signal
    import smtplib
    before = counter(parse(get(suite)[1]), "warren_messages_received_total")
    assert before >= 1
    old = suite.children()["smtpd"]
    os.kill(old, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        new = suite.children().get("smtpd")
        if new not in (None, old):
            break
        time.sleep(0.1)
    from warren import wait_port
    assert wait_port(suite.address, suite.port("smtp"))
    deadline = time.monotonic() + 15
    while True:
        try:
            with smtplib.SMTP(suite.address, suite.port("smtp"), timeout=15) as s:
                s.sendmail("someone@example.net", ["bob@example.test"], b"Subject: x\r\n\r\ny\r\n")
            break
        except (smtplib.SMTPException, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    after = counter(parse(get(suite)[1]), "warren_messages_received_total")
    assert after == before + 1


def test_metrics_count_smtp_rejects_by_reason(suite):
    """Refused RCPTs show up under their reason: an unknown user, a relay
    attempt, sender-routed relaying; every reason of the list is exported."""
    import smtplib
    before = parse(get(suite)[1])
    with smtplib.SMTP(suite.address, suite.port("smtp"), timeout=15) as s:
        s.ehlo("client.test")
        assert s.mail("someone@example.net")[0] == 250
        assert s.rcpt("nobody-here@example.test")[0] == 550
        assert s.rcpt("victim@elsewhere.test")[0] == 554
        assert s.rcpt("victim%elsewhere.test@example.test")[0] == 554
        assert s.rcpt("nobody-either@example.test")[0] == 550
    deadline = time.monotonic() + 5
    while True:
        after = parse(get(suite)[1])
        delta = {r: counter(after, "warren_smtp_rejects_total", reason=r) -
                 counter(before, "warren_smtp_rejects_total", reason=r)
                 for r in ("unknown_user", "relay", "rbl", "other")}
        if delta["unknown_user"] >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert delta == {"unknown_user": 2, "relay": 2, "rbl": 0, "other": 0}, delta
    for reason in ("listener_access", "rate", "lists", "helo", "spf", "greylist",
                   "content_filter", "quota", "size", "alias_loop"):
        assert ("warren_smtp_rejects_total", frozenset({("reason", reason)})) in after, reason
