"""warrenctl's admin commands over the configuration and the store: domain list,
user list/show, mailbox list and dns, in text and --json, beside a running
suite that received real mail over SMTP and real folders over IMAP."""

import imaplib
import os
import json
import re
import smtplib
import textwrap
import time

import pytest

from warren import LISTENERS, SECRET_HASH, WarrenInstance, client_context
from protocols import start_instance, warrenctl

DOMAINS = {
    "example.test": textwrap.dedent(f"""\
        mailbox alice {{
            password = "{SECRET_HASH}"
            quota = 10M
        }}
        mailbox bob {{ password = "{SECRET_HASH}" }}
        mailbox fwd {{
            password = "{SECRET_HASH}"
            forward = {{ "fwd@elsewhere.test" }}
        }}
        alias info {{ to = {{ "alice", "bob" }} }}
        alias sales {{ to = {{ "alice@example.test" }} }}
    """),
    "example.org": textwrap.dedent(f"""\
        hostnames = {{ "mail.example.org" }}
        mailbox carol {{ password = "{SECRET_HASH}" }}
        alias postmaster {{ to = {{ "carol" }} }}
    """),
    "relay.test": 'type = remote\nrelay_host = "127.0.0.1:1"\n',
}

# no plain POP3 listener: its SRV record must say "not offered"
ADMIN_LISTENERS = {k: v for k, v in LISTENERS.items() if k != "pop3"}
ADMIN_LISTENERS["http"] = ("http", "none")


@pytest.fixture(scope="module")
def suite():
    inst = start_instance(listeners=ADMIN_LISTENERS, domains=DOMAINS)
    yield inst
    inst.cleanup()


def ctl(inst, *args):
    return warrenctl("-c", inst.config_path, *args)


