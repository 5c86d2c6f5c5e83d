"""imapd: SEARCHRES (RFC 5182: SEARCH RETURN (SAVE) and "$" in later commands) and
LITERAL- (RFC 7888, imap.literal_minus). Real daemons, raw sockets and imaplib."""

import imaplib
import re

import pytest

from protocols import LineConn, imap_cmd, imap_read_tagged, start_instance

HOST = "127.0.0.1"
TIMEOUT = 10
ALICE = "alice@example.test"
PASSWORD = "secret"

LISTENERS = {"imap": ("imap", "starttls")}


def message(i):
    return (f"From: sender{i}@example.org\r\nTo: alice@example.test\r\n"
            f"Subject: message {i}\r\nMessage-ID: <m{i}@example.org>\r\n\r\n"
            f"body {i}\r\n").encode()


@pytest.fixture(scope="module")
def inst():
    inst = start_instance(listeners=LISTENERS,
                          listener_extra={"imap": "auth_plaintext = true"})
    try:
        yield inst
    except Exception:
        print(inst.log()[-20000:])
        raise
    finally:
        inst.cleanup()


@pytest.fixture(scope="module")
def minus():
    inst = start_instance(listeners=LISTENERS,
                          listener_extra={"imap": "auth_plaintext = true"},
                          extra="imap {\n  literal_minus = true\n}\n")
    try:
        yield inst
    finally:
        inst.cleanup()


def session(inst, folder, count):
    """A raw session on a fresh folder holding count messages (UIDs 1..count), of
    which 2 and 4 are \\Flagged."""
    imap = imaplib.IMAP4(HOST, inst.port("imap"), timeout=TIMEOUT)
    imap.login(ALICE, PASSWORD)
    assert imap.create(folder)[0] == "OK"
    for i in range(1, count + 1):
        flags = "(\\Flagged)" if i in (2, 4) else None
        assert imap.append(folder, flags, None, message(i))[0] == "OK"
    imap.logout()
    conn = LineConn.open(inst, "imap")
    assert conn.readline().startswith("* OK")
    _, tagged = imap_cmd(conn, "a0", f"LOGIN {ALICE} {PASSWORD}")
    assert tagged.startswith("a0 OK"), tagged
    _, tagged = imap_cmd(conn, "a1", f"SELECT {folder}")
    assert tagged.startswith("a1 OK"), tagged
    return conn


def cmd_ok(conn, tag, command):
    untagged, tagged = imap_cmd(conn, tag, command)
    assert tagged.startswith(f"{tag} OK"), (command, tagged)
    return untagged


def fetched(untagged):
    """{seq: data} of the FETCH responses."""
    out = {}
    for line in untagged:
        m = re.match(r"\* (\d+) FETCH \((.*)\)$", line)
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def test_capabilities(inst, minus):
    conn = LineConn.open(inst, "imap")
    greeting = conn.readline()
    assert " LITERAL+ " in greeting and "LITERAL-" not in greeting
    untagged, _ = imap_cmd(conn, "a0", f"LOGIN {ALICE} {PASSWORD}")
    caps = cmd_ok(conn, "a1", "CAPABILITY")[0]
    assert " SEARCHRES" in caps and " ESEARCH" in caps, caps
    conn.close()
    conn = LineConn.open(minus, "imap")
    greeting = conn.readline()
    assert " LITERAL- " in greeting and "LITERAL+" not in greeting, greeting
    conn.close()


