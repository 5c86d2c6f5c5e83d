"""smtpd's DNSBL/DNSWL/RHSBL scoring (dnsbl { }) against a dnsmasq on 127.0.0.1
serving the zones: a listing among a zone's codes adds its weight, a DNSWL
listing takes points away, the score reaching the threshold refuses the client
(554 5.7.1 Service unavailable; client [IP] blocked using ZONE) or tags the
message (X-Warren-DNSBL); IPv6 clients in reverse nibble form; the sender's
domain against an RHSBL; answers cached for their TTL; DNS failures count as not
listed; whitehosts, trusted networks, authenticated clients and whitelisted
recipients skip it. Clients are presented with XCLIENT (docs/policy.md)."""

import re
import textwrap
import time

import pytest

from dnsmasq import Dnsmasq
from protocols import LineConn, smtp_cmd, smtp_reply, start_instance, store_dump
from warren import SECRET_HASH

V6 = "2001:db8::2"
V6_NIBBLES = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"

RECORDS = {
    "2.2.0.192.zen.test": {"A": ["127.0.0.2"]},            # listed: 3 points
    "3.2.0.192.zen.test": {"A": ["127.0.0.20"]},           # an answer not among the codes
    "4.2.0.192.bl2.test": {"A": ["127.0.0.2"]},            # listed, 1 point only
    "5.2.0.192.zen.test": {"A": ["127.0.0.4"]},            # listed (3) ...
    "5.2.0.192.wl.test": {"A": ["127.0.10.2"]},            # ... but whitelisted (-2)
    "6.2.0.192.zen.test": {"A": ["127.0.0.2"]},            # listed, for the cache test
    "12.2.0.192.zen.test": {"A": [("127.0.0.2", 1)]},     # listed with a 1 s TTL
    "100.2.0.192.zen.test": {"A": ["127.0.0.2"]},          # a whitehost that is listed
    "200.2.0.192.zen.test": {"A": ["127.0.0.2"]},          # a trusted client that is listed
    V6_NIBBLES + ".zen.test": {"A": ["127.0.0.3"]},        # IPv6, nibble form
    "spam-domain.test.dbl.test": {"A": ["127.0.1.2"]},     # RHSBL
    "tagged.test.dbl.test": {"A": ["127.0.1.2"]},
}

SITES = textwrap.dedent("""\
    sites = { "zen.test=127.0.0.[2..11]*3", "bl2.test", "wl.test=127.0.[0..255].[2;3]*-2",
              "broken.invalid*5" }
    rhsbl_sites = { "dbl.test=127.0.1.[2..99]*3" }
    threshold = 3
    """)

DOMAINS = {"example.test": textwrap.dedent(f"""\
    mailbox alice {{ password = "{SECRET_HASH}" }}
    alias postmaster {{ to = {{ "alice" }} }}
""")}


@pytest.fixture(scope="module")
def dns():
    # broken.invalid is outside dnsmasq's local zones: REFUSED, a DNS failure
    with Dnsmasq(RECORDS, ttl=300, extra_args=["--log-queries"]) as server:
        yield server


def config(dns, action="reject"):
    return textwrap.dedent(f"""\
        dns {{ servers = "{dns.server}"  timeout = 500ms  tries = 1 }}
        smtp {{ xclient_networks = {{ "127.0.0.1" }}  trusted_networks = {{ "192.0.2.200" }} }}
        lists {{
            whitehosts = {{ "192.0.2.100" }}
            recipient_whitelist = {{ "postmaster@example.test" }}
            sender_whitelist = {{ "@partner.test" }}
        }}
        dnsbl {{
        {textwrap.indent(SITES, "    ")}    action = {action}
        }}
        """)


@pytest.fixture(scope="module")
def inst(dns):
    i = start_instance(listeners={"smtp": ("smtp", "none")}, domains=DOMAINS,
                       extra=config(dns))
    yield i
    i.cleanup()


