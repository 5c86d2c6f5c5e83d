"""Per-domain overrides of smtpd's policy sections (spf, greylist, dnsbl, lists,
rate inside domain { }; docs/policy.md "Per-domain overrides"). One suite with
two domains: strict.test inherits the global sections (greylisting on, SPF fail
rejected, DNSBL threshold 3) and has its own sender blacklist and rate limit;
lax.test turns greylisting off, tags SPF failures and counts DNSBL listings
only from a score of 5; tag.test has no SPF and tags DNSBL-listed clients.
The recipient's domain decides at RCPT, so one session
gets different answers for the two domains' recipients. Clients are presented
with XCLIENT, DNS answers come from a dnsmasq. `warren -t` refuses nonsense in
an override with file:line as it does globally."""

import os
import subprocess
import textwrap
import time
import uuid

import pytest

from dnsmasq import Dnsmasq
from protocols import (LineConn, sasl_plain, smtp_cmd, smtp_reply, start_instance,
                       warren_check)
from warren import BUILD, SECRET_HASH, WarrenInstance

STOREDUMP = os.path.join(BUILD, "tests", "storedump")
GREY_DELAY = 2

RECORDS = {
    "fail.test": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
    "2.2.0.192.zen.test": {"A": ["127.0.0.2"]},     # listed: 3 points
}

MAILBOXES = f"""\
    mailbox alice {{ password = "{SECRET_HASH}" }}
    mailbox bob {{ password = "{SECRET_HASH}" }}
"""

DOMAINS = {
    "strict.test": textwrap.dedent(MAILBOXES + """\
        lists {
            sender_blacklist = { "spammer@bad.test", "@worse.test Go away" }
            sender_whitelist = { "@friend.test" }
            client_whitelist = { "192.0.2.40" }
        }
        rate { messages_per_user = 1 }
        """),
    "lax.test": textwrap.dedent(MAILBOXES + """\
        greylist { enabled = false }
        spf { fail = tag }
        dnsbl { threshold = 5 }
        """),
    "tag.test": textwrap.dedent(MAILBOXES + """\
        greylist { enabled = false }
        spf { enabled = false }
        dnsbl { action = tag }
        """),
}


@pytest.fixture(scope="module")
def dns():
    with Dnsmasq(RECORDS, ttl=300) as server:
        yield server


@pytest.fixture(scope="module")
def inst(dns):
    extra = textwrap.dedent(f"""\
        dns {{ servers = "{dns.server}"  timeout = 1s  tries = 1 }}
        smtp {{ xclient_networks = {{ "127.0.0.1" }} }}
        spf {{ enabled = true  fail = reject  softfail = accept }}
        greylist {{ enabled = true  delay = {GREY_DELAY}s  retry_window = 1h  auto_whitelist = 0 }}
        dnsbl {{ sites = {{ "zen.test=127.0.0.[2..11]*3" }}  threshold = 3 }}
        """)
    i = start_instance(listeners={"smtp": ("smtp", "none"),
                                  "submission": ("submission", "none")},
                       listener_extra={"submission": "auth_plaintext = true\n"},
                       domains=DOMAINS, extra=extra, log_level="info")
    yield i
    i.cleanup()


def session(inst, ip, sender):
    conn = LineConn.open(inst, "smtp", timeout=20)
    assert smtp_reply(conn)[0] == 220
    code, text = smtp_cmd(conn, "XCLIENT ADDR=%s" % ip)
    assert code == 220, text
    assert smtp_cmd(conn, "EHLO client.test")[0] == 250
    code, text = smtp_cmd(conn, "MAIL FROM:<%s>" % sender)
    assert code == 250, text
    return conn


def rcpt(conn, addr):
    code, lines = smtp_cmd(conn, "RCPT TO:<%s>" % addr)
    return code, " ".join(lines)


def data(conn, tag):
    assert smtp_cmd(conn, "DATA")[0] == 354
    conn.send(("Subject: domain %s\r\n\r\nbody\r\n.\r\n" % tag).encode())
    code, lines = smtp_reply(conn)
    assert code == 250, lines
    smtp_cmd(conn, "QUIT")
    conn.close()


def stored(inst, user, tag):
    """The one message of user whose subject carries tag, from the store."""
    out = subprocess.run([STOREDUMP, os.path.join(inst.dir, "state"), user],
                         capture_output=True, timeout=60, check=True).stdout
    found = []
    while out:
        head, out = out.split(b"\n", 1)
        size = int(head.decode().split("\t")[-1])
        if tag.encode() in out[:size]:
            found.append(out[:size].decode().replace("\r\n\t", " "))
        out = out[size + 1:]
    assert len(found) == 1, (user, tag, found)
    return found[0]


