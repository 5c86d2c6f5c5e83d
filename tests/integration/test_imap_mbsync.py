"""mbsync (Debian's isync) two-way sync of a 1,000-message mailbox against imapd over
implicit TLS:
download, local flag changes and deletions uploaded, a local message appended,
server-side changes downloaded."""

import concurrent.futures
import imaplib
import os
import re
import shutil
import subprocess

import pytest

from protocols import start_instance

HOST = "127.0.0.1"
ALICE = "alice@example.test"
PASSWORD = "secret"
COUNT = 1000

pytestmark = pytest.mark.skipif(shutil.which("mbsync") is None, reason="isync not installed")


def message(i):
    return (f"From: sender{i}@example.org\r\nTo: {ALICE}\r\nSubject: message {i}\r\n"
            f"Message-ID: <m{i}@example.org>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            f"\r\nBody of message {i}\r\n").encode()


@pytest.fixture
def inst():
    inst = start_instance(listeners={"imap": ("imap", "starttls"),
                                     "imaps": ("imap", "implicit")},
                          listener_extra={"imap": "auth_plaintext = true"})
    try:
        yield inst
    except Exception:
        print(inst.log()[-20000:])
        raise
    finally:
        inst.cleanup()


def mbsync(inst, workdir):
    # "localhost": mbsync matches the certificate's DNS names, not its IP address
    config = os.path.join(workdir, "mbsyncrc")
    with open(config, "w") as f:
        f.write(f"""IMAPAccount test
Host localhost
Port {inst.port("imaps")}
User {ALICE}
Pass {PASSWORD}
SSLType IMAPS
CertificateFile {inst.cert}
AuthMechs PLAIN

IMAPStore remote
Account test

MaildirStore local
Path {workdir}/mail/
Inbox {workdir}/mail/INBOX

Channel sync
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
""")
    proc = subprocess.run(["mbsync", "-c", config, "-a"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def maildir_files(workdir):
    files = []
    for sub in ("cur", "new"):
        d = os.path.join(workdir, "mail", "INBOX", sub)
        files += [os.path.join(d, n) for n in os.listdir(d)]
    return files


def test_mbsync_two_way_sync(inst, tmp_path):
    workdir = str(tmp_path)
    os.makedirs(os.path.join(workdir, "mail"))

    def fill(part):
        imap = imaplib.IMAP4(HOST, inst.port("imap"), timeout=120)
        imap.login(ALICE, PASSWORD)
        for i in range(part, COUNT, 4):
            typ, _ = imap.append("INBOX", "(\\Seen)" if i % 10 == 0 else None, None,
                                 message(i))
            assert typ == "OK"
        imap.logout()

    # four sessions at once share the store's log flushes
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(fill, p) for p in range(4)]:
            f.result()

    mbsync(inst, workdir)
    files = maildir_files(workdir)
    assert len(files) == COUNT
    seen = [f for f in files if re.search(r":2,[A-Z]*S", f)]
    assert len(seen) == COUNT // 10

    # locally: flag 50 messages, delete 20, add one
    by_subject = {}
    for f in files:
        with open(f, "rb") as fh:
            subject = re.search(rb"Subject: message (\d+)", fh.read()).group(1)
        by_subject[int(subject)] = f
    for i in range(1, 51):
        f = by_subject[i]
        base = f.split(":2,")[0] if ":2," in f else f
        os.rename(f, base.replace("/new/", "/cur/") + ":2,F")
    for i in range(100, 120):
        os.unlink(by_subject[i])
    with open(os.path.join(workdir, "mail", "INBOX", "new", "1700000000.local.host"), "wb") as f:
        f.write(message(5000))
    mbsync(inst, workdir)

    imap = imaplib.IMAP4(HOST, inst.port("imap"), timeout=60)
    imap.login(ALICE, PASSWORD)
    imap.select("INBOX")
    typ, data = imap.search(None, "FLAGGED")
    assert len(data[0].split()) == 50
    typ, data = imap.search(None, "ALL")
    assert len(data[0].split()) == COUNT - 20 + 1
    typ, data = imap.search(None, "SUBJECT", '"message 5000"')
    assert len(data[0].split()) == 1
    typ, data = imap.search(None, "SUBJECT", '"message 105"')
    assert data[0] == b""
    # server side: answer 10 messages and expunge 5, then sync back
    imap.store("1:10", "+FLAGS", "(\\Answered)")
    imap.store("971:975", "+FLAGS", "(\\Deleted)")
    imap.expunge()
    imap.logout()
    mbsync(inst, workdir)
    files = maildir_files(workdir)
    assert len(files) == COUNT - 20 + 1 - 5
    assert len([f for f in files if re.search(r":2,[A-Z]*R", f)]) == 10
