"""Limits and robustness of the protocol sessions: connection limits, idle
timeouts, overlong lines, pipelining, slow clients, error limits, many clients."""

import socket
import time

import pytest

from protocols import (LineConn, imap_cmd, imap_open, pop3_cmd,
                       pop3_multiline, pop3_open, sasl_plain, smtp_cmd, smtp_open, smtp_reply,
                       wait_probes_closed)

PLAIN = {"smtp": "smtp", "imap": "imap", "pop3": "pop3"}
BUSY = {
    "smtp": "421 4.7.0 ",
    "imap": "* BYE [UNAVAILABLE] ",
    "pop3": "-ERR [SYS/TEMP] ",
}
GREETING = {"smtp": "220 ", "imap": "* OK ", "pop3": "+OK "}
IDLE_GOODBYE = {
    "smtp": "421 4.4.2 mail.warren.test Error: timeout exceeded",
    "imap": "* BYE Disconnected for inactivity.",
    "pop3": "-ERR Disconnected for inactivity.",
}
# a command each protocol answers in any state without side effects
HARMLESS = {"smtp": ("NOOP", "250 "), "imap": ("x NOOP", "x OK"), "pop3": ("CAPA", "+OK")}


def greeted(inst, listener, source=None):
    conn = LineConn.open(inst, listener, source=source, timeout=5)
    return conn, conn.readline()


def read_reply_line(proto, conn):
    """The first line of the next reply (SMTP: the last line of a multi-line one)."""
    if proto == "smtp":
        code, text = smtp_reply(conn)
        return f"{code} {text[-1]}"
    line = conn.readline()
    if proto == "pop3" and line.startswith("+OK Capability"):
        pop3_multiline(conn)
    return line


def harmless_works(proto, conn):
    cmd, expect = HARMLESS[proto]
    conn.send_line(cmd)
    return read_reply_line(proto, conn).startswith(expect)


