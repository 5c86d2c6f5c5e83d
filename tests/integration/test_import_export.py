"""warrenctl import/export: maildir and mbox into and out of a user's folders,
beside a running suite. Mail arrives over SMTP, folders and flags are made over
IMAP; what an import stored is read back over IMAP (flags, keywords, internal
dates, bodies) the way a user's program would see it."""

import datetime
import hashlib
import imaplib
import os
import re
import smtplib
import textwrap
import time

import pytest

from warren import SECRET_HASH, client_context
from protocols import start_instance, warrenctl

LISTENERS = {"smtp": ("smtp", "starttls"), "imaps": ("imap", "implicit")}
DOMAINS = {
    "example.test": textwrap.dedent(f"""\
        mailbox alice {{ password = "{SECRET_HASH}" }}
        mailbox bob {{ password = "{SECRET_HASH}" }}
        mailbox carol {{ password = "{SECRET_HASH}" }}
        mailbox dave {{ password = "{SECRET_HASH}" }}
        mailbox frank {{
            password = "{SECRET_HASH}"
            quota = 3K
        }}
        mailbox erin {{
            password = "{SECRET_HASH}"
            max_message_size = 20K
        }}
    """),
}


@pytest.fixture(scope="module")
def suite():
    inst = start_instance(listeners=LISTENERS, domains=DOMAINS)
    yield inst
    inst.cleanup()


def ctl(inst, *args):
    return warrenctl("-c", inst.config_path, *args, timeout=60)


def workdir(inst, name):
    """A folder the store's user (nobody when run as root) may read and write."""
    path = os.path.join(inst.dir, name)
    os.makedirs(path)
    os.chmod(path, 0o777)
    return path


def imap(inst, user):
    m = imaplib.IMAP4_SSL(inst.address, inst.port("imaps"), ssl_context=client_context(),
                          timeout=15)
    m.login(f"{user}@example.test", "secret")
    return m


def snapshot(inst, user):
    """{folder: [(flags, internal date, sha256 of the body)]} as IMAP shows it."""
    m = imap(inst, user)
    typ, data = m.list()
    assert typ == "OK"
    folders = {}
    for line in data:
        name = line.decode().rsplit(' "/" ', 1)[1].strip('"')
        typ, _ = m.select(f'"{name}"', readonly=True)
        assert typ == "OK", name
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        msgs = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode().split()
            date = re.search(rb'INTERNALDATE "([^"]+)"', item[0]).group(1).decode()
            stamp = datetime.datetime.strptime(date, "%d-%b-%Y %H:%M:%S %z").timestamp()
            msgs.append((frozenset(flags), stamp, hashlib.sha256(item[1]).hexdigest()))
        folders[name] = msgs
    m.logout()
    return folders


def send(inst, to, subject, body):
    msg = (f"From: sender@example.net\r\nTo: {to}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject.replace(' ', '.')}@example.net>\r\n\r\n{body}")
    with smtplib.SMTP(inst.address, inst.port("smtp"), timeout=15) as s:
        s.sendmail("sender@example.net", [to], msg.encode())


@pytest.fixture(scope="module")
def alice(suite):
    """alice's mail: three messages over SMTP, two folders over IMAP, flags and
    keywords set by a client."""
    send(suite, "alice@example.test", "one", "plain text\r\n")
    send(suite, "alice@example.test", "two",
         "From the start of a line\r\n>From quoted once\r\n\r\nlast\r\n")
    send(suite, "alice@example.test", "three", "x" * 5000 + "\r\n")
    deadline = time.monotonic() + 10
    m = imap(suite, "alice")
    while time.monotonic() < deadline:
        typ, data = m.select("INBOX")
        if int(data[0]) == 3:
            break
        time.sleep(0.1)
    assert int(data[0]) == 3
    m.store("1", "+FLAGS", r"(\Seen)")
    m.store("2", "+FLAGS", r"(\Deleted \Draft $Forwarded Work)")
    # imapd made Drafts, Sent, Trash, Junk and Archive at the login
    assert m.create("Archive/2024")[0] == "OK"
    date = imaplib.Time2Internaldate(time.mktime((2021, 3, 4, 5, 6, 7, 0, 0, -1)))
    assert m.append("Sent", r"(\Seen \Answered)", date,
                    b"From: alice@example.test\r\nSubject: sent\r\n\r\nhello\r\n")[0] == "OK"
    assert m.append("Archive/2024", r"(\Flagged Work $Forwarded)", date,
                    b"Subject: archived\r\n\r\nold\r\n")[0] == "OK"
    m.logout()
    return snapshot(suite, "alice")