def headers(msg, name):
    head = msg.split("\r\n\r\n", 1)[0]
    return [l for l in head.split("\r\n") if l.lower().startswith(name.lower() + ":")]


def test_greylisting_on_for_one_domain_off_for_the_other(inst):
    conn = session(inst, "192.0.2.10", "someone@nospf.test")
    code, text = rcpt(conn, "alice@strict.test")
    assert code == 451 and text.startswith("4.7.1 <alice@strict.test>"), text
    assert "Greylisted" in text
    assert rcpt(conn, "alice@lax.test")[0] == 250
    tag = uuid.uuid4().hex
    data(conn, tag)
    assert "Subject: domain " + tag in stored(inst, "alice@lax.test", tag)
    inst.wait_log("reject: RCPT from unknown[192.0.2.10]: 451 4.7.1 <alice@strict.test>")
    # the retry after the (global) delay passes for strict.test too
    time.sleep(GREY_DELAY + 1)
    conn = session(inst, "192.0.2.10", "someone@nospf.test")
    assert rcpt(conn, "alice@strict.test")[0] == 250
    data(conn, uuid.uuid4().hex)


def test_spf_fail_rejected_for_one_domain_tagged_for_the_other(inst):
    conn = session(inst, "192.0.2.20", "bob@fail.test")   # MAIL: 250, verdict per RCPT
    code, text = rcpt(conn, "bob@strict.test")
    assert code == 550 and text.startswith("5.7.23 <bob@fail.test>: Sender address "
                                           "rejected: SPF fail"), text
    assert rcpt(conn, "bob@lax.test")[0] == 250
    tag = uuid.uuid4().hex
    data(conn, tag)
    msg = stored(inst, "bob@lax.test", tag)
    spf = headers(msg, "Received-SPF")
    assert len(spf) == 1 and spf[0].startswith("Received-SPF: fail (mail.warren.test: "
                                               "domain of bob@fail.test does not designate "
                                               "192.0.2.20"), msg
    assert headers(msg, "X-Spam-SPF") == ["X-Spam-SPF: fail"], msg
    assert headers(msg, "Authentication-Results") == [
        "Authentication-Results: mail.warren.test; spf=fail smtp.mailfrom=bob@fail.test"]
    inst.wait_log("spf: MAIL from unknown[192.0.2.20]: fail identity=mailfrom "
                  "domain=fail.test action=per-recipient")
    inst.wait_log("reject: RCPT from unknown[192.0.2.20]: 550 5.7.23")
    inst.wait_log("spf: RCPT from unknown[192.0.2.20]: fail domain=fail.test "
                  "to=<bob@lax.test> action=tag")


def test_dnsbl_threshold_per_domain(inst):
    conn = session(inst, "192.0.2.2", "x@nospf.test")
    code, text = rcpt(conn, "alice@strict.test")
    assert code == 554, text
    assert text == "5.7.1 Service unavailable; client [192.0.2.2] blocked using zen.test" \
        or text.startswith("5.7.1 Service unavailable; client [192.0.2.2] blocked using "
                           "zen.test;"), text
    # the same listed client, the same (cached) lookup: below lax.test's threshold
    assert rcpt(conn, "bob@lax.test")[0] == 250
    data(conn, uuid.uuid4().hex)
    inst.wait_log("dnsbl: client [192.0.2.2] score 3 below 5")


def test_dnsbl_tag_and_spf_off_for_a_third_domain(inst):
    conn = session(inst, "192.0.2.2", "bob@fail.test")
    assert rcpt(conn, "alice@strict.test")[0] == 554      # DNSBL, before SPF
    assert rcpt(conn, "alice@tag.test")[0] == 250         # tagged; no SPF here
    tag = uuid.uuid4().hex
    data(conn, tag)
    msg = stored(inst, "alice@tag.test", tag)
    assert headers(msg, "X-Warren-DNSBL") == [
        "X-Warren-DNSBL: score=3 threshold=3 client=[192.0.2.2] listed=zen.test(3)"], msg
    assert headers(msg, "Received-SPF") == [] and headers(msg, "X-Spam-SPF") == [], msg


