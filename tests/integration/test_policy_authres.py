"""Forged Authentication-Results (RFC 8601 section 5, smtpd/smtp-authres.c): mail
from a client that did not authenticate loses every Authentication-Results field
that carries our authserv-id (the hostname, mail.warren.test) before delivery;
fields of other authserv-ids stay, and so does the one smtpd's SPF check adds.
Sent with smtplib (and raw BDAT chunks), read back over IMAP."""

import imaplib
import smtplib
import uuid

import pytest

from dnsmasq import Dnsmasq
from protocols import LineConn, smtp_cmd, smtp_reply, start_instance

LISTENERS = {"smtp": ("smtp", "none"), "imap": ("imap", "none")}
OURS = "mail.warren.test"


@pytest.fixture(scope="module")
def dns():
    d = Dnsmasq({"pass.test": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]}})
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def inst(dns):
    extra = ('dns { servers = "%s"  timeout = 1s  tries = 1 }\n'
             'smtp { xclient_networks = { "127.0.0.1" } }\n'
             'spf { enabled = true }\n' % dns.server)
    i = start_instance(listeners=LISTENERS, extra=extra,
                       listener_extra={"imap": "auth_plaintext = true\n"})
    yield i
    i.cleanup()


def smtp_send(inst, message, ip="192.0.2.1", login=None):
    with smtplib.SMTP("127.0.0.1", inst.port("smtp"), timeout=20) as c:
        c.ehlo("client.test")
        args = "ADDR=%s" % ip + (" LOGIN=%s" % login if login else "")
        code, text = c.docmd("XCLIENT", args)
        assert code == 220, text
        c.ehlo("client.test")
        c.sendmail("alice@pass.test", ["alice@example.test"], message)


def fetch_headers(inst, tag):
    """alice's message whose subject carries tag: its header block, unfolded."""
    m = imaplib.IMAP4("127.0.0.1", inst.port("imap"), timeout=20)
    try:
        m.login("alice@example.test", "secret")
        m.select("INBOX")
        _, data = m.search(None, "SUBJECT", tag)
        ids = data[0].split()
        assert len(ids) == 1, (tag, data)
        _, data = m.fetch(ids[0], "(BODY.PEEK[])")
        raw = data[0][1].decode()
        head, _, body = raw.partition("\r\n\r\n")
        return head.replace("\r\n\t", " ").replace("\r\n ", " "), body
    finally:
        m.logout()


def ar_fields(head):
    return [l for l in head.split("\r\n") if l.lower().startswith("authentication-results:")]


def test_forged_fields_are_removed_foreign_and_ours_stay(inst):
    tag = uuid.uuid4().hex
    before = inst.log().count("removed forged Authentication-Results")
    message = (
        "Authentication-Results: %s; spf=pass smtp.mailfrom=forged@pass.test\r\n"
        "Subject: ar %s\r\n"
        "Authentication-Results: mx.other.test; spf=fail smtp.mailfrom=x@other.test\r\n"
        "authentication-RESULTS : (a comment (nested \\) one))\r\n"
        "\t MAIL.Warren.Test.;\r\n"
        "\tdkim=pass header.d=bank.test\r\n"
        "X-Between: kept\r\n"
        "Authentication-Results: \"%s\"; dmarc=pass\r\n"
        "Authentication-Results: mail.warren.test.evil.test; spf=pass\r\n"
        "From: <alice@pass.test>\r\n"
        "\r\n"
        "Authentication-Results: %s; in the body stays\r\n" % (OURS, tag, OURS, OURS))
    smtp_send(inst, message)
    head, body = fetch_headers(inst, tag)
    ar = ar_fields(head)
    assert "Authentication-Results: mx.other.test; spf=fail smtp.mailfrom=x@other.test" in ar
    assert "Authentication-Results: mail.warren.test.evil.test; spf=pass" in ar
    # ours, written by the SPF check
    assert "Authentication-Results: %s; spf=pass smtp.mailfrom=alice@pass.test" % OURS in ar
    assert len(ar) == 3, head
    assert "forged@" not in head and "bank.test" not in head and "dmarc" not in head, head
    assert "X-Between: kept" in head and "From: <alice@pass.test>" in head
    assert "Subject: ar %s" % tag in head
    assert body.startswith("Authentication-Results: %s; in the body stays" % OURS), body
    inst.wait_log("removed forged Authentication-Results", count=before + 3)


def test_authenticated_submission_keeps_them(inst):
    tag = uuid.uuid4().hex
    smtp_send(inst, "Authentication-Results: %s; spf=pass\r\nSubject: ar %s\r\n\r\nhi\r\n"
              % (OURS, tag), login="alice@example.test")
    head, _ = fetch_headers(inst, tag)
    assert ar_fields(head) == ["Authentication-Results: %s; spf=pass" % OURS], head


def test_bdat_chunks_split_inside_the_field(inst):
    tag = uuid.uuid4().hex
    before = inst.log().count("removed forged Authentication-Results")
    message = ("Subject: ar %s\r\nAuthentication-Results:\r\n (x) %s;\r\n spf=pass\r\n"
               "Authentication-Results: other.test; spf=none\r\n\r\nbody\r\n" % (tag, OURS))
    # chunk boundaries in the name, the comment, the authserv-id and the next field
    cuts = [message.index("Authentication-Results:") + 5, message.index("(x)") + 2,
            message.index(OURS) + 4, message.index("other.test") + 2, len(message)]
    conn = LineConn.open(inst, "smtp", timeout=20)
    try:
        assert smtp_reply(conn)[0] == 220
        assert smtp_cmd(conn, "XCLIENT ADDR=192.0.2.1")[0] == 220
        assert smtp_cmd(conn, "EHLO client.test")[0] == 250
        assert smtp_cmd(conn, "MAIL FROM:<alice@pass.test>")[0] == 250
        assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
        start = 0
        for n, cut in enumerate(cuts):
            chunk = message[start:cut].encode()
            last = " LAST" if n == len(cuts) - 1 else ""
            conn.send(b"BDAT %d%s\r\n" % (len(chunk), last.encode()) + chunk)
            code, text = smtp_reply(conn)
            assert code == 250, text
            start = cut
        smtp_cmd(conn, "QUIT")
    finally:
        conn.close()
    head, body = fetch_headers(inst, tag)
    ar = ar_fields(head)
    assert "Authentication-Results: other.test; spf=none" in ar
    assert "Authentication-Results: %s; spf=pass smtp.mailfrom=alice@pass.test" % OURS in ar
    assert len(ar) == 2, head
    assert body == "body\r\n"
    inst.wait_log("removed forged Authentication-Results", count=before + 1)
