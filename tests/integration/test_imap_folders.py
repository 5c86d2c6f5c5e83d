"""imapd: per-user special-use folder names (mailbox NAME { imap { ... } } over the
domain's imap { }) created at the first login, and the trash/junk retention run
every imap.retention_interval besides at login. Real daemons and imaplib."""

import imaplib
import re
import time

import pytest

from protocols import start_instance
from warren import SECRET_HASH

HOST = "127.0.0.1"
TIMEOUT = 10
PASSWORD = "secret"

LISTENERS = {"imap": ("imap", "starttls")}

MESSAGE = (b"From: sender@example.org\r\nTo: someone@example.test\r\n"
           b"Subject: retention\r\n\r\nbody\r\n")

DOMAINS = {
    "example.test": f"""
mailbox alice {{ password = "{SECRET_HASH}" }}
mailbox olga {{
  password = "{SECRET_HASH}"
  imap {{
    sent = "Sent Items"
    trash = "Deleted Items"
    junk = "Junk E-mail"
    archive = ""
  }}
}}
mailbox pierre {{
  password = "{SECRET_HASH}"
  imap {{ drafts = "Brouillons"  sent = "Envoyés" }}
}}
mailbox ute {{
  password = "{SECRET_HASH}"
  imap {{ trash_on_expunge = true  trash_retention = 1h }}
}}
imap {{
  sent = "Sent Messages"
  trash_retention = 2s
  junk_retention = 2s
}}
""",
    "example.org": f"""
mailbox carol {{ password = "{SECRET_HASH}" }}
""",
}


@pytest.fixture(scope="module")
def inst():
    inst = start_instance(listeners=LISTENERS,
                          listener_extra={"imap": "auth_plaintext = true"},
                          domains=DOMAINS,
                          extra="imap {\n  retention_interval = 1s\n  retention_batch = 2\n}\n")
    try:
        yield inst
    except Exception:
        print(inst.log()[-20000:])
        raise
    finally:
        inst.cleanup()


def login(inst, user):
    imap = imaplib.IMAP4(HOST, inst.port("imap"), timeout=TIMEOUT)
    typ, _ = imap.login(user, PASSWORD)
    assert typ == "OK"
    # imaplib only knows the capabilities from before the login
    typ, _ = imap._simple_command("ENABLE", "UTF8=ACCEPT")
    assert typ == "OK"
    imap._mode_utf8()
    return imap


def folders(imap):
    """{name: attributes} from LIST "" "*" (RETURN (SPECIAL-USE))."""
    typ, data = imap.list('""', "*")
    assert typ == "OK", data
    out = {}
    for line in data:
        line = line.decode()
        m = re.match(r'\((.*?)\) "/" (.*)$', line)
        assert m, line
        name = m.group(2)
        if name.startswith('"'):
            name = name[1:-1]
        out[name] = m.group(1)
    return out


def subscribed(imap):
    typ, data = imap.lsub('""', "*")
    assert typ == "OK", data
    return {re.match(r'\(.*?\) "/" "?(.*?)"?$', d.decode()).group(1) for d in data}


def test_per_user_names_override_the_domain(inst):
    # olga: her own names; no Archive at all
    imap = login(inst, "olga@example.test")
    got = folders(imap)
    assert set(got) == {"INBOX", "Drafts", "Sent Items", "Deleted Items", "Junk E-mail"}, got
    assert "\\Sent" in got["Sent Items"] and "\\Trash" in got["Deleted Items"]
    assert "\\Junk" in got["Junk E-mail"] and "\\Drafts" in got["Drafts"]
    assert subscribed(imap) == set(got)
    imap.logout()
    # pierre: his Drafts and Sent (UTF-8), the domain's Sent name is overridden,
    # the rest as the domain (and the defaults) say
    imap = login(inst, "pierre@example.test")
    got = folders(imap)
    assert set(got) == {"INBOX", "Brouillons", "Envoyés", "Trash", "Junk", "Archive"}, got
    assert "\\Drafts" in got["Brouillons"] and "\\Sent" in got["Envoyés"]
    assert "\\Archive" in got["Archive"]
    imap.logout()
    # alice: the domain's names
    imap = login(inst, "alice@example.test")
    got = folders(imap)
    assert set(got) == {"INBOX", "Drafts", "Sent Messages", "Trash", "Junk", "Archive"}, got
    assert "\\Sent" in got["Sent Messages"]
    imap.logout()
    # carol's domain says nothing: the defaults
    imap = login(inst, "carol@example.org")
    assert set(folders(imap)) == {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}
    imap.logout()


