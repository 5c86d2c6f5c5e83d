"""imapd over the store: folders, SELECT, FETCH, STORE, APPEND, COPY/MOVE,
EXPUNGE, IDLE, two sessions, Thunderbird's and Outlook's start-up sequences, and
malformed commands. Real daemons, Python's imaplib and raw sockets."""

import imaplib
import re
import socket
import time

import pytest

from protocols import LineConn, imap_cmd, imap_read_tagged, start_instance

HOST = "127.0.0.1"
TIMEOUT = 10
ALICE = "alice@example.test"
BOB = "bob@example.test"
PASSWORD = "secret"

LISTENERS = {"imap": ("imap", "starttls"), "imaps": ("imap", "implicit")}

MESSAGE = (b"From: Alice Example <alice@example.test>\r\n"
           b"To: Bob <bob@example.test>, carol@example.org\r\n"
           b"Subject: Hello there\r\n"
           b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
           b"Message-ID: <hello@example.test>\r\n"
           b"\r\n"
           b"Line one\r\n"
           b"Line two\r\n")

MULTIPART = (b"From: alice@example.test\r\n"
             b"Subject: parts\r\n"
             b"MIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
             b"\r\n"
             b"preamble\r\n"
             b"--XX\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\n"
             b"\r\n"
             b"first part\r\n"
             b"--XX\r\n"
             b"Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
             b"Content-Transfer-Encoding: base64\r\n"
             b"Content-Disposition: attachment; filename=\"a.bin\"\r\n"
             b"\r\n"
             b"AAECAw==\r\n"
             b"--XX--\r\n")


@pytest.fixture
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


def login(inst, user=ALICE):
    imap = imaplib.IMAP4(HOST, inst.port("imap"), timeout=TIMEOUT)
    typ, _ = imap.login(user, PASSWORD)
    assert typ == "OK"
    return imap


def raw_login(inst, user=ALICE):
    conn = LineConn.open(inst, "imap")
    assert conn.readline().startswith("* OK")
    _, tagged = imap_cmd(conn, "a0", f"LOGIN {user} {PASSWORD}")
    assert tagged.startswith("a0 OK"), tagged
    return conn


def ok(result):
    typ, data = result
    assert typ == "OK", (typ, data)
    return data


def list_names(data):
    names = {}
    for line in data:
        m = re.match(rb'\((.*?)\) "/" (.*)', line)
        assert m, line
        name = m.group(2).decode()
        if name.startswith('"'):
            name = name[1:-1]
        names[name] = m.group(1).decode().split()
    return names


# ---- authenticated state ------------------------------------------------------------

def test_default_folders_created_and_subscribed_on_first_login(inst):
    imap = login(inst)
    names = list_names(ok(imap.list('""', "*")))
    assert set(names) == {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}
    assert "\\Sent" in names["Sent"] and "\\Trash" in names["Trash"]
    assert "\\Drafts" in names["Drafts"] and "\\Junk" in names["Junk"]
    assert "\\Archive" in names["Archive"]
    assert all("\\HasNoChildren" in a for a in names.values())
    subscribed = list_names(ok(imap.lsub('""', "*")))
    assert set(subscribed) == set(names)
    typ, data = imap._simple_command("LIST", "(SUBSCRIBED)", '""', "*")
    assert typ == "OK"
    sub = list_names(imap._untagged_response(typ, data, "LIST")[1])
    assert all("\\Subscribed" in a for a in sub.values())
    imap.logout()
    # a second login does not duplicate them
    imap = login(inst)
    assert len(ok(imap.list('""', "*"))) == 6
    imap.logout()


def test_list_extended_and_children(inst):
    imap = login(inst)
    ok(imap.create("Projects/2024"))
    ok(imap.create("Projects/2025"))
    names = list_names(ok(imap.list('""', "*")))
    # "Projects" itself does not exist: "*" lists only the children
    assert "Projects" not in names
    assert "\\HasNoChildren" in names["Projects/2024"]
    top = list_names(ok(imap.list('""', "%")))
    assert "Projects/2024" not in top
    assert top["Projects"] == ["\\Noselect", "\\HasChildren"]
    # special-use return option and a pattern list
    typ, data = imap._simple_command("LIST", '""', '("Sent" "Trash")', "RETURN", "(SPECIAL-USE)")
    lines = imap._untagged_response(typ, data, "LIST")[1]
    got = list_names(lines)
    assert set(got) == {"Sent", "Trash"} and "\\Sent" in got["Sent"]
    # LIST-STATUS
    typ, data = imap._simple_command("LIST", '""', "INBOX", "RETURN",
                                     "(STATUS (MESSAGES UIDNEXT))")
    assert typ == "OK"
    status = imap._untagged_response(typ, data, "STATUS")[1]
    assert status and b"MESSAGES 0" in status[0] and b"UIDNEXT" in status[0]
    # the hierarchy delimiter
    imap.untagged_responses.clear()
    data = ok(imap.list('""', '""'))
    assert data == [b'(\\Noselect) "/" ""']
    imap.logout()


def test_create_delete_rename_subscribe(inst):
    imap = login(inst)
    ok(imap.create("Work"))
    typ, data = imap.create("Work")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0]
    typ, data = imap.create("INBOX")
    assert typ == "NO"
    ok(imap.subscribe("Work"))
    assert "Work" in list_names(ok(imap.lsub('""', "*")))
    ok(imap.rename("Work", "Job"))
    names = list_names(ok(imap.list('""', "*")))
    assert "Job" in names and "Work" not in names
    assert "Job" in list_names(ok(imap.lsub('""', "*")))
    typ, data = imap.rename("Nope", "Other")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    ok(imap.unsubscribe("Job"))
    assert "Job" not in list_names(ok(imap.lsub('""', "*")))
    ok(imap.delete("Job"))
    typ, data = imap.delete("Job")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    typ, data = imap.delete("INBOX")
    assert typ == "NO"
    # CREATE-SPECIAL-USE
    typ, data = imap._simple_command("CREATE", "Flagged", "(USE (\\Flagged))")
    assert typ == "OK"
    assert "\\Flagged" in list_names(ok(imap.list('""', "Flagged")))["Flagged"]
    conn = raw_login(inst)
    _, tagged = imap_cmd(conn, "c1", "CREATE Odd (USE (\\Bogus))")
    assert tagged.startswith("c1 NO [USEATTR]"), tagged
    _, tagged = imap_cmd(conn, "c2", "CREATE Odd (USE \\Sent)")
    assert tagged.startswith("c2 BAD"), tagged
    conn.close()
    imap.logout()


def test_modified_utf7_names(inst):
    imap = login(inst)
    # "Entwürfe" and "日本語" in modified UTF-7
    ok(imap.create("Entw&APw-rfe"))
    ok(imap.create("&ZeVnLIqe-"))
    ok(imap.create('"Tom &- Jerry"'))
    names = list_names(ok(imap.list('""', "*")))
    assert "Entw&APw-rfe" in names and "&ZeVnLIqe-" in names and "Tom &- Jerry" in names
    typ, data = imap.create("Bad&Jjo")
    assert typ == "NO"
    # after ENABLE UTF8=ACCEPT names are UTF-8
    conn = raw_login(inst)
    untagged, tagged = imap_cmd(conn, "e1", "ENABLE UTF8=ACCEPT")
    assert tagged.startswith("e1 OK") and "* ENABLED UTF8=ACCEPT" in untagged
    untagged, tagged = imap_cmd(conn, "l1", 'LIST "" "Entw*"')
    assert tagged.startswith("l1 OK")
    assert any("Entwürfe" in line for line in untagged), untagged
    conn.close()
    imap.logout()


def test_status_namespace_enable(inst):
    imap = login(inst)
    ok(imap.append("INBOX", "(\\Seen)", None, MESSAGE))
    ok(imap.append("INBOX", None, None, MESSAGE))
    data = ok(imap.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ)"))
    line = data[0].decode()
    assert "MESSAGES 2" in line and "UIDNEXT 3" in line and "UNSEEN 1" in line
    assert f"SIZE {2 * len(MESSAGE)}" in line and "HIGHESTMODSEQ" in line
    assert re.search(r"UIDVALIDITY \d+", line)
    typ, data = imap.status("Nope", "(MESSAGES)")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        imap._simple_command("STATUS", "INBOX", "(BOGUS)")
    typ, data = imap.namespace()
    assert typ == "OK" and data[0] == b'(("" "/")) NIL NIL'
    typ, data = imap._simple_command("ENABLE", "CONDSTORE")
    assert typ == "OK"
    assert imap.untagged_responses.pop("ENABLED") == [b"CONDSTORE"]
    imap.logout()


# ---- selected state -----------------------------------------------------------------

