"""APPEND with several messages in one command (the MULTIAPPEND form imapd accepts):
imapd's message table grows as literals arrive (4 entries, doubling), so a command
with more messages than the first table holds must store every one of them, each
with its own flags and date, and answer one APPENDUID set."""

import imaplib
import re
import socket

import pytest

from warren import WarrenInstance

USER = "alice@example.test"
COUNT = 11             # crosses the table's growth twice (4 -> 8 -> 16)


@pytest.fixture(scope="module")
def suite():
    inst = WarrenInstance(listeners={"imap": ("imap", "starttls")}, log_level="info",
                          listener_extra={"imap": "auth_plaintext = true"})
    inst.start()
    yield inst
    inst.cleanup()


def message(i):
    return (f"From: bob@example.test\r\nSubject: many {i}\r\n\r\n"
            f"body of message {i}\r\n").encode()


def raw_session(suite):
    s = socket.create_connection(("127.0.0.1", suite.port("imap")), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(f'a1 LOGIN "{USER}" "secret"\r\n'.encode())
    while True:
        line = f.readline()
        assert line, "connection closed"
        if line.startswith(b"a1 "):
            assert line.startswith(b"a1 OK"), line
            break
    return s, f


def tagged(f, tag):
    while True:
        line = f.readline()
        assert line, "connection closed"
        if line.startswith(tag + b" "):
            return line


def test_one_append_with_many_messages(suite):
    s, f = raw_session(suite)
    flags = ["(\\Seen)", "(\\Flagged)", "()"]
    cmd = b"a2 APPEND INBOX"
    for i in range(COUNT):
        body = message(i)
        date = f' "0{1 + i % 9}-Dec-2026 12:00:00 +0000"'.encode()
        cmd += f" {flags[i % 3]}".encode() + date + f" {{{len(body)}+}}\r\n".encode() + body
    s.sendall(cmd + b"\r\n")
    reply = tagged(f, b"a2")
    s.close()
    assert reply.startswith(b"a2 OK"), reply
    m = re.search(rb"APPENDUID \d+ (\S+)\]", reply)
    assert m and m.group(1) == f"1:{COUNT}".encode(), reply

    c = imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10)
    c.login(USER, "secret")
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK"
    got = [item for item in data if isinstance(item, tuple)]
    assert len(got) == COUNT
    for i, (meta, body) in enumerate(got):
        assert body == message(i)
        want = {"(\\Seen)": "\\Seen", "(\\Flagged)": "\\Flagged", "()": None}[flags[i % 3]]
        fl = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split()
        assert fl == ([want] if want else []), (i, meta)
        assert f'"0{1 + i % 9}-Dec-2026 12:00:00 +0000"'.encode() in meta, meta
    c.logout()


def test_bad_message_in_the_middle_stores_nothing(suite):
    """A syntax error after some literals: BAD, and no message of the command stored."""
    c = imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10)
    c.login(USER, "secret")
    typ, data = c.status("INBOX", "(MESSAGES)")
    before = int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
    c.logout()
    s, f = raw_session(suite)
    body = message(99)
    lit = f"{{{len(body)}+}}\r\n".encode() + body
    s.sendall(b"a3 APPEND INBOX " + b" ".join([lit] * 6) + b" (\\Bogus-Flag-!) x\r\n")
    reply = tagged(f, b"a3")
    s.close()
    assert reply.startswith(b"a3 BAD") or reply.startswith(b"a3 NO"), reply
    c = imaplib.IMAP4("127.0.0.1", suite.port("imap"), timeout=10)
    c.login(USER, "secret")
    typ, data = c.status("INBOX", "(MESSAGES)")
    assert int(re.search(rb"MESSAGES (\d+)", data[0]).group(1)) == before
    c.logout()
