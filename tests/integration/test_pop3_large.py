"""A 10,000-message POP3 maildrop: the login reads the message list with one
store call, and STAT, LIST, UIDL, a RETR at the far end, DELE of many and the
QUIT that expunges them all stay quick; a 5 MB message streams through intact."""

import time

import pytest

from protocols import LineConn, pop3_cmd, pop3_open
from test_pop3 import (PASSWORD, addr, crlf, message, pop3_instance, pop_login, store_list,
                       storedeliver)

COUNT = 10000


@pytest.fixture(scope="module")
def suite():
    inst = pop3_instance(log_level="info")
    try:
        yield inst
    except Exception:
        print(inst.log()[-20000:])
        raise
    finally:
        inst.cleanup()


def test_ten_thousand_messages(suite):
    text = message("bulk %N", "a line of the body\n" * 3)
    storedeliver(suite, ["big"], text, args=["-n", str(COUNT), "-b", "500"], timeout=300)
    started = time.monotonic()
    pop = pop_login(suite, "big")
    count, size = pop.stat()
    assert count == COUNT
    resp, listing, _ = pop.list()
    resp, uidls, _ = pop.uidl()
    elapsed = time.monotonic() - started
    assert len(listing) == COUNT and len(uidls) == COUNT
    assert sum(int(l.split()[1]) for l in listing) == size
    ids = [u.split()[1] for u in uidls]
    assert len(set(ids)) == COUNT
    assert [int(u.split()[0]) for u in uidls] == list(range(1, COUNT + 1))
    # login, STAT, LIST and UIDL of 10,000 messages: well under what a client waits
    assert elapsed < 5, f"login+STAT+LIST+UIDL took {elapsed:.2f}s"
    _, lines, _ = pop.retr(COUNT)
    assert b"Subject: bulk " in b"\n".join(lines)
    # delete half; UPDATE expunges them in one go
    started = time.monotonic()
    for n in range(1, COUNT + 1, 2):
        pop.dele(n)
    assert pop.stat()[0] == COUNT // 2
    assert pop.quit() == f"+OK Logging out, {COUNT // 2} messages deleted.".encode()
    assert time.monotonic() - started < 30
    rows = store_list(suite, "big")
    assert len(rows) == COUNT // 2
    pop = pop_login(suite, "big")
    _, after, _ = pop.uidl()
    assert [u.split()[1] for u in after] == ids[1::2]
    pop.quit()


def test_five_megabyte_message_streams_intact(suite):
    body = "".join(f"{i:08d} " + "x" * 70 + "\n" for i in range(65000))
    body += ".a line starting with a dot\n"
    text = message("large", body)
    storedeliver(suite, ["extra1"], text)
    pop = pop_login(suite, "extra1")
    resp, lines, octets = pop.retr(1)
    assert resp == f"+OK {len(crlf(text))} octets".encode()
    assert b"\r\n".join(lines) + b"\r\n" == crlf(text)
    pop.quit()


def test_client_gone_in_the_middle_of_retr_and_list(suite):
    body = "".join(f"{i:08d} " + "y" * 90 + "\n" for i in range(40000))
    storedeliver(suite, ["extra2"], message("huge", body))
    pids = suite.children()
    for command in ["RETR 1", "LIST", "UIDL", "TOP 1 30000"]:
        conn = pop3_open(suite, "pop3s")
        assert pop3_cmd(conn, "USER " + addr("extra2")) == "+OK"
        assert pop3_cmd(conn, "PASS " + PASSWORD) == "+OK Logged in."
        assert pop3_cmd(conn, "DELE 1").startswith("+OK")
        conn.send_line(command)
        conn.readline()
        conn.close()                       # gone while the response streams
    # the daemon is still the same process, the lock was let go, nothing deleted
    pop = pop_login(suite, "extra2")
    assert pop.stat()[0] == 1
    pop.quit()
    assert suite.children() == pids
    assert len(store_list(suite, "extra2")) == 1


def test_slow_reader_of_a_large_message_is_not_idle():
    """A client that takes longer than the idle timeout to read one large message
    still gets all of it: sending counts as activity (the idle timer restarts
    with every chunk handed to the connection)."""
    import socket
    from warren import WarrenInstance
    from test_pop3 import domains_config
    inst = WarrenInstance(listeners={"pop3s": ("pop3", "implicit")},
                          domains=domains_config(["slow"]),
                          listener_extra={"pop3s": "idle_timeout = 2s\n"}, log_level="info")
    inst.start()
    try:
        body = "".join(f"{i:08d} " + "z" * 90 + "\n" for i in range(150000))   # ~15 MB
        text = message("slow", body)
        storedeliver(inst, ["slow"], text)
        conn = pop3_open(inst, "pop3s")
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        assert pop3_cmd(conn, "USER " + addr("slow")) == "+OK"
        assert pop3_cmd(conn, "PASS " + PASSWORD) == "+OK Logged in."
        conn.send_line("RETR 1")
        assert conn.readline().startswith("+OK")
        got = bytearray(conn.buf)
        conn.buf = b""
        started = time.monotonic()
        while not got.endswith(b"\r\n.\r\n"):
            chunk = conn.sock.recv(16384)
            assert chunk, "closed before the end of the message"
            got += chunk
            time.sleep(0.005)            # about 15 MB in well over 2 s
        assert time.monotonic() - started > 2.5
        # exactly the message: no "-ERR Disconnected for inactivity." inside it
        assert bytes(got) == crlf(text) + b".\r\n"
        conn.close()
    finally:
        inst.cleanup()