def attempt(inst, addr, sender="someone@outside.example.net", to="alice@example.test",
            login=None):
    conn = LineConn.open(inst, "smtp", timeout=10)
    try:
        assert smtp_reply(conn)[0] == 220
        code, text = smtp_cmd(conn, "XCLIENT ADDR=" + addr + (" LOGIN=" + login if login else ""))
        assert code == 220, text
        assert smtp_cmd(conn, "EHLO client.example.net")[0] == 250
        code, text = smtp_cmd(conn, "MAIL FROM:<%s>" % sender)
        assert code == 250, text
        code, text = smtp_cmd(conn, "RCPT TO:<%s>" % to)
        smtp_cmd(conn, "QUIT")
        return code, " ".join(text)
    finally:
        conn.close()


def queries(dns, name):
    return dns.log_text().count("query[A] " + name + " ")


def test_listed_client_is_refused(inst):
    code, text = attempt(inst, "192.0.2.2")
    assert (code, text) == (554, "5.7.1 Service unavailable; client [192.0.2.2] blocked "
                                 "using zen.test")
    inst.wait_log("reject: RCPT from unknown[192.0.2.2]: 554 5.7.1 Service unavailable; "
                  "client [192.0.2.2] blocked using zen.test")
    assert "(policy=rbl)" in inst.log()


def test_unlisted_and_uncounted_answers_pass(inst):
    assert attempt(inst, "192.0.2.1")[0] == 250           # NXDOMAIN everywhere
    assert attempt(inst, "192.0.2.3")[0] == 250           # 127.0.0.20 is not a code of zen.test


def test_below_threshold_passes_and_is_logged(inst):
    assert attempt(inst, "192.0.2.4")[0] == 250
    inst.wait_log("dnsbl: client [192.0.2.4] score 1 below 3: bl2.test(1)")


def test_dnswl_listing_lowers_the_score(inst):
    assert attempt(inst, "192.0.2.5")[0] == 250
    inst.wait_log("dnsbl: client [192.0.2.5] score 1 below 3")
    log = inst.log()
    assert "zen.test(3)" in log and "wl.test(-2)" in log


def test_ipv6_client_in_nibble_form(inst, dns):
    code, text = attempt(inst, "IPV6:" + V6)
    assert (code, text) == (554, "5.7.1 Service unavailable; client [%s] blocked using "
                                 "zen.test" % V6)
    assert queries(dns, V6_NIBBLES + ".zen.test") >= 1


def test_rhsbl_sender_domain(inst):
    code, text = attempt(inst, "192.0.2.1", sender="x@spam-domain.test")
    assert code == 554, text
    assert text == ("5.7.1 <x@spam-domain.test>: Sender address rejected: Service unavailable; "
                    "sender domain spam-domain.test blocked using dbl.test")
    assert attempt(inst, "192.0.2.1", sender="x@clean-domain.test")[0] == 250


def test_answers_are_cached_for_their_ttl(inst, dns):
    assert attempt(inst, "192.0.2.6")[0] == 554
    assert attempt(inst, "192.0.2.6")[0] == 554
    assert attempt(inst, "192.0.2.7")[0] == 250
    assert attempt(inst, "192.0.2.7")[0] == 250
    # one smtpd process: the second sessions were answered from its cache
    assert queries(dns, "6.2.0.192.zen.test") == 1, dns.log_text()
    assert queries(dns, "7.2.0.192.zen.test") == 1, dns.log_text()


def test_cached_answer_expires_with_its_ttl(inst, dns):
    assert attempt(inst, "192.0.2.12")[0] == 554
    assert queries(dns, "12.2.0.192.zen.test") == 1
    time.sleep(1.5)
    assert attempt(inst, "192.0.2.12")[0] == 554
    assert queries(dns, "12.2.0.192.zen.test") == 2, dns.log_text()


def test_dns_failure_counts_as_not_listed(inst, dns):
    assert attempt(inst, "192.0.2.8")[0] == 250
    assert queries(dns, "8.2.0.192.broken.invalid") >= 1
    inst.wait_log("dnsbl: 8.2.0.192.broken.invalid:")


def test_whitehost_trusted_authenticated_and_whitelisted_recipient_skip(inst, dns):
    assert attempt(inst, "192.0.2.100")[0] == 250
    assert attempt(inst, "192.0.2.200")[0] == 250
    assert attempt(inst, "192.0.2.2", sender="alice@example.test",
                   login="alice@example.test")[0] == 250
    assert attempt(inst, "192.0.2.2", to="postmaster@example.test")[0] == 250
    assert attempt(inst, "192.0.2.2", sender="news@partner.test")[0] == 250
    # the skipped clients were not even looked up
    assert queries(dns, "100.2.0.192.zen.test") == 0
    assert queries(dns, "200.2.0.192.zen.test") == 0


