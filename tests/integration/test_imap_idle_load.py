"""Many IDLE sessions at once: each costs little memory in imapd, and one APPEND
reaches all of them."""

import imaplib
import os
import resource
import socket
import time

import pytest

from protocols import start_instance
from warren import BUILD

HOST = "127.0.0.1"
ALICE = "alice@example.test"
PASSWORD = "secret"
SESSIONS = 1500


def raise_fd_limit():
    """The file descriptor limit (inherited by the daemons) raised for the sessions;
    returns how many sessions fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = SESSIONS + 256
    if soft < want:
        soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return min(SESSIONS, soft - 256)
MESSAGE = b"From: a@example.test\r\nSubject: wake up\r\n\r\nhello\r\n"


@pytest.fixture
def inst():
    inst = start_instance(listeners={"imap": ("imap", "starttls")},
                          listener_extra={"imap": "auth_plaintext = true\n"
                                                  "max_connections_per_ip = 0\nmax_connections = 5000"})
    try:
        yield inst
    except Exception:
        print(inst.log()[-10000:])
        raise
    finally:
        inst.cleanup()


def sanitized_build():
    """AddressSanitizer makes every allocation much bigger: no memory bound then."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return "WARREN_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def read_until(sock, marker, deadline):
    data = b""
    while marker not in data:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"closed before {marker!r}: {data!r}")
        data += chunk
    return data


@pytest.fixture
def sessions():
    return raise_fd_limit()


def test_many_idle_sessions(sessions, inst):
    assert sessions >= 500, "file descriptor limit too low for the test"
    pid = inst.children()["imapd"]
    # one session first so that lazily allocated state is in place
    first = imaplib.IMAP4(HOST, inst.port("imap"), timeout=30)
    first.login(ALICE, PASSWORD)
    first.select("INBOX")
    before = rss_kb(pid)
    socks = []
    deadline = time.monotonic() + 120
    try:
        for i in range(sessions):
            s = socket.create_connection((HOST, inst.port("imap")), timeout=30)
            read_until(s, b"\r\n", deadline)
            s.sendall(f"a LOGIN {ALICE} {PASSWORD}\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
            socks.append(s)
        for s in socks:
            read_until(s, b"+ idling\r\n", deadline)
        time.sleep(0.5)
        after = rss_kb(pid)
        per_session = (after - before) * 1024 / sessions
        print(f"imapd RSS {before} kB -> {after} kB: {per_session:.0f} bytes per IDLE session")
        if not sanitized_build():
            assert per_session < 48 * 1024, per_session
        # one delivery wakes every session
        t0 = time.monotonic()
        first.append("INBOX", None, None, MESSAGE)
        for s in socks:
            read_until(s, b"* 1 EXISTS\r\n", t0 + 20)
        elapsed = time.monotonic() - t0
        print(f"{sessions} sessions told in {elapsed:.2f} s")
        assert elapsed < 10
        for s in socks[:10]:
            s.sendall(b"DONE\r\nd LOGOUT\r\n")
            read_until(s, b"d OK", time.monotonic() + 10)
    finally:
        for s in socks:
            s.close()
        first.logout()