def test_domain_blacklist_applies_to_its_recipients_only(inst):
    conn = session(inst, "192.0.2.30", "spammer@bad.test")
    code, text = rcpt(conn, "alice@strict.test")
    assert code == 554 and text == ("5.7.1 <spammer@bad.test>: Sender address rejected: "
                                    "Access denied"), text
    assert rcpt(conn, "alice@lax.test")[0] == 250
    data(conn, uuid.uuid4().hex)
    conn = session(inst, "192.0.2.30", "anyone@worse.test")
    code, text = rcpt(conn, "bob@strict.test")
    assert code == 554 and text.endswith("Sender address rejected: Go away"), text
    smtp_cmd(conn, "QUIT")
    conn.close()
    inst.wait_log("reject: RCPT from unknown[192.0.2.30]: 554 5.7.1 <spammer@bad.test>")


def test_domain_whitelists_skip_the_anti_spam_checks_of_its_recipients(inst):
    # a new client and sender: greylisted for strict.test, but whitelisted there
    conn = session(inst, "192.0.2.41", "pal@friend.test")
    assert rcpt(conn, "alice@strict.test")[0] == 250
    data(conn, uuid.uuid4().hex)
    inst.wait_log("sender whitelisted by domain strict.test for <alice@strict.test>")
    # a whitelisted client with an SPF fail: no SPF verdict, no greylisting
    conn = session(inst, "192.0.2.40", "bob@fail.test")
    assert rcpt(conn, "alice@strict.test")[0] == 250
    tag = uuid.uuid4().hex
    data(conn, tag)
    assert headers(stored(inst, "alice@strict.test", tag), "Received-SPF") == []
    inst.wait_log("client whitelisted by domain strict.test for <alice@strict.test>")


def submit(inst, user):
    conn = LineConn.open(inst, "submission", timeout=10)
    assert smtp_reply(conn)[0] == 220
    assert smtp_cmd(conn, "EHLO client.test")[0] == 250
    code, lines = smtp_cmd(conn, "AUTH PLAIN " + sasl_plain(user, "secret"))
    assert code == 235, lines
    return conn


def test_rate_limit_for_one_domains_users(inst):
    conn = submit(inst, "alice@strict.test")
    assert smtp_cmd(conn, "MAIL FROM:<alice@strict.test>")[0] == 250
    assert smtp_cmd(conn, "RSET")[0] == 250
    code, lines = smtp_cmd(conn, "MAIL FROM:<alice@strict.test>")
    assert code == 451 and lines[0].startswith("4.7.1") and "alice@strict.test" in lines[0]
    conn.close()
    # lax.test's users have the global limit: none
    conn = submit(inst, "alice@lax.test")
    for _ in range(3):
        assert smtp_cmd(conn, "MAIL FROM:<alice@lax.test>")[0] == 250
        assert smtp_cmd(conn, "RSET")[0] == 250
    conn.close()
    inst.wait_log("(policy=rate)")


BAD_OVERRIDES = [
    ('spf { fail = bounce }', 'fail: "bounce" is not one of accept, tag, reject, tempfail'),
    ('greylist { delay = 2h  retry_window = 1h }',
     "greylist: delay (7200s) must be shorter than retry_window (3600s)"),
    ('greylist { delay = "5 parsecs" }', 'delay: "5 parsecs" is not a duration'),
    ('dnsbl { threshold = 0 }', "threshold: 0 is out of range (1..1000)"),
    ('dnsbl { sites = { "zen.test" } }', "sites"),
    ('lists { client_blacklist = { "not-a-network" } }',
     'client_blacklist: "not-a-network" is not an address or network'),
    ('rate { messages_per_user = -1 }', "messages_per_user: -1 is out of range"),
]


def test_check_config_refuses_bad_overrides():
    for body, message in BAD_OVERRIDES:
        i = WarrenInstance(listeners={"smtp": ("smtp", "none")},
                           domains={"bad.test": MAILBOXES + body + "\n"})
        try:
            r = warren_check(i.config_path)
            assert r.returncode != 0, (body, r.stdout, r.stderr)
            out = r.stdout + r.stderr
            assert message in out, (body, out)
            assert "bad.test.conf:4:" in out, (body, out)
        finally:
            i.cleanup()
    # a valid override is accepted
    i = WarrenInstance(listeners={"smtp": ("smtp", "none")},
                       domains={"ok.test": MAILBOXES + DOMAINS["lax.test"].split("\n", 2)[2]})
    try:
        r = warren_check(i.config_path)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        i.cleanup()
