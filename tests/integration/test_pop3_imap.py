"""POP3 and IMAP on one mailbox (issue #8): what a POP3 session deletes at QUIT
is gone for IMAP, what it retrieved is \\Seen there, and what an IMAP client
expunges during a POP3 session cannot be retrieved any more (the POP3 session
keeps its numbering and UIDLs)."""

import imaplib
import poplib

import pytest

from warren import client_context
from test_pop3 import (HOST, PASSWORD, TIMEOUT, addr, domains_config, message, pop_login,
                       storedeliver)
from warren import WarrenInstance

LISTENERS = {"pop3s": ("pop3", "implicit"), "imaps": ("imap", "implicit")}


@pytest.fixture(scope="module")
def suite():
    inst = WarrenInstance(listeners=LISTENERS, domains=domains_config())
    inst.start()
    try:
        yield inst
    except Exception:
        print(inst.log()[-20000:])
        raise
    finally:
        inst.cleanup()


def imap_login(inst, user):
    imap = imaplib.IMAP4_SSL(HOST, inst.port("imaps"), ssl_context=client_context(),
                             timeout=TIMEOUT)
    imap.login(addr(user), PASSWORD)
    return imap


def subjects(imap):
    typ, data = imap.select("INBOX")
    assert typ == "OK"
    if int(data[0]) == 0:
        return []
    typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    return [part[1].decode().strip() for part in data if isinstance(part, tuple)]


def test_pop3_quit_deletes_and_marks_seen_for_imap(suite):
    for i in range(3):
        storedeliver(suite, ["alice"], message(f"shared {i}"))
    imap = imap_login(suite, "alice")
    assert subjects(imap) == ["Subject: shared 0", "Subject: shared 1", "Subject: shared 2"]
    pop = pop_login(suite, "alice")
    pop.retr(2)
    pop.dele(1)
    # nothing changes for IMAP before the POP3 QUIT
    assert len(subjects(imap)) == 3
    pop.quit()
    assert subjects(imap) == ["Subject: shared 1", "Subject: shared 2"]
    typ, data = imap.fetch("1:*", "(FLAGS)")
    flags = [d.decode() for d in data]
    assert "\\Seen" in flags[0] and "\\Seen" not in flags[1], flags
    imap.logout()


def test_imap_expunge_during_a_pop3_session(suite):
    for i in range(3):
        storedeliver(suite, ["bob"], message(f"imap {i}", f"body {i} of bob\n"))
    pop = pop_login(suite, "bob")
    _, uidls_before, _ = pop.uidl()
    imap = imap_login(suite, "bob")
    imap.select("INBOX")
    imap.store("2", "+FLAGS", "\\Deleted")
    typ, _ = imap.expunge()
    assert typ == "OK"
    imap.logout()
    # the POP3 session keeps its view; the expunged message is gone for it too
    assert pop.uidl()[1] == uidls_before
    with pytest.raises(poplib.error_proto, match="expunged"):
        pop.retr(2)
    assert b"Subject: imap 2" in b"\n".join(pop.retr(3)[1])
    pop.quit()
    pop = pop_login(suite, "bob")
    assert [u.split()[1] for u in pop.uidl()[1]] == [uidls_before[0].split()[1],
                                                    uidls_before[2].split()[1]]
    pop.quit()