def retry_until_greeted(inst, listener, source=None, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        conn, line = greeted(inst, listener, source)
        if not line.startswith(tuple(BUSY.values())) or time.monotonic() > deadline:
            return conn, line
        conn.close()
        time.sleep(0.05)


# ---- connection limits ------------------------------------------------------------------

@pytest.mark.parametrize("proto", sorted(PLAIN))
def test_max_connections_per_ip(make_warren, proto):
    inst = make_warren(listener_extra={proto: "max_connections_per_ip = 2\n"})
    inst.start()
    wait_probes_closed(inst)
    held = [greeted(inst, proto) for _ in range(2)]
    assert all(line.startswith(GREETING[proto]) for _, line in held), held
    extra, line = greeted(inst, proto)
    assert line.startswith(BUSY[proto]), line
    assert extra.closed_within(3), "the refused connection stays open"
    # another address is not limited by this one's connections
    other, line = greeted(inst, proto, source="127.0.0.2")
    assert line.startswith(GREETING[proto]), line
    # the held sessions work, and a freed slot can be taken again
    assert harmless_works(proto, held[0][0])
    held[1][0].close()
    again, line = retry_until_greeted(inst, proto)
    assert line.startswith(GREETING[proto]), line
    for c in [held[0][0], other, again]:
        c.close()
    assert "too many connections from this address" in inst.log()


@pytest.mark.parametrize("proto", sorted(PLAIN))
def test_max_connections(make_warren, proto):
    inst = make_warren(listener_extra={proto: "max_connections = 2\n"})
    inst.start()
    wait_probes_closed(inst)
    held = [greeted(inst, proto, source=f"127.0.0.{i + 2}") for i in range(2)]
    assert all(line.startswith(GREETING[proto]) for _, line in held), held
    extra, line = greeted(inst, proto, source="127.0.0.9")
    assert line.startswith(BUSY[proto]), line
    assert extra.closed_within(3)
    held[0][0].close()
    again, line = retry_until_greeted(inst, proto, source="127.0.0.9")
    assert line.startswith(GREETING[proto]), line
    again.close()
    held[1][0].close()


def test_connection_limit_is_per_listener(make_warren):
    inst = make_warren(listener_extra={"imap": "max_connections_per_ip = 1\n"})
    inst.start()
    wait_probes_closed(inst)
    first, line = greeted(inst, "imap")
    assert line.startswith("* OK")
    # imaps is a different listener of the same daemon, without the limit
    for _ in range(3):
        conn = imap_open(inst, "imaps")
        conn.close()
    second, line = greeted(inst, "imap")
    assert line.startswith("* BYE [UNAVAILABLE]")
    first.close()
    second.close()


def test_fifty_concurrent_imap_connections(warren):
    wait_probes_closed(warren)
    conns = []
    try:
        for _ in range(50):
            conns.append(LineConn.open(warren, "imap", timeout=10))
        greetings = [c.readline() for c in conns]
        bad = [g for g in greetings if not g.startswith("* OK [CAPABILITY IMAP4rev1")]
        assert not bad, bad
        # all 50 are served at once
        for i, c in enumerate(conns):
            c.send_line(f"t{i} NOOP")
        for i, c in enumerate(conns):
            assert c.readline() == f"t{i} OK NOOP completed."
        # the default max_connections_per_ip is 50
        extra = LineConn.open(warren, "imap")
        assert extra.readline().startswith("* BYE [UNAVAILABLE]")
        extra.close()
    finally:
        for c in conns:
            c.close()


def test_fifty_concurrent_tls_logins(warren):
    conns = []
    try:
        for _ in range(50):
            conns.append(LineConn.open(warren, "imaps", timeout=20))
        for c in conns:
            assert c.readline().startswith("* OK")
        for i, c in enumerate(conns):
            c.send_line(f"l{i} LOGIN alice@example.test secret")
        for i, c in enumerate(conns):
            assert c.readline().startswith(f"l{i} OK"), i
    finally:
        for c in conns:
            c.close()


# ---- idle timeout -----------------------------------------------------------------------

@pytest.fixture
def idle_warren(make_warren):
    inst = make_warren(listener_extra={name: 'idle_timeout = "1s"\n'
                                       for name in ("smtp", "imap", "pop3", "imaps")})
    inst.start()
    return inst


@pytest.mark.parametrize("proto", sorted(PLAIN))
def test_idle_timeout_says_goodbye_and_closes(idle_warren, proto):
    conn, line = greeted(idle_warren, proto)
    assert line.startswith(GREETING[proto])
    start = time.monotonic()
    lines = conn.lines_until_close(timeout=5)
    elapsed = time.monotonic() - start
    assert lines == [IDLE_GOODBYE[proto]], lines
    assert 0.8 <= elapsed < 3, elapsed


@pytest.mark.parametrize("proto", sorted(PLAIN))
def test_activity_postpones_idle_timeout(idle_warren, proto):
    conn, _ = greeted(idle_warren, proto)
    for _ in range(4):            # 1.4 s of activity with a 1 s timeout
        time.sleep(0.35)
        assert harmless_works(proto, conn)
    conn.close()


def test_idle_timeout_under_tls_after_login(idle_warren):
    conn = imap_open(idle_warren, "imaps")
    assert imap_cmd(conn, "a", "LOGIN alice@example.test secret")[1].startswith("a OK")
    assert conn.lines_until_close(timeout=5) == ["* BYE Disconnected for inactivity."]


def test_idle_timeout_applies_after_starttls(idle_warren):
    conn = imap_open(idle_warren, "imap", tls="starttls")
    start = time.monotonic()
    assert conn.lines_until_close(timeout=5) == ["* BYE Disconnected for inactivity."]
    assert time.monotonic() - start < 3


def test_default_idle_timeout_is_long(warren):
    conn, _ = greeted(warren, "imap")
    assert conn.nothing_within(1.2)
    assert harmless_works("imap", conn)
    conn.close()


# ---- long lines -------------------------------------------------------------------------

LONG = 100 * 1024


def test_smtp_long_line_refused_session_goes_on(warren):
    conn = smtp_open(warren, "smtp")
    conn.send(b"NOOP " + b"x" * LONG + b"\r\n")
    code, text = smtp_reply(conn)
    assert (code, text) == (500, ["5.5.2 Error: line too long"])
    assert smtp_cmd(conn, "NOOP")[0] == 250
    assert smtp_cmd(conn, "EHLO client.test")[0] == 250
    conn.close()


def test_pop3_long_line_refused_session_goes_on(warren):
    conn = pop3_open(warren, "pop3")
    conn.send(b"CAPA " + b"x" * LONG + b"\r\n")
    reply = conn.readline()
    assert reply.startswith("-ERR") and "too long" in reply.lower(), reply
    assert harmless_works("pop3", conn)
    conn.close()


def test_imap_long_line_over_configured_limit(make_warren):
    inst = make_warren(listener_extra={"imap": "max_line_length = 65536\n"})
    inst.start()
    conn = imap_open(inst, "imap")
    conn.send(b"a NOOP " + b"x" * LONG + b"\r\n")
    reply = conn.readline()
    assert " BAD " in reply and "too long" in reply.lower(), reply
    assert imap_cmd(conn, "b", "NOOP")[1] == "b OK NOOP completed."
    conn.close()


def test_imap_default_allows_long_lines(warren):
    """Webmail clients send huge UID sets: a 100 KB line is read as a command
    (this one is unknown, so BAD), not cut off."""
    conn = imap_open(warren, "imap")
    conn.send(b"a XUNKNOWN " + b"1," * (LONG // 2) + b"1\r\n")
    assert conn.readline() == "a BAD Unknown command"
    assert imap_cmd(conn, "b", "NOOP")[1] == "b OK NOOP completed."
    conn.close()


def test_imap_line_over_two_megabytes_refused(warren):
    conn = imap_open(warren, "imap")
    conn.send(b"a NOOP " + b"x" * (2 * 1024 * 1024 + 1000) + b"\r\n")
    reply = conn.readline(timeout=15)
    assert " BAD " in reply and "too long" in reply.lower(), reply
    assert imap_cmd(conn, "b", "NOOP")[1] == "b OK NOOP completed."
    conn.close()


def test_smtp_long_line_under_tls(warren):
    conn = smtp_open(warren, "submissions")
    conn.send(b"NOOP " + b"y" * LONG + b"\r\nNOOP\r\n")
    assert smtp_reply(conn) == (500, ["5.5.2 Error: line too long"])
    assert smtp_reply(conn)[0] == 250
    conn.close()


def test_smtp_long_auth_response_aborts_auth(warren):
    conn = smtp_open(warren, "submissions")
    assert smtp_cmd(conn, "AUTH PLAIN")[0] == 334
    conn.send(b"A" * LONG + b"\r\n")
    code, _ = smtp_reply(conn)
    assert code == 500
    # back in command state: a command is a command again
    assert smtp_cmd(conn, "NOOP")[0] == 250
    conn.close()


# ---- pipelining ---------------------------------------------------------------------------

def test_smtp_pipelined_commands_answered_in_order(warren):
    conn = LineConn.open(warren, "smtp")
    assert smtp_reply(conn)[0] == 220
    conn.send(b"EHLO client.test\r\nNOOP\r\nVRFY someone\r\nRSET\r\nQUIT\r\n")
    code, text = smtp_reply(conn)
    assert code == 250 and "PIPELINING" in text
    assert smtp_reply(conn)[0] == 250
    assert smtp_reply(conn)[0] == 252
    assert smtp_reply(conn)[0] == 250
    assert conn.lines_until_close() == ["221 2.0.0 Bye"]


def test_smtp_pipelined_auth_then_commands(warren):
    conn = LineConn.open(warren, "submissions")
    assert smtp_reply(conn)[0] == 220
    conn.send(("EHLO client.test\r\nAUTH PLAIN " + sasl_plain("alice@example.test", "secret") +
               "\r\nNOOP\r\nQUIT\r\n").encode())
    assert smtp_reply(conn)[0] == 250
    assert smtp_reply(conn)[0] == 235
    assert smtp_reply(conn)[0] == 250
    assert conn.lines_until_close() == ["221 2.0.0 Bye"]


def test_imap_pipelined_commands_answered_in_order(warren):
    conn = LineConn.open(warren, "imaps")
    conn.readline()
    conn.send(b"1 NOOP\r\n2 LOGIN alice@example.test secret\r\n3 NOOP\r\n"
              b'4 LIST "" INBOX\r\n5 NOOP\r\n6 LOGOUT\r\n')
    lines = conn.lines_until_close()
    tagged = [l.split(" ", 1)[0] for l in lines if not l.startswith("*")]
    assert tagged == ["1", "2", "3", "4", "5", "6"], lines
    assert lines[1].startswith("2 OK")
    assert '* LIST (\\HasNoChildren) "/" INBOX' in lines
    assert lines[lines.index('* LIST (\\HasNoChildren) "/" INBOX') + 1].startswith("4 OK")


def test_imap_pipelined_failed_login_then_commands(warren):
    conn = LineConn.open(warren, "imaps")
    conn.readline()
    conn.send(b"1 LOGIN alice@example.test wrong\r\n2 NOOP\r\n3 LOGOUT\r\n")
    lines = conn.lines_until_close()
    assert lines[0].startswith("1 NO [AUTHENTICATIONFAILED]"), lines
    assert lines[1:] == ["2 OK NOOP completed.", "* BYE Logging out", "3 OK Logout completed."]


def test_pop3_pipelined_commands_answered_in_order(warren):
    conn = LineConn.open(warren, "pop3s")
    conn.readline()
    conn.send(b"CAPA\r\nUSER alice@example.test\r\nPASS secret\r\nNOOP\r\nCAPA\r\nQUIT\r\n")
    lines = conn.lines_until_close()
    first_end = lines.index(".")
    assert lines[0] == "+OK Capability list follows"
    rest = lines[first_end + 1:]
    assert rest[0] == "+OK"
    assert rest[1] == "+OK Logged in."
    assert rest[2].startswith("+OK")          # NOOP, now in TRANSACTION
    assert rest[3] == "+OK Capability list follows"
    assert rest[-1] == "+OK Logging out."


# ---- slow clients ---------------------------------------------------------------------------

def send_slowly(conn, data, pause=0.002):
    for i in range(len(data)):
        conn.send(data[i:i + 1])
        time.sleep(pause)


def test_smtp_one_byte_at_a_time(warren):
    conn = LineConn.open(warren, "smtp")
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assert smtp_reply(conn)[0] == 220
    send_slowly(conn, b"EHLO client.test\r\n")
    code, text = smtp_reply(conn)
    assert code == 250 and text[0] == "mail.warren.test"
    send_slowly(conn, b"NOOP\r\n")
    assert smtp_reply(conn)[0] == 250
    conn.close()


def test_imap_one_byte_at_a_time_with_literal_under_tls(warren):
    conn = LineConn.open(warren, "imaps")
    conn.readline()
    send_slowly(conn, b"a LOGIN {18}\r\n")
    assert conn.readline().startswith("+")
    send_slowly(conn, b"alice@example.test secret\r\n")
    assert conn.readline().startswith("a OK [CAPABILITY")
    conn.close()


def test_pop3_one_byte_at_a_time(warren):
    conn = LineConn.open(warren, "pop3")
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.readline()
    send_slowly(conn, b"CAPA\r\n")
    assert conn.readline() == "+OK Capability list follows"
    assert "STLS" in pop3_multiline(conn)
    conn.close()


def test_bare_lf_line_endings_accepted(warren):
    conn = LineConn.open(warren, "imap")
    conn.readline()
    conn.send(b"a NOOP\n")
    assert conn.readline() == "a OK NOOP completed."
    conn.close()


# ---- error limits -----------------------------------------------------------------------------

def test_smtp_twenty_errors_close_the_session(warren):
    conn = smtp_open(warren, "smtp")
    for i in range(19):
        assert smtp_cmd(conn, f"XBOGUS{i}")[0] == 500
    conn.send_line("XBOGUS19")
    lines = conn.lines_until_close()
    assert lines[0].startswith("500 5.5.2"), lines
    assert lines[1:] == ["421 4.7.0 mail.warren.test Error: too many errors"], lines


def test_imap_twenty_bad_commands_close_the_session(warren):
    conn = imap_open(warren, "imap")
    for i in range(19):
        assert imap_cmd(conn, f"b{i}", "BOGUS")[1].startswith(f"b{i} BAD")
    conn.send_line("b19 BOGUS")
    lines = conn.lines_until_close()
    assert lines[0].startswith("b19 BAD"), lines
    assert lines[1:] == ["* BYE Too many invalid IMAP commands."], lines


def test_pop3_twenty_errors_close_the_session(warren):
    conn = pop3_open(warren, "pop3")
    for i in range(19):
        assert pop3_cmd(conn, f"BOGUS{i}").startswith("-ERR")
    conn.send_line("BOGUS19")
    lines = conn.lines_until_close()
    assert lines[0].startswith("-ERR"), lines
    assert len(lines) == 2 and lines[1].startswith("-ERR"), lines


@pytest.mark.parametrize("proto,bad", [("smtp", b"XBOGUS\r\n"), ("imap", b"t BOGUS\r\n"),
                                       ("pop3", b"BOGUS\r\n")])
def test_pipelined_errors_stop_at_the_limit(warren, proto, bad):
    conn, _ = greeted(warren, proto)
    conn.send(bad * 30)
    lines = conn.lines_until_close()
    # 20 error replies and the goodbye; the 10 after the limit are not answered
    assert len(lines) == 21, lines


def test_good_commands_do_not_count_as_errors(warren):
    conn = imap_open(warren, "imap")
    for i in range(30):
        assert imap_cmd(conn, f"n{i}", "NOOP")[1].startswith(f"n{i} OK")
    for i in range(10):
        assert imap_cmd(conn, f"b{i}", "BOGUS")[1].startswith(f"b{i} BAD")
    assert imap_cmd(conn, "z", "NOOP")[1] == "z OK NOOP completed."
    conn.close()


# ---- abandoned sessions ---------------------------------------------------------------------

@pytest.mark.parametrize("listener,data", [
    ("imaps", b"a LOGIN alice@example.test wrong\r\n"),
    ("pop3s", b"AUTH PLAIN " + sasl_plain("alice@example.test", "wrong").encode() + b"\r\n"),
    ("submissions", b"EHLO x\r\nAUTH PLAIN " +
     sasl_plain("alice@example.test", "wrong").encode() + b"\r\n"),
])
def test_client_leaving_during_login_does_not_hurt_the_daemon(warren, listener, data):
    before = warren.children()
    for _ in range(5):
        conn = LineConn.open(warren, listener)
        conn.readline()
        conn.send(data)
        conn.close()       # gone while the failure delay holds the reply back
    time.sleep(0.8)        # let every delayed reply come due
    assert warren.children() == before, warren.log()[-3000:]
    conn = LineConn.open(warren, listener)
    assert conn.readline()[:3] in ("220", "* O", "+OK")
    conn.close()


def test_client_closing_right_after_connect(warren):
    before = warren.children()
    for listener in warren.listeners:
        for _ in range(5):
            s = socket.create_connection((warren.address, warren.port(listener)), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()      # RST
    time.sleep(0.3)
    assert warren.children() == before
    for listener in warren.listeners:
        conn = LineConn.open(warren, listener)
        assert conn.readline()
        conn.close()