def test_maildir_round_trip(suite, alice):
    out_dir = os.path.join(workdir(suite, "md-export"), "alice")
    r = ctl(suite, "export", "alice@example.test", out_dir, "--maildir")
    assert r.returncode == 0, r.stderr
    assert len(alice) == 7
    assert "exported 5 messages in 7 folders" in r.stdout
    # what Dovecot would read: Maildir++ folders, flags in the names, dates as mtimes
    names = sorted(os.listdir(os.path.join(out_dir, "cur")))
    assert len(names) == 3
    assert names[0].endswith(":2,S")
    assert re.search(r":2,DPTa$", names[1]), names[1]
    with open(os.path.join(out_dir, "dovecot-keywords")) as f:
        assert f.read() == "0 Work\n"
    with open(os.path.join(out_dir, "cur", names[1]), "rb") as f:
        body = f.read()
    assert b"\r\n" not in body and b"\nFrom the start of a line\n" in body
    sent = os.listdir(os.path.join(out_dir, ".Sent", "cur"))
    assert len(sent) == 1 and sent[0].endswith(":2,RS")
    st = os.stat(os.path.join(out_dir, ".Sent", "cur", sent[0]))
    assert st.st_mtime == time.mktime((2021, 3, 4, 5, 6, 7, 0, 0, -1))
    assert len(os.listdir(os.path.join(out_dir, ".Archive.2024", "cur"))) == 1

    r = ctl(suite, "import", "bob@example.test", "--maildir", out_dir)
    assert r.returncode == 0, r.stderr
    assert "imported 5 messages (6 folders created)" in r.stdout
    assert snapshot(suite, "bob") == alice


def test_mbox_round_trip(suite, alice):
    out_dir = os.path.join(workdir(suite, "mbox-export"), "alice")
    r = ctl(suite, "export", "alice@example.test", out_dir, "--mbox", "--json")
    assert r.returncode == 0, r.stderr
    assert '"messages":5' in r.stdout and '"folders":7' in r.stdout
    assert sorted(os.listdir(out_dir)) == ["Archive", "Archive.mbox", "Drafts.mbox",
                                           "INBOX.mbox", "Junk.mbox", "Sent.mbox",
                                           "Trash.mbox"]
    assert os.listdir(os.path.join(out_dir, "Archive")) == ["2024.mbox"]
    with open(os.path.join(out_dir, "INBOX.mbox"), "rb") as f:
        inbox = f.read()
    assert inbox.startswith(b"From sender@example.net ")
    assert inbox.count(b"\nFrom sender@example.net ") == 2
    # mboxrd: a body line "From " gets one more '>', ">From" too
    assert b"\n>From the start of a line\n>>From quoted once\n" in inbox
    assert b"\nStatus: RO\n" in inbox and b"\nX-Status: TD\n" in inbox
    assert b"\nX-Keywords: $Forwarded Work\n" in inbox or \
        b"\nX-Keywords: Work $Forwarded\n" in inbox
    with open(os.path.join(out_dir, "Sent.mbox"), "rb") as f:
        assert f.read().startswith(b"From MAILER-DAEMON Thu Mar  4 05:06:07 2021\n")

    r = ctl(suite, "import", "carol@example.test", "--mbox", out_dir)
    assert r.returncode == 0, r.stderr
    assert "imported 5 messages" in r.stdout
    assert snapshot(suite, "carol") == alice


def write(path, data, mtime=None):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def make_maildir(root):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(root, sub))
    for dirpath, dirs, _ in os.walk(root):
        os.chmod(dirpath, 0o755)


