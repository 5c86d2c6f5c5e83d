"""smtpd's black and white lists (lists { }) and HELO checks (helo_checks { }):
each blacklist's refusal with its text, each whitelist's and whitehost's skip,
the trusted-network and authenticated skips, invalid and non-FQDN HELO names,
our own name or address in HELO, and HELO required or not before MAIL. Clients
are presented with XCLIENT ADDR=192.0.2.x (docs/policy.md)."""

import textwrap

import pytest

from protocols import LineConn, smtp_cmd, smtp_reply, start_instance
from warren import SECRET_HASH

LISTENERS = {"smtp": ("smtp", "none")}
DOMAINS = {"example.test": textwrap.dedent(f"""\
    mailbox alice {{ password = "{SECRET_HASH}" }}
    mailbox bob {{ password = "{SECRET_HASH}" }}
    alias postmaster {{ to = {{ "alice" }} }}
""")}

EXTRA = textwrap.dedent("""\
    smtp {
        xclient_networks = { "127.0.0.1" }
        trusted_networks = { "192.0.2.200" }
    }
    lists {
        whitehosts = { "192.0.2.100/31" }
        client_blacklist = { "192.0.2.66 Your network sends spam", "198.51.100.0/24" }
        helo_blacklist = { "bad.example.net", ".spam.test Spam cannon" }
        helo_whitelist = { "friend.example.net" }
        sender_blacklist = { "spammer@outside.test Go away", "junk.test", ".junk2.test" }
        sender_whitelist = { "@partner.test" }
        recipient_blacklist = { "bob@example.test No mail for bob" }
        recipient_whitelist = { "postmaster@example.test" }
    }
    helo_checks { reject_invalid = true  reject_our_name = true }
    """)


@pytest.fixture(scope="module")
def inst():
    i = start_instance(listeners=LISTENERS, domains=DOMAINS, extra=EXTRA)
    yield i
    i.cleanup()


def client(inst, addr, helo="client.example.net", login=None):
    conn = LineConn.open(inst, "smtp", timeout=10)
    assert smtp_reply(conn)[0] == 220
    cmd = "XCLIENT ADDR=" + addr + (" LOGIN=" + login if login else "")
    code, text = smtp_cmd(conn, cmd)
    assert code == 220, text
    code, text = smtp_cmd(conn, "EHLO " + helo)
    assert code == 250, text
    return conn


def mail(conn, sender):
    code, text = smtp_cmd(conn, "MAIL FROM:<%s>" % sender)
    return code, " ".join(text)


def rcpt(conn, addr):
    code, text = smtp_cmd(conn, "RCPT TO:<%s>" % addr)
    return code, " ".join(text)


def attempt(inst, addr, sender="someone@outside.example.net", to="alice@example.test",
            helo="client.example.net", login=None):
    """(code, text) of RCPT (or of MAIL when MAIL is refused)."""
    conn = client(inst, addr, helo=helo, login=login)
    try:
        code, text = mail(conn, sender)
        if code != 250:
            return code, text
        return rcpt(conn, to)
    finally:
        smtp_cmd(conn, "QUIT")
        conn.close()


# ---- blacklists ----

def test_client_blacklist_with_its_text(inst):
    code, text = attempt(inst, "192.0.2.66")
    assert code == 554, text
    assert text == "5.7.1 <192.0.2.66>: Client host rejected: Your network sends spam"
    inst.wait_log("reject: RCPT from unknown[192.0.2.66]: 554 5.7.1 <192.0.2.66>: Client host "
                  "rejected: Your network sends spam; from=<someone@outside.example.net> "
                  "to=<alice@example.test>")
    assert "(policy=lists)" in inst.log()


def test_client_blacklist_network_with_default_text(inst):
    code, text = attempt(inst, "198.51.100.7")
    assert (code, text) == (554, "5.7.1 <198.51.100.7>: Client host rejected: Access denied")
    assert attempt(inst, "192.0.2.10")[0] == 250


def test_helo_blacklist(inst):
    code, text = attempt(inst, "192.0.2.10", helo="bad.example.net")
    assert (code, text) == (554, "5.7.1 <bad.example.net>: Helo command rejected: Access denied")
    code, text = attempt(inst, "192.0.2.10", helo="mx1.spam.test")
    assert (code, text) == (554, "5.7.1 <mx1.spam.test>: Helo command rejected: Spam cannon")
    # ".spam.test" is the names under spam.test, not spam.test itself
    assert attempt(inst, "192.0.2.10", helo="spam.test")[0] == 250


def test_sender_blacklist_address_domain_and_subdomains(inst):
    code, text = attempt(inst, "192.0.2.10", sender="spammer@outside.test")
    assert (code, text) == (554, "5.7.1 <spammer@outside.test>: Sender address rejected: Go away")
    assert attempt(inst, "192.0.2.10", sender="other@outside.test")[0] == 250
    assert attempt(inst, "192.0.2.10", sender="x@JUNK.test")[0] == 554
    assert attempt(inst, "192.0.2.10", sender="x@a.junk2.test")[0] == 554
    assert attempt(inst, "192.0.2.10", sender="x@junk2.test")[0] == 250
    # the null sender is no address of a list
    assert attempt(inst, "192.0.2.10", sender="")[0] == 250


