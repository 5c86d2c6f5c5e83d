"""smtpd's greylisting (greylist { }, smtpd/policy-greylist.c), with a delay of
2 seconds and a retry window of 6: first attempt 451 4.7.1 with a retry hint, a
too-early retry 451, the retry after the delay accepted (and later ones at once),
a retry after the window starting over, automatic whitelisting of a client
network, SPF-passing senders keyed by their domain across two client networks
(dnsmasq serves the SPF record), and the skips: authenticated clients,
whitehosts, whitelisted senders. Clients are presented through XCLIENT."""

import re
import time
import uuid

import pytest

from dnsmasq import Dnsmasq
from protocols import LineConn, smtp_cmd, smtp_reply, start_instance

LISTENERS = {"smtp": ("smtp", "none")}
DELAY = 2
WINDOW = 6

RECORDS = {
    # a sender with a pool of two networks
    "pool.test": {"TXT": ["v=spf1 ip4:192.0.2.0/24 ip4:203.0.113.0/24 -all"]},
    "nospf.test": {"A": ["192.0.2.1"]},
}


@pytest.fixture(scope="module")
def dns():
    with Dnsmasq(RECORDS) as d:
        yield d


@pytest.fixture(scope="module")
def inst(dns):
    extra = (
        'dns { servers = "%s"  timeout = 1s  tries = 1 }\n'
        'smtp { xclient_networks = { "127.0.0.1" } }\n'
        'spf { enabled = true  none = accept }\n'
        'greylist {\n  enabled = true\n  delay = %d\n  retry_window = %d\n  expire_interval = 1s\n'
        '  auto_whitelist = 2\n  auto_whitelist_time = 1h\n}\n'
        'lists {\n  whitehosts = { "198.18.7.7" }\n  sender_whitelist = { "friend.test" }\n}\n'
        % (dns.server, DELAY, WINDOW))
    i = start_instance(listeners=LISTENERS, extra=extra)
    yield i
    i.cleanup()


def unique(domain="nospf.test"):
    return "s%s@%s" % (uuid.uuid4().hex[:10], domain)


def rcpt(inst, ip, sender, to="alice@example.test", login=None):
    """The RCPT reply (code, text) for sender -> to from client ip."""
    conn = LineConn.open(inst, "smtp", timeout=20)
    try:
        assert smtp_reply(conn)[0] == 220
        xc = "XCLIENT ADDR=%s" % ip + (" LOGIN=%s" % login if login else "")
        assert smtp_cmd(conn, xc)[0] == 220
        assert smtp_cmd(conn, "EHLO client.test")[0] == 250
        code, text = smtp_cmd(conn, "MAIL FROM:<%s>" % sender)
        assert code == 250, text
        code, text = smtp_cmd(conn, "RCPT TO:<%s>" % to)
        smtp_cmd(conn, "QUIT")
        return code, " ".join(text)
    finally:
        conn.close()


def greylisted(reply):
    code, text = reply
    return code == 451 and text.startswith("4.7.1 ") and "Greylisted" in text


def hint(reply):
    m = re.search(r"try again in (\d+) seconds", reply[1])
    assert m, reply
    return int(m.group(1))


def test_first_attempt_too_early_then_accepted_after_the_delay(inst):
    sender = unique()
    first = rcpt(inst, "192.0.2.10", sender)
    assert greylisted(first), first
    assert hint(first) == DELAY
    inst.wait_log("reject: RCPT from unknown[192.0.2.10]: 451 4.7.1")
    assert "(policy=greylist)" in inst.log()
    early = rcpt(inst, "192.0.2.10", sender)
    assert greylisted(early) and 1 <= hint(early) <= DELAY, early
    # IPv6 clients: the /64 is the network
    v6 = unique()
    assert greylisted(rcpt(inst, "IPV6:2001:db8:1:2::5", v6))
    time.sleep(DELAY + 0.5)
    assert greylisted(rcpt(inst, "IPV6:2001:db8:1:3::5", v6))
    assert rcpt(inst, "IPV6:2001:db8:1:2:ffff::1", v6)[0] == 250
    # a neighbour in the same /24 counts as the same client
    assert rcpt(inst, "192.0.2.77", sender)[0] == 250
    inst.wait_log("greylist: RCPT from unknown[192.0.2.77]: retry passed after")
    # from now on at once
    assert rcpt(inst, "192.0.2.10", sender)[0] == 250
    # another recipient is another triplet
    assert greylisted(rcpt(inst, "192.0.2.10", sender, to="bob@example.test"))


def test_a_retry_after_the_window_starts_over(inst):
    sender = unique()
    assert greylisted(rcpt(inst, "192.0.2.30", sender))
    time.sleep(WINDOW + 1)
    # another client's attempt runs the expiry (a job of its own, at most every
    # expire_interval): the old triplet is removed from the store
    assert greylisted(rcpt(inst, "192.0.2.31", unique()))
    inst.wait_log(" expired record", timeout=10)
    assert re.search(r"greylist: \d+ expired records? removed", inst.log()), inst.log()[-2000:]
    again = rcpt(inst, "192.0.2.30", sender)
    assert greylisted(again) and hint(again) == DELAY, again


def test_client_network_is_whitelisted_after_two_passed_retries(inst):
    senders = [unique(), unique()]
    for s in senders:
        assert greylisted(rcpt(inst, "198.51.100.5", s))
    time.sleep(DELAY + 0.5)
    for s in senders:
        assert rcpt(inst, "198.51.100.5", s)[0] == 250
    inst.wait_log("greylist: client network 198.51.100.0/24 whitelisted")
    # a new triplet from the network passes at once; another network does not
    assert rcpt(inst, "198.51.100.200", unique())[0] == 250
    assert greylisted(rcpt(inst, "198.51.101.5", unique()))


def test_spf_pass_is_keyed_by_domain_across_networks(inst):
    sender = unique("pool.test")
    assert greylisted(rcpt(inst, "192.0.2.40", sender))
    # without SPF the same move is a new triplet
    plain = unique()
    assert greylisted(rcpt(inst, "192.0.2.40", plain))
    time.sleep(DELAY + 0.5)
    # the retry comes from the pool's other network
    assert rcpt(inst, "203.0.113.9", sender)[0] == 250
    assert greylisted(rcpt(inst, "203.0.113.9", plain))


def test_authenticated_whitehost_and_whitelisted_sender_skip_greylisting(inst):
    assert rcpt(inst, "192.0.2.50", unique(), login="bob@example.test")[0] == 250
    assert rcpt(inst, "198.18.7.7", unique())[0] == 250
    assert rcpt(inst, "192.0.2.51", unique("friend.test"))[0] == 250
    # the same clients are greylisted otherwise
    assert greylisted(rcpt(inst, "192.0.2.50", unique()))
