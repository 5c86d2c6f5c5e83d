"""smtpd's SPF check (spf { }, smtpd/policy-spf.c): libspf2 asks a real dnsmasq
through our own DNS layer (dns { servers }), for clients presented as 192.0.2.x /
198.51.100.x through XCLIENT (libspf2 passes every 127.0.0.0/8 client). Every
result with its configured action, the Received-SPF and Authentication-Results
headers of the delivered message read back over IMAP, the HELO identity for the
null sender, and the skip for an authenticated client."""

import imaplib
import socket
import threading
import uuid

import pytest

from dnsmasq import Dnsmasq, free_port
from protocols import LineConn, smtp_cmd, smtp_reply, start_instance

LISTENERS = {"smtp": ("smtp", "none"), "imap": ("imap", "none")}

RECORDS = {
    "pass.test": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
    "fail.test": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
    "soft.test": {"TXT": ["v=spf1 ip4:198.51.100.0/24 ~all"]},
    "neutral.test": {"TXT": ["v=spf1 ?all"]},
    "none.test": {"A": ["192.0.2.10"], "TXT": ["some other text record"]},
    "perm.test": {"TXT": ["v=spf1 ip4:192.0.2.0/24 frobnicate:x -all"]},
    "mx.pass.test": {"A": ["192.0.2.20"]},
}


class SilentServer:
    """A UDP socket on loopback that reads queries and never answers."""

    def __init__(self):
        self.port = free_port()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                self.sock.recvfrom(4096)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture(scope="module")
def dns():
    silent = SilentServer()
    dead = free_port()   # nothing listens there: dnsmasq's forward fails at once
    d = Dnsmasq(RECORDS, extra_args=["--server=/slow.zz/127.0.0.1#%d" % silent.port,
                                     "--server=/dead.zz/127.0.0.1#%d" % dead])
    d.start()
    yield d
    d.stop()
    silent.close()


@pytest.fixture(scope="module")
def inst(dns):
    extra = (
        'dns { servers = "%s"  timeout = 1s  tries = 1 }\n'
        'smtp { xclient_networks = { "127.0.0.1" } }\n'
        'spf {\n  enabled = true\n  permerror = tag\n  tag_header = "X-Spam-SPF"\n}\n'
        % dns.server)
    i = start_instance(listeners=LISTENERS, extra=extra,
                       listener_extra={"imap": "auth_plaintext = true\n"})
    yield i
    i.cleanup()


def session(inst, ip, helo="client.test", login=None):
    conn = LineConn.open(inst, "smtp", timeout=20)
    assert smtp_reply(conn)[0] == 220
    xc = "XCLIENT ADDR=%s" % ip + (" LOGIN=%s" % login if login else "")
    code, text = smtp_cmd(conn, xc)
    assert code == 220, text
    assert smtp_cmd(conn, "EHLO " + helo)[0] == 250
    return conn


def send(inst, ip, sender, helo="client.test", login=None, rcpt="alice@example.test"):
    """(MAIL reply, subject tag); the message is sent when MAIL and RCPT pass."""
    conn = session(inst, ip, helo, login)
    try:
        code, text = smtp_cmd(conn, "MAIL FROM:<%s>" % sender)
        tag = uuid.uuid4().hex
        if code != 250:
            return (code, " ".join(text)), tag
        rc, rt = smtp_cmd(conn, "RCPT TO:<%s>" % rcpt)
        assert rc == 250, rt
        assert smtp_cmd(conn, "DATA")[0] == 354
        conn.send(("Subject: spf %s\r\n\r\nbody\r\n.\r\n" % tag).encode())
        dc, dt = smtp_reply(conn)
        assert dc == 250, dt
        smtp_cmd(conn, "QUIT")
        return (code, " ".join(text)), tag
    finally:
        conn.close()


def fetch_headers(inst, tag):
    """The header block of alice's message whose subject carries tag (unfolded)."""
    m = imaplib.IMAP4("127.0.0.1", inst.port("imap"), timeout=20)
    try:
        m.login("alice@example.test", "secret")
        m.select("INBOX")
        typ, data = m.search(None, "SUBJECT", tag)
        ids = data[0].split()
        assert len(ids) == 1, (tag, data)
        typ, data = m.fetch(ids[0], "(BODY.PEEK[HEADER])")
        raw = data[0][1].decode()
        return raw.replace("\r\n\t", " ")
    finally:
        m.logout()


def header(headers, name):
    return [line for line in headers.split("\r\n") if line.lower().startswith(name.lower() + ":")]


def test_pass_is_accepted_with_both_headers(inst):
    (code, _), tag = send(inst, "192.0.2.1", "alice@pass.test")
    assert code == 250
    h = fetch_headers(inst, tag)
    spf = header(h, "Received-SPF")
    assert len(spf) == 1, h
    assert spf[0].startswith("Received-SPF: pass (mail.warren.test: domain of "
                             "alice@pass.test designates 192.0.2.1 as permitted sender)"), spf
    assert "client-ip=192.0.2.1;" in spf[0] and 'envelope-from="alice@pass.test";' in spf[0]
    assert "helo=client.test;" in spf[0] and "identity=mailfrom" in spf[0]
    ar = header(h, "Authentication-Results")
    assert ar == ["Authentication-Results: mail.warren.test; spf=pass "
                  "smtp.mailfrom=alice@pass.test"], h
    assert header(h, "X-Spam-SPF") == []
    inst.wait_log("spf: MAIL from unknown[192.0.2.1]: pass identity=mailfrom "
                  "domain=pass.test action=accept")


