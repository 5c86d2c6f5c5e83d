"""Outbound delivery (issue #6): the queue, MX routing, the SMTP client, retries,
bounces, relays, queue commands and DKIM.

Two real Warren suites: the sender on 127.0.0.2 and the receiver on 127.0.0.3,
with a dnsmasq giving the MX records. Messages enter the sender's queue either
through tests/tools/queueinject (the queue API smtpd's outbound_submit() uses)
or through SMTP submission, and are read on the receiver through POP3.
"""

import email
import os
import poplib
import re
import subprocess
import textwrap
import time

import pytest

from dnsmasq import Dnsmasq
from protocols import warrenctl
from warren import BUILD, SECRET_HASH, WarrenInstance, client_context, free_port

QUEUEINJECT = os.path.join(BUILD, "tests", "queueinject")
SENDER = "127.0.0.2"
RECEIVER = "127.0.0.3"

RECORDS = {
    "dest.test": {"MX": [(10, "mx.dest.test")]},
    "mx.dest.test": {"A": [RECEIVER]},
    # two MX hosts: the first one refuses connections
    "backup.test": {"MX": [(10, "dead.backup.test"), (20, "mx.dest.test")]},
    "dead.backup.test": {"A": ["127.0.0.9"]},
    # nullmx.test has an RFC 7505 null MX (NULL_MX below: dnsmasq.py cannot write "." as host)
    # no MX: the A record is used
    "amx.test": {"A": [RECEIVER]},
}

# MX 0 "." as raw RDATA: preference 0, the root name
NULL_MX = ["--dns-rr=nullmx.test,15,000000"]

FAST_QUEUE = "scan_interval = 1s  retry_min = 1s  retry_max = 2s"


@pytest.fixture(scope="module")
def dns():
    if not os.access(QUEUEINJECT, os.X_OK):
        pytest.fail("%s not built (set WARREN_BUILD)" % QUEUEINJECT)
    with Dnsmasq(RECORDS, extra_args=NULL_MX) as server:
        yield server


def receiver_domains():
    return {
        "dest.test": f'mailbox bob {{ password = "{SECRET_HASH}" }}\n'
                     f'mailbox dave {{ password = "{SECRET_HASH}" }}\n',
        "backup.test": f'mailbox bob {{ password = "{SECRET_HASH}" }}\n',
        "amx.test": f'mailbox bob {{ password = "{SECRET_HASH}" }}\n',
    }


def sender_domains():
    return {
        "example.test": f'mailbox alice {{ password = "{SECRET_HASH}" }}\n',
    }


class Pair:
    """A sender and a receiver suite; the sender's MX port is the receiver's smtp."""

    def __init__(self, dns, sender_queue="", sender_extra="", sender_domains_=None,
                 receiver_domains_=None, receiver_extra=""):
        self.receiver = WarrenInstance(address=RECEIVER,
                                       domains=receiver_domains_ or receiver_domains(),
                                       extra=receiver_extra)
        self.port = self.receiver.ports["smtp"]
        extra = textwrap.dedent(f"""\
            dns {{ servers = "{dns.server}"  timeout = 500ms  tries = 2 }}
            queue {{ smtp_port = {self.port}  {FAST_QUEUE}  {sender_queue} }}
            """) + sender_extra
        self.sender = WarrenInstance(address=SENDER,
                                     domains=sender_domains_ or sender_domains(),
                                     extra=extra)

    def start(self, receiver=True):
        if receiver:
            self.receiver.start()
        self.sender.start()
        return self

    def cleanup(self):
        for inst in (self.sender, self.receiver):
            inst.cleanup()

    def dump(self):
        print("---- sender log ----")
        print(self.sender.log()[-15000:])
        print("---- receiver log ----")
        print(self.receiver.log()[-8000:])


@pytest.fixture
def pair_factory(dns):
    made = []

    def make(**kw):
        p = Pair(dns, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        if os.environ.get("WARREN_KEEP_LOGS"):
            p.dump()
        p.cleanup()


def message(subject="queued", to="bob@dest.test", sender="alice@example.test", body=None):
    body = body or "Hello from the queue.\r\n.a line with a leading dot\r\n"
    return (f"From: Alice <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Date: Tue, 01 Dec 2026 19:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '-')}@example.test>\r\n\r\n{body}").encode()


def inject(inst, sender, rcpts, data, *opts):
    proc = subprocess.run([QUEUEINJECT, *opts, os.path.join(inst.dir, "state"), sender, *rcpts],
                          input=data, capture_output=True, timeout=20)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode().strip()


def pop3_messages(inst, user):
    """Every message in user's maildrop (bytes), via POP3 over TLS."""
    pop = poplib.POP3_SSL(inst.address, inst.ports["pop3s"], context=client_context(),
                          timeout=10)
    try:
        pop.user(user)
        pop.pass_("secret")
        count, _ = pop.stat()
        return [b"\r\n".join(pop.retr(i + 1)[1]) for i in range(count)]
    finally:
        pop.quit()


def wait_messages(inst, user, count=1, timeout=20.0):
    deadline = time.monotonic() + timeout
    msgs = []
    while time.monotonic() < deadline:
        msgs = pop3_messages(inst, user)
        if len(msgs) >= count:
            return msgs
        time.sleep(0.3)
    raise AssertionError(f"{user}: {len(msgs)} messages, wanted {count}")


def queue_ids(inst):
    proc = warrenctl("-c", inst.config_path, "queue", "list")
    assert proc.returncode == 0, proc.stderr
    return re.findall(r"^([0-9A-F]{12,})\b", proc.stdout, re.M)


def wait_queue_empty(inst, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.listdir(os.path.join(inst.dir, "state", "queue")) or \
                all(n.startswith(".") for n in os.listdir(os.path.join(inst.dir, "state", "queue"))):
            return
        time.sleep(0.2)
    raise AssertionError("queue not empty: %s" % os.listdir(os.path.join(inst.dir, "state", "queue")))


# ---- delivery ------------------------------------------------------------------


def test_delivery_by_mx_with_starttls(pair_factory):
    p = pair_factory().start()
    qid = inject(p.sender, "alice@example.test", ["bob@dest.test"], message("by mx"))
    msgs = wait_messages(p.receiver, "bob@dest.test")
    msg = email.message_from_bytes(msgs[0])
    assert msg["Subject"] == "by mx"
    assert b".a line with a leading dot" in msgs[0]
    assert b"\r\n..a line" not in msgs[0]
    log = p.sender.wait_log(f"{qid}: to=<bob@dest.test>, relay=mx.dest.test[{RECEIVER}]:{p.port}")
    assert "status=sent (250" in log
    assert re.search(rf"{qid}: Untrusted TLS connection established to mx.dest.test\[{RECEIVER}\]"
                     rf":{p.port}: TLSv1\.[23] with cipher \S+", log), log[-3000:]
    p.sender.wait_log(f"{qid}: removed")
    wait_queue_empty(p.sender)
