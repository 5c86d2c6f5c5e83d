"""smtpd's relay protection against the classic open-relay test battery: from a
client outside the trusted networks without AUTH, every form that could route
mail elsewhere is refused (554 5.7.1 Relay access denied; 501 for forms that are
not addresses at all; 550 5.1.1 only for a plain unknown local user), nothing
reaches the outbound queue; trusted networks and authenticated clients may
relay; a whitehost may not (docs/policy.md, "Relay protection")."""

import os
import re
import textwrap

import pytest

from protocols import (LineConn, sasl_plain, smtp_cmd, smtp_reply, start_instance,
                       warrenctl)
from warren import SECRET_HASH

LISTENERS = {"smtp": ("smtp", "none"), "submission": ("submission", "starttls")}

DOMAINS = {
    "example.test": textwrap.dedent(f"""\
        mailbox alice {{ password = "{SECRET_HASH}" }}
    """),
    # a catch-all takes every unknown local part: still no routing through it
    "catchall.test": 'catch_all = "alice@example.test"\n',
    # a domain we relay to its own server (backup MX style)
    "relay.test": 'type = remote\nrelay_host = "127.0.0.1:1"\n',
}


@pytest.fixture(scope="module")
def inst():
    i = start_instance(listeners=LISTENERS, domains=DOMAINS, extra=textwrap.dedent("""\
        smtp { trusted_networks = { "127.0.0.2" } }
        lists { whitehosts = { "127.0.0.3" } }
        """))
    yield i
    i.cleanup()


def session(inst, source="127.0.0.1", listener="smtp"):
    conn = LineConn.open(inst, listener, source=source, timeout=10)
    assert smtp_reply(conn)[0] == 220
    assert smtp_cmd(conn, "EHLO client.example.net")[0] == 250
    return conn


def queue_empty(inst):
    proc = warrenctl("-c", inst.config_path, "queue", "list")
    assert proc.returncode == 0, proc.stderr
    assert not re.search(r"^[0-9A-F]{12,}\b", proc.stdout, re.M), proc.stdout
    qdir = os.path.join(inst.dir, "state", "queue")
    files = [f for _, _, fs in os.walk(qdir) for f in fs] if os.path.isdir(qdir) else []
    assert files == [], files


# (recipient as written inside RCPT TO:<...>, expected code, enhanced code)
BATTERY = [
    ("user%other.test@example.test", 554, "5.7.1"),         # percent hack
    ("other.test!user@example.test", 554, "5.7.1"),         # bang path
    ("user%other.test%example.test@example.test", 554, "5.7.1"),
    ("@example.test:user@other.test", 554, "5.7.1"),        # source route: route ignored
    ("@example.test,@example.test:user@other.test", 554, "5.7.1"),
    ('"user@other.test"@example.test', 554, "5.7.1"),       # quoted @
    ('"user%other.test"@example.test', 554, "5.7.1"),
    ('"user\\@other.test"@example.test', 554, "5.7.1"),
    ('"other.test!user"@example.test', 554, "5.7.1"),
    ("user@other.test@example.test", 501, "5.1.3"),         # not an address
    ('"user@other.test"', 501, "5.1.3"),
    ("user@other.test", 554, "5.7.1"),                      # plain relaying
    ("user@OTHER.TEST", 554, "5.7.1"),
    ("user@other.test.", 501, "5.1.3"),
    ("user@[127.0.0.1]", 554, "5.7.1"),                     # IP literals are never ours
    ("user@[IPv6:::1]", 554, "5.7.1"),
    ("user%other.test@[127.0.0.1]", 554, "5.7.1"),
    ("other.test!user@[127.0.0.1]", 554, "5.7.1"),
    ('"user%other.test"@[127.0.0.1]', 554, "5.7.1"),
    ("user%other.test@catchall.test", 554, "5.7.1"),        # even with a catch-all
    ("other.test!user@catchall.test", 554, "5.7.1"),
    ("user%other.test@relay.test", 554, "5.7.1"),           # nor to a relayed domain
    ("other.test!user@relay.test", 554, "5.7.1"),
    ("nosuchuser@example.test", 550, "5.1.1"),              # simply not a local user
]


@pytest.mark.parametrize("rcpt,code,enh", BATTERY, ids=[b[0] for b in BATTERY])
def test_battery_refused_from_outside(inst, rcpt, code, enh):
    conn = session(inst)
    assert smtp_cmd(conn, "MAIL FROM:<spammer@outside.example.net>")[0] == 250
    got, text = smtp_cmd(conn, "RCPT TO:<%s>" % rcpt)
    text = " ".join(text)
    assert (got, text.split()[0]) == (code, enh), (rcpt, got, text)
    if code == 554:
        assert "Relay access denied" in text
    # nothing can be sent: no recipient was taken
    got, text = smtp_cmd(conn, "DATA")
    assert got in (503, 554), text
    smtp_cmd(conn, "QUIT")
    conn.close()
    if code == 554:
        inst.wait_log("reject: RCPT from unknown[127.0.0.1]: 554 5.7.1")
    queue_empty(inst)


def test_source_route_to_us_is_ignored_and_delivered_locally(inst):
    conn = session(inst)
    assert smtp_cmd(conn, "MAIL FROM:<someone@outside.example.net>")[0] == 250
    # RFC 5321 4.1.2 / Appendix C: the route is ignored, the mailbox is ours
    assert smtp_cmd(conn, "RCPT TO:<@other.test:alice@example.test>")[0] == 250
    assert smtp_cmd(conn, "RSET")[0] == 250
    smtp_cmd(conn, "QUIT")
    conn.close()
    queue_empty(inst)


def test_trusted_network_may_relay_but_not_route_to_unknown_users(inst):
    conn = session(inst, source="127.0.0.2")
    assert smtp_cmd(conn, "MAIL FROM:<app@example.test>")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<user@other.test>")[0] == 250
    # routing characters from a trusted client: not relaying, just no such user
    code, text = smtp_cmd(conn, "RCPT TO:<user%other.test@example.test>")
    assert code == 550 and text[0].startswith("5.1.1"), text
    assert smtp_cmd(conn, "RSET")[0] == 250
    smtp_cmd(conn, "QUIT")
    conn.close()
    queue_empty(inst)


def test_authenticated_client_may_relay(inst):
    conn = session(inst, listener="submission")
    assert smtp_cmd(conn, "STARTTLS")[0] == 220
    conn.starttls()
    assert smtp_cmd(conn, "EHLO client.example.net")[0] == 250
    assert smtp_cmd(conn, "AUTH PLAIN " + sasl_plain("alice@example.test", "secret"))[0] == 235
    assert smtp_cmd(conn, "MAIL FROM:<alice@example.test>")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<user@other.test>")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<user@[127.0.0.1]>")[0] == 250
    assert smtp_cmd(conn, "RSET")[0] == 250
    smtp_cmd(conn, "QUIT")
    conn.close()
    queue_empty(inst)


def test_whitehost_still_gets_relay_protection(inst):
    conn = session(inst, source="127.0.0.3")
    assert smtp_cmd(conn, "MAIL FROM:<someone@outside.example.net>")[0] == 250
    for rcpt in ("user@other.test", "user%other.test@example.test", "user@[127.0.0.1]"):
        code, text = smtp_cmd(conn, "RCPT TO:<%s>" % rcpt)
        assert code == 554 and "Relay access denied" in text[0], (rcpt, text)
    assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
    assert smtp_cmd(conn, "RSET")[0] == 250
    smtp_cmd(conn, "QUIT")
    conn.close()
    inst.wait_log("whitehost unknown[127.0.0.3]")
    queue_empty(inst)