def test_select_reports_mailbox_state(inst):
    imap = login(inst)
    ok(imap.append("INBOX", "(\\Seen)", None, MESSAGE))
    ok(imap.append("INBOX", "($Label1)", None, MESSAGE))
    conn = raw_login(inst)
    untagged, tagged = imap_cmd(conn, "s1", "SELECT INBOX")
    assert tagged.startswith("s1 OK [READ-WRITE]"), tagged
    text = "\n".join(untagged)
    assert "* 2 EXISTS" in text
    assert re.search(r"\* FLAGS \(.*\\Seen.*\$Label1", text)
    assert re.search(r"\* OK \[PERMANENTFLAGS \(.*\\\*\)\]", text)
    assert "* OK [UNSEEN 2]" in text
    assert re.search(r"\* OK \[UIDVALIDITY \d+\]", text)
    assert "* OK [UIDNEXT 3]" in text
    assert re.search(r"\* OK \[HIGHESTMODSEQ \d+\]", text)
    untagged, tagged = imap_cmd(conn, "s2", "EXAMINE INBOX")
    assert tagged.startswith("s2 OK [READ-ONLY]"), tagged
    assert "* OK [CLOSED] Previous mailbox closed." in untagged
    _, tagged = imap_cmd(conn, "s3", "STORE 1 +FLAGS (\\Deleted)")
    assert tagged.startswith("s3 NO [READ-ONLY]"), tagged
    _, tagged = imap_cmd(conn, "s4", "SELECT Nope")
    assert tagged.startswith("s4 NO [NONEXISTENT]"), tagged
    # a failed SELECT leaves no mailbox selected
    _, tagged = imap_cmd(conn, "s5", "FETCH 1 FLAGS")
    assert tagged.startswith("s5 BAD"), tagged
    conn.close()
    imap.logout()


def test_fetch_items_and_sections(inst):
    imap = login(inst)
    ok(imap.append("INBOX", None, '"07-Feb-1994 21:52:25 -0800"', MESSAGE))
    ok(imap.append("INBOX", None, None, MULTIPART))
    ok(imap.select("INBOX"))
    data = ok(imap.fetch("1", "(FLAGS UID RFC822.SIZE INTERNALDATE)"))
    line = data[0].decode()
    assert "UID 1" in line and f"RFC822.SIZE {len(MESSAGE)}" in line
    assert 'INTERNALDATE "08-Feb-1994 05:52:25 +0000"' in line
    assert "FLAGS ()" in line
    data = ok(imap.fetch("1", "ENVELOPE"))
    env = data[0].decode()
    assert '"Mon, 7 Feb 1994 21:52:25 -0800" "Hello there"' in env
    assert '(("Alice Example" NIL "alice" "example.test"))' in env
    assert '(("Bob" NIL "bob" "example.test")(NIL NIL "carol" "example.org"))' in env
    assert '"<hello@example.test>"' in env
    data = ok(imap.fetch("2", "BODYSTRUCTURE"))
    bs = data[0].decode()
    # the line end before a boundary belongs to the boundary
    assert '("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 10 0' in bs
    assert '"application" "octet-stream" ("name" "a.bin") NIL NIL "base64" 8' in bs
    assert '"mixed" ("boundary" "XX")' in bs
    assert '("attachment" ("filename" "a.bin"))' in bs
    data = ok(imap.fetch("2", "BODY"))
    assert b'"mixed")' in data[0][0] if isinstance(data[0], tuple) else b'"mixed")' in data[0]
    # sections
    data = ok(imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject From)])"))
    assert data[0][1] == (b"From: Alice Example <alice@example.test>\r\n"
                          b"Subject: Hello there\r\n\r\n")
    data = ok(imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (Subject From To Date)])"))
    assert data[0][1] == b"Message-ID: <hello@example.test>\r\n\r\n"
    data = ok(imap.fetch("1", "(BODY.PEEK[TEXT])"))
    assert data[0][1] == b"Line one\r\nLine two\r\n"
    data = ok(imap.fetch("1", "(BODY.PEEK[HEADER])"))
    assert data[0][1] == MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    data = ok(imap.fetch("1", "(BODY.PEEK[]<5.10>)"))
    assert b"BODY[]<5>" in data[0][0] and data[0][1] == MESSAGE[5:15]
    data = ok(imap.fetch("2", "(BODY.PEEK[1])"))
    assert data[0][1] == b"first part"
    data = ok(imap.fetch("2", "(BODY.PEEK[2.MIME])"))
    assert data[0][1].startswith(b"Content-Type: application/octet-stream")
    data = ok(imap.fetch("2", "(BODY.PEEK[2])"))
    assert data[0][1] == b"AAECAw=="
    data = ok(imap.fetch("2", "(BODY.PEEK[9])"))
    assert data[0][1] in (b"", None)
    data = ok(imap.fetch("1", "(RFC822.HEADER)"))
    assert data[0][1].endswith(b"\r\n\r\n")
    # PEEK does not set \Seen, BODY[] and RFC822.TEXT do
    assert b"\\Seen" not in ok(imap.fetch("1", "FLAGS"))[0]
    data = ok(imap.fetch("1", "(BODY[])"))
    assert data[0][1] == MESSAGE and b"\\Seen" in data[0][0]
    data = ok(imap.fetch("2", "(RFC822.TEXT)"))
    assert b"\\Seen" in data[0][0]
    data = ok(imap.fetch("1:*", "(UID RFC822)"))
    assert data[0][1] == MESSAGE
    # macros and UID FETCH
    data = ok(imap.fetch("1", "FAST"))
    assert b"RFC822.SIZE" in data[0] and b"INTERNALDATE" in data[0]
    data = ok(imap.uid("FETCH", "2", "(FLAGS)"))
    assert data[0].startswith(b"2 (UID 2 FLAGS")
    data = ok(imap.uid("FETCH", "5:*", "(FLAGS)"))   # "*" is the highest UID
    assert data[0].startswith(b"2 (UID 2")
    imap.logout()


def test_fetch_errors(inst):
    imap = login(inst)
    ok(imap.append("INBOX", None, None, MESSAGE))
    ok(imap.select("INBOX"))
    conn = raw_login(inst)
    imap_cmd(conn, "s", "SELECT INBOX")
    for tag, cmd in [("f1", "FETCH 5 FLAGS"), ("f2", "FETCH 1 (FLAGS BOGUS)"),
                     ("f3", "FETCH x FLAGS"), ("f4", "FETCH 1 BODY[HEADER.FIELDS]"),
                     ("f5", "FETCH 1 BODY[1.BOGUS]"), ("f6", "FETCH 1 (FLAGS"),
                     ("f7", "FETCH 1 BODY[]<1.0>"), ("f8", "FETCH 0 FLAGS")]:
        _, tagged = imap_cmd(conn, tag, cmd)
        assert tagged.startswith(tag + " BAD"), (cmd, tagged)
    untagged, tagged = imap_cmd(conn, "f9", "UID FETCH 99 FLAGS")
    assert tagged.startswith("f9 OK") and untagged == []
    conn.close()
    imap.logout()


def test_store_expunge_uidplus(inst):
    imap = login(inst)
    for _ in range(5):
        ok(imap.append("INBOX", None, None, MESSAGE))
    ok(imap.select("INBOX"))
    data = ok(imap.store("1:3", "+FLAGS", "(\\Deleted $Junk)"))
    assert len(data) == 3 and b"\\Deleted" in data[0] and b"$Junk" in data[0]
    data = ok(imap.store("3", "-FLAGS", "($Junk)"))
    assert b"$Junk" not in data[0]
    data = ok(imap.store("2", "FLAGS.SILENT", "(\\Seen)"))
    assert data == [None]
    assert b"FLAGS (\\Seen)" in ok(imap.fetch("2", "FLAGS"))[0]
    ok(imap.store("1", "+FLAGS", "(\\Deleted)"))
    ok(imap.store("3", "+FLAGS", "(\\Deleted)"))
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        imap.store("1", "+FLAGS", "(\\Recent)")
    # UID EXPUNGE removes only the given \Deleted messages
    data = ok(imap.uid("EXPUNGE", "1"))
    assert imap.untagged_responses.pop("EXPUNGE", None) == [b"1"]
    # FLAGS.SILENT (\Seen) replaced uid 2's \Deleted: only uid 3 (now 2) goes
    data = ok(imap.expunge())
    assert data == [b"2"]
    data = ok(imap.uid("FETCH", "1:*", "(UID)"))
    assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"2", b"4", b"5"]
    imap.logout()


def test_append_flags_date_and_errors(inst):
    imap = login(inst)
    typ, data = imap.append("Sent", "(\\Seen \\Draft)", '"01-Jan-2024 10:00:00 +0100"', MESSAGE)
    assert typ == "OK" and re.match(rb"\[APPENDUID \d+ 1\]", data[0]), data
    ok(imap.select("Sent"))
    line = ok(imap.fetch("1", "(FLAGS INTERNALDATE)"))[0]
    assert b"\\Seen" in line and b"\\Draft" in line
    assert b'"01-Jan-2024 09:00:00 +0000"' in line
    typ, data = imap.append("Nope", None, None, MESSAGE)
    assert typ == "NO" and b"[TRYCREATE]" in data[0]
    # LITERAL+ over a raw connection, and a bad date
    conn = raw_login(inst)
    conn.send(b"p1 APPEND INBOX (\\Flagged) {%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n")
    _, tagged = imap_read_tagged(conn, "p1")
    assert tagged.startswith("p1 OK [APPENDUID"), tagged
    conn.send(b'p2 APPEND INBOX "32-Foo-2024 99:00:00 +0000" {%d+}\r\n' % len(MESSAGE) +
              MESSAGE + b"\r\n")
    _, tagged = imap_read_tagged(conn, "p2")
    assert tagged.startswith("p2 BAD"), tagged
    # a literal larger than APPENDLIMIT is refused before it is sent
    _, tagged = imap_cmd(conn, "p3", "APPEND INBOX {999999999999}")
    assert tagged.startswith("p3 NO [TOOBIG]"), tagged
    _, tagged = imap_cmd(conn, "p4", "NOOP")
    assert tagged.startswith("p4 OK")
    conn.close()
    imap.logout()