def test_second_login_creates_nothing_more(inst):
    imap = login(inst, "olga@example.test")
    before = folders(imap)
    # a folder the user deleted comes back at the next login (Outlook needs it)
    assert imap.delete('"Junk E-mail"')[0] == "OK"
    imap.logout()
    imap = login(inst, "olga@example.test")
    assert folders(imap) == before
    imap.logout()


def count(imap, folder):
    typ, data = imap.status(f'"{folder}"', "(MESSAGES)")
    assert typ == "OK", data
    return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))


def test_retention_runs_without_a_login(inst):
    imap = login(inst, "olga@example.test")
    assert imap.append('"Deleted Items"', None, None, MESSAGE)[0] == "OK"
    assert imap.append('"Junk E-mail"', None, None, MESSAGE)[0] == "OK"
    assert imap.append("INBOX", None, None, MESSAGE)[0] == "OK"
    assert count(imap, "Deleted Items") == 1 and count(imap, "Junk E-mail") == 1
    # the session stays open (no new login): the periodic run empties both folders
    # once the messages are older than 2 s; INBOX is left alone
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        if count(imap, "Deleted Items") == 0 and count(imap, "Junk E-mail") == 0:
            break
        time.sleep(0.3)
    assert count(imap, "Deleted Items") == 0 and count(imap, "Junk E-mail") == 0
    assert count(imap, "INBOX") >= 1
    imap.logout()
    log = inst.log()
    assert re.search(r"retention: removed 1 message\(s\) older than the retention from "
                     r"Deleted Items of olga@example\.test", log), log[-3000:]
    assert "from Junk E-mail of olga@example.test" in log
    # retention_batch = 2 of the four mailboxes with a retention per run
    assert re.search(r"retention: looked at 2 mailbox\(es\), removed \d+ message", log)
    assert not re.search(r"retention: looked at [13-9]\d* mailbox", log)


def test_selected_trash_hears_the_expunge(inst):
    imap = login(inst, "pierre@example.test")
    assert imap.append("Trash", None, None, MESSAGE)[0] == "OK"
    typ, data = imap.select("Trash")
    assert typ == "OK" and data == [b"1"], data
    # a session with the trash selected is told of the retention's EXPUNGE
    deadline = time.monotonic() + 8
    gone = False
    while time.monotonic() < deadline and not gone:
        typ, _ = imap.noop()
        assert typ == "OK"
        gone = b"1" in [x for x in (imap.untagged_responses.pop("EXPUNGE", None) or [])]
        if not gone:
            time.sleep(0.3)
    assert gone
    imap.logout()


def test_per_user_trashcan_and_retention(inst):
    # ute has the trashcan (the domain has not) and keeps her trash for an hour
    imap = login(inst, "ute@example.test")
    assert imap.append("INBOX", None, None, MESSAGE)[0] == "OK"
    assert imap.select("INBOX")[0] == "OK"
    assert imap.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert imap.expunge()[0] == "OK"
    assert count(imap, "INBOX") == 0 and count(imap, "Trash") == 1
    # the domain's 2 s do not apply to her: two retention runs later it is still there
    runs = inst.log().count("retention: looked at")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and inst.log().count("retention: looked at") < runs + 3:
        time.sleep(0.3)
    assert inst.log().count("retention: looked at") >= runs + 3
    assert count(imap, "Trash") == 1
    imap.logout()
    # alice has the domain's settings: no trashcan
    imap = login(inst, "alice@example.test")
    assert imap.append("INBOX", None, None, MESSAGE)[0] == "OK"
    assert imap.select("INBOX")[0] == "OK"
    assert imap.store("1:*", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert imap.expunge()[0] == "OK"
    assert count(imap, "Trash") == 0
    imap.logout()