def ctl_json(inst, *args):
    out = ctl(inst, *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def deliver(inst, rcpt, subject, size=2000):
    body = f"From: sender@remote.test\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\n" + \
        ("x" * 70 + "\r\n") * (size // 72)
    with smtplib.SMTP(inst.address, inst.port("smtp"), timeout=15) as s:
        s.ehlo("client.remote.test")
        s.starttls(context=client_context())
        s.ehlo("client.remote.test")
        s.sendmail("sender@remote.test", [rcpt], body.encode())
    return len(body)


# ---- domain list -------------------------------------------------------------------------

def test_domain_list_text(suite):
    out = ctl(suite, "domain", "list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["DOMAIN", "TYPE", "AUTH"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"example.org", "example.test", "relay.test"}
    assert rows["example.test"][1:5] == ["local", "local", "3", "2"]
    assert rows["example.org"][1:5] == ["local", "local", "1", "1"]
    assert "mail.example.org" in lines[1]
    assert rows["relay.test"][1] == "remote" and "127.0.0.1:1" in " ".join(rows["relay.test"])


def test_domain_list_json(suite):
    doms = {d["name"]: d for d in ctl_json(suite, "domain", "list")["domains"]}
    assert doms["example.org"]["hostnames"] == ["mail.example.org"]
    assert doms["example.test"]["mailboxes"] == 3 and doms["example.test"]["aliases"] == 2
    assert doms["relay.test"]["type"] == "remote"
    assert doms["relay.test"]["relay_host"] == "127.0.0.1:1"
    assert doms["example.test"]["file"].endswith("domains/example.test.conf")


# ---- user list -----------------------------------------------------------------------------

def test_user_list(suite):
    out = ctl(suite, "user", "list")
    assert out.returncode == 0, out.stderr
    addresses = [line.split()[0] for line in out.stdout.splitlines()[1:]]
    assert addresses == ["carol@example.org", "alice@example.test", "bob@example.test",
                         "fwd@example.test"]
    assert "10.0 MiB" in out.stdout and "unlimited" in out.stdout
    assert "fwd@elsewhere.test" in out.stdout
    users = ctl_json(suite, "user", "list", "example.test")["users"]
    assert [(u["address"], u["quota"]) for u in users] == \
        [("alice@example.test", 10 * 1024 * 1024), ("bob@example.test", 0),
         ("fwd@example.test", 0)]
    assert users[2]["forward"] == ["fwd@elsewhere.test"] and users[1]["forward"] == []
    bad = ctl(suite, "user", "list", "nowhere.test")
    assert bad.returncode == 1 and "no domain nowhere.test" in bad.stderr


# ---- user show and mailbox list against the store ----------------------------------------------

def test_user_show_counts_what_the_store_holds(suite):
    before = ctl_json(suite, "user", "show", "carol@example.org")
    assert before["messages"] == 0 and before["bytes_used"] == 0 and before["store"] is True
    sizes = [deliver(suite, "carol@example.org", f"hello {i}") for i in range(3)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = ctl_json(suite, "user", "show", "carol@example.org")
        if info["messages"] == 3:
            break
        time.sleep(0.2)
    assert info["messages"] == 3
    # each stored copy is the message plus the Received header smtpd adds
    assert sum(sizes) < info["bytes_used"] < sum(sizes) + 3 * 2048
    assert info["mailboxes"] >= 1
    assert info["aliases"] == ["postmaster@example.org"]
    assert info["last_login"] is None
    text = ctl(suite, "user", "show", "carol@example.org")
    assert text.returncode == 0, text.stderr
    assert re.search(r"^used: +[\d.]+ KiB in 3 messages$", text.stdout, re.M), text.stdout
    assert re.search(r"^quota: +unlimited$", text.stdout, re.M)


def test_user_show_last_login(suite):
    """Each successful login is recorded (time, protocol, client address); a failed
    one is not; user show prints it as text and JSON."""
    import imaplib
    import poplib
    assert ctl_json(suite, "user", "show", "bob@example.test")["last_login"] is None
    assert "last login:        never" in ctl(suite, "user", "show", "bob@example.test").stdout
    start = int(time.time())
    m = imaplib.IMAP4_SSL(suite.address, suite.port("imaps"), ssl_context=client_context(),
                          timeout=15)
    m.login("bob@example.test", "secret")
    m.logout()
    deadline = time.monotonic() + 10
    while True:
        info = ctl_json(suite, "user", "show", "bob@example.test")
        if info["last_login"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert start <= info["last_login"] <= int(time.time()) + 1
    assert info["last_login_from"] == "imap 127.0.0.1"
    # a wrong password changes nothing
    p = poplib.POP3_SSL(suite.address, suite.port("pop3s"), context=client_context(), timeout=15)
    p.user("bob@example.test")
    with pytest.raises(poplib.error_proto):
        p.pass_("wrong")
    p.close()
    time.sleep(0.5)
    assert ctl_json(suite, "user", "show", "bob@example.test")["last_login_from"] == \
        "imap 127.0.0.1"
    text = ctl(suite, "user", "show", "bob@example.test").stdout
    assert re.search(r"^last login: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} "
                     r"\(imap from 127\.0\.0\.1\)$", text, re.M), text


def test_user_show_quota_and_aliases(suite):
    size = deliver(suite, "alice@example.test", "quota")
    info = ctl_json(suite, "user", "show", "alice@example.test")
    assert info["quota"] == 10 * 1024 * 1024
    assert info["messages"] >= 1 and info["bytes_used"] >= size
    assert sorted(info["aliases"]) == ["info@example.test", "sales@example.test"]
    text = ctl(suite, "user", "show", "alice@example.test").stdout
    assert re.search(r"^quota: +10\.0 MiB$", text, re.M)
    assert re.search(r"% of the quota\)$", text, re.M)
    assert "info@example.test" in text and "sales@example.test" in text


def test_user_show_errors(suite):
    out = ctl(suite, "user", "show", "info@example.test")
    assert out.returncode == 1 and "is an alias" in out.stderr
    out = ctl(suite, "user", "show", "nobody@example.test")
    assert out.returncode == 1 and "no mailbox nobody@example.test" in out.stderr
    assert ctl(suite, "user", "show").returncode == 2
    assert ctl(suite, "user", "frobnicate").returncode == 2


def test_mailbox_list(suite):
    imap = imaplib.IMAP4_SSL(suite.address, suite.port("imaps"), ssl_context=client_context(),
                             timeout=15)
    imap.login("bob@example.test", "secret")
    assert imap.create("Projects")[0] == "OK"
    assert imap.subscribe("Projects")[0] == "OK"
    imap.logout()
    deliver(suite, "bob@example.test", "one")
    deliver(suite, "bob@example.test", "two")
    boxes = {b["name"]: b for b in ctl_json(suite, "mailbox", "list", "bob@example.test")
             ["mailboxes"]}
    assert {"INBOX", "Projects"} <= set(boxes)
    assert boxes["INBOX"]["messages"] == 2 and boxes["INBOX"]["unseen"] == 2
    assert boxes["INBOX"]["bytes"] > 0 and boxes["INBOX"]["uidnext"] == 3
    assert boxes["Projects"]["messages"] == 0 and boxes["Projects"]["subscribed"] is True
    text = ctl(suite, "mailbox", "list", "bob@example.test")
    assert text.returncode == 0, text.stderr
    rows = {line.split()[0]: line.split() for line in text.stdout.splitlines()[1:]}
    assert rows["INBOX"][1:3] == ["2", "2"]
    assert rows["Projects"][1] == "0"
    assert ctl(suite, "mailbox", "list", "nobody@example.test").returncode == 1


def test_commands_without_a_store(tmp_path):
    """Before the suite ever ran, usage is zero rather than an error."""
    inst = WarrenInstance(listeners={"imaps": ("imap", "implicit")}, domains=DOMAINS)
    try:
        info = ctl_json(inst, "user", "show", "alice@example.test")
        assert info["store"] is False and info["messages"] == 0
        assert "nothing yet" in ctl(inst, "user", "show", "alice@example.test").stdout
        assert ctl_json(inst, "mailbox", "list", "alice@example.test")["mailboxes"] == []
    finally:
        inst.cleanup()


# ---- dns --------------------------------------------------------------------------------------

def zone_records(text):
    """[(name, type, value)] from zone-file lines (comments skipped)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith(";"):
            continue
        m = re.match(r"(\S+)\s+(\d+)\s+IN\s+(\S+)\s+(.*)$", line)
        assert m, line
        value = m.group(4)
        if m.group(3) == "TXT" and value.startswith("("):
            # ( "part" "part" ): character-strings of at most 255 bytes
            assert value.endswith(")"), line
            parts = re.findall(r'"([^"]*)"', value)
            assert parts and all(len(p) <= 255 for p in parts), line
            value = "".join(parts)
        elif m.group(3) == "TXT":
            assert value.startswith('"') and value.endswith('"'), line
            value = value[1:-1]
        out.append((m.group(1), m.group(3), value))
    return out


def test_dns_records_for_a_local_domain(suite):
    out = ctl(suite, "dns", "example.org")
    assert out.returncode == 0, out.stderr
    recs = zone_records(out.stdout)
    by = {}
    for name, typ, value in recs:
        by.setdefault((name, typ), []).append(value)
    host = "mail.example.org."
    assert by[("example.org.", "MX")] == ["10 " + host]
    assert by[("example.org.", "TXT")] == ["v=spf1 mx -all"]
    assert by[("_dmarc.example.org.", "TXT")] == ["v=DMARC1; p=none; rua=mailto:postmaster@example.org"]
    assert by[("warren._domainkey.example.org.", "TXT")][0].startswith("v=DKIM1;")
    assert by[("_smtp._tls.example.org.", "TXT")][0].startswith("v=TLSRPTv1;")
    assert re.fullmatch(r"v=STSv1; id=\d+", by[("_mta-sts.example.org.", "TXT")][0])
    assert by[("mta-sts.example.org.", "CNAME")] == [host]
    assert by[("autoconfig.example.org.", "CNAME")] == [host]
    assert by[("autodiscover.example.org.", "CNAME")] == [host]
    assert by[("_autodiscover._tcp.example.org.", "SRV")] == ["0 1 443 " + host]
    # RFC 6186 / 8314: the real ports, implicit TLS preferred
    p = suite.port
    assert by[("_submissions._tcp.example.org.", "SRV")] == [f"0 1 {p('submissions')} {host}"]
    assert by[("_submission._tcp.example.org.", "SRV")] == [f"10 1 {p('submission')} {host}"]
    assert by[("_imaps._tcp.example.org.", "SRV")] == [f"0 1 {p('imaps')} {host}"]
    assert by[("_imap._tcp.example.org.", "SRV")] == [f"10 1 {p('imap')} {host}"]
    assert by[("_pop3s._tcp.example.org.", "SRV")] == [f"20 1 {p('pop3s')} {host}"]
    assert by[("_pop3._tcp.example.org.", "SRV")] == ["0 0 0 ."]     # not offered
    # the listeners are on loopback: the A record is a placeholder to fill in
    assert ("mail.example.org.", "A") in by
    assert "PLACEHOLDER" in out.stdout


def test_dns_json_and_default_host(suite):
    doc = ctl_json(suite, "dns", "example.test")
    assert doc["domain"] == "example.test" and doc["mail_host"] == "mail.warren.test"
    recs = {(r["name"], r["type"]): r for r in doc["records"]}
    assert recs[("example.test.", "MX")]["value"] == "10 mail.warren.test."
    assert recs[("warren._domainkey.example.test.", "TXT")]["placeholder"] is True
    assert recs[("example.test.", "MX")]["placeholder"] is False
    # no postmaster here: the DMARC note says so
    assert "postmaster" in recs[("_dmarc.example.test.", "TXT")]["note"]


def test_dns_remote_domain_has_no_client_records(suite):
    recs = zone_records(ctl(suite, "dns", "relay.test").stdout)
    types = {(n, t) for n, t, _ in recs}
    assert ("relay.test.", "MX") in types
    assert not any(t == "SRV" for _, t in types)
    assert ("autoconfig.relay.test.", "CNAME") not in types


def test_dns_errors_and_help(suite):
    out = ctl(suite, "dns", "nowhere.test")
    assert out.returncode == 1 and "no domain nowhere.test" in out.stderr
    assert ctl(suite, "dns").returncode == 2
    help_text = warrenctl("--help").stdout
    for command in ("domain list", "user list [DOMAIN]", "user show ADDRESS",
                    "mailbox list USER", "dns DOMAIN"):
        assert command in help_text


@pytest.mark.parametrize("keytype", ["rsa", "ed25519"])
def test_dns_dkim_record_from_the_domains_key(keytype):
    """The DKIM record carries the public key of the domain's dkim_key: the same
    one `warrenctl dkim keygen` printed when it made the key."""
    inst = WarrenInstance(listeners={"smtp": ("smtp", "starttls")}, domains={})
    try:
        key = os.path.join(inst.dir, "signed.key")
        gen = ctl(inst, "dkim", "keygen", "signed.test", "s2025", keytype, key)
        assert gen.returncode == 0, gen.stderr
        printed = "".join(re.findall(r'"([^"]*)"', gen.stdout.split("IN TXT", 1)[1]))
        inst.domains = {"signed.test": f'dkim_selector = "s2025"\ndkim_key = "{key}"\n'}
        inst.write_config()
        out = ctl(inst, "dns", "signed.test")
        assert out.returncode == 0, out.stderr
        recs = {(n, t): v for n, t, v in zone_records(out.stdout)}
        assert recs[("s2025._domainkey.signed.test.", "TXT")] == printed
        assert printed.startswith(f"v=DKIM1; k={keytype}; p=")
        assert ("warren._domainkey.signed.test.", "TXT") not in recs
        doc = ctl_json(inst, "dns", "signed.test")
        dkim = [r for r in doc["records"] if r["name"] == "s2025._domainkey.signed.test."]
        assert dkim[0]["value"] == printed and dkim[0]["placeholder"] is False
    finally:
        inst.cleanup()