def test_copy_move_with_copyuid(inst):
    imap = login(inst)
    for _ in range(3):
        ok(imap.append("INBOX", None, None, MESSAGE))
    ok(imap.select("INBOX"))
    typ, data = imap.copy("1:2", "Archive")
    assert typ == "OK" and re.match(rb"\[COPYUID \d+ 1:2 1:2\]", data[0]), data
    typ, data = imap.copy("1", "Nope")
    assert typ == "NO" and b"[TRYCREATE]" in data[0]
    typ, data = imap._simple_command("MOVE", "2:3", "Trash")
    assert typ == "OK"
    oks = imap.untagged_responses.pop("OK", [])
    assert any(re.match(rb"\[COPYUID \d+ 2:3 1:2\]", o) for o in oks), oks
    assert imap.untagged_responses.pop("EXPUNGE") == [b"3", b"2"]
    assert ok(imap.status("INBOX", "(MESSAGES)"))[0].endswith(b"(MESSAGES 1)")
    assert ok(imap.status("Trash", "(MESSAGES)"))[0].endswith(b"(MESSAGES 2)")
    typ, data = imap.uid("MOVE", "1", "Junk")
    assert typ == "OK"
    assert ok(imap.status("INBOX", "(MESSAGES)"))[0].endswith(b"(MESSAGES 0)")
    imap.logout()


def test_close_expunges_unselect_does_not(inst):
    imap = login(inst)
    for _ in range(2):
        ok(imap.append("INBOX", "(\\Deleted)", None, MESSAGE))
    ok(imap.select("INBOX"))
    typ, _ = imap._simple_command("UNSELECT")
    assert typ == "OK"
    assert ok(imap.status("INBOX", "(MESSAGES)"))[0].endswith(b"(MESSAGES 2)")
    ok(imap.select("INBOX"))
    ok(imap.close())
    assert ok(imap.status("INBOX", "(MESSAGES)"))[0].endswith(b"(MESSAGES 0)")
    imap.logout()


# ---- several sessions, IDLE ----------------------------------------------------------

def test_two_sessions_see_each_others_changes(inst):
    a = raw_login(inst)
    b = raw_login(inst)
    imap_cmd(a, "a1", "SELECT INBOX")
    imap_cmd(b, "b1", "SELECT INBOX")
    conn = login(inst)
    ok(conn.append("INBOX", None, None, MESSAGE))
    ok(conn.append("INBOX", None, None, MESSAGE))
    untagged, tagged = imap_cmd(a, "a2", "NOOP")
    assert "* 2 EXISTS" in untagged, untagged
    # b has not heard of the messages yet: their numbers are not valid for it
    _, tagged = imap_cmd(b, "b0", "STORE 1 +FLAGS (\\Flagged)")
    assert tagged.startswith("b0 BAD"), tagged
    untagged, _ = imap_cmd(b, "b1", "NOOP")
    assert "* 2 EXISTS" in untagged, untagged
    _, tagged = imap_cmd(b, "b2", "STORE 1 +FLAGS (\\Flagged)")
    assert tagged.startswith("b2 OK"), tagged
    untagged, _ = imap_cmd(a, "a3", "NOOP")
    assert any(re.match(r"\* 1 FETCH \(FLAGS \(\\Flagged\)\)", u) for u in untagged), untagged
    _, tagged = imap_cmd(b, "b3", "STORE 1 +FLAGS (\\Deleted)")
    untagged, tagged = imap_cmd(b, "b4", "EXPUNGE")
    assert "* 1 EXPUNGE" in untagged
    # FETCH must not report the expunge, NOOP does
    untagged, _ = imap_cmd(a, "a4", "FETCH 1:* (FLAGS)")
    assert not any("EXPUNGE" in u for u in untagged), untagged
    untagged, _ = imap_cmd(a, "a5", "NOOP")
    assert "* 1 EXPUNGE" in untagged, untagged
    untagged, _ = imap_cmd(a, "a6", "FETCH 1:* (UID)")
    assert len(untagged) == 1 and "UID 2" in untagged[0]
    for c in (a, b):
        c.close()
    conn.logout()


def test_idle_reports_append_from_other_session(inst):
    idler = raw_login(inst)
    imap_cmd(idler, "i1", "SELECT INBOX")
    other = login(inst)
    # a change between the last command and IDLE is reported when IDLE starts
    ok(other.append("INBOX", None, None, MESSAGE))
    idler.send_line("i2 IDLE")
    assert idler.readline().startswith("+ ")
    line = idler.readline(timeout=3)
    assert line == "* 1 EXISTS", line
    t0 = time.monotonic()
    ok(other.append("INBOX", None, None, MESSAGE))
    line = idler.readline(timeout=3)
    assert line == "* 2 EXISTS", line
    assert time.monotonic() - t0 < 1.5
    ok(other.select("INBOX"))
    ok(other.store("1", "+FLAGS", "(\\Seen)"))
    line = idler.readline(timeout=3)
    assert line == "* 1 FETCH (FLAGS (\\Seen))", line
    ok(other.store("2", "+FLAGS", "(\\Deleted)"))
    assert idler.readline(timeout=3) == "* 2 FETCH (FLAGS (\\Deleted))"
    ok(other.expunge())
    assert idler.readline(timeout=3) == "* 2 EXPUNGE"
    idler.send_line("DONE")
    _, tagged = imap_read_tagged(idler, "i2")
    assert tagged.startswith("i2 OK"), tagged
    _, tagged = imap_cmd(idler, "i3", "NOOP")
    assert tagged.startswith("i3 OK")
    idler.close()
    other.logout()


def test_idle_needs_done(inst):
    conn = raw_login(inst)
    imap_cmd(conn, "s", "SELECT INBOX")
    conn.send_line("i1 IDLE")
    assert conn.readline().startswith("+ ")
    conn.send_line("NOOP")
    _, tagged = imap_read_tagged(conn, "i1")
    assert tagged.startswith("i1 BAD"), tagged
    _, tagged = imap_cmd(conn, "i2", "NOOP")
    assert tagged.startswith("i2 OK")
    conn.close()


# ---- clients ---------------------------------------------------------------------------

def test_thunderbird_startup_sequence(inst):
    seed = login(inst)
    for _ in range(3):
        ok(seed.append("INBOX", None, None, MESSAGE))
    seed.logout()
    a = LineConn.open(inst, "imap")
    greeting = a.readline()
    assert greeting.startswith("* OK [CAPABILITY IMAP4rev1"), greeting
    _, tagged = imap_cmd(a, "40", f"LOGIN {ALICE} {PASSWORD}")
    assert re.match(r"40 OK \[CAPABILITY .*IDLE.*MOVE.*SPECIAL-USE", tagged), tagged
    untagged, tagged = imap_cmd(a, "41", "namespace")
    assert untagged == ['* NAMESPACE (("" "/")) NIL NIL'] and tagged.startswith("41 OK")
    untagged, tagged = imap_cmd(a, "42", 'ID ("name" "Thunderbird" "version" "153.7.0")')
    assert untagged[0].startswith("* ID (") and tagged.startswith("42 OK")
    untagged, tagged = imap_cmd(a, "43", 'list (subscribed) "" "*"')
    assert tagged.startswith("43 OK") and len(untagged) == 6
    assert '* LIST (\\Subscribed \\HasNoChildren \\Trash) "/" Trash' in untagged, untagged
    untagged, tagged = imap_cmd(a, "44", 'list "" "INBOX"')
    assert untagged == ['* LIST (\\HasNoChildren) "/" INBOX'], untagged
    untagged, tagged = imap_cmd(a, "45", 'list "" "Trash"')
    assert len(untagged) == 1 and "\\Trash" in untagged[0]
    b = raw_login(inst)
    untagged, tagged = imap_cmd(b, "52", "ENABLE CONDSTORE")
    assert "* ENABLED CONDSTORE" in untagged
    untagged, tagged = imap_cmd(b, "53", 'select "INBOX" (CONDSTORE)')
    assert tagged.startswith("53 OK [READ-WRITE]") and "* 3 EXISTS" in untagged
    hms = int(re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(untagged)).group(1))
    untagged, tagged = imap_cmd(b, "54", "UID fetch 1:* (FLAGS)")
    assert len(untagged) == 3 and all("MODSEQ" in u for u in untagged), untagged
    untagged, tagged = imap_cmd(b, "55", "UID fetch 1:3 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER."
                                "FIELDS (From To Cc Bcc Subject Date Message-ID Priority "
                                "X-Priority References Newsgroups In-Reply-To Content-Type "
                                "Reply-To Received)])")
    assert tagged.startswith("55 OK"), tagged
    assert sum(1 for u in untagged if "FETCH" in u) == 3
    assert "Subject: Hello there" in untagged
    untagged, tagged = imap_cmd(b, "56", "UID fetch 1:3 (UID RFC822.SIZE BODY.PEEK[])")
    assert tagged.startswith("56 OK") and "Line two" in untagged
    # a flag change elsewhere, then CHANGEDSINCE finds only it
    _, tagged = imap_cmd(a, "46", "select INBOX")
    _, tagged = imap_cmd(a, "47", "UID STORE 2 +FLAGS (\\Flagged)")
    assert tagged.startswith("47 OK")
    untagged, tagged = imap_cmd(b, "57", f"UID fetch 1:* (FLAGS) (CHANGEDSINCE {hms})")
    fetches = [u for u in untagged if "FETCH" in u]
    assert len(fetches) == 1 and "UID 2" in fetches[0] and "\\Flagged" in fetches[0], untagged
    b.send_line("58 IDLE")
    assert b.readline().startswith("+ ")
    _, tagged = imap_cmd(a, "48", "UID MOVE 3 Trash")
    assert tagged.startswith("48 OK"), tagged
    assert b.readline(timeout=3) == "* 3 EXPUNGE"
    b.send_line("DONE")
    _, tagged = imap_read_tagged(b, "58")
    assert tagged.startswith("58 OK")
    # first send: Sent exists already; APPEND with LITERAL+
    a.send(b"49 append \"Sent\" (\\Seen) {%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n")
    _, tagged = imap_read_tagged(a, "49")
    assert tagged.startswith("49 OK [APPENDUID"), tagged
    a.close()
    b.close()


