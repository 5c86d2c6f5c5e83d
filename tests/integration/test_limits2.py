"""Limits of issue #9 item 5 that test_limits.py does not cover: the command
deadline (a client trickling one byte a second is closed at command_timeout,
although every byte would restart the idle timer), the total session time
(session_timeout), and errors before disconnect as a config key
(limits.max_errors), and the IMAP literal size and count (limits.imap_max_literal,
limits.imap_max_literals), and commands before login (limits.max_unauth_commands).
Short configured timeouts keep the tests fast."""

import time

import pytest

from protocols import LineConn, smtp_reply, start_instance

PROTOS = {"smtp": ("smtp", "none"), "imap": ("imap", "none"), "pop3": ("pop3", "none")}
GREETING = {"smtp": "220 ", "imap": "* OK ", "pop3": "+OK "}
GOODBYE = {
    "smtp": "421 4.4.2 mail.warren.test Error: timeout exceeded",
    "imap": "* BYE Disconnected for inactivity.",
    "pop3": "-ERR Disconnected for inactivity.",
}
# commands every protocol answers before login without counting as an error
NOOP = {"smtp": ("NOOP", "250 "), "imap": ("a NOOP", "a OK"), "pop3": ("CAPA", "+OK")}
BAD = {"smtp": "BOGUS", "imap": "a BOGUS", "pop3": "BOGUS"}
# idle timeout far longer than the deadlines, so only they can close
EXTRA = "idle_timeout = 30s\ncommand_timeout = 1s\nsession_timeout = 3s\n"


@pytest.fixture(scope="module")
def inst():
    inst = start_instance(listeners=PROTOS, listener_extra={p: EXTRA for p in PROTOS},
                          extra="limits { max_errors = 3  imap_max_literal = 2k  imap_max_literals = 3\n"
                                 "         max_unauth_commands = 20 }\n")
    yield inst
    inst.cleanup()


def greeted(inst, proto):
    c = LineConn.open(inst, proto, timeout=10)
    line = c.readline()
    assert line.startswith(GREETING[proto]), line
    return c


def noop(proto, c):
    cmd, ok = NOOP[proto]
    c.send_line(cmd)
    if proto == "smtp":
        code, _ = smtp_reply(c)
        return str(code).startswith("2")
    ok_line = c.readline().startswith(ok)
    if proto == "pop3":
        while c.readline() != ".":
            pass
    return ok_line


@pytest.mark.parametrize("proto", sorted(PROTOS))
def test_slowloris_closed_at_command_timeout(inst, proto):
    c = greeted(inst, proto)
    start = time.monotonic()
    closed_after = None
    # one byte a second of a command that never ends
    for i in range(8):
        try:
            c.send(b"N")
        except OSError:
            closed_after = time.monotonic() - start
            break
        if c.closed_within(1.0):
            closed_after = time.monotonic() - start
            break
    assert closed_after is not None, "a byte-a-second client is still connected after 8 s"
    assert 0.8 <= closed_after <= 3.5, closed_after
    inst.wait_log("command not complete within 1000 ms from [127.0.0.1] (slow client)")


@pytest.mark.parametrize("proto", sorted(PROTOS))
def test_steady_commands_are_not_a_slow_client(inst, proto):
    # complete commands, each sent whole, for longer than command_timeout
    c = greeted(inst, proto)
    for _ in range(3):
        assert noop(proto, c)
        time.sleep(0.6)
    assert noop(proto, c), "a well-behaved client was cut off"


@pytest.mark.parametrize("proto", sorted(PROTOS))
def test_session_timeout_closes_a_busy_session(inst, proto):
    c = greeted(inst, proto)
    start = time.monotonic()
    lines = []
    try:
        while time.monotonic() - start < 8:
            cmd, _ = NOOP[proto]
            c.send_line(cmd)
            line = c.readline(timeout=2)
            lines.append(line)
            if line.startswith(("421 ", "* BYE", "-ERR")):
                break
            if proto == "pop3":
                while line != ".":
                    line = c.readline(timeout=2)
            time.sleep(0.3)
    except Exception:
        pass
    elapsed = time.monotonic() - start
    assert c.closed_within(2), "the session outlived session_timeout"
    assert 2.5 <= elapsed <= 5.5, elapsed
    assert any(l.startswith(GOODBYE[proto][:5]) for l in lines), lines
    inst.wait_log("session time limit of 3000 ms reached for [127.0.0.1]")


@pytest.mark.parametrize("proto", sorted(PROTOS))
def test_max_errors_from_config(inst, proto):
    c = greeted(inst, proto)
    c.send(b"".join((BAD[proto] + "\r\n").encode() for _ in range(3)))
    lines = c.lines_until_close(timeout=5)
    errors = [l for l in lines if l.startswith(("5", "a BAD", "-ERR"))]
    assert len(errors) >= 3, lines
    assert lines[-1].startswith(("421 ", "* BYE", "-ERR")), lines


def test_imap_literal_size_limit(inst):
    c = greeted(inst, "imap")
    c.send_line("a LOGIN {3000}")
    line = c.readline()
    assert line.startswith("a NO [TOOBIG]"), line
    # under the limit it is taken
    c.send_line("b LOGIN {5}")
    assert c.readline().startswith("+ ")
    c.send_line("alice {6}")
    assert c.readline().startswith("+ ")
    c.send_line("secret")
    line = c.readline()
    while line.startswith("* "):
        line = c.readline()
    # the literals were read (the login itself wants TLS on this listener)
    assert line.startswith("b ") and "TOOBIG" not in line, line


def test_imap_literal_count_limit(inst):
    c = greeted(inst, "imap")
    c.send_line("a LOGIN {1}")
    for part in ("x {1}", "y {1}"):
        assert c.readline().startswith("+ ")
        c.send_line(part)
    assert c.readline().startswith("+ ")
    c.send_line("z {1}")
    line = c.readline()
    assert line.startswith("a BAD") and "literals" in line, line
    inst.wait_log("more than 3 literals in one command from [127.0.0.1]")
    assert noop("imap", c), "the session does not go on after the refused command"


@pytest.mark.parametrize("proto", ["imap", "pop3"])
def test_commands_before_login_limited(inst, proto):
    c = greeted(inst, proto)
    for _ in range(20):
        assert noop(proto, c)
    cmd, _ = NOOP[proto]
    c.send_line(cmd)
    lines = c.lines_until_close(timeout=5)
    assert lines and lines[0].startswith(("* BYE", "-ERR")), lines
    assert "before login" in lines[0], lines
    inst.wait_log("too many commands before login from [127.0.0.1]")