def test_save_then_fetch_store_search(inst):
    conn = session(inst, "res1", 5)
    # SAVE alone: no untagged ESEARCH, only the tagged OK
    untagged = cmd_ok(conn, "s1", "SEARCH RETURN (SAVE) FLAGGED")
    assert untagged == [], untagged
    got = fetched(cmd_ok(conn, "f1", "FETCH $ (UID FLAGS)"))
    assert sorted(got) == [2, 4], got
    assert "UID 2 " in got[2] and "UID 4 " in got[4]
    got = fetched(cmd_ok(conn, "f2", "UID FETCH $ (FLAGS)"))
    assert sorted(got) == [2, 4], got
    # STORE $ and UID STORE $
    got = fetched(cmd_ok(conn, "st1", "STORE $ +FLAGS (\\Seen)"))
    assert sorted(got) == [2, 4] and all("\\Seen" in v for v in got.values()), got
    got = fetched(cmd_ok(conn, "st2", "UID STORE $ +FLAGS.SILENT ($Label1)"))
    assert got == {}, got
    untagged = cmd_ok(conn, "s2", "SEARCH KEYWORD $Label1")
    assert untagged == ["* SEARCH 2 4"], untagged
    # "$" as a search key, alone, negated and in OR, and as UID $
    assert cmd_ok(conn, "s3", "SEARCH $") == ["* SEARCH 2 4"]
    assert cmd_ok(conn, "s4", "SEARCH NOT $") == ["* SEARCH 1 3 5"]
    assert cmd_ok(conn, "s5", "UID SEARCH UID $") == ["* SEARCH 2 4"]
    assert cmd_ok(conn, "s6", "SEARCH OR $ SUBJECT \"message 5\"") == ["* SEARCH 2 4 5"]
    # a search that does not SAVE leaves "$" alone
    cmd_ok(conn, "s7", "SEARCH SUBJECT \"message 1\"")
    assert sorted(fetched(cmd_ok(conn, "f3", "FETCH $ (UID)"))) == [2, 4]
    conn.close()


def test_save_with_min_max_all(inst):
    conn = session(inst, "res2", 5)
    # SAVE with MIN only saves the lowest hit; the ESEARCH answer still comes
    untagged = cmd_ok(conn, "s1", "UID SEARCH RETURN (SAVE MIN) SUBJECT message")
    assert untagged == ['* ESEARCH (TAG "s1") UID MIN 1'], untagged
    assert sorted(fetched(cmd_ok(conn, "f1", "FETCH $ (UID)"))) == [1]
    untagged = cmd_ok(conn, "s2", "SEARCH RETURN (MIN MAX SAVE) SUBJECT message")
    assert untagged == ['* ESEARCH (TAG "s2") MIN 1 MAX 5'], untagged
    assert sorted(fetched(cmd_ok(conn, "f2", "FETCH $ (UID)"))) == [1, 5]
    # with ALL (or COUNT) the whole result is saved
    untagged = cmd_ok(conn, "s3", "SEARCH RETURN (SAVE COUNT) NOT FLAGGED")
    assert untagged == ['* ESEARCH (TAG "s3") COUNT 3'], untagged
    assert sorted(fetched(cmd_ok(conn, "f3", "FETCH $ (UID)"))) == [1, 3, 5]
    untagged = cmd_ok(conn, "s4", "SEARCH RETURN (SAVE ALL) UID 2:3")
    assert untagged == ['* ESEARCH (TAG "s4") ALL 2:3'], untagged
    assert sorted(fetched(cmd_ok(conn, "f4", "FETCH $ (UID)"))) == [2, 3]
    # nothing found: "$" is empty, and commands on it succeed doing nothing
    assert cmd_ok(conn, "s5", "SEARCH RETURN (SAVE) SUBJECT nosuchthing") == []
    assert fetched(cmd_ok(conn, "f5", "FETCH $ (UID)")) == {}
    assert cmd_ok(conn, "s6", "SEARCH $") == ["* SEARCH"]
    conn.close()


def test_bad_search_keeps_result(inst):
    conn = session(inst, "res3", 3)
    cmd_ok(conn, "s1", "SEARCH RETURN (SAVE) UID 3")
    untagged, tagged = imap_cmd(conn, "s2", "SEARCH RETURN (SAVE) NOSUCHKEY")
    assert tagged.startswith("s2 BAD"), tagged
    _, tagged = imap_cmd(conn, "s3", "SEARCH RETURN (SAVE BOGUS) ALL")
    assert tagged.startswith("s3 BAD"), tagged
    # a BAD SEARCH does not change "$" (RFC 5182 2.1)
    assert sorted(fetched(cmd_ok(conn, "f1", "FETCH $ (UID)"))) == [3]
    conn.close()