def test_outlook_startup_sequence(inst):
    imap = login(inst)
    data = ok(imap.list('""', "*"))
    names = list_names(data)
    for name in names:
        quoted = '"%s"' % name
        line = ok(imap.status(quoted, "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"))[0]
        assert b"MESSAGES 0" in line
    ok(imap.append("Sent", "(\\Seen)", None, MESSAGE))
    ok(imap.select("Sent"))
    data = ok(imap.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS "
                       "(DATE FROM SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE "
                       "IMPORTANCE PRIORITY X-PRIORITY)] INTERNALDATE)"))
    assert b"Subject: Hello there" in data[0][1]
    assert b"Line one" not in data[0][1]
    imap.logout()


# ---- malformed input --------------------------------------------------------------------

def test_malformed_commands_get_bad_and_session_survives(inst):
    conn = raw_login(inst)
    imap_cmd(conn, "s", "SELECT INBOX")
    for tag, cmd in [("m1", "LIST (\"\" \"*\""), ("m2", "FETCH 1 (FLAGS))"),
                     ("m3", "STATUS INBOX (MESSAGES"), ("m4", "CREATE"),
                     ("m5", "SELECT"), ("m6", "RENAME a"), ("m7", "UID BOGUS 1"),
                     ("m8", "STORE 1 +FLAGS"), ("m9", "APPEND"), ("m10", "COPY 1")]:
        _, tagged = imap_cmd(conn, tag, cmd)
        assert tagged.startswith(tag + " BAD"), (cmd, tagged)
    # a bad literal size
    _, tagged = imap_cmd(conn, "m11", "LOGIN {abc}")
    assert " BAD" in tagged or " NO" in tagged
    # a 1 MB line (within the 2 MB limit) of garbage and a 3 MB line beyond it
    conn.send(b"m12 FETCH " + b"1," * 500000 + b"1 (FLAGS\r\n")
    _, tagged = imap_read_tagged(conn, "m12", timeout=20)
    assert tagged.startswith("m12 BAD"), tagged
    conn.send(b"m13 NOOP " + b"x" * (3 * 1024 * 1024) + b"\r\n")
    line = conn.readline(timeout=20)
    assert "BAD" in line, line
    _, tagged = imap_cmd(conn, "m14", "NOOP")
    assert tagged.startswith("m14 OK"), tagged
    # a huge UID set on one line works (9,000 ranges, 48 KB: within the default
    # limits.max_command_args of 10000; test_limits_cmds.py checks the limit)
    uidset = ",".join(str(i) for i in range(1, 18000, 2))
    conn.send(f"m15 UID FETCH {uidset} (FLAGS)\r\n".encode())
    _, tagged = imap_read_tagged(conn, "m15", timeout=20)
    assert tagged.startswith("m15 OK"), tagged
    conn.close()
    # the server still serves others
    imap = login(inst)
    ok(imap.select("INBOX"))
    imap.logout()


# ---- SEARCH, ESEARCH, CONDSTORE, QRESYNC -------------------------------------------------

ENCODED = (b"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.org>\r\n"
           b"To: alice@example.test\r\n"
           b"Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\n"
           b"Date: Tue, 2 Jan 2024 08:00:00 +0000\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: base64\r\n"
           b"\r\n"
           b"w5xCRVJHUsOWU1NFIEdlaGVpbW5pcw==\r\n")    # "ÜBERGRÖSSE Geheimnis"


def search(imap, *criteria, uid=False):
    data = ok(imap.uid("SEARCH", *criteria) if uid else imap.search(None, *criteria))
    return [int(x) for x in data[0].split()]


def test_search_keys(inst):
    imap = login(inst)
    ok(imap.append("INBOX", "(\\Seen)", '"01-Jan-2024 10:00:00 +0000"', MESSAGE))
    ok(imap.append("INBOX", "(\\Flagged $Work)", '"05-Jan-2024 10:00:00 +0000"', MULTIPART))
    ok(imap.append("INBOX", None, '"10-Jan-2024 10:00:00 +0000"', ENCODED))
    ok(imap.select("INBOX"))
    assert search(imap, "ALL") == [1, 2, 3]
    assert search(imap, "SEEN") == [1]
    assert search(imap, "UNSEEN") == [2, 3]
    assert search(imap, "FLAGGED") == [2]
    assert search(imap, "KEYWORD", "$Work") == [2]
    assert search(imap, "UNKEYWORD", "$Work") == [1, 3]
    assert search(imap, "NOT", "SEEN", "NOT", "FLAGGED") == [3]
    assert search(imap, "OR", "SEEN", "FLAGGED") == [1, 2]
    assert search(imap, "(OR SEEN FLAGGED) UNDELETED") == [1, 2]
    assert search(imap, "FROM", "alice") == [1, 2]
    assert search(imap, "TO", "BOB") == [1]
    assert search(imap, "SUBJECT", "hello") == [1]
    assert search(imap, "HEADER", "Message-ID", "hello@") == [1]
    assert search(imap, "HEADER", "MIME-Version", '""') == [2, 3]
    assert search(imap, "BODY", '"first PART"') == [2]
    assert search(imap, "TEXT", '"line two"') == [1]
    assert search(imap, "LARGER", str(len(MESSAGE))) == [2, 3]
    assert search(imap, "SMALLER", str(len(MESSAGE) + 1)) == [1]
    assert search(imap, "BEFORE", "05-Jan-2024") == [1]
    assert search(imap, "ON", "05-Jan-2024") == [2]
    assert search(imap, "SINCE", "05-Jan-2024") == [2, 3]
    assert search(imap, "SENTBEFORE", "01-Jan-2000") == [1]
    assert search(imap, "SENTON", "02-Jan-2024") == [3]
    assert search(imap, "SENTSINCE", "01-Jan-2024") == [3]
    assert search(imap, "2:*") == [2, 3]
    assert search(imap, "*:2") == [2, 3]
    assert search(imap, "UID", "1,3") == [1, 3]
    assert search(imap, "1:2", uid=True) == [1, 2]
    assert search(imap, "NEW") == [] and search(imap, "OLD") == [1, 2, 3]
    assert search(imap, "YOUNGER", "999999999") == [1, 2, 3]
    for bad in [("BOGUS",), ("FROM",), ("BEFORE", "2024-01-01"), ("(SEEN",), ("OR", "SEEN"),
                ("LARGER", "x")]:
        with pytest.raises(imaplib.IMAP4.error, match="BAD"):
            imap.search(None, *bad)
    imap.logout()


