"""The DNSBL zone's TXT reason in smtpd's 554 (smtpd/policy-rbl.c): when a zone
that counts lists the client (or the sender's domain, RHSBL), the TXT record of
the same query name is asked and ends the reply as Postfix's does ("...blocked
using ZONE; TEXT"), made printable (control characters removed, other bytes
outside ASCII as '?') and cut to 200 bytes; no TXT record, the reply as before;
the TXT answer is cached with the A answer. A real dnsmasq serves the zones."""

import textwrap

import pytest

from dnsmasq import Dnsmasq
from protocols import LineConn, smtp_cmd, smtp_reply, start_instance
from warren import SECRET_HASH

REASON = "Listed by ZEN, see https://zen.test/query?ip=192.0.2.2"

RECORDS = {
    "2.2.0.192.zen.test": {"A": ["127.0.0.2"], "TXT": [REASON]},
    "3.2.0.192.zen.test": {"A": ["127.0.0.2"]},                       # no TXT
    "4.2.0.192.zen.test": {"A": ["127.0.0.2"], "TXT": [" bad\tte\x7fxt \u00e9 end "]},
    "5.2.0.192.zen.test": {"A": ["127.0.0.2"], "TXT": [["x" * 255, "y" * 100]]},
    "6.2.0.192.zen.test": {"A": ["127.0.0.2"], "TXT": ["cached reason"]},
    "7.2.0.192.zen.test": {"A": ["127.0.0.99"], "TXT": ["not a code that counts"]},
    "spam.test.dbl.test": {"A": ["127.0.1.2"], "TXT": ["domain listed"]},
    "8.2.0.192.zen.test": {"A": ["127.0.0.2"], "TXT": ["zen says 8"]},   # in both zones
    "8.2.0.192.bl2.test": {"A": ["127.0.0.2"], "TXT": ["bl2 says 8"]},
}

DOMAINS = {"example.test": 'mailbox alice { password = "%s" }\n' % SECRET_HASH}


@pytest.fixture(scope="module")
def dns():
    with Dnsmasq(RECORDS, ttl=300, extra_args=["--log-queries"]) as server:
        yield server


@pytest.fixture(scope="module")
def inst(dns):
    extra = textwrap.dedent(f"""\
        dns {{ servers = "{dns.server}"  timeout = 500ms  tries = 1 }}
        smtp {{ xclient_networks = {{ "127.0.0.1" }} }}
        dnsbl {{
            sites = {{ "zen.test=127.0.0.[2..11]", "bl2.test=127.0.0.2" }}
            rhsbl_sites = {{ "dbl.test=127.0.1.[2..99]" }}
        }}
        """)
    i = start_instance(listeners={"smtp": ("smtp", "none")}, domains=DOMAINS, extra=extra)
    yield i
    i.cleanup()


def attempt(inst, addr, sender="someone@outside.example.net"):
    conn = LineConn.open(inst, "smtp", timeout=10)
    try:
        assert smtp_reply(conn)[0] == 220
        assert smtp_cmd(conn, "XCLIENT ADDR=" + addr)[0] == 220
        assert smtp_cmd(conn, "EHLO client.example.net")[0] == 250
        code, text = smtp_cmd(conn, "MAIL FROM:<%s>" % sender)
        assert code == 250, text
        code, text = smtp_cmd(conn, "RCPT TO:<alice@example.test>")
        smtp_cmd(conn, "QUIT")
        return code, " ".join(text)
    finally:
        conn.close()


def blocked(ip):
    return "5.7.1 Service unavailable; client [%s] blocked using zen.test" % ip


def txt_queries(dns, name):
    return dns.log_text().count("query[TXT] " + name + " ")


def test_reply_ends_with_the_txt_reason(inst):
    assert attempt(inst, "192.0.2.2") == (554, blocked("192.0.2.2") + "; " + REASON)
    inst.wait_log("reject: RCPT from unknown[192.0.2.2]: 554 " + blocked("192.0.2.2") +
                  "; " + REASON)


def test_no_txt_record_gives_the_plain_reply(inst):
    assert attempt(inst, "192.0.2.3") == (554, blocked("192.0.2.3"))


def test_control_characters_removed_and_non_ascii_replaced(inst):
    code, text = attempt(inst, "192.0.2.4")
    assert (code, text) == (554, blocked("192.0.2.4") + "; badtext ?? end"), text


def test_long_reason_is_cut_to_200_bytes(inst):
    code, text = attempt(inst, "192.0.2.5")
    assert (code, text) == (554, blocked("192.0.2.5") + "; " + "x" * 200), text


def test_reason_is_cached_with_the_a_answer(inst, dns):
    want = (554, blocked("192.0.2.6") + "; cached reason")
    assert attempt(inst, "192.0.2.6") == want
    assert attempt(inst, "192.0.2.6") == want
    assert txt_queries(dns, "6.2.0.192.zen.test") == 1, dns.log_text()


def test_unlisted_answer_asks_no_txt(inst, dns):
    assert attempt(inst, "192.0.2.7")[0] == 250
    assert attempt(inst, "192.0.2.1")[0] == 250
    assert txt_queries(dns, "7.2.0.192.zen.test") == 0
    assert txt_queries(dns, "1.2.0.192.zen.test") == 0


def test_zone_named_from_the_cache_gets_its_txt(inst, dns):
    # the first reply names the zone that answered first; from the cache the zones
    # are taken in their configured order, so zen.test, whose TXT may not have been
    # asked the first time: it is asked then, once
    code, text = attempt(inst, "192.0.2.8")
    assert code == 554
    assert text in (blocked("192.0.2.8") + "; zen says 8",
                    blocked("192.0.2.8").replace("zen.test", "bl2.test") + "; bl2 says 8"), text
    for _ in range(2):
        assert attempt(inst, "192.0.2.8") == (554, blocked("192.0.2.8") + "; zen says 8")
    assert txt_queries(dns, "8.2.0.192.zen.test") == 1, dns.log_text()
    assert txt_queries(dns, "8.2.0.192.bl2.test") <= 1


def test_rhsbl_reply_ends_with_the_txt_reason(inst):
    code, text = attempt(inst, "192.0.2.1", sender="x@spam.test")
    assert (code, text) == (554, "5.7.1 <x@spam.test>: Sender address rejected: Service "
                                 "unavailable; sender domain spam.test blocked using "
                                 "dbl.test; domain listed"), text
