"""POP3 (issue #8): RFC 1939 commands and their error paths with poplib and raw
lines, RFC 2449 CAPA, byte-stuffing, UPDATE only at QUIT, stable UIDLs, the
per-mailbox IN-USE lock, LOGIN-DELAY, EXPIRE, the configured folder, SDPS *ENV,
pipelining and curl pop3s://.

Messages are put in the store by tests/tools/storedeliver (store_deliver, as
local delivery does) while the suite runs; what the store holds afterwards
(what IMAP sees) is read back with `storedeliver -L`.

The helpers here are used by the other test_pop3_*.py files too."""

import os
import poplib
import socket
import subprocess
import textwrap
import time

import pytest

from warren import BUILD, SECRET_HASH, WarrenInstance, client_context
from protocols import LineConn, b64, pop3_cmd, pop3_multiline, pop3_open, sasl_plain

HOST = "127.0.0.1"
TIMEOUT = 10
PASSWORD = "secret"
STOREDELIVER = os.path.join(BUILD, "tests", "storedeliver")
EXIT_RECOVER = 75

POP3_LISTENERS = {"pop3": ("pop3", "starttls"), "pop3s": ("pop3", "implicit")}

# one mailbox per test, so tests of one module-wide suite never meet
USERS = ["alice", "bob", "dora", "eve", "fred", "gina", "hank", "ivy", "jack", "kate",
         "leo", "mia", "ned", "olga", "pete", "quin", "rosa", "sam", "tina", "uma",
         "vic", "walt", "xena", "yuri", "zoe", "big", "drop", "extra1", "extra2"]


def domains_config(users=USERS, extra=""):
    body = "".join(f'mailbox {u} {{ password = "{SECRET_HASH}" }}\n' for u in users)
    return {"example.test": body + extra}


def pop3_instance(extra="", listeners=None, **kw):
    """A started suite with POP3 on STLS and implicit TLS and every test mailbox."""
    inst = WarrenInstance(listeners=listeners or POP3_LISTENERS, domains=domains_config(),
                          extra=extra, **kw)
    inst.start()
    return inst


def addr(user):
    return user if "@" in user else f"{user}@example.test"


def state_dir(inst):
    return os.path.join(inst.dir, "state")


def storedeliver(inst, recipients, message, sender="", args=(), timeout=60):
    """Delivers message (str or bytes; bare LF becomes CRLF unless -r) to the
    recipients ("alice", "drop=alice@example.test", "alice:Archive"); returns
    the (user, uid) of each delivery."""
    if isinstance(message, str):
        message = message.encode()
    rcpts = [r if "@" in r.split("=")[0].split(":")[0] else
             r.replace(r.split("=")[0].split(":")[0],
                       addr(r.split("=")[0].split(":")[0]), 1) for r in recipients]
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run([STOREDELIVER, "-f", sender, *args, state_dir(inst), *rcpts],
                              input=message, capture_output=True, timeout=timeout)
        if proc.returncode != EXIT_RECOVER or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert proc.returncode == 0, proc.stderr.decode()
    out = []
    for line in proc.stdout.decode().splitlines():
        _, user, uid, _ = line.split()
        out.append((user, int(uid)))
    return out