def test_search_decoded_headers_bodies_and_charset(inst):
    imap = login(inst)
    ok(imap.append("INBOX", None, None, ENCODED))
    ok(imap.append("INBOX", None, None, MESSAGE))
    ok(imap.select("INBOX"))
    conn = raw_login(inst)
    imap_cmd(conn, "s", "SELECT INBOX")

    def raw_search(tag, key, text):
        data = text.encode()
        conn.send(b"%s SEARCH CHARSET UTF-8 %s {%d+}\r\n" % (tag.encode(), key.encode(),
                                                             len(data)) + data + b"\r\n")
        return imap_read_tagged(conn, tag)

    untagged, tagged = raw_search("q1", "FROM", "JÜRGEN müller")
    assert tagged.startswith("q1 OK") and untagged == ["* SEARCH 1"], (untagged, tagged)
    untagged, tagged = raw_search("q2", "SUBJECT", "GRÜSSE")
    assert untagged == ["* SEARCH"], untagged    # "Grüße": ß is not "SS" without full folding
    untagged, tagged = raw_search("q3", "SUBJECT", "KÖLN")
    assert untagged == ["* SEARCH 1"], untagged
    # the base64 body is decoded and folded
    untagged, tagged = raw_search("q4", "BODY", "übergröss")
    assert untagged == ["* SEARCH 1"], untagged
    untagged, tagged = imap_cmd(conn, "q5", "SEARCH BODY geheimnis")
    assert untagged == ["* SEARCH 1"], untagged
    _, tagged = imap_cmd(conn, "q6", "SEARCH CHARSET KOI8-R FROM x")
    assert tagged.startswith("q6 NO [BADCHARSET"), tagged
    conn.close()
    imap.logout()


def test_esearch(inst):
    imap = login(inst)
    for flags in ("(\\Seen)", None, "(\\Seen)", "(\\Seen)"):
        ok(imap.append("INBOX", flags, None, MESSAGE))
    conn = raw_login(inst)
    imap_cmd(conn, "s", "SELECT INBOX")
    untagged, tagged = imap_cmd(conn, "e1", "SEARCH RETURN (MIN MAX COUNT ALL) SEEN")
    assert untagged == ['* ESEARCH (TAG "e1") MIN 1 MAX 4 COUNT 3 ALL 1,3:4'], untagged
    untagged, tagged = imap_cmd(conn, "e2", "UID SEARCH RETURN () SEEN")
    assert untagged == ['* ESEARCH (TAG "e2") UID ALL 1,3:4'], untagged
    untagged, tagged = imap_cmd(conn, "e3", "SEARCH RETURN (COUNT) DELETED")
    assert untagged == ['* ESEARCH (TAG "e3") COUNT 0'], untagged
    _, tagged = imap_cmd(conn, "e4", "SEARCH RETURN (BOGUS) ALL")
    assert tagged.startswith("e4 BAD"), tagged
    conn.close()
    imap.logout()


def test_condstore(inst):
    imap = login(inst)
    for _ in range(3):
        ok(imap.append("INBOX", None, None, MESSAGE))
    conn = raw_login(inst)
    untagged, _ = imap_cmd(conn, "s", "SELECT INBOX (CONDSTORE)")
    hms = int(re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(untagged)).group(1))
    untagged, _ = imap_cmd(conn, "c1", "FETCH 1:* (MODSEQ)")
    modseqs = [int(re.search(r"MODSEQ \((\d+)\)", u).group(1)) for u in untagged]
    assert len(modseqs) == 3 and max(modseqs) == hms
    untagged, tagged = imap_cmd(conn, "c2", f"STORE 1 (UNCHANGEDSINCE {modseqs[0]}) "
                                "+FLAGS (\\Seen)")
    assert tagged.startswith("c2 OK") and "MODSEQ" in untagged[0], (untagged, tagged)
    new = int(re.search(r"MODSEQ \((\d+)\)", untagged[0]).group(1))
    assert new > hms
    # the same condition again fails: the message changed since
    untagged, tagged = imap_cmd(conn, "c3", f"STORE 1 (UNCHANGEDSINCE {modseqs[0]}) "
                                "+FLAGS (\\Flagged)")
    assert tagged.startswith("c3 OK [MODIFIED 1]"), tagged
    untagged, tagged = imap_cmd(conn, "c4", f"SEARCH MODSEQ {new}")
    assert untagged == [f"* SEARCH 1 (MODSEQ {new})"], untagged
    untagged, tagged = imap_cmd(conn, "c5", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})")
    assert len(untagged) == 1 and "UID 1" in untagged[0] and f"MODSEQ ({new})" in untagged[0]
    untagged, _ = imap_cmd(conn, "c6", "STATUS INBOX (HIGHESTMODSEQ)")
    assert f"HIGHESTMODSEQ {new}" in untagged[0], untagged
    conn.close()
    imap.logout()