def test_recipient_blacklist(inst):
    code, text = attempt(inst, "192.0.2.10", to="bob@example.test")
    assert (code, text) == (554, "5.7.1 <bob@example.test>: Recipient address rejected: "
                                 "No mail for bob")


# ---- whitelists and skips ----

def test_recipient_whitelist_skips_the_blacklists_for_that_recipient_only(inst):
    conn = client(inst, "192.0.2.66")
    assert mail(conn, "spammer@outside.test")[0] == 250
    assert rcpt(conn, "postmaster@example.test")[0] == 250
    assert rcpt(conn, "alice@example.test")[0] == 554
    smtp_cmd(conn, "QUIT")
    conn.close()
    inst.wait_log("recipient <postmaster@example.test> whitelisted")


def test_whitehost_skips_lists_and_helo_checks(inst):
    for helo in ("bad.example.net", "localhost", "mail.warren.test"):
        code, text = attempt(inst, "192.0.2.101", helo=helo, sender="spammer@outside.test")
        assert code == 250, (helo, text)
    inst.wait_log("whitehost unknown[192.0.2.101]")
    # the neighbour outside the /31 is not
    assert attempt(inst, "192.0.2.102", sender="spammer@outside.test")[0] == 554


def test_helo_whitelist_skips_the_client_blacklist(inst):
    assert attempt(inst, "192.0.2.66", helo="friend.example.net")[0] == 250
    inst.wait_log("helo <friend.example.net> whitelisted")


def test_sender_whitelist_lasts_one_transaction(inst):
    conn = client(inst, "192.0.2.66")
    assert mail(conn, "news@partner.test")[0] == 250
    assert rcpt(conn, "alice@example.test")[0] == 250
    assert smtp_cmd(conn, "RSET")[0] == 250
    assert mail(conn, "someone@outside.example.net")[0] == 250
    assert rcpt(conn, "alice@example.test")[0] == 554
    smtp_cmd(conn, "QUIT")
    conn.close()


def test_trusted_network_and_authenticated_clients_skip_lists_and_helo_checks(inst):
    assert attempt(inst, "192.0.2.200", sender="spammer@outside.test", helo="localhost")[0] == 250
    code, text = attempt(inst, "192.0.2.66", sender="alice@example.test", helo="laptop",
                         login="alice@example.test")
    assert code == 250, text


# ---- HELO checks ----

@pytest.mark.parametrize("helo,code,text", [
    ("localhost", 504, "5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname"),
    ("bad_name.example.net", 501, "5.5.2 <bad_name.example.net>: Helo command rejected: Invalid name"),
    ("192.0.2.1", 501, "5.5.2 <192.0.2.1>: Helo command rejected: Invalid name"),
    ("[300.1.2.3]", 501, "5.5.2 <[300.1.2.3]>: Helo command rejected: Invalid name"),
    ("-x.example.net", 501, "5.5.2 <-x.example.net>: Helo command rejected: Invalid name"),
    ("mail.warren.test", 554, "5.7.1 <mail.warren.test>: Helo command rejected: You are not me"),
    ("MAIL.Warren.Test.", 554, "5.7.1 <MAIL.Warren.Test.>: Helo command rejected: You are not me"),
    ("example.test", 554, "5.7.1 <example.test>: Helo command rejected: You are not me"),
    ("[127.0.0.1]", 554, "5.7.1 <[127.0.0.1]>: Helo command rejected: You are not me"),
])
def test_helo_refused_at_mail(inst, helo, code, text):
    assert attempt(inst, "192.0.2.10", helo=helo) == (code, text)
    inst.wait_log("reject: MAIL from unknown[192.0.2.10]: %d" % code)


@pytest.mark.parametrize("helo", ["client.example.net", "[192.0.2.10]", "[IPv6:2001:db8::1]",
                                  "mx-1.Example.NET."])
def test_good_helo_names_pass(inst, helo):
    assert attempt(inst, "192.0.2.10", helo=helo)[0] == 250


def test_helo_required_before_mail_by_default(inst):
    conn = LineConn.open(inst, "smtp", timeout=10)
    assert smtp_reply(conn)[0] == 220
    code, text = smtp_cmd(conn, "MAIL FROM:<a@outside.example.net>")
    assert code == 503 and text[0].startswith("5.5.1"), text
    conn.close()


def test_helo_not_required_when_configured():
    i = start_instance(listeners=LISTENERS, extra="helo_checks { require = false }\n")
    try:
        conn = LineConn.open(i, "smtp", timeout=10)
        assert smtp_reply(conn)[0] == 220
        assert smtp_cmd(conn, "MAIL FROM:<a@outside.example.net>")[0] == 250
        assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
        assert smtp_cmd(conn, "RSET")[0] == 250
        # a client that did say HELO (and was reset by STARTTLS or XCLIENT) must again
        smtp_cmd(conn, "QUIT")
        conn.close()
    finally:
        i.cleanup()


def test_bad_list_network_is_a_config_error():
    from protocols import warren_check
    from warren import WarrenInstance
    i = WarrenInstance(listeners=LISTENERS,
                       extra='lists { client_blacklist = { "300.1.2.3/8 text" } }\n')
    try:
        r = warren_check(i.config_path)
        assert r.returncode != 0
        assert 'client_blacklist: "300.1.2.3/8" is not an address or network' in r.stdout + r.stderr
    finally:
        i.cleanup()