def store_list(inst, user):
    """[(uid, flags, size, env_from, env_to)] of the user's INBOX as the store has it."""
    proc = subprocess.run([STOREDELIVER, "-L", state_dir(inst), addr(user)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    rows = []
    for line in proc.stdout.splitlines():
        uid, flags, size, env_from, env_to = line.split(" ")
        rows.append((int(uid), flags, int(size), env_from[1:-1], env_to[1:-1]))
    return rows


def pop_ssl(inst, listener="pop3s"):
    return poplib.POP3_SSL(HOST, inst.port(listener), context=client_context(),
                           timeout=TIMEOUT)


def pop_login(inst, user, listener="pop3s", retry_in_use=True):
    """A poplib session logged in as user. A lock still held by a session the
    server has not yet seen close is waited for (bounded)."""
    deadline = time.monotonic() + 10
    while True:
        pop = pop_ssl(inst, listener)
        pop.user(addr(user))
        try:
            pop.pass_(PASSWORD)
            return pop
        except poplib.error_proto as e:
            pop.close()
            if not retry_in_use or b"[IN-USE]" not in e.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def message(subject, body="body line\n", extra_headers=""):
    return (f"From: sender@remote.test\nTo: someone@example.test\nSubject: {subject}\n"
            f"{extra_headers}\n{body}")


def crlf(text):
    return text.replace("\n", "\r\n").encode()


@pytest.fixture(scope="module")
def suite():
    inst = pop3_instance()
    try:
        yield inst
    except Exception:
        print(inst.log()[-20000:])
        raise
    finally:
        inst.cleanup()


def raw_login(inst, user, listener="pop3s"):
    """A LineConn past USER/PASS (implicit TLS), for exact replies."""
    conn = pop3_open(inst, listener)
    assert pop3_cmd(conn, "USER " + addr(user)) == "+OK"
    assert pop3_cmd(conn, "PASS " + PASSWORD) == "+OK Logged in."
    return conn


def multiline(conn, command):
    """(status line, body lines as sent, dot-stuffing NOT undone)."""
    conn.send_line(command)
    status = conn.readline()
    lines = []
    if status.startswith("+OK"):
        while True:
            line = conn.readline()
            if line == ".":
                break
            lines.append(line)
    return status, lines


# ---- CAPA ------------------------------------------------------------------------------

def capa_lines(conn):
    status, lines = multiline(conn, "CAPA")
    assert status.startswith("+OK")
    return lines


def test_capa_before_and_after_login(suite):
    conn = pop3_open(suite, "pop3")
    caps = capa_lines(conn)
    # plaintext listener before TLS: no passwords, STLS offered
    assert "STLS" in caps and "USER" not in caps
    for cap in ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "SDPS",
                "IMPLEMENTATION Warren"]:
        assert cap in caps, caps
    assert not any(c.startswith(("EXPIRE", "LOGIN-DELAY")) for c in caps), caps
    assert pop3_cmd(conn, "STLS").startswith("+OK")
    conn.starttls()
    caps = capa_lines(conn)
    assert "STLS" not in caps and "USER" in caps and "SASL PLAIN LOGIN" in caps
    conn.close()
    conn = raw_login(suite, "alice")
    caps = capa_lines(conn)
    # what AUTHORIZATION offered is announced in TRANSACTION too (RFC 2449 5)
    assert {"TOP", "UIDL", "USER", "SASL PLAIN LOGIN", "RESP-CODES", "PIPELINING"} <= set(caps)
    assert pop3_cmd(conn, "QUIT").startswith("+OK")


def test_poplib_capa(suite):
    pop = pop_ssl(suite)
    caps = pop.capa()
    assert caps["SASL"] == ["PLAIN", "LOGIN"] and "UIDL" in caps and "TOP" in caps
    assert caps["IMPLEMENTATION"] == ["Warren"]
    pop.quit()


# ---- the maildrop ------------------------------------------------------------------------

def test_stat_list_uidl_retr_with_poplib(suite):
    texts = [message(f"message {i}", f"body of message {i}\n" * i) for i in (1, 2, 3)]
    for t in texts:
        storedeliver(suite, ["bob"], t, sender="sender@remote.test")
    sizes = [len(crlf(t)) for t in texts]
    pop = pop_login(suite, "bob")
    assert pop.stat() == (3, sum(sizes))
    resp, listing, _ = pop.list()
    assert resp.startswith(b"+OK 3 messages")
    assert listing == [f"{i + 1} {s}".encode() for i, s in enumerate(sizes)]
    assert pop.list(2) == f"+OK 2 {sizes[1]}".encode()
    resp, uidls, _ = pop.uidl()
    ids = [u.split()[1] for u in uidls]
    assert [u.split()[0] for u in uidls] == [b"1", b"2", b"3"]
    assert len(set(ids)) == 3 and all(0 < len(i) <= 70 for i in ids)
    assert all(0x21 <= c <= 0x7e for i in ids for c in i)
    assert pop.uidl(3) == b"+OK 3 " + ids[2]
    for i, t in enumerate(texts):
        resp, lines, octets = pop.retr(i + 1)
        assert resp == f"+OK {sizes[i]} octets".encode()
        assert b"\r\n".join(lines) + b"\r\n" == crlf(t)
    pop.quit()
    # retrieved messages are \Seen for IMAP afterwards; none was deleted
    rows = store_list(suite, "bob")
    assert [r[1] for r in rows] == ["S", "S", "S"]
    assert all(r[3] == "sender@remote.test" and r[4] == "bob@example.test" for r in rows)


def test_byte_stuffing_on_the_wire(suite):
    body = ".\n..\n.starts with a dot\nmiddle . dot\n.\n"
    storedeliver(suite, ["dora"], message("dots", body) + "last line without newline",
                 args=["-r"])
    conn = raw_login(suite, "dora")
    status, lines = multiline(conn, "RETR 1")
    assert status.startswith("+OK")
    assert lines[-6:] == ["..", "...", "..starts with a dot", "middle . dot", "..",
                          "last line without newline"]
    # a bare LF (stored as is with -r) goes out as CRLF: every line ends in CRLF
    conn.send_line("RETR 1")
    conn.readline()
    raw, conn.buf = conn.buf, b""
    while not raw.endswith(b"\r\n.\r\n"):
        conn._fill(time.monotonic() + 5)
        raw, conn.buf = raw + conn.buf, b""
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert pop3_cmd(conn, "QUIT").startswith("+OK")
    # poplib undoes the stuffing and gets the original lines back
    pop = pop_login(suite, "dora")
    _, lines, _ = pop.retr(1)
    assert lines[-6:] == [b".", b"..", b".starts with a dot", b"middle . dot", b".",
                          b"last line without newline"]
    pop.quit()


def test_top(suite):
    body = "".join(f"line {i}\n" for i in range(1, 11))
    storedeliver(suite, ["eve"], message("top", body, "X-Extra: 1\n"))
    pop = pop_login(suite, "eve")
    _, lines, _ = pop.top(1, 0)
    assert lines == [b"From: sender@remote.test", b"To: someone@example.test",
                     b"Subject: top", b"X-Extra: 1", b""]
    _, lines, _ = pop.top(1, 3)
    assert lines[-4:] == [b"", b"line 1", b"line 2", b"line 3"]
    _, lines, _ = pop.top(1, 1000)
    assert lines[-1] == b"line 10" and len(lines) == 15
    # TOP does not count as retrieval: nothing becomes \Seen
    pop.quit()
    assert store_list(suite, "eve")[0][1] == "-"


def test_dele_rset_and_update_at_quit(suite):
    for i in range(1, 5):
        storedeliver(suite, ["fred"], message(f"m{i}"))
    pop = pop_login(suite, "fred")
    _, before, _ = pop.uidl()
    count, size = pop.stat()
    one = int(pop.list(1).split()[2])
    assert pop.dele(1) == b"+OK Marked to be deleted."
    assert pop.stat() == (3, size - one)
    _, listing, _ = pop.list()
    assert [l.split()[0] for l in listing] == [b"2", b"3", b"4"]
    _, uidls, _ = pop.uidl()
    assert uidls == before[1:]
    assert pop.rset().startswith(b"+OK 4 messages")
    assert pop.stat() == (count, size)
    pop.dele(2)
    pop.dele(4)
    # deletions reach the store only at QUIT
    assert len(store_list(suite, "fred")) == 4
    assert pop.quit() == b"+OK Logging out, 2 messages deleted."
    rows = store_list(suite, "fred")
    assert len(rows) == 2
    pop = pop_login(suite, "fred")
    _, after, _ = pop.uidl()
    # the survivors keep their UIDLs, renumbered from 1
    assert [u.split()[1] for u in after] == [before[0].split()[1], before[2].split()[1]]
    assert [u.split()[0] for u in after] == [b"1", b"2"]
    pop.quit()


def test_dropped_connection_deletes_nothing(suite):
    for i in range(3):
        storedeliver(suite, ["gina"], message(f"keep {i}"))
    conn = raw_login(suite, "gina")
    assert pop3_cmd(conn, "DELE 1").startswith("+OK")
    assert pop3_cmd(conn, "DELE 2").startswith("+OK")
    conn.close()                    # no QUIT
    suite.wait_log("no QUIT: nothing deleted")
    assert len(store_list(suite, "gina")) == 3
    pop = pop_login(suite, "gina")
    assert pop.stat()[0] == 3
    pop.quit()


def test_idle_timeout_deletes_nothing():
    inst = WarrenInstance(listeners={"pop3s": ("pop3", "implicit")},
                          domains=domains_config(["hank"]),
                          listener_extra={"pop3s": "idle_timeout = 1s\n"})
    inst.start()
    try:
        storedeliver(inst, ["hank"], message("stays"))
        conn = raw_login(inst, "hank")
        assert pop3_cmd(conn, "DELE 1").startswith("+OK")
        assert conn.closed_within(5)
        assert len(store_list(inst, "hank")) == 1
    finally:
        inst.cleanup()


def test_error_paths(suite):
    storedeliver(suite, ["ivy"], message("one"))
    storedeliver(suite, ["ivy"], message("two"))
    conn = pop3_open(suite, "pop3s")
    # TRANSACTION commands before login
    for cmd in ["STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 1", "RSET", "NOOP",
                "*ENV 1"]:
        assert pop3_cmd(conn, cmd) == "-ERR Command not allowed in this state.", cmd
    assert pop3_cmd(conn, "PASS " + PASSWORD) == "-ERR No USER given."
    assert pop3_cmd(conn, "FOO") == "-ERR Unknown command."
    assert pop3_cmd(conn, "QUIT") == "+OK Logging out."
    # (a session is closed after POP3_ERRORS_MAX errors: a new one now and then)
    conn = raw_login(suite, "ivy")
    # AUTHORIZATION commands after login
    for cmd in ["USER x", "PASS x", "AUTH PLAIN", "STLS"]:
        assert pop3_cmd(conn, cmd) == "-ERR Command not allowed in this state.", cmd
    cases = {
        "RETR": "-ERR Invalid message number.",
        "RETR 0": "-ERR There's no message 0.",
        "RETR 3": "-ERR There's no message 3.",
        "RETR 99999999999999999999999": "-ERR Invalid message number.",
        "RETR x": "-ERR Invalid message number.",
        "RETR -1": "-ERR Invalid message number.",
        "RETR 1 2": "-ERR Too many arguments.",
        "LIST 3": "-ERR There's no message 3.",
        "LIST a": "-ERR Invalid message number.",
        "UIDL 0": "-ERR There's no message 0.",
        "DELE 5": "-ERR There's no message 5.",
        "TOP 1": "-ERR Syntax: TOP msg lines",
        "TOP 1 x": "-ERR Syntax: TOP msg lines",
        "TOP 1 -1": "-ERR Syntax: TOP msg lines",
        "TOP 9 1": "-ERR There's no message 9.",
        "STAT 1": "-ERR STAT takes no argument.",
        "RSET 1": "-ERR RSET takes no argument.",
        "NOOP x": "-ERR NOOP takes no argument.",
        "*ENV 7": "-ERR There's no message 7.",
    }
    for n, (cmd, reply) in enumerate(cases.items()):
        if n == 10:
            assert pop3_cmd(conn, "QUIT") == "+OK Logging out."
            conn = raw_login(suite, "ivy")
        assert pop3_cmd(conn, cmd) == reply, cmd
    assert pop3_cmd(conn, "QUIT") == "+OK Logging out."
    conn = raw_login(suite, "ivy")
    assert pop3_cmd(conn, "DELE 1") == "+OK Marked to be deleted."
    for cmd in ["DELE 1", "RETR 1", "TOP 1 0", "LIST 1", "UIDL 1", "*ENV 1"]:
        assert pop3_cmd(conn, cmd) == "-ERR Message is deleted.", cmd
    assert pop3_cmd(conn, "NOOP") == "+OK"
    assert pop3_cmd(conn, "stat") == "+OK 1 " + pop3_cmd(conn, "LIST 2").split()[2]
    assert pop3_cmd(conn, "RSET").startswith("+OK 2 messages")
    assert pop3_cmd(conn, "QUIT") == "+OK Logging out."
    assert conn.closed_within(5)
    assert len(store_list(suite, "ivy")) == 2


def test_poplib_errors(suite):
    storedeliver(suite, ["jack"], message("x"))
    pop = pop_login(suite, "jack")
    for call in [lambda: pop.retr(2), lambda: pop.list(0), lambda: pop.dele(7),
                 lambda: pop.top(3, 0), lambda: pop.uidl(4)]:
        with pytest.raises(poplib.error_proto):
            call()
    pop.dele(1)
    with pytest.raises(poplib.error_proto, match="deleted"):
        pop.retr(1)
    assert pop.stat() == (0, 0)
    assert pop.quit().startswith(b"+OK")


def test_empty_mailbox(suite):
    pop = pop_login(suite, "kate")          # never got mail: INBOX made at login
    assert pop.stat() == (0, 0)
    assert pop.list()[1] == [] and pop.uidl()[1] == []
    assert pop.quit() == b"+OK Logging out."


def test_wrong_password_and_quit_in_authorization(suite):
    pop = pop_ssl(suite)
    pop.user(addr("leo"))
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        pop.pass_("wrong")
    assert pop.quit() == b"+OK Logging out."


def test_auth_plain_and_login_reach_the_maildrop(suite):
    storedeliver(suite, ["mia"], message("sasl"))
    conn = pop3_open(suite, "pop3s")
    assert pop3_cmd(conn, "AUTH PLAIN " + sasl_plain(addr("mia"), PASSWORD)) == \
        "+OK Logged in."
    assert pop3_cmd(conn, "STAT").startswith("+OK 1 ")
    assert pop3_cmd(conn, "QUIT").startswith("+OK")
    conn = pop3_open(suite, "pop3", tls="starttls")
    assert pop3_cmd(conn, "AUTH LOGIN").startswith("+ ")
    assert pop3_cmd(conn, b64(addr("mia"))).startswith("+ ")
    assert pop3_cmd(conn, b64(PASSWORD)) == "+OK Logged in."
    assert pop3_cmd(conn, "LIST 1").startswith("+OK 1 ")
    assert pop3_cmd(conn, "QUIT").startswith("+OK")


def test_plaintext_login_refused_before_stls(suite):
    conn = pop3_open(suite, "pop3")
    assert pop3_cmd(conn, "USER " + addr("ned")).startswith("-ERR [AUTH]")
    assert pop3_cmd(conn, "AUTH PLAIN " + sasl_plain(addr("ned"), PASSWORD)).startswith(
        "-ERR [AUTH]")
    assert pop3_cmd(conn, "STLS").startswith("+OK")
    conn.starttls()
    assert pop3_cmd(conn, "USER " + addr("ned")) == "+OK"
    assert pop3_cmd(conn, "PASS " + PASSWORD) == "+OK Logged in."
    assert pop3_cmd(conn, "QUIT").startswith("+OK")


# ---- UIDL ------------------------------------------------------------------------------

def test_uidls_stable_across_sessions_restarts_and_never_reused():
    inst = pop3_instance(log_level="info")
    try:
        for i in range(3):
            storedeliver(inst, ["olga"], message(f"u{i}"))
        pop = pop_login(inst, "olga")
        first = pop.uidl()[1]
        pop.quit()
        pop = pop_login(inst, "olga")
        assert pop.uidl()[1] == first
        pop.dele(3)                        # the newest goes; its UIDL must not return
        pop.quit()
        inst.stop()
        inst.start()
        storedeliver(inst, ["olga"], message("after restart"))
        pop = pop_login(inst, "olga")
        now = pop.uidl()[1]
        pop.quit()
        assert now[:2] == first[:2]
        new_id = now[2].split()[1]
        assert new_id not in {u.split()[1] for u in first}
    finally:
        inst.cleanup()


# ---- the lock ---------------------------------------------------------------------------

def test_second_session_gets_in_use(suite):
    storedeliver(suite, ["pete"], message("locked"))
    first = pop_login(suite, "pete")
    assert first.stat()[0] == 1
    second = pop_ssl(suite)
    second.user(addr("pete"))
    with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[IN-USE\]"):
        second.pass_(PASSWORD)
    # the refused session stays in AUTHORIZATION and may try again
    conn = pop3_open(suite, "pop3s")
    assert pop3_cmd(conn, "AUTH PLAIN " + sasl_plain(addr("pete"), PASSWORD)).startswith(
        "-ERR [IN-USE]")
    assert pop3_cmd(conn, "STAT") == "-ERR Command not allowed in this state."
    # other users are not affected
    other = pop_login(suite, "quin", retry_in_use=False)
    other.quit()
    first.dele(1)
    first.quit()
    second.user(addr("pete"))
    second.pass_(PASSWORD)
    assert second.stat() == (0, 0)
    second.quit()
    assert pop3_cmd(conn, "QUIT").startswith("+OK")
    assert "mailbox in use: user=<pete@example.test>" in suite.log()


# ---- pipelining ----------------------------------------------------------------------------

def test_pipelined_commands(suite):
    for i in range(3):
        storedeliver(suite, ["rosa"], message(f"p{i}", "x\n" * 2000))
    conn = pop3_open(suite, "pop3s")
    batch = ["CAPA", "USER " + addr("rosa"), "PASS " + PASSWORD, "STAT", "LIST", "UIDL",
             "RETR 1", "TOP 2 1", "DELE 3", "LIST 3", "NOOP", "RETR 2", "QUIT"]
    conn.send("".join(c + "\r\n" for c in batch))
    replies = {}
    for cmd in batch:
        status = conn.readline()
        body = None
        if status.startswith("+OK") and (cmd in ("CAPA", "LIST", "UIDL") or
                                         cmd.startswith(("RETR", "TOP"))):
            body = pop3_multiline(conn)
        replies[cmd] = (status, body)
    assert replies["PASS " + PASSWORD][0] == "+OK Logged in."
    assert replies["STAT"][0].startswith("+OK 3 ")
    assert len(replies["LIST"][1]) == 3 and len(replies["UIDL"][1]) == 3
    assert replies["RETR 1"][1].count("x") == 2000
    assert replies["TOP 2 1"][1][-1] == "x" and replies["TOP 2 1"][1].count("x") == 1
    assert replies["LIST 3"][0] == "-ERR Message is deleted."
    assert replies["RETR 2"][1][2] == "Subject: p1"
    assert replies["QUIT"][0] == "+OK Logging out, 1 message deleted."
    assert conn.closed_within(5)


# ---- SDPS ---------------------------------------------------------------------------------

def test_sdps_env_layout(suite):
    storedeliver(suite, ["drop=alice@example.test"], message("to alice"),
                 sender="sender@remote.test")
    storedeliver(suite, ["drop=bob@example.test"], message("bounce"), sender="")
    conn = raw_login(suite, "drop")
    _, uidls = multiline(conn, "UIDL")
    status, lines = multiline(conn, "*ENV 1")
    # counting the +OK line as the first: sender 4th, recipient 5th (fetchmail --sdps)
    assert status == "+OK"
    assert lines == ["drop@example.test", uidls[0].split()[1], "sender@remote.test",
                     "alice@example.test"]
    status, lines = multiline(conn, "*env 2")
    assert lines[2:] == ["", "bob@example.test"]     # the null sender: an empty line
    assert pop3_cmd(conn, "QUIT").startswith("+OK")


def test_delivered_to_line_on_other_recipients_copies(suite):
    text = message("two copies")
    storedeliver(suite, ["extra2=alice@example.test", "extra2=bob@example.test", "extra2"],
                 text)
    pop = pop_login(suite, "extra2")
    stored = [r[2] for r in store_list(suite, "extra2")]
    assert stored == [len(crlf(text))] * 3
    prefixes = [b"Delivered-To: alice@example.test\r\n", b"Delivered-To: bob@example.test\r\n",
                b""]
    _, listing, _ = pop.list()
    assert [int(l.split()[1]) for l in listing] == [len(crlf(text)) + len(p) for p in prefixes]
    for n, prefix in enumerate(prefixes, 1):
        resp, lines, _ = pop.retr(n)
        assert b"\r\n".join(lines) + b"\r\n" == prefix + crlf(text)
        assert resp == f"+OK {len(prefix) + len(crlf(text))} octets".encode()
    assert pop.top(1, 0)[1][0] == b"Delivered-To: alice@example.test"
    pop.quit()


def test_sdps_and_delivered_to_can_be_turned_off():
    inst = pop3_instance(extra="pop3 { sdps = false  delivered_to = false }\n")
    try:
        text = message("x")
        storedeliver(inst, ["drop=alice@example.test"], text)
        conn = raw_login(inst, "drop")
        assert "SDPS" not in capa_lines(conn)
        assert pop3_cmd(conn, "*ENV 1") == "-ERR Unknown command."
        assert pop3_cmd(conn, "LIST 1") == f"+OK 1 {len(crlf(text))}"
        assert multiline(conn, "TOP 1 0")[1][0] == "From: sender@remote.test"
        assert pop3_cmd(conn, "QUIT").startswith("+OK")
    finally:
        inst.cleanup()


# ---- configuration: folder, LOGIN-DELAY, EXPIRE ----------------------------------------------

def test_configured_folder():
    inst = pop3_instance(extra='pop3 { mailbox = "Archive" }\n')
    try:
        storedeliver(inst, ["sam"], message("in the inbox"))
        storedeliver(inst, ["sam:Archive"], message("in the archive"))
        pop = pop_login(inst, "sam")
        assert pop.stat()[0] == 1
        assert b"Subject: in the archive" in pop.retr(1)[1]
        pop.quit()
        pop = pop_ssl(inst)
        pop.user(addr("tina"))              # has no Archive
        with pytest.raises(poplib.error_proto, match=r"\[SYS/PERM\]"):
            pop.pass_(PASSWORD)
        pop.quit()
    finally:
        inst.cleanup()


def test_login_delay():
    inst = pop3_instance(extra="pop3 { login_delay = 2s }\n")
    try:
        conn = pop3_open(inst, "pop3s")
        assert "LOGIN-DELAY 2" in capa_lines(conn)
        conn.close()
        pop = pop_login(inst, "uma")
        pop.quit()
        started = time.monotonic()
        pop = pop_ssl(inst)
        pop.user(addr("uma"))
        with pytest.raises(poplib.error_proto, match=r"\[LOGIN-DELAY\]"):
            pop.pass_(PASSWORD)
        pop.quit()
        time.sleep(max(0, 2.2 - (time.monotonic() - started)) + 0.8)
        pop = pop_login(inst, "uma")
        pop.quit()
        # another user is not held back
        pop = pop_login(inst, "vic")
        pop.quit()
    finally:
        inst.cleanup()


def test_expire_zero_deletes_retrieved_messages():
    inst = pop3_instance(extra="pop3 { expire = \"0\" }\n")
    try:
        for i in range(3):
            storedeliver(inst, ["walt"], message(f"e{i}"))
        pop = pop_login(inst, "walt")
        assert pop.capa()["EXPIRE"] == ["0"]
        pop.retr(2)
        pop.top(3, 0)                       # TOP is not a retrieval
        pop.quit()
        rows = store_list(inst, "walt")
        assert [r[0] for r in rows] == [1, 3]
    finally:
        inst.cleanup()


def test_expire_days_deletes_old_retrieved_messages():
    inst = pop3_instance(extra="pop3 { expire = \"2\" }\n")
    try:
        old = str(int(time.time()) - 3 * 86400)
        storedeliver(inst, ["walt"], message("old, read"), args=["-t", old])
        storedeliver(inst, ["walt"], message("old, unread"), args=["-t", old])
        storedeliver(inst, ["walt"], message("new, read"))
        pop = pop_login(inst, "walt")
        assert pop.capa()["EXPIRE"] == ["2"]
        pop.retr(1)
        pop.retr(3)
        pop.quit()
        rows = store_list(inst, "walt")
        assert [(r[0], r[1]) for r in rows] == [(2, "-"), (3, "S")]
    finally:
        inst.cleanup()


def test_expire_never_is_announced():
    inst = pop3_instance(extra="pop3 { expire = never }\n")
    try:
        pop = pop_ssl(inst)
        assert pop.capa()["EXPIRE"] == ["NEVER"]
        pop.quit()
    finally:
        inst.cleanup()


# ---- curl -----------------------------------------------------------------------------------

def test_curl_lists_and_retrieves(suite):
    text = message("via curl", "hello curl\n")
    storedeliver(suite, ["xena"], text)
    storedeliver(suite, ["xena"], message("second"))
    base = f"pop3s://{HOST}:{suite.port('pop3s')}/"
    common = ["curl", "-sS", "--insecure", "--max-time", "20", "-u", f"{addr('xena')}:{PASSWORD}"]
    listing = subprocess.run(common + [base], capture_output=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    sizes = [len(crlf(text)), len(crlf(message("second")))]
    assert listing.stdout == f"1 {sizes[0]}\r\n2 {sizes[1]}\r\n".encode()
    got = subprocess.run(common + [base + "1"], capture_output=True, timeout=30)
    assert got.returncode == 0, got.stderr
    assert got.stdout == crlf(text)
    # over STLS with --ssl-reqd, and a message that is not there
    stls = f"pop3://{HOST}:{suite.port('pop3')}/"
    got = subprocess.run(common + ["--ssl-reqd", stls + "2"], capture_output=True, timeout=30)
    assert got.returncode == 0, got.stderr
    assert b"Subject: second" in got.stdout
    missing = subprocess.run(common + [base + "9"], capture_output=True, timeout=30)
    assert missing.returncode != 0
    # curl deletes with DELE as a custom request; applied at its QUIT
    dele = subprocess.run(common + ["-X", "DELE", "-I", base + "1"], capture_output=True,
                          timeout=30)
    assert dele.returncode == 0, dele.stderr
    assert len(store_list(suite, "xena")) == 1


# ---- one session per mailbox across processes --------------------------------------------------

def test_lock_is_shared_by_every_process(tmp_path):
    """Two pop3d processes on one store (the master's and one run alone on other
    ports), and a lock held by a plain flock(2) from this test: each keeps out
    the others."""
    import fcntl
    inst = pop3_instance(log_level="info")
    other = WarrenInstance(listeners={"pop3s": ("pop3", "implicit")},
                           domains=domains_config(), log_level="info")
    os.symlink(state_dir(inst), os.path.join(other.dir, "state"))
    alone = None
    try:
        storedeliver(inst, ["yuri"], message("shared"))
        pop = pop_login(inst, "yuri")
        pop.quit()
        lock = os.path.join(state_dir(inst), "pop3-locks", "yuri@example.test.lock")
        assert os.path.exists(lock)
        # a second daemon process, bound by itself
        log = open(os.path.join(other.dir, "alone.log"), "wb")
        alone = subprocess.Popen([os.path.join(BUILD, "bin", "warren-pop3d"), "-c",
                                  other.config_path], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, other.port("pop3s")), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        first = pop_login(inst, "yuri")
        second = pop_ssl(other)
        second.user(addr("yuri"))
        with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
            second.pass_(PASSWORD)
        first.quit()
        second.user(addr("yuri"))
        second.pass_(PASSWORD)              # the other process now has it
        assert second.stat()[0] == 1
        third = pop_ssl(inst)
        third.user(addr("yuri"))
        with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
            third.pass_(PASSWORD)
        third.quit()
        second.quit()
        # any process holding the flock keeps POP3 out
        with open(lock, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            pop = pop_ssl(inst)
            pop.user(addr("yuri"))
            with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
                pop.pass_(PASSWORD)
            pop.quit()
        pop = pop_login(inst, "yuri", retry_in_use=False)
        pop.quit()
    finally:
        if alone is not None:
            alone.terminate()
            alone.wait(timeout=15)
        other.cleanup()
        inst.cleanup()


# ---- another session changes the mailbox (IMAP EXPUNGE) -------------------------------------------

def test_messages_expunged_elsewhere_during_a_session(suite):
    for i in range(3):
        storedeliver(suite, ["zoe"], message(f"x{i}", f"unique body {i} {time.time()}\n"))
    pop = pop_login(suite, "zoe")
    assert pop.stat()[0] == 3
    uids = [r[0] for r in store_list(suite, "zoe")]
    out = subprocess.run([STOREDELIVER, "-X", state_dir(suite), addr("zoe"), str(uids[1])],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout == f"expunged {uids[1]}\n", out.stderr
    # the session keeps its numbering; the vanished message cannot be read
    assert pop.stat()[0] == 3
    with pytest.raises(poplib.error_proto, match="expunged"):
        pop.retr(2)
    assert b"Subject: x2" in b"\n".join(pop.retr(3)[1])
    # deleting it too is fine: QUIT removes what is still there
    pop.dele(1)
    pop.dele(2)
    assert pop.quit().startswith(b"+OK Logging out")
    assert [r[0] for r in store_list(suite, "zoe")] == [uids[2]]
    # a new delivery during a session shows up in the next one
    pop = pop_login(suite, "zoe")
    storedeliver(suite, ["zoe"], message("late"))
    assert pop.stat()[0] == 1
    pop.quit()
    pop = pop_login(suite, "zoe")
    assert pop.stat()[0] == 2
    pop.quit()