def test_qresync(inst):
    imap = login(inst)
    for _ in range(4):
        ok(imap.append("INBOX", None, None, MESSAGE))
    conn = raw_login(inst)
    _, tagged = imap_cmd(conn, "q0", "ENABLE QRESYNC")
    untagged, _ = imap_cmd(conn, "q1", "SELECT INBOX")
    text = "\n".join(untagged)
    uidvalidity = int(re.search(r"UIDVALIDITY (\d+)", text).group(1))
    hms = int(re.search(r"HIGHESTMODSEQ (\d+)", text).group(1))
    imap_cmd(conn, "q2", "UNSELECT")
    # meanwhile another client flags 2 and expunges 3
    ok(imap.select("INBOX"))
    ok(imap.store("2", "+FLAGS", "(\\Answered)"))
    ok(imap.store("3", "+FLAGS", "(\\Deleted)"))
    ok(imap.expunge())
    untagged, tagged = imap_cmd(conn, "q3", f"SELECT INBOX (QRESYNC ({uidvalidity} {hms}))")
    assert tagged.startswith("q3 OK"), tagged
    assert "* VANISHED (EARLIER) 3" in untagged, untagged
    fetches = [u for u in untagged if "FETCH" in u]
    assert fetches == [f"* 2 FETCH (UID 2 FLAGS (\\Answered) MODSEQ ({hms + 1}))"] or (
        len(fetches) == 1 and "UID 2" in fetches[0] and "\\Answered" in fetches[0]), fetches
    # an expunge by the other session is reported as VANISHED
    ok(imap.store("1", "+FLAGS", "(\\Deleted)"))
    ok(imap.expunge())
    untagged, _ = imap_cmd(conn, "q4", "NOOP")
    assert "* VANISHED 1" in untagged, untagged
    untagged, _ = imap_cmd(conn, "q5", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert "* VANISHED (EARLIER) 1,3" in untagged, untagged
    conn.close()
    imap.logout()


# ---- per-domain folder names and the trashcan ------------------------------------------

def test_outlook_folder_names_and_trashcan(make_warren):
    from warren import SECRET_HASH
    body = (f'mailbox alice {{ password = "{SECRET_HASH}" }}\n'
            'imap {\n  sent = "Sent Items"\n  trash = "Deleted Items"\n  junk = ""\n'
            '  trash_on_expunge = true\n  trash_retention = 2s\n}\n')
    inst = make_warren(listeners=LISTENERS, listener_extra={"imap": "auth_plaintext = true"},
                       domains={"example.test": body})
    inst.start()
    imap = login(inst)
    names = list_names(ok(imap.list('""', "*")))
    assert set(names) == {"INBOX", "Drafts", "Sent Items", "Deleted Items", "Archive"}
    assert "\\Sent" in names["Sent Items"] and "\\Trash" in names["Deleted Items"]
    ok(imap.append("INBOX", None, None, MESSAGE))
    ok(imap.append("INBOX", None, None, MULTIPART))
    ok(imap.select("INBOX"))
    ok(imap.store("1", "+FLAGS", "(\\Deleted)"))
    ok(imap.expunge())
    # the expunged message is kept in the trash
    assert ok(imap.status('"Deleted Items"', "(MESSAGES)"))[0].endswith(b"(MESSAGES 1)")
    ok(imap.select('"Deleted Items"'))
    assert ok(imap.fetch("1", "(BODY.PEEK[])"))[0][1] == MESSAGE
    # expunging in the trash itself really deletes
    ok(imap.store("1", "+FLAGS", "(\\Deleted)"))
    ok(imap.close())
    assert ok(imap.status('"Deleted Items"', "(MESSAGES)"))[0].endswith(b"(MESSAGES 0)")
    # older than the retention: gone at the next login
    ok(imap.select("INBOX"))
    typ, _ = imap._simple_command("MOVE", "1", '"Deleted Items"')
    assert typ == "OK"
    assert ok(imap.status('"Deleted Items"', "(MESSAGES)"))[0].endswith(b"(MESSAGES 1)")
    imap.logout()
    time.sleep(3.5)
    imap = login(inst)
    assert ok(imap.status('"Deleted Items"', "(MESSAGES)"))[0].endswith(b"(MESSAGES 0)")
    imap.logout()


# ---- SMTP delivery seen by IDLE, large messages ---------------------------------------

def test_idle_hears_smtp_delivery(make_warren):
    import smtplib
    inst = make_warren(listeners={"smtp": ("smtp", "starttls"), "imap": ("imap", "starttls")},
                       listener_extra={"imap": "auth_plaintext = true"})
    inst.start()
    idler = raw_login(inst)
    imap_cmd(idler, "i1", "SELECT INBOX")
    idler.send_line("i2 IDLE")
    assert idler.readline().startswith("+ ")
    t0 = time.monotonic()
    with smtplib.SMTP(HOST, inst.port("smtp"), timeout=TIMEOUT) as smtp:
        smtp.sendmail("sender@example.org", [ALICE], MESSAGE)
    line = idler.readline(timeout=5)
    assert line == "* 1 EXISTS", line
    assert time.monotonic() - t0 < 3
    idler.send_line("DONE")
    _, tagged = imap_read_tagged(idler, "i2")
    assert tagged.startswith("i2 OK")
    untagged, _ = imap_cmd(idler, "f1", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert "Subject: Hello there" in untagged
    idler.close()


def test_large_message_partial_fetch(inst):
    size = 20 * 1024 * 1024
    body = (b"x" * 76 + b"\r\n") * (size // 78)
    big = MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\n" + body
    imap = imaplib.IMAP4(HOST, inst.port("imap"), timeout=120)
    ok(imap.login(ALICE, PASSWORD))
    ok(imap.append("INBOX", None, None, big))
    ok(imap.select("INBOX"))
    line = ok(imap.fetch("1", "(RFC822.SIZE)"))[0]
    assert f"RFC822.SIZE {len(big)}".encode() in line
    data = ok(imap.fetch("1", "(BODY.PEEK[]<10485760.1000>)"))
    assert data[0][1] == big[10485760:10486760]
    data = ok(imap.fetch("1", "(BODY.PEEK[TEXT]<0.78>)"))
    assert data[0][1] == b"x" * 76 + b"\r\n"
    data = ok(imap.fetch("1", "(BODY.PEEK[])"))
    assert data[0][1] == big
    imap.logout()


def make_msg(sender, to, subject, date, size_pad=0):
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n\r\n"
            + "x" * size_pad + "\r\n").encode()


def test_sort_and_thread(inst):
    imap = login(inst)
    msgs = [
        make_msg("zed@example.org", "amy@example.org", "Meeting", "Mon, 1 Jan 2024 10:00:00 +0000", 500),
        make_msg("amy@example.org", "zed@example.org", "Re: Meeting", "Mon, 1 Jan 2024 12:00:00 +0000", 100),
        make_msg("Bob <bob@example.org>", "carl@example.org", "[list] Budget", "Sun, 31 Dec 2023 09:00:00 +0000", 300),
        make_msg("carl@example.org", "bob@example.org", "Fwd: Re: meeting (fwd)", "Tue, 2 Jan 2024 08:00:00 +0100", 50),
        make_msg("dan@example.org", "bob@example.org", "Budget", "Wed, 3 Jan 2024 08:00:00 -0500", 0),
    ]
    for i, m in enumerate(msgs):
        ok(imap.append("INBOX", None, f'"0{i + 1}-Feb-2024 10:00:00 +0000"', m))
    ok(imap.select("INBOX"))
    conn = raw_login(inst)
    imap_cmd(conn, "s", "SELECT INBOX")
    cases = {
        "SORT (ARRIVAL) UTF-8 ALL": "* SORT 1 2 3 4 5",
        "SORT (REVERSE ARRIVAL) UTF-8 ALL": "* SORT 5 4 3 2 1",
        "SORT (DATE) UTF-8 ALL": "* SORT 3 1 2 4 5",
        "SORT (SIZE) UTF-8 ALL": "* SORT 5 4 2 3 1",
        "SORT (FROM) UTF-8 ALL": "* SORT 2 3 4 5 1",
        "SORT (TO) UTF-8 ALL": "* SORT 1 4 5 3 2",
        "SORT (SUBJECT DATE) UTF-8 ALL": "* SORT 3 5 1 2 4",
        "SORT (SUBJECT REVERSE DATE) UTF-8 UNSEEN": "* SORT 5 3 4 2 1",
        "SORT (SIZE) US-ASCII FROM bob": "* SORT 3",
        "UID SORT (REVERSE SIZE) UTF-8 2:4": "* SORT 3 2 4",
        "THREAD ORDEREDSUBJECT UTF-8 ALL": "* THREAD (3 5)(1 (2)(4))",
    }
    for i, (cmd, expected) in enumerate(cases.items()):
        untagged, tagged = imap_cmd(conn, f"t{i}", cmd)
        assert tagged.startswith(f"t{i} OK"), (cmd, tagged)
        assert untagged == [expected], (cmd, untagged)
    for tag, cmd, reply in [("b1", "SORT (BOGUS) UTF-8 ALL", "BAD"), ("b2", "SORT ARRIVAL UTF-8 ALL", "BAD"),
                            ("b3", "SORT (ARRIVAL) KOI8-R ALL", "NO [BADCHARSET"),
                            ("b4", "THREAD BOGUS UTF-8 ALL", "BAD"),
                            ("b5", "SORT (REVERSE) UTF-8 ALL", "BAD")]:
        _, tagged = imap_cmd(conn, tag, cmd)
        assert tagged.startswith(f"{tag} {reply}"), (cmd, tagged)
    conn.close()
    imap.logout()


def test_quota(make_warren):
    from warren import SECRET_HASH
    body = (f'mailbox alice {{ password = "{SECRET_HASH}"  quota = 100K }}\n'
            f'mailbox bob {{ password = "{SECRET_HASH}" }}\n')
    inst = make_warren(listeners=LISTENERS, listener_extra={"imap": "auth_plaintext = true"},
                       domains={"example.test": body})
    inst.start()
    conn = raw_login(inst)
    untagged, tagged = imap_cmd(conn, "q1", "GETQUOTAROOT INBOX")
    assert tagged.startswith("q1 OK"), tagged
    assert untagged == ['* QUOTAROOT INBOX ""', '* QUOTA "" (STORAGE 0 100)'], untagged
    big = MESSAGE + b"y" * 60000
    conn.send(b"a1 APPEND INBOX (\\Deleted) {%d+}\r\n" % len(big) + big + b"\r\n")
    _, tagged = imap_read_tagged(conn, "a1")
    assert tagged.startswith("a1 OK"), tagged
    untagged, _ = imap_cmd(conn, "q2", 'GETQUOTA ""')
    used = (len(big) + 1023) // 1024
    assert untagged == [f'* QUOTA "" (STORAGE {used} 100)'], untagged
    untagged, _ = imap_cmd(conn, "q3", "STATUS INBOX (DELETED DELETED-STORAGE)")
    assert untagged == [f"* STATUS INBOX (DELETED 1 DELETED-STORAGE {used})"], untagged
    # the second copy would pass the quota
    conn.send(b"a2 APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
    _, tagged = imap_read_tagged(conn, "a2")
    assert tagged.startswith("a2 NO [OVERQUOTA]"), tagged
    imap_cmd(conn, "s", "SELECT INBOX")
    _, tagged = imap_cmd(conn, "c1", "COPY 1 Archive")
    assert tagged.startswith("c1 NO [OVERQUOTA]"), tagged
    _, tagged = imap_cmd(conn, "q4", 'SETQUOTA "" (STORAGE 1000)')
    assert tagged.startswith("q4 NO [NOPERM]"), tagged
    _, tagged = imap_cmd(conn, "q5", 'GETQUOTA "other"')
    assert tagged.startswith("q5 NO [NONEXISTENT]"), tagged
    _, tagged = imap_cmd(conn, "q6", "GETQUOTAROOT Nope")
    assert tagged.startswith("q6 NO [NONEXISTENT]"), tagged
    conn.close()
    # no quota: no resources
    other = raw_login(inst, BOB)
    untagged, _ = imap_cmd(other, "q7", 'GETQUOTA ""')
    assert untagged == ['* QUOTA "" ()'], untagged
    other.close()


def test_binary(inst):
    qp = (b"From: a@example.test\r\nSubject: qp\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: text/plain; charset=iso-8859-1\r\n"
          b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
          b"Gr=FC=DFe =\r\naus K=F6ln\r\n")
    odd = (b"From: a@example.test\r\nMIME-Version: 1.0\r\n"
           b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n")
    imap = login(inst)
    ok(imap.append("INBOX", None, None, MULTIPART))
    ok(imap.append("INBOX", None, None, qp))
    ok(imap.append("INBOX", None, None, odd))
    ok(imap.select("INBOX"))
    data = ok(imap.fetch("1", "(BINARY.PEEK[2])"))
    assert b"BINARY[2] ~{4}" in data[0][0] and data[0][1] == b"\x00\x01\x02\x03", data
    data = ok(imap.fetch("1", "(BINARY.SIZE[2] BINARY.SIZE[1])"))
    assert b"BINARY.SIZE[2] 4" in data[0] and b"BINARY.SIZE[1] 10" in data[0], data
    data = ok(imap.fetch("2", "(BINARY.PEEK[1])"))
    assert data[0][1] == b"Gr\xfc\xdfe aus K\xf6ln\r\n", data
    data = ok(imap.fetch("2", "(BINARY.PEEK[1]<3.4>)"))
    assert b"BINARY[1]<3>" in data[0][0] and data[0][1] == b"\xdfe a", data
    assert b"\\Seen" not in ok(imap.fetch("2", "FLAGS"))[0]
    data = ok(imap.fetch("2", "(BINARY[1])"))
    assert b"\\Seen" in data[0][0]
    typ, data = imap.fetch("3", "(BINARY.PEEK[1])")
    assert typ == "NO" and b"[UNKNOWN-CTE]" in data[0], data
    for bad in ["(BINARY[HEADER])", "(BINARY.SIZE[1]<0.5>)", "(BINARY[1.TEXT])"]:
        with pytest.raises(imaplib.IMAP4.error, match="BAD"):
            imap.fetch("1", bad)
    # APPEND of a literal8 with NUL bytes (RFC 3516)
    raw = (b"From: a@example.test\r\nMIME-Version: 1.0\r\nContent-Type: application/x-b\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\n\x00\x01\x00end")
    conn = raw_login(inst)
    conn.send(b"b1 APPEND INBOX ~{%d+}\r\n" % len(raw) + raw + b"\r\n")
    _, tagged = imap_read_tagged(conn, "b1")
    assert tagged.startswith("b1 OK [APPENDUID"), tagged
    conn.close()
    ok(imap.noop())
    data = ok(imap.fetch("4", "(BINARY.SIZE[1] RFC822.SIZE)"))
    assert b"BINARY.SIZE[1] 6" in data[0] and f"RFC822.SIZE {len(raw)}".encode() in data[0]
    imap.logout()


def test_thread_references(inst):
    def m(i, subject, mid, refs=None, irt=None):
        hdr = f"From: u{i}@example.org\r\nSubject: {subject}\r\nMessage-ID: <{mid}@x>\r\n"
        hdr += f"Date: Mon, {i} Jan 2024 10:00:00 +0000\r\n"
        if refs:
            hdr += "References: " + "\r\n ".join(f"<{r}@x>" for r in refs) + "\r\n"
        if irt:
            hdr += f"In-Reply-To: <{irt}@x>\r\n"
        return (hdr + "\r\nbody\r\n").encode()
    msgs = [m(1, "Topic", "a"), m(2, "Re: Topic", "b", irt="a"),
            m(3, "Re: Topic", "c", refs=["a", "b"]), m(4, "Re: Topic", "d", refs=["a"]),
            m(5, "Other", "e"), m(6, "Re: Lost", "f", refs=["missing"]),
            m(7, "Re: Lost", "g", refs=["missing"]), m(8, "Re: Other", "h")]
    imap = login(inst)
    for msg in msgs:
        ok(imap.append("INBOX", None, None, msg))
    conn = raw_login(inst)
    imap_cmd(conn, "s", "SELECT INBOX")
    untagged, tagged = imap_cmd(conn, "t1", "THREAD REFERENCES UTF-8 ALL")
    assert tagged.startswith("t1 OK"), tagged
    assert untagged == ["* THREAD (1 (2 3)(4))(5 8)((6)(7))"], untagged
    untagged, tagged = imap_cmd(conn, "t2", "UID THREAD REFERENCES US-ASCII 2:8")
    # without 1 the replies to it hang under a dummy for <a@x>
    assert untagged == ["* THREAD ((2 3)(4))(5 8)((6)(7))"], untagged
    conn.close()
    imap.logout()


# ---- Apple Mail and a phone client (K-9 / Thunderbird for Android) -----------------

def test_apple_mail_sequence(inst):
    seed = login(inst)
    for i in range(4):
        ok(seed.append("INBOX", "(\\Seen)" if i < 2 else None, None, MULTIPART if i == 3 else MESSAGE))
    seed.logout()
    conn = raw_login(inst)
    untagged, tagged = imap_cmd(conn, "1", 'ID ("name" "Mac OS X Mail" "version" "16.0")')
    assert tagged.startswith("1 OK")
    untagged, tagged = imap_cmd(conn, "2", "ENABLE QRESYNC")
    assert "* ENABLED QRESYNC" in untagged
    untagged, tagged = imap_cmd(conn, "3", 'LIST "" "*" RETURN (SPECIAL-USE SUBSCRIBED)')
    assert tagged.startswith("3 OK") and len(untagged) == 6
    assert any("\\Subscribed" in u and "\\Sent" in u for u in untagged), untagged
    untagged, tagged = imap_cmd(conn, "4", 'STATUS "INBOX" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN '
                                'HIGHESTMODSEQ)')
    assert "MESSAGES 4" in untagged[0] and "UNSEEN 2" in untagged[0]
    untagged, tagged = imap_cmd(conn, "5", "SELECT INBOX (CONDSTORE)")
    assert tagged.startswith("5 OK [READ-WRITE]")
    untagged, tagged = imap_cmd(conn, "6", "UID SEARCH RETURN (ALL) UNDELETED")
    assert untagged == ['* ESEARCH (TAG "6") UID ALL 1:4'], untagged
    untagged, tagged = imap_cmd(conn, "7", "UID FETCH 1:4 (UID FLAGS INTERNALDATE RFC822.SIZE "
                                "BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (Date Subject From To "
                                "Message-ID In-Reply-To References)]) (CHANGEDSINCE 1)")
    assert tagged.startswith("7 OK") and sum("FETCH" in u for u in untagged) == 4
    untagged, tagged = imap_cmd(conn, "8", "UID FETCH 4 (BODY.PEEK[1] BODY.PEEK[2.MIME])")
    assert untagged[:2] == ["* 4 FETCH (UID 4 BODY[1] {10}", "first part BODY[2.MIME] {142}"]
    untagged, tagged = imap_cmd(conn, "9", "UID STORE 3 +FLAGS.SILENT (\\Seen)")
    assert tagged.startswith("9 OK")
    untagged, tagged = imap_cmd(conn, "10", "UID MOVE 4 Archive")
    assert "* VANISHED 4" in untagged and any("COPYUID" in u for u in untagged), untagged
    untagged, tagged = imap_cmd(conn, "11", "NOOP")
    assert tagged.startswith("11 OK")
    conn.close()


def test_phone_client_sequence(inst):
    seed = login(inst)
    for _ in range(3):
        ok(seed.append("INBOX", None, None, MULTIPART))
    seed.logout()
    conn = raw_login(inst)
    untagged, tagged = imap_cmd(conn, "1", "CAPABILITY")
    assert "IDLE" in untagged[0] and "UIDPLUS" in untagged[0]
    untagged, tagged = imap_cmd(conn, "2", 'LIST "" "*"')
    assert len(untagged) == 6
    untagged, tagged = imap_cmd(conn, "3", "SELECT INBOX")
    untagged, tagged = imap_cmd(conn, "4", "UID SEARCH 1:* NOT DELETED")
    assert untagged == ["* SEARCH 1 2 3"], untagged
    untagged, tagged = imap_cmd(conn, "5", "UID FETCH 1:3 (UID INTERNALDATE RFC822.SIZE "
                                "BODY.PEEK[HEADER.FIELDS (date subject from content-type to cc "
                                "bcc reply-to message-id references in-reply-to "
                                "X-K9mail-Identity Chat-Version)])")
    assert sum("FETCH" in u for u in untagged) == 3
    untagged, tagged = imap_cmd(conn, "6", "UID FETCH 2 (UID RFC822.SIZE BODYSTRUCTURE)")
    assert '"mixed"' in untagged[0]
    untagged, tagged = imap_cmd(conn, "7", "UID FETCH 2 (UID BODY.PEEK[1]<0.4096>)")
    assert untagged == ["* 2 FETCH (UID 2 BODY[1]<0> {10}", "first part)"], untagged
    untagged, tagged = imap_cmd(conn, "8", "UID STORE 2 +FLAGS.SILENT (\\Seen)")
    assert untagged == [] and tagged.startswith("8 OK")
    untagged, tagged = imap_cmd(conn, "9", "UID COPY 1 Trash")
    assert re.match(r"9 OK \[COPYUID \d+ 1 1\]", tagged), tagged
    imap_cmd(conn, "10", "UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    untagged, tagged = imap_cmd(conn, "11", "UID EXPUNGE 1")
    assert untagged == ["* 1 EXPUNGE"], untagged
    conn.send_line("12 IDLE")
    assert conn.readline().startswith("+ ")
    assert conn.nothing_within(0.5)
    conn.send_line("DONE")
    _, tagged = imap_read_tagged(conn, "12")
    assert tagged.startswith("12 OK")
    conn.close()


def test_selected_mailbox_deleted_by_other_session(inst):
    imap = login(inst)
    ok(imap.create("Work"))
    ok(imap.append("Work", None, None, MESSAGE))
    a = raw_login(inst)
    imap_cmd(a, "a1", "SELECT Work")
    a.send_line("a2 IDLE")
    assert a.readline().startswith("+ ")
    ok(imap.delete("Work"))
    assert a.readline(timeout=5) == "* BYE Mailbox was deleted."
    assert a.closed_within(5)
    # a session that selected it and was not idle hears it at its next command
    ok(imap.create("Work"))
    b = raw_login(inst)
    imap_cmd(b, "b1", "SELECT Work")
    ok(imap.delete("Work"))
    time.sleep(0.2)
    untagged, tagged = imap_cmd(b, "b2", "NOOP")
    assert tagged.startswith("b2 OK"), tagged
    assert b.readline(timeout=5) == "* BYE Mailbox was deleted."
    assert b.closed_within(5)
    imap.logout()


def test_utf8_accept_and_imap4rev2(inst):
    imap = login(inst)
    ok(imap.create("Entw&APw-rfe"))
    ok(imap.append("INBOX", "(\\Seen)", None, MESSAGE))
    imap.logout()
    conn = raw_login(inst)
    untagged, tagged = imap_cmd(conn, "c", "CAPABILITY")
    assert " IMAP4rev2 " in untagged[0] and " UTF8=ACCEPT" in untagged[0]
    untagged, tagged = imap_cmd(conn, "e1", "ENABLE IMAP4rev2")
    assert untagged == ["* ENABLED IMAP4rev2"], untagged
    untagged, tagged = imap_cmd(conn, "s1", "SELECT INBOX")
    assert tagged.startswith("s1 OK")
    assert '* LIST () "/" INBOX' in untagged and not any("RECENT" in u for u in untagged)
    untagged, tagged = imap_cmd(conn, "q1", "SEARCH SEEN")
    assert untagged == ['* ESEARCH (TAG "q1") ALL 1'], untagged
    untagged, tagged = imap_cmd(conn, "q2", "UID SEARCH UNSEEN")
    assert untagged == ['* ESEARCH (TAG "q2") UID'], untagged
    untagged, tagged = imap_cmd(conn, "l1", 'LIST "" "Entw*"')
    assert untagged == ['* LIST (\\HasNoChildren) "/" "Entwürfe"'], untagged
    # UTF-8 names in, and APPEND's UTF8 data item
    name = "Überweisungen".encode()
    conn.send(b"c1 CREATE {%d+}\r\n" % len(name) + name + b"\r\n")
    _, tagged = imap_read_tagged(conn, "c1")
    assert tagged.startswith("c1 OK"), tagged
    body = "From: a@example.test\r\nSubject: Grüße\r\n\r\nhi\r\n".encode()
    conn.send(b"a1 APPEND INBOX UTF8 (~{%d+}\r\n" % len(body) + body + b")\r\n")
    _, tagged = imap_read_tagged(conn, "a1")
    assert tagged.startswith("a1 OK [APPENDUID"), tagged
    conn.close()
    imap = login(inst)
    assert "&ANw-berweisungen" in list_names(ok(imap.list('""', "*")))
    imap.logout()


def test_rename_inbox_and_delete_with_children(inst):
    imap = login(inst)
    ok(imap.append("INBOX", None, None, MESSAGE))
    ok(imap.rename("INBOX", "Old"))
    # INBOX stays, empty; its messages moved to the new name
    assert ok(imap.status("INBOX", "(MESSAGES)"))[0].endswith(b"(MESSAGES 0)")
    assert ok(imap.status("Old", "(MESSAGES)"))[0].endswith(b"(MESSAGES 1)")
    ok(imap.create("Parent/Child"))
    ok(imap.create("Parent"))
    ok(imap.rename("Parent", "Moved"))
    names = list_names(ok(imap.list('""', "*")))
    assert "Moved/Child" in names and "Parent/Child" not in names
    assert "\\HasChildren" in names["Moved"]
    # deleting a parent leaves its children; the parent then shows as \Noselect
    ok(imap.delete("Moved"))
    top = list_names(ok(imap.list('""', "%")))
    assert top["Moved"] == ["\\Noselect", "\\HasChildren"]
    typ, data = imap.select("Moved")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    imap.logout()


def test_state_and_literal_errors(inst):
    conn = LineConn.open(inst, "imap")
    conn.readline()
    for tag, cmd in [("n1", "SELECT INBOX"), ("n2", 'LIST "" "*"'), ("n3", "FETCH 1 FLAGS"),
                     ("n4", "IDLE")]:
        _, tagged = imap_cmd(conn, tag, cmd)
        assert tagged.startswith(tag + " BAD"), (cmd, tagged)
    _, tagged = imap_cmd(conn, "a0", f"LOGIN {ALICE} {PASSWORD}")
    assert tagged.startswith("a0 OK")
    for tag, cmd in [("s1", "FETCH 1 FLAGS"), ("s2", "EXPUNGE"), ("s3", "CLOSE"),
                     ("s4", "UID FETCH 1 FLAGS"), ("s5", "LOGIN a b"), ("s6", "STARTTLS")]:
        _, tagged = imap_cmd(conn, tag, cmd)
        assert tagged.startswith(tag + " BAD"), (cmd, tagged)
    # a synchronising literal too big is refused before it is sent; a
    # non-synchronising one cannot be skipped: the session ends
    _, tagged = imap_cmd(conn, "l1", "CREATE {2000000}")
    assert tagged.startswith("l1 NO [TOOBIG]"), tagged
    _, tagged = imap_cmd(conn, "l2", "NOOP")
    assert tagged.startswith("l2 OK")
    conn.send(b"l3 CREATE {2000000+}\r\n")
    assert conn.readline().startswith("* BYE [TOOBIG]")
    assert conn.closed_within(5)


# ---- COMPRESS=DEFLATE --------------------------------------------------------------------

class Deflated:
    """An IMAP connection after COMPRESS DEFLATE (RFC 4978): raw DEFLATE both ways."""

    def __init__(self, sock):
        import zlib
        self.sock = sock
        self.enc = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.dec = zlib.decompressobj(-15)
        self.buf = b""

    def send(self, data):
        import zlib
        self.sock.sendall(self.enc.compress(data) + self.enc.flush(zlib.Z_SYNC_FLUSH))

    def readline(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            assert chunk, "closed"
            self.buf += self.dec.decompress(chunk)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            assert chunk, "closed"
            self.buf += self.dec.decompress(chunk)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def cmd(self, tag, line):
        self.send(f"{tag} {line}\r\n".encode())
        untagged = []
        while True:
            got = self.readline()
            if got.startswith(tag.encode() + b" "):
                return untagged, got.decode()
            m = re.search(rb"\{(\d+)\}$", got)
            if m:
                got += b"\r\n" + self.read(int(m.group(1)))
            untagged.append(got)


def test_compress_deflate(inst):
    big = MESSAGE + b"compressible line\r\n" * 50000
    sock = socket.create_connection((HOST, inst.port("imap")), timeout=10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    sock.sendall(f"a LOGIN {ALICE} {PASSWORD}\r\n".encode())
    assert f.readline().startswith(b"a OK")
    sock.sendall(b"b COMPRESS DEFLATE\r\n")
    assert f.readline() == b"b OK DEFLATE active\r\n"
    z = Deflated(sock)
    untagged, tagged = z.cmd("c", 'LIST "" "*"')
    assert tagged.startswith("c OK") and len(untagged) == 6
    z.send(b"d APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
    line = z.readline()
    assert line.startswith(b"d OK [APPENDUID"), line
    untagged, tagged = z.cmd("e", "SELECT INBOX")
    assert b"* 1 EXISTS" in untagged
    untagged, tagged = z.cmd("f", "FETCH 1 BODY.PEEK[]")
    assert tagged.startswith("f OK") and untagged[0].endswith(big), untagged[0][:100]
    # two commands in one compressed write are both answered
    z.send(b"g1 NOOP\r\ng2 NOOP\r\n")
    assert z.readline().startswith(b"g1 OK") and z.readline().startswith(b"g2 OK")
    untagged, tagged = z.cmd("h", "COMPRESS DEFLATE")
    assert tagged.startswith("h NO [COMPRESSIONACTIVE]"), tagged
    # IDLE over the compressed stream hears another session
    z.send(b"i IDLE\r\n")
    assert z.readline().startswith(b"+ ")
    other = login(inst)
    ok(other.append("INBOX", None, None, MESSAGE))
    assert z.readline() == b"* 2 EXISTS"
    z.send(b"DONE\r\n")
    assert z.readline().startswith(b"i OK")
    other.logout()
    # garbage that does not inflate ends the session
    sock.sendall(b"\xff" * 64)
    sock.settimeout(5)
    rest = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    sock.close()
    imap = login(inst)
    ok(imap.select("INBOX"))
    imap.logout()


def test_random_garbage_does_not_harm_the_server(inst):
    import random
    rnd = random.Random(7)
    pid = inst.children()["imapd"]
    words = [b"FETCH", b"UID", b"STORE", b"SEARCH", b"(", b")", b"[", b"]", b"{5}", b"{3+}",
             b"\"", b"\\", b"*", b"1:*", b"BODY[", b"BODY.PEEK[HEADER.FIELDS (", b"NIL", b"~{2}",
             b"OR", b"NOT", b"<0.5>", b"\x00", b"\xff", b"SELECT", b"LIST", b"APPEND", b"IDLE"]
    for round_ in range(3):
        conn = raw_login(inst)
        imap_cmd(conn, "s", "SELECT INBOX")
        data = b"".join(b"g%d %s\r\n" % (i, b" ".join(rnd.choice(words)
                                                         for _ in range(rnd.randint(1, 12))))
                        for i in range(150))
        # the session either answers NOOP or is closed after too many BADs (then
        # the rest of what we send may be refused)
        try:
            conn.send(data + b"\r\nDONE\r\nzz NOOP\r\n")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                line = conn.readline(timeout=20)
                if line.startswith("zz ") or line.startswith("* BYE"):
                    break
        except Exception:
            pass
        conn.close()
    assert inst.children()["imapd"] == pid
    imap = login(inst)
    ok(imap.select("INBOX"))
    imap.logout()
