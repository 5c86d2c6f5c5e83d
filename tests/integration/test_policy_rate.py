"""smtpd's policy chain, rate limits (rate { }): connections per client address
per window (CONNECT: 421 4.7.0, then closed), transactions and recipients per
authenticated user per window (MAIL 451 4.7.1, RCPT 452 4.5.3), each hit and
reset after a short window; exempt networks; the counts live in the store, so
they survive an smtpd restart (the master runs one smtpd process: every smtpd
process shares the same records); the listener's concurrent-connection limit.
Each test uses its own client address (127.0.0.x) so their counts stay apart."""

import os
import signal
import time

import pytest

from protocols import LineConn, sasl_plain, smtp_cmd, smtp_reply, start_instance
from warren import DAEMON_STARTED, wait_port

LISTENERS = {"smtp": ("smtp", "none"), "submission": ("submission", "none")}
LISTENER_EXTRA = {"submission": "auth_plaintext = true\n",
                  "smtp": "max_connections_per_ip = 2\n"}
WINDOW = 2


@pytest.fixture(scope="module")
def inst():
    i = start_instance(listeners=LISTENERS, listener_extra=LISTENER_EXTRA, log_level="info",
                       extra=f"""rate {{
    connections_per_ip = 3
    connection_window = {WINDOW}s
    messages_per_user = 2
    recipients_per_user = 3
    user_window = {WINDOW}s
    exempt_networks = {{ "127.0.0.9" }}
}}
""")
    yield i
    i.cleanup()


def greet(inst, source, listener="smtp"):
    conn = LineConn.open(inst, listener, source=source, timeout=10)
    code, lines = smtp_reply(conn)
    return conn, code, " ".join(lines)


def wait_window():
    # the window is counted in whole seconds from the first event
    time.sleep(WINDOW + 1.2)


def login(inst, source, user):
    conn, code, text = greet(inst, source, "submission")
    assert code == 220, text
    assert smtp_cmd(conn, "EHLO client.test")[0] == 250
    code, lines = smtp_cmd(conn, f"AUTH PLAIN {sasl_plain(user, 'secret')}")
    assert code == 235, lines
    return conn


def test_connections_per_ip_hit_and_reset(inst):
    src = "127.0.0.5"
    for _ in range(3):
        conn, code, text = greet(inst, src)
        assert code == 220, text
        conn.close()
    conn, code, text = greet(inst, src)
    assert code == 421 and text.startswith("4.7.0") and "too many connections from 127.0.0.5" in text
    assert conn.closed_within(5)
    conn.close()
    log = inst.wait_log("reject: CONNECT from unknown[127.0.0.5]: 421 4.7.0")
    assert "(policy=rate)" in log
    # another address is not affected
    conn, code, _ = greet(inst, "127.0.0.6")
    assert code == 220
    conn.close()
    wait_window()
    conn, code, text = greet(inst, src)
    assert code == 220, text
    conn.close()


def test_exempt_network_is_not_counted(inst):
    for _ in range(5):
        conn, code, text = greet(inst, "127.0.0.9")
        assert code == 220, text
        conn.close()


def test_messages_per_user_hit_and_reset(inst):
    conn = login(inst, "127.0.0.20", "alice@example.test")
    for _ in range(2):
        assert smtp_cmd(conn, "MAIL FROM:<alice@example.test>")[0] == 250
        assert smtp_cmd(conn, "RSET")[0] == 250
    code, lines = smtp_cmd(conn, "MAIL FROM:<alice@example.test>")
    assert code == 451 and lines[0].startswith("4.7.1") and "alice@example.test" in lines[0]
    inst.wait_log("reject: MAIL from unknown[127.0.0.20]: 451 4.7.1")
    # the session goes on; after the window the user may send again
    wait_window()
    assert smtp_cmd(conn, "MAIL FROM:<alice@example.test>")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<bob@example.test>")[0] == 250
    assert smtp_cmd(conn, "DATA")[0] == 354
    conn.send(b"Subject: after the window\r\n\r\nhello\r\n.\r\n")
    assert smtp_reply(conn)[0] == 250
    smtp_cmd(conn, "QUIT")
    conn.close()


def test_recipients_per_user_hit_and_reset(inst):
    conn = login(inst, "127.0.0.21", "bob@example.test")
    assert smtp_cmd(conn, "MAIL FROM:<bob@example.test>")[0] == 250
    for rcpt in ("alice@example.test", "carol@example.org", "someone@elsewhere.test"):
        assert smtp_cmd(conn, f"RCPT TO:<{rcpt}>")[0] == 250, rcpt
    code, lines = smtp_cmd(conn, "RCPT TO:<info@example.test>")
    assert code == 452 and lines[0].startswith("4.5.3"), lines
    log = inst.wait_log("reject: RCPT from unknown[127.0.0.21]: 452 4.5.3")
    assert "to=<info@example.test>" in log
    wait_window()
    assert smtp_cmd(conn, "RCPT TO:<info@example.test>")[0] == 250
    smtp_cmd(conn, "QUIT")
    conn.close()


def test_unauthenticated_clients_are_not_counted_per_user(inst):
    conn, code, _ = greet(inst, "127.0.0.22")
    assert code == 220
    assert smtp_cmd(conn, "EHLO client.test")[0] == 250
    for _ in range(4):
        assert smtp_cmd(conn, "MAIL FROM:<x@outside.test>")[0] == 250
        for _ in range(4):
            assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
        assert smtp_cmd(conn, "RSET")[0] == 250
    conn.close()


def test_concurrent_connections_per_ip_listener_limit(inst):
    src = "127.0.0.30"
    open_conns = []
    try:
        for _ in range(2):
            conn, code, _ = greet(inst, src)
            assert code == 220
            open_conns.append(conn)
        conn, code, text = greet(inst, src)
        assert code == 421 and "4.7.0" in text, text
        conn.close()
    finally:
        for c in open_conns:
            c.close()


@pytest.fixture(scope="module")
def slow():
    """A long window, to see the counts outlive the smtpd process."""
    i = start_instance(listeners={"smtp": ("smtp", "none")}, log_level="info",
                       extra="rate {\n connections_per_ip = 3\n connection_window = 5m\n}\n")
    yield i
    i.cleanup()


def test_counts_survive_an_smtpd_restart(slow):
    src = "127.0.0.40"
    for _ in range(2):
        conn, code, _ = greet(slow, src)
        assert code == 220
        conn.close()
    old = slow.children()["smtpd"]
    os.kill(old, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        new = slow.children().get("smtpd")
        if new not in (None, old):
            break
        time.sleep(0.1)
    assert new not in (None, old)
    slow.wait_log(DAEMON_STARTED, count=2)
    assert wait_port(slow.address, slow.port("smtp"))
    # wait_port connected from 127.0.0.1: not our address. The third connection
    # of 127.0.0.40 is let in, the fourth is over the limit counted before
    conn, code, _ = greet(slow, src)
    assert code == 220
    conn.close()
    conn, code, text = greet(slow, src)
    assert code == 421 and "4.7.0" in text, text
    conn.close()