def test_import_dovecot_maildir(suite):
    """A maildir as Dovecot leaves it (LF line ends, S=/W= sizes, keywords
    file, a message in new/, a subfolder) into a folder of dave's."""
    root = os.path.join(workdir(suite, "dovecot"), "Maildir")
    make_maildir(root)
    make_maildir(os.path.join(root, ".Lists.debian"))
    write(os.path.join(root, "dovecot-keywords"), b"0 Important\n1 $Label2\n")
    write(os.path.join(root, "cur", "1700000000.M1P2.host,S=40,W=42:2,FRS"),
          b"Subject: first\nFrom: a@b\n\nflagged seen\n", 1700000000)
    write(os.path.join(root, "cur", "1700000100.M2P2.host,S=30:2,Sab"),
          b"Subject: second\n\nwith keywords\n", 1700000100)
    write(os.path.join(root, "new", "1700000200.M3P2.host"),
          b"Subject: third\n\nunseen\n", 1700000200)
    write(os.path.join(root, ".Lists.debian", "cur", "1600000000.M4.host:2,"),
          b"Subject: list\n\nlist mail\n", 1600000000)
    write(os.path.join(root, "subscriptions"), b"V\t2\n\nLists\tdebian\n")

    r = ctl(suite, "import", "dave@example.test", "--maildir", root, "--folder", "Old")
    assert r.returncode == 0, r.stderr
    assert "imported 4 messages (2 folders created)" in r.stdout
    m = imap(suite, "dave")
    typ, data = m.select("Old", readonly=True)
    assert typ == "OK" and int(data[0]) == 3
    typ, data = m.fetch("1:3", "(FLAGS INTERNALDATE BODY.PEEK[])")
    items = [d for d in data if isinstance(d, tuple)]
    assert b"FLAGS (\\Seen \\Answered \\Flagged)" in items[0][0] or \
        set(re.search(rb"FLAGS \(([^)]*)\)", items[0][0]).group(1).split()) == \
        {b"\\Seen", b"\\Answered", b"\\Flagged"}
    assert set(re.search(rb"FLAGS \(([^)]*)\)", items[1][0]).group(1).split()) == \
        {b"\\Seen", b"Important", b"$Label2"}
    assert re.search(rb"FLAGS \(\)", items[2][0])
    assert b'INTERNALDATE "14-Nov-2023 22:13:20 +0000"' in items[0][0]
    # the store keeps CRLF line ends
    assert items[0][1] == b"Subject: first\r\nFrom: a@b\r\n\r\nflagged seen\r\n"
    typ, data = m.select("Old/Lists/debian", readonly=True)
    assert typ == "OK" and int(data[0]) == 1
    typ, data = m.lsub()
    assert b'"Old/Lists/debian"' in b"".join(data) or b"Old/Lists/debian" in b"".join(data)
    m.logout()


def test_import_postfix_mbox(suite):
    """An mbox as Postfix's local(8) or mutt writes it, with mutt's Status
    headers and mboxo quoting, into erin's INBOX; one message over erin's size
    limit is skipped with a message and the rest are imported."""
    d = workdir(suite, "pfmbox")
    path = os.path.join(d, "erin")
    big = "y" * 30000
    write(path, textwrap.dedent(f"""\
        From alice@example.org  Mon Nov 13 10:00:00 2023
        Return-Path: <alice@example.org>
        Subject: read one
        Status: RO
        X-Status: AF

        >From here on
        body

        From MAILER-DAEMON Tue Nov 14 11:00:00 2023
        Subject: big

        {big}

        From bob@example.org Wed Nov 15 12:30:45 2023
        Subject: new one

        unread
        """).encode())
    r = ctl(suite, "import", "erin@example.test", "--mbox", path)
    assert r.returncode == 1
    assert "message at line 10: not imported: larger than the message size limit" in r.stderr
    assert "imported 2 messages" in r.stdout
    m = imap(suite, "erin")
    typ, data = m.select("INBOX", readonly=True)
    assert int(data[0]) == 2
    typ, data = m.fetch("1:2", "(FLAGS INTERNALDATE BODY.PEEK[])")
    items = [x for x in data if isinstance(x, tuple)]
    assert set(re.search(rb"FLAGS \(([^)]*)\)", items[0][0]).group(1).split()) == \
        {b"\\Seen", b"\\Answered", b"\\Flagged"}
    assert b'INTERNALDATE "13-Nov-2023 10:00:00 +0000"' in items[0][0]
    assert items[0][1] == (b"Return-Path: <alice@example.org>\r\nSubject: read one\r\n\r\n"
                           b"From here on\r\nbody\r\n")
    assert re.search(rb"FLAGS \(\)", items[1][0])
    assert b'INTERNALDATE "15-Nov-2023 12:30:45 +0000"' in items[1][0]
    assert items[1][1] == b"Subject: new one\r\n\r\nunread\r\n"
    m.logout()


