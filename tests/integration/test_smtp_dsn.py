"""Delivery status notifications for local deliveries (RFC 3461): a RCPT with
NOTIFY=SUCCESS gets a "delivered" report in the sender's mailbox, carrying the
ENVID and the ORCPT given; one report line per RCPT even when an alias expands to
several mailboxes; nothing for NOTIFY=FAILURE alone or for the null sender."""

import email
import re
import textwrap
import time

import pytest

from warren import SECRET_HASH
from protocols import smtp_cmd, smtp_open, smtp_reply, start_instance, store_dump

DOMAINS = {"example.test": textwrap.dedent(f"""\
    mailbox alice {{ password = "{SECRET_HASH}" }}
    mailbox bob {{ password = "{SECRET_HASH}" }}
    mailbox carol {{ }}
    alias team {{ to = {{ "bob", "carol" }} }}
    """)}


@pytest.fixture(scope="module")
def inst():
    i = start_instance(domains=DOMAINS, listeners={"smtp": ("smtp", "none")}, log_level="info",
                       extra="queue { scan_interval = 1s  retry_min = 1s }\n")
    yield i
    i.cleanup()


def messages(inst, user):
    return [m[4] for m in store_dump(inst, user)]


def reports(inst, user, count, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in messages(inst, user) if b"Successful Mail Delivery Report" in m]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def send(inst, sender, rcpts, subject, envid=None):
    conn = smtp_open(inst, "smtp")
    mail = f"MAIL FROM:<{sender}>" + (f" ENVID={envid}" if envid else "")
    assert smtp_cmd(conn, mail)[0] == 250
    for r in rcpts:
        assert smtp_cmd(conn, f"RCPT TO:{r}")[0] == 250, r
    assert smtp_cmd(conn, "DATA")[0] == 354
    conn.send(f"From: <{sender}>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@t>\r\n\r\n"
              "body\r\n.\r\n".encode())
    code, text = smtp_reply(conn)
    assert code == 250, text
    smtp_cmd(conn, "QUIT")
    return re.search(r"queued as (\S+)", text[0]).group(1)


def status_blocks(report):
    msg = email.message_from_bytes(report)
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            return [dict(block.items()) for block in payload]
    raise AssertionError("no delivery-status part")


def test_notify_success_gives_a_delivered_report_with_envid_and_orcpt(inst):
    qid = send(inst, "alice@example.test",
               ["<bob@example.test> NOTIFY=SUCCESS ORCPT=rfc822;Bob+2BTag@example.test"],
               "wanted", envid="ENV+2D42")
    found = reports(inst, "alice@example.test", 1)
    assert len(found) == 1
    rep = found[0]
    assert b"Subject: wanted" in rep   # the original's headers come back
    blocks = status_blocks(rep)
    assert blocks[0]["Original-Envelope-Id"] == "ENV-42"
    assert blocks[1]["Final-Recipient"] == "rfc822; bob@example.test"
    assert blocks[1]["Original-Recipient"] == "rfc822; Bob+Tag@example.test"
    assert blocks[1]["Action"] == "delivered"
    assert blocks[1]["Status"] == "2.0.0"
    # bob has the message itself
    assert any(b"Subject: wanted" in m for m in messages(inst, "bob@example.test"))
    log = inst.log()
    assert f"{qid}: sender delivery status notification:" in log


def test_one_line_per_rcpt_for_an_alias_and_none_without_success(inst):
    before = len(reports(inst, "alice@example.test", 0, timeout=0))
    send(inst, "alice@example.test",
         ["<team@example.test> NOTIFY=SUCCESS,FAILURE", "<alice@example.test> NOTIFY=FAILURE"],
         "listed")
    found = reports(inst, "alice@example.test", before + 1)
    assert len(found) == before + 1
    rep = [r for r in found if b"Subject: listed" in r]
    assert len(rep) == 1
    blocks = status_blocks(rep[0])
    finals = [b["Final-Recipient"] for b in blocks[1:]]
    assert finals == ["rfc822; team@example.test"]
    # carol (list member) got the message; alice's own copy with NOTIFY=FAILURE gave no report
    assert any(b"Subject: listed" in m for m in messages(inst, "carol@example.test"))
    time.sleep(1.5)
    assert len(reports(inst, "alice@example.test", 0, timeout=0)) == before + 1


def test_null_sender_gets_no_report(inst):
    before = len(inst.log().split("sender delivery status notification"))
    qid = send(inst, "", ["<bob@example.test> NOTIFY=SUCCESS"], "bounce-like")
    inst.wait_log(f"{qid}: removed")
    time.sleep(0.5)
    assert f"{qid}: sender delivery status notification" not in inst.log()
    assert len(inst.log().split("sender delivery status notification")) == before