def test_fail_is_rejected_550_5_7_23(inst):
    (code, text), _ = send(inst, "192.0.2.1", "bob@fail.test")
    assert code == 550 and text.startswith("5.7.23 <bob@fail.test>"), text
    assert "SPF fail" in text
    inst.wait_log("reject: MAIL from unknown[192.0.2.1]: 550 5.7.23")
    assert "(policy=spf)" in inst.log()


def test_fail_from_the_permitted_network_passes(inst):
    (code, _), tag = send(inst, "198.51.100.7", "bob@fail.test")
    assert code == 250
    assert header(fetch_headers(inst, tag), "Received-SPF")[0].startswith("Received-SPF: pass")


def test_softfail_is_tagged(inst):
    (code, _), tag = send(inst, "192.0.2.1", "carol@soft.test")
    assert code == 250
    h = fetch_headers(inst, tag)
    assert header(h, "Received-SPF")[0].startswith("Received-SPF: softfail (mail.warren.test: "
                                                   "domain of transitioning carol@soft.test")
    assert header(h, "Authentication-Results") == [
        "Authentication-Results: mail.warren.test; spf=softfail smtp.mailfrom=carol@soft.test"]
    assert header(h, "X-Spam-SPF") == ["X-Spam-SPF: softfail"]


def test_neutral_and_none_are_accepted(inst):
    (code, _), tag = send(inst, "192.0.2.1", "dave@neutral.test")
    assert code == 250
    h = fetch_headers(inst, tag)
    assert header(h, "Received-SPF")[0].startswith("Received-SPF: neutral (mail.warren.test: "
                                                   "192.0.2.1 is neither permitted nor denied")
    assert header(h, "X-Spam-SPF") == []
    for sender in ("erin@none.test", "frank@nxdomain.test"):
        (code, _), tag = send(inst, "192.0.2.1", sender)
        assert code == 250
        h = fetch_headers(inst, tag)
        assert header(h, "Received-SPF")[0].startswith("Received-SPF: none ("), h
        assert "spf=none smtp.mailfrom=" + sender in header(h, "Authentication-Results")[0]


def test_permerror_of_a_broken_record_is_tagged(inst):
    (code, _), tag = send(inst, "192.0.2.1", "gina@perm.test")
    assert code == 250
    h = fetch_headers(inst, tag)
    assert header(h, "Received-SPF")[0].startswith("Received-SPF: permerror ("), h
    assert header(h, "X-Spam-SPF") == ["X-Spam-SPF: permerror"]
    assert "spf=permerror" in header(h, "Authentication-Results")[0]


@pytest.mark.parametrize("domain", ["x.dead.zz", "x.slow.zz", "x.refused.zz"])
def test_temperror_is_tempfailed_451_4_7_24(inst, domain):
    # dead.zz: the forward fails; slow.zz: no answer at all (our resolver times
    # out); refused.zz: dnsmasq has no server for it and answers REFUSED
    (code, text), _ = send(inst, "192.0.2.1", "hank@" + domain)
    assert code == 451 and text.startswith("4.7.24 "), text
    assert "SPF temperror" in text
    inst.wait_log("spf: MAIL from unknown[192.0.2.1]: temperror identity=mailfrom "
                  "domain=%s action=tempfail" % domain)


def test_null_sender_checks_the_helo_name(inst):
    (code, _), tag = send(inst, "192.0.2.1", "", helo="mx.pass.test")
    assert code == 250
    h = fetch_headers(inst, tag)
    spf = header(h, "Received-SPF")[0]
    # mx.pass.test has no SPF record of its own
    assert spf.startswith("Received-SPF: none (") and "identity=helo" in spf, spf
    assert "spf=none smtp.helo=mx.pass.test" in header(h, "Authentication-Results")[0]
    (code, _), tag = send(inst, "192.0.2.1", "", helo="pass.test")
    h = fetch_headers(inst, tag)
    assert header(h, "Received-SPF")[0].startswith("Received-SPF: pass (")
    assert "spf=pass smtp.helo=pass.test" in header(h, "Authentication-Results")[0]
    (code, text), _ = send(inst, "198.51.100.1", "", helo="pass.test")
    assert code == 550 and "5.7.23" in text


def test_authenticated_client_skips_spf(inst):
    (code, _), tag = send(inst, "192.0.2.1", "bob@fail.test", login="bob@example.test")
    assert code == 250
    h = fetch_headers(inst, tag)
    assert header(h, "Received-SPF") == [] and header(h, "Authentication-Results") == []


def test_an_ipv6_resolver_is_used():
    with Dnsmasq({"six.test": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]}}, host="::1") as d6:
        extra = ('dns { servers = "%s"  timeout = 1s  tries = 1 }\n'
                 'smtp { xclient_networks = { "127.0.0.1" } }\n'
                 'spf { enabled = true }\n' % d6.server)
        i = start_instance(listeners={"smtp": ("smtp", "none")}, extra=extra)
        try:
            conn = session(i, "198.51.100.1")
            code, text = smtp_cmd(conn, "MAIL FROM:<x@six.test>")
            conn.close()
            assert code == 550 and "5.7.23" in " ".join(text), text
            conn = session(i, "192.0.2.1")
            assert smtp_cmd(conn, "MAIL FROM:<x@six.test>")[0] == 250
            conn.close()
            i.wait_log("spf: MAIL from unknown[192.0.2.1]: pass identity=mailfrom domain=six.test")
        finally:
            i.cleanup()