def test_refuses_malformed_input(suite):
    d = workdir(suite, "bad")
    # not a maildir
    os.makedirs(os.path.join(d, "plain"))
    r = ctl(suite, "import", "dave@example.test", "--maildir", os.path.join(d, "plain"))
    assert r.returncode == 1 and "is not a maildir (it needs cur/ and new/)" in r.stderr
    # a maildir with a broken keywords file: nothing stored
    md = os.path.join(d, "md")
    make_maildir(md)
    write(os.path.join(md, "cur", "1.M1.h:2,a"), b"Subject: x\n\ny\n")
    write(os.path.join(md, "dovecot-keywords"), b"zero Important\n")
    r = ctl(suite, "import", "dave@example.test", "--maildir", md, "--folder", "Broken")
    assert r.returncode == 1 and "dovecot-keywords:1: not a keyword line" in r.stderr
    # not an mbox
    write(os.path.join(d, "notmbox"), b"Subject: no From line\n\nbody\n")
    r = ctl(suite, "import", "dave@example.test", "--mbox", os.path.join(d, "notmbox"))
    assert r.returncode == 1 and "is not an mbox file" in r.stderr
    # binary garbage is not an mbox either
    write(os.path.join(d, "garbage"), os.urandom(4096))
    r = ctl(suite, "import", "dave@example.test", "--mbox", os.path.join(d, "garbage"))
    assert r.returncode == 1 and "is not an mbox file" in r.stderr
    # an mbox with a 3 MB line without a newline, NUL bytes and a long From line:
    # bounded reading, one message imported, the other refused for its size
    write(os.path.join(d, "odd.mbox"),
          b"From x@y Mon Nov 13 10:00:00 2023" + b" pad" * 5000 + b"\n"
          b"Subject: nul\n\na\0b\n\n"
          b"From x@y Mon Nov 13 10:00:01 2023\nSubject: long\n\n" + b"z" * 3000000)
    r = ctl(suite, "import", "erin@example.test", "--mbox", os.path.join(d, "odd.mbox"),
            "--folder", "Odd")
    assert r.returncode == 1 and "message at line 6: not imported: larger than" in r.stderr
    assert "imported 1 message " in r.stdout
    m = imap(suite, "erin")
    typ, data = m.select("Odd", readonly=True)
    assert typ == "OK" and int(data[0]) == 1
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == b"Subject: nul\r\n\r\na\0b\r\n"
    m.logout()
    # no such user, no format, a file that does not exist
    r = ctl(suite, "import", "nobody@example.test", "--mbox", os.path.join(d, "notmbox"))
    assert r.returncode == 1 and "no mailbox nobody@example.test" in r.stderr
    r = ctl(suite, "import", "dave@example.test", os.path.join(d, "notmbox"))
    assert r.returncode == 2 and "usage:" in r.stderr
    r = ctl(suite, "import", "dave@example.test", "--mbox", os.path.join(d, "missing"))
    assert r.returncode == 1 and "No such file or directory" in r.stderr
    # an export never writes into a folder that holds something
    r = ctl(suite, "export", "dave@example.test", d, "--maildir")
    assert r.returncode == 1 and "is not empty" in r.stderr
    m = imap(suite, "dave")
    typ, data = m.list()
    assert not any(b"Broken" in x for x in data)
    m.logout()


def test_import_stops_at_the_quota(suite):
    d = workdir(suite, "quota")
    path = os.path.join(d, "many")
    body = "q" * 1000
    write(path, "".join(f"From a@b Mon Nov 13 10:00:0{i} 2023\nSubject: {i}\n\n{body}\n\n"
                        for i in range(5)).encode())
    r = ctl(suite, "import", "frank@example.test", "--mbox", path)
    assert r.returncode == 1
    assert r.stderr.count("not imported: quota exceeded (stopping") == 1, r.stderr
    m = imap(suite, "frank")
    typ, data = m.select("INBOX", readonly=True)
    assert 1 <= int(data[0]) < 5       # what fit in 3K, the rest not tried
    m.logout()
