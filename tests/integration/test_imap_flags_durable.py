"""Flag changes and their durability (issue #11): STORE commits its flag changes
without waiting for an fsync (DB_TXN_WRITE_NOSYNC), messages stay fully durable.

- flags, keywords and removals survive a clean restart of the suite;
- an imapd killed with SIGKILL in the middle of APPENDs and STOREs loses nothing it
  acknowledged: every appended message is there after the restart, and so is every
  flag change (the log record is in the kernel once STORE answers).
"""

import imaplib
import os
import re
import signal
import threading
import time

import pytest

from warren import WarrenInstance

USER = "alice@example.test"


def message(i):
    return (f"From: bob@example.test\r\nTo: alice@example.test\r\n"
            f"Subject: durable {i}\r\nMessage-ID: <durable-{i}@example.test>\r\n\r\n"
            f"body {i}\r\n").encode()


def login(suite, timeout=20.0):
    """Logs in, retrying while imapd is being started again (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            c = imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10)
            c.login(USER, "secret")
            return c
        except (OSError, imaplib.IMAP4.abort):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def flags_by_subject(c):
    """{subject number: set of flags} of every message in INBOX."""
    typ, _ = c.select("INBOX")
    assert typ == "OK"
    typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split()
        n = int(re.search(rb"durable (\d+)", item[1]).group(1))
        assert n not in out, f"message {n} twice"
        out[n] = set(flags) - {"\\Recent"}
    return out


@pytest.fixture
def suite():
    inst = WarrenInstance(listeners={"imap": ("imap", "starttls")}, log_level="info",
                          listener_extra={"imap": "auth_plaintext = true"})
    inst.start()
    yield inst
    inst.cleanup()


def restart(suite):
    suite.stop()
    suite.start()


def test_flags_survive_clean_restart(suite):
    c = login(suite)
    for i in range(6):
        assert c.append("INBOX", None, None, message(i))[0] == "OK"
    c.select("INBOX")
    assert c.store("1", "+FLAGS", "(\\Seen \\Flagged)")[0] == "OK"
    assert c.store("2", "+FLAGS", "($Label1 Work)")[0] == "OK"
    assert c.store("3", "+FLAGS", "(\\Answered \\Seen)")[0] == "OK"
    assert c.store("3", "-FLAGS", "(\\Seen)")[0] == "OK"
    assert c.store("4", "FLAGS", "(\\Draft)")[0] == "OK"
    assert c.store("5", "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
    want = flags_by_subject(c)
    assert want[0] == {"\\Seen", "\\Flagged"}
    assert want[2] == {"\\Answered"}
    c.logout()

    restart(suite)
    c = login(suite)
    assert flags_by_subject(c) == want
    # UNSEEN in the mailbox record came through too
    typ, data = c.status("INBOX", "(MESSAGES UNSEEN)")
    assert typ == "OK" and b"MESSAGES 6" in data[0] and b"UNSEEN 5" in data[0], data
    c.logout()


def test_kill_imapd_keeps_acknowledged_messages_and_flags(suite):
    acked = {}             # subject number -> flags the server confirmed
    stop = threading.Event()
    errors = []

    def writer():
        c = login(suite)
        c.select("INBOX")
        i = 0
        try:
            while not stop.is_set() and i < 2000:
                typ, data = c.append("INBOX", None, None, message(i))
                if typ != "OK":
                    errors.append(data)
                    return
                uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
                acked[i] = set()
                flag = ["\\Seen", "\\Flagged", "\\Answered"][i % 3]
                typ, _ = c.uid("STORE", uid, "+FLAGS.SILENT", f"({flag})")
                if typ != "OK":
                    errors.append(typ)
                    return
                acked[i] = {flag}
                i += 1
        except (OSError, imaplib.IMAP4.abort, imaplib.IMAP4.error):
            pass           # the server went away under us: expected

    t = threading.Thread(target=writer)
    t.start()
    deadline = time.monotonic() + 10
    while len(acked) < 15 and time.monotonic() < deadline and t.is_alive():
        time.sleep(0.05)
    pid = suite.children()["imapd"]
    os.kill(pid, signal.SIGKILL)
    stop.set()
    t.join(timeout=30)
    assert not t.is_alive()
    assert not errors, errors
    assert len(acked) >= 15, "the writer acknowledged almost nothing"

    # the master starts imapd again; everything acknowledged is there
    c = login(suite)
    got = flags_by_subject(c)
    c.logout()
    for n, flags in acked.items():
        assert n in got, f"acknowledged message {n} lost after kill -9"
        assert flags <= got[n], f"message {n}: flags {got[n]}, acknowledged {flags}"
    # and after a clean restart of the whole suite as well
    restart(suite)
    c = login(suite)
    again = flags_by_subject(c)
    c.logout()
    assert again == got
