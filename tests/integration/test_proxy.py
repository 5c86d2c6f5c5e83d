"""HAProxy PROXY protocol (v1 text, v2 binary) on listeners with proxy_protocol:
the client address of the header is the one the daemons log and use; a header
from outside proxy_trusted, a malformed header, or none at all closes the
connection with a log line."""

import ipaddress
import socket
import struct

import pytest

from protocols import LineConn, start_instance
from warren import client_context

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
PROXIED = ("smtp", "imap", "imaps", "submissions")
LISTENERS = {
    "smtp": ("smtp", "starttls"),
    "imap": ("imap", "starttls"),
    "imaps": ("imap", "implicit"),
    "submissions": ("submission", "implicit"),
    "pop3": ("pop3", "starttls"),   # no proxy_protocol: a plain listener beside them
}
PROXY_CONF = ('proxy_protocol = true\nproxy_trusted = { "127.0.0.1", "::1/128" }\n'
              'proxy_timeout = 700ms\n')


@pytest.fixture(scope="module")
def inst():
    inst = start_instance(listeners=LISTENERS,
                          listener_extra={name: PROXY_CONF for name in PROXIED})
    yield inst
    inst.cleanup()


def v1(family, src, dst, sport, dport):
    return f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src, dst, sport, dport, command=1, tlvs=b""):
    if command == 0:
        return V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", len(tlvs)) + tlvs
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    fam = 0x11 if s.version == 4 else 0x21
    body = s.packed + d.packed + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def proxied(inst, listener, header, source=None, tls=None):
    """A LineConn on listener that sent header first (TLS after it on implicit
    listeners, as HAProxy does)."""
    sock = socket.create_connection((inst.address, inst.port(listener)), timeout=5,
                                    source_address=(source, 0) if source else None)
    sock.sendall(header)
    if tls is None:
        tls = inst.listeners[listener][1] == "implicit"
    if tls:
        sock = client_context().wrap_socket(sock)
    return LineConn(sock, timeout=5)


def connect_logged(inst, text):
    inst.wait_log(text, timeout=5)


@pytest.mark.parametrize("family,src,dst", [
    ("TCP4", "203.0.113.7", "127.0.0.1"),
    ("TCP6", "2001:db8::7", "2001:db8::1"),
])
def test_v1_smtp(inst, family, src, dst):
    c = proxied(inst, "smtp", v1(family, src, dst, 40001, 25))
    assert c.readline().startswith("220 "), "no SMTP greeting after a v1 header"
    c.send_line("QUIT")
    assert c.readline().startswith("221 ")
    connect_logged(inst, f"connect from unknown[{src}] to smtp")


@pytest.mark.parametrize("family,src,dst", [
    ("TCP4", "198.51.100.8", "127.0.0.1"),
    ("TCP6", "2001:db8::8", "::1"),
])
def test_v1_imap(inst, family, src, dst):
    c = proxied(inst, "imap", v1(family, src, dst, 40002, 143))
    assert c.readline().startswith("* OK ")
    c.send_line("a LOGOUT")
    assert c.readline().startswith("* BYE")
    connect_logged(inst, f"connect from [{src}] to imap")


@pytest.mark.parametrize("src,dst", [("192.0.2.44", "127.0.0.1"), ("2001:db8::44", "::1")])
def test_v2_smtp_and_imap(inst, src, dst):
    c = proxied(inst, "smtp", v2(src, dst, 40003, 25))
    assert c.readline().startswith("220 ")
    c.send_line("QUIT")
    c.readline()
    connect_logged(inst, f"connect from unknown[{src}] to smtp")
    c = proxied(inst, "imap", v2(src, dst, 40004, 143, tlvs=b"\x02\x00\x05hello"))
    assert c.readline().startswith("* OK ")
    connect_logged(inst, f"connect from [{src}] to imap")


def test_v2_local_keeps_the_proxy_address(inst):
    c = proxied(inst, "imap", v2(None, None, 0, 0, command=0))
    assert c.readline().startswith("* OK ")
    log = inst.wait_log("via PROXY v2 from [127.0.0.1] (local)")
    assert "connect from [127.0.0.1] to imap" in log


def test_v2_before_implicit_tls_then_login(inst):
    c = proxied(inst, "imaps", v2("192.0.2.55", "127.0.0.1", 40005, 993))
    assert c.readline().startswith("* OK ")
    c.send_line('a LOGIN alice@example.test secret')
    line = c.readline()
    while line.startswith("* "):
        line = c.readline()
    assert line.startswith("a OK"), line
    connect_logged(inst, "connect from [192.0.2.55] to imaps")
    # the login path saw the real address too
    log = inst.log()
    assert any("alice@example.test" in l and "192.0.2.55" in l for l in log.splitlines()), \
        "the login's log line does not carry the PROXY client address"