def test_copy_move_expunge_and_reset(inst):
    conn = session(inst, "res4", 5)
    cmd_ok(conn, "c0", "CREATE res4dst")
    cmd_ok(conn, "s1", "UID SEARCH RETURN (SAVE) UID 1,3")
    _, tagged = imap_cmd(conn, "c1", "COPY $ res4dst")
    assert tagged.startswith("c1 OK [COPYUID ") and " 1,3 1:2]" in tagged, tagged
    _, tagged = imap_cmd(conn, "c2", "UID COPY $ res4dst")
    assert tagged.startswith("c2 OK [COPYUID ") and " 1,3 3:4]" in tagged, tagged
    # MOVE $: the moved messages leave, and "$" then names nothing here
    untagged = cmd_ok(conn, "m1", "MOVE $ res4dst")
    assert [u for u in untagged if u.endswith("EXPUNGE")] == ["* 3 EXPUNGE", "* 1 EXPUNGE"]
    assert fetched(cmd_ok(conn, "f1", "FETCH $ (UID)")) == {}
    untagged = cmd_ok(conn, "st1", "STATUS res4dst (MESSAGES)")
    assert untagged == ["* STATUS res4dst (MESSAGES 6)"], untagged
    # expunged messages drop out of "$"; UID EXPUNGE $ and UID MOVE $
    cmd_ok(conn, "s2", "SEARCH RETURN (SAVE) ALL")        # UIDs 2 4 5
    cmd_ok(conn, "st2", "STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert cmd_ok(conn, "e1", "EXPUNGE") == ["* 1 EXPUNGE"]
    got = fetched(cmd_ok(conn, "f2", "FETCH $ (UID)"))
    assert got == {1: "UID 4", 2: "UID 5"}, got
    cmd_ok(conn, "s3", "UID SEARCH RETURN (SAVE) UID 4")
    cmd_ok(conn, "st3", "UID STORE $ +FLAGS.SILENT (\\Deleted)")
    assert cmd_ok(conn, "e2", "UID EXPUNGE $") == ["* 1 EXPUNGE"]
    cmd_ok(conn, "s4", "SEARCH RETURN (SAVE) ALL")        # UID 5
    untagged = cmd_ok(conn, "m2", "UID MOVE $ res4dst")
    assert untagged[-1] == "* 1 EXPUNGE", untagged
    # SELECT resets "$" to empty, even of the same mailbox
    cmd_ok(conn, "sel", "SELECT res4dst")
    cmd_ok(conn, "s5", "SEARCH RETURN (SAVE) ALL")
    assert len(fetched(cmd_ok(conn, "f3", "FETCH $ (UID)"))) == 7
    cmd_ok(conn, "sel2", "EXAMINE res4dst")
    assert fetched(cmd_ok(conn, "f4", "FETCH $ (UID)")) == {}
    conn.close()


def test_imaplib_session(inst):
    """The same through imaplib, as a script would use it."""
    conn = session(inst, "res5", 4)
    conn.close()
    imap = imaplib.IMAP4(HOST, inst.port("imap"), timeout=TIMEOUT)
    imap.login(ALICE, PASSWORD)
    assert imap.select("res5")[0] == "OK"
    typ, data = imap.search(None, "RETURN", "(SAVE)", "FLAGGED")
    assert typ == "OK" and data == [None], data
    typ, data = imap.fetch("$", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = sorted(d[1].strip() for d in data if isinstance(d, tuple))
    assert subjects == [b"Subject: message 2", b"Subject: message 4"], data
    imap.logout()


# ---- LITERAL- (imap.literal_minus) -----------------------------------------------------

def minus_login(inst):
    conn = LineConn.open(inst, "imap")
    assert conn.readline().startswith("* OK")
    _, tagged = imap_cmd(conn, "a0", f"LOGIN {ALICE} {PASSWORD}")
    assert tagged.startswith("a0 OK"), tagged
    return conn


def test_literal_minus_small_nonsync_accepted(minus):
    conn = LineConn.open(minus, "imap")
    assert conn.readline().startswith("* OK")
    # LOGIN with non-synchronizing literals
    conn.send(f"a1 LOGIN {{{len(ALICE)}+}}\r\n{ALICE} {{6+}}\r\n{PASSWORD}\r\n".encode())
    _, tagged = imap_read_tagged(conn, "a1")
    assert tagged.startswith("a1 OK"), tagged
    # APPEND of exactly 4096 bytes without waiting
    body = message(1)
    body += b"x" * (4096 - len(body) - 2) + b"\r\n"
    assert len(body) == 4096
    conn.send(b"a2 APPEND INBOX {4096+}\r\n" + body + b"\r\n")
    _, tagged = imap_read_tagged(conn, "a2")
    assert tagged.startswith("a2 OK [APPENDUID "), tagged
    conn.close()


def test_literal_minus_too_big_nonsync_refused(minus):
    conn = minus_login(minus)
    body = b"y" * 5000
    # 4097 bytes and more may not be sent without the go-ahead: BAD [TOOBIG], and
    # the literal and the rest of the command are skipped
    conn.send(b"b1 APPEND INBOX {5000+}\r\n" + body + b"\r\n")
    _, tagged = imap_read_tagged(conn, "b1")
    assert tagged.startswith("b1 BAD [TOOBIG]"), tagged
    # the session goes on: the skipped bytes were not taken for commands
    untagged = cmd_ok(conn, "b2", "STATUS INBOX (MESSAGES)")
    assert untagged[0].startswith("* STATUS INBOX (MESSAGES "), untagged
    before = untagged[0]
    # a command with a second non-synchronizing literal after the big one
    conn.send(b"b3 LOGIN {4097+}\r\n" + b"z" * 4097 + b" {3+}\r\nabc\r\n")
    _, tagged = imap_read_tagged(conn, "b3")
    assert tagged.startswith("b3 BAD [TOOBIG]"), tagged
    assert cmd_ok(conn, "b4", "NOOP") == []
    # the same size as a synchronizing literal is fine
    conn.send(b"b5 APPEND INBOX {5000}\r\n")
    assert conn.readline().startswith("+ ")
    conn.send(b"Subject: big\r\n\r\n" + body[:4984] + b"\r\n")
    _, tagged = imap_read_tagged(conn, "b5")
    assert tagged.startswith("b5 OK [APPENDUID "), tagged
    untagged = cmd_ok(conn, "b6", "STATUS INBOX (MESSAGES)")
    n_before = int(re.search(r"MESSAGES (\d+)", before).group(1))
    assert untagged == [f"* STATUS INBOX (MESSAGES {n_before + 1})"], untagged
    conn.close()
    assert "non-synchronizing literal of 5000 bytes refused (LITERAL-)" in minus.log()


def test_literal_minus_beyond_any_limit_ends_the_session(minus):
    # before login a command may carry 1 MB of literals: a non-synchronizing one
    # announced beyond that cannot be skipped sensibly, so the session ends
    conn = LineConn.open(minus, "imap")
    assert conn.readline().startswith("* OK")
    conn.send(b"c1 LOGIN {2000000+}\r\n")
    line = conn.readline()
    assert line.startswith("* BYE [TOOBIG]"), line
    conn.close()
    # a small oversized one before login is skipped like after it
    conn = LineConn.open(minus, "imap")
    assert conn.readline().startswith("* OK")
    conn.send(b"c2 LOGIN {5000+}\r\n" + b"u" * 5000 + b" secret\r\n")
    _, tagged = imap_read_tagged(conn, "c2")
    assert tagged.startswith("c2 BAD [TOOBIG]"), tagged
    conn.send(f"c3 LOGIN {ALICE} {PASSWORD}\r\n".encode())
    _, tagged = imap_read_tagged(conn, "c3")
    assert tagged.startswith("c3 OK"), tagged
    conn.close()