def stored_messages(inst, user):
    """Every message in user's mailboxes, read from the store (tests/storedump)."""
    return [m[4] for m in store_dump(inst, user)]


def test_tag_action_adds_a_header(dns):
    i = start_instance(listeners={"smtp": ("smtp", "none")}, domains=DOMAINS,
                       extra=config(dns, action="tag"))
    try:
        conn = LineConn.open(i, "smtp", timeout=10)
        assert smtp_reply(conn)[0] == 220
        assert smtp_cmd(conn, "XCLIENT ADDR=192.0.2.2")[0] == 220
        assert smtp_cmd(conn, "EHLO client.example.net")[0] == 250
        assert smtp_cmd(conn, "MAIL FROM:<x@tagged.test>")[0] == 250
        assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
        assert smtp_cmd(conn, "RCPT TO:<postmaster@example.test>")[0] == 250
        assert smtp_cmd(conn, "DATA")[0] == 354
        conn.send_line("Subject: hello\r\n\r\nbody\r\n.")
        assert smtp_reply(conn)[0] == 250
        smtp_cmd(conn, "QUIT")
        conn.close()
        deadline = time.monotonic() + 10
        msgs = []
        while time.monotonic() < deadline and not msgs:
            msgs = stored_messages(i, "alice@example.test")
            time.sleep(0.2)
        assert len(msgs) == 1, msgs
        head = msgs[0].split(b"\r\n\r\n", 1)[0].decode()
        # once per message, with the client's and the sender domain's listings
        assert head.count("X-Warren-DNSBL:") == 1, head
        assert ("X-Warren-DNSBL: score=6 threshold=3 client=[192.0.2.2] "
                "listed=zen.test(3) dbl.test(3)") in head, head
        i.wait_log("dnsbl: client [192.0.2.2] tagged, score 6")
    finally:
        i.cleanup()


def test_silent_dns_server_is_bounded_by_the_timeout_and_survives_a_hangup():
    import socket
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # never answers
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    extra = textwrap.dedent(f"""\
        dns {{ servers = "127.0.0.1:{port}"  timeout = 300ms  tries = 1 }}
        smtp {{ xclient_networks = {{ "127.0.0.1" }} }}
        dnsbl {{ sites = {{ "zen.test*3" }}  threshold = 3 }}
        """)
    i = start_instance(listeners={"smtp": ("smtp", "none")}, domains=DOMAINS, extra=extra)
    try:
        # a client that hangs up while its lookup is in flight
        conn = LineConn.open(i, "smtp", timeout=10)
        assert smtp_reply(conn)[0] == 220
        assert smtp_cmd(conn, "XCLIENT ADDR=192.0.2.9")[0] == 220
        assert smtp_cmd(conn, "EHLO client.example.net")[0] == 250
        assert smtp_cmd(conn, "MAIL FROM:<a@outside.example.net>")[0] == 250
        conn.send_line("RCPT TO:<alice@example.test>")
        conn.close()
        # the next one waits at most about the timeout and is not listed
        start = time.monotonic()
        assert attempt(i, "192.0.2.10")[0] == 250
        assert time.monotonic() - start < 5
        i.wait_log("dnsbl: 10.2.0.192.zen.test:")
        i.wait_log("disconnect from unknown[192.0.2.9]")
        assert attempt(i, "192.0.2.11")[0] == 250     # smtpd is still there
    finally:
        i.cleanup()
        silent.close()


def test_bad_zone_specification_is_a_config_error():
    from protocols import warren_check
    from warren import WarrenInstance
    i = WarrenInstance(listeners={"smtp": ("smtp", "none")},
                       extra='dnsbl {\n  sites = { "zen.test=127.0.0.[2..]*3" }\n}\n')
    try:
        r = warren_check(i.config_path)
        out = r.stdout + r.stderr
        assert r.returncode != 0
        assert re.search(r'warren\.conf:\d+: dnsbl: sites: "zen\.test=127\.0\.0\.\[2\.\.\]\*3" '
                         r'is not zone\[=codes\]\[\*weight\]', out), out
    finally:
        i.cleanup()