def test_v1_before_implicit_tls_submissions(inst):
    c = proxied(inst, "submissions", v1("TCP4", "192.0.2.56", "127.0.0.1", 40006, 465))
    assert c.readline().startswith("220 ")
    connect_logged(inst, "connect from unknown[192.0.2.56] to submissions")


def test_header_and_command_in_one_packet(inst):
    c = proxied(inst, "imap", v1("TCP4", "192.0.2.57", "127.0.0.1", 1, 143) + b"a NOOP\r\n")
    assert c.readline().startswith("* OK ")
    assert c.readline().startswith("a OK"), "the command sent with the header was lost"


def test_spoofed_header_from_untrusted_address_is_refused(inst):
    c = proxied(inst, "smtp", v1("TCP4", "203.0.113.66", "127.0.0.1", 40007, 25),
                source="127.0.0.2")
    assert c.lines_until_close(timeout=5) == [], "an untrusted peer got a greeting"
    inst.wait_log("refusing connection from [127.0.0.2]: PROXY protocol listener, "
                  "address not in proxy_trusted")
    assert "[203.0.113.66]" not in inst.log()


def test_v2_from_untrusted_address_is_refused(inst):
    c = proxied(inst, "imap", v2("203.0.113.67", "127.0.0.1", 1, 2), source="127.0.0.2")
    assert c.lines_until_close(timeout=5) == []
    assert "[203.0.113.67]" not in inst.log()


@pytest.mark.parametrize("garbage", [
    b"EHLO example.test\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
    b"PROXY TCP4 300.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
    b"PROXY " + b"A" * 200 + b"\r\n",
    V2_SIG + b"\x31\x11\x00\x0c" + b"\x00" * 12,      # version 3
    V2_SIG + b"\x21\x11\x00\x04" + b"\x00" * 4,       # TCP4 without room for addresses
    V2_SIG + b"\x21\x12\x00\x0c" + b"\x00" * 12,      # UDP
    V2_SIG + b"\x21\x11\xff\xff",                     # longer than the limit
])
def test_malformed_header_closes(inst, garbage):
    before = inst.log().count("bad PROXY protocol header")
    c = proxied(inst, "smtp", garbage, tls=False)
    assert c.lines_until_close(timeout=5) == []
    inst.wait_log("bad PROXY protocol header", count=before + 1)


def test_missing_header_times_out(inst):
    before = inst.log().count("no PROXY protocol header in time")
    c = LineConn.open(inst, "imap", timeout=5)
    assert c.closed_within(3), "a connection without a header stays open"
    inst.wait_log("no PROXY protocol header in time", count=before + 1)


def test_listener_without_proxy_protocol_is_unchanged(inst):
    c = LineConn.open(inst, "pop3", timeout=5)
    assert c.readline().startswith("+OK")
    # a PROXY line there is just a bad command from the real peer
    c.send(v1("TCP4", "203.0.113.99", "127.0.0.1", 1, 2))
    assert c.readline().startswith("-ERR")
    assert "[203.0.113.99]" not in inst.log()


def test_proxy_protocol_needs_trusted_networks(make_warren):
    import subprocess
    import os
    from warren import BIN
    w = make_warren(listeners={"imap": ("imap", "none")},
                    listener_extra={"imap": "proxy_protocol = true\n"})
    out = subprocess.run([os.path.join(BIN, "warrenctl"), "-c", w.config_path, "check"], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "proxy_protocol needs proxy_trusted" in out.stdout + out.stderr


def test_per_address_limit_counts_the_real_client(make_warren):
    w = make_warren(listeners={"imap": ("imap", "none")},
                    listener_extra={"imap": PROXY_CONF + "max_connections_per_ip = 1\n"})
    w.start()
    a = proxied(w, "imap", v1("TCP4", "192.0.2.1", "127.0.0.1", 1, 143))
    assert a.readline().startswith("* OK ")
    # another client behind the same proxy is not limited by the first
    b = proxied(w, "imap", v1("TCP4", "192.0.2.2", "127.0.0.1", 2, 143))
    assert b.readline().startswith("* OK ")
    # the same client again is
    c = proxied(w, "imap", v1("TCP4", "192.0.2.1", "127.0.0.1", 3, 143))
    assert c.readline().startswith("* BYE [UNAVAILABLE]")
    w.wait_log("refusing connection from [192.0.2.1]: too many connections from this address")
