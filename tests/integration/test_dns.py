"""Integration tests of common/dns.c (c-ares on libuv) through build/tests/dnsq,
against a dnsmasq started by dnsmasq.py and, for the in-flight bound and
timeouts, small UDP servers written here."""

import os
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from dnsmasq import Dnsmasq, free_port

BUILD = os.environ.get("WARREN_BUILD", "/work/main/build")
DNSQ = os.path.join(BUILD, "tests", "dnsq")

LONG_TXT = "v=spf1 " + " ".join("ip4:198.51.100.%d" % i for i in range(40)) + " -all"
FLOOD = 300

RECORDS = {
    "example.test": {
        "MX": [(30, "mx3.example.test"), (10, "mx1.example.test"),
               (20, "mx2.example.test")],
        "TXT": ["v=spf1 -all"],
    },
    "mx1.example.test": {"A": ["192.0.2.1", "192.0.2.2"], "AAAA": ["2001:db8::1"]},
    "short.example.test": {"A": [("192.0.2.9", 42)]},
    "alias.example.test": {"CNAME": ("example.test", 60)},
    "long.example.test": {"TXT": [LONG_TXT, ["several ", "strings, ", "one record"]]},
    "192.0.2.1": {"PTR": ["mx1.example.test"]},
    "2001:db8::1": {"PTR": ["mx1.example.test"]},
}
RECORDS.update({"h%d.flood.test" % i: {"A": ["10.0.%d.%d" % (i // 256, i % 256)]}
                for i in range(FLOOD)})


@pytest.fixture(scope="module")
def dns():
    if not os.access(DNSQ, os.X_OK):
        pytest.fail("%s not built (set WARREN_BUILD)" % DNSQ)
    with Dnsmasq(RECORDS) as server:
        yield server


def dnsq(server, rtype, *names, opts=(), timeout=60, prefix=()):
    """Runs dnsq; returns its stdout lines. It must exit 0 without BUG lines."""
    cmd = list(prefix) + [DNSQ] + list(opts) + [server, rtype] + list(names)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, "dnsq failed (%d): %s" % (proc.returncode, proc.stderr)
    assert "BUG" not in proc.stderr, proc.stderr
    return proc.stdout.splitlines()


def test_a(dns):
    lines = dnsq(dns.server, "a", "mx1.example.test")
    assert sorted(lines) == ["mx1.example.test A 192.0.2.1 ttl=300",
                             "mx1.example.test A 192.0.2.2 ttl=300"]


def test_a_ttl_is_the_smallest(dns):
    assert dnsq(dns.server, "a", "short.example.test") == \
        ["short.example.test A 192.0.2.9 ttl=42"]


def test_aaaa(dns):
    assert dnsq(dns.server, "aaaa", "mx1.example.test") == \
        ["mx1.example.test AAAA 2001:db8::1 ttl=300"]


def test_mx_sorted_by_preference(dns):
    assert dnsq(dns.server, "mx", "example.test") == [
        "example.test MX 10 mx1.example.test ttl=300",
        "example.test MX 20 mx2.example.test ttl=300",
        "example.test MX 30 mx3.example.test ttl=300",
    ]


def test_mx_through_cname_takes_smallest_ttl(dns):
    # answer: alias CNAME example.test (ttl 60), then the MX records (ttl 300)
    lines = dnsq(dns.server, "mx", "alias.example.test")
    assert [line.split()[2] for line in lines] == ["10", "20", "30"]
    assert all(line.endswith(" ttl=60") for line in lines), lines


def test_txt(dns):
    assert dnsq(dns.server, "txt", "example.test") == ["example.test TXT v=spf1 -all ttl=300"]


def test_txt_strings_of_a_record_are_joined(dns):
    assert len(LONG_TXT) > 255  # dnsmasq sends it as two character-strings
    lines = dnsq(dns.server, "txt", "long.example.test")
    assert sorted(lines) == sorted([
        "long.example.test TXT %s ttl=300" % LONG_TXT,
        "long.example.test TXT several strings, one record ttl=300",
    ])


def test_ptr_ipv4(dns):
    assert dnsq(dns.server, "ptr", "192.0.2.1") == ["192.0.2.1 PTR mx1.example.test ttl=300"]


def test_ptr_ipv6(dns):
    assert dnsq(dns.server, "ptr", "2001:db8::1") == \
        ["2001:db8::1 PTR mx1.example.test ttl=300"]


def test_ptr_unknown_address_is_nxdomain(dns):
    assert dnsq(dns.server, "ptr", "192.0.2.200") == ["192.0.2.200 NXDOMAIN"]


def test_nxdomain(dns):
    assert dnsq(dns.server, "a", "nope.example.test") == ["nope.example.test NXDOMAIN"]
    assert dnsq(dns.server, "mx", "nope.example.test") == ["nope.example.test NXDOMAIN"]


def test_nodata(dns):
    # the names exist, but have no record of the asked type
    assert dnsq(dns.server, "a", "example.test") == ["example.test NODATA"]
    assert dnsq(dns.server, "mx", "mx1.example.test") == ["mx1.example.test NODATA"]
    assert dnsq(dns.server, "txt", "mx1.example.test") == ["mx1.example.test NODATA"]


def test_several_lookups_print_in_argument_order(dns):
    lines = dnsq(dns.server, "aaaa", "nope.example.test", "mx1.example.test", "example.test")
    assert lines == ["nope.example.test NXDOMAIN",
                     "mx1.example.test AAAA 2001:db8::1 ttl=300",
                     "example.test NODATA"]


def test_refused_is_tempfail(dns):
    # outside dnsmasq's local zones and no upstream: REFUSED
    [line] = dnsq(dns.server, "a", "www.example.invalid")
    assert line.startswith("www.example.invalid TEMPFAIL ")


def test_permfail_without_asking(dns):
    lines = dnsq(dns.server, "a", "bad..example.test", "a" * 64 + ".test",
                 "sp ace.test", ".")
    assert [line.split(" PERMFAIL ")[0] for line in lines] == \
        ["bad..example.test", "a" * 64 + ".test", "sp ace.test", "."]
    assert dnsq(dns.server, "ptr", "192.0.2", "example.test") == [
        "192.0.2 PERMFAIL not an IP address",
        "example.test PERMFAIL not an IP address",
    ]


def test_tempfail_when_nothing_listens():
    port = free_port()
    start = time.monotonic()
    [line] = dnsq("127.0.0.1:%d" % port, "mx", "example.test", opts=["-t", "200", "-r", "2"])
    assert line.startswith("example.test TEMPFAIL "), line
    assert time.monotonic() - start < 5


def test_tempfail_on_timeout():
    # a bound socket that never reads: only c-ares' timer can end the query
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        server = "127.0.0.1:%d" % silent.getsockname()[1]
        start = time.monotonic()
        [line] = dnsq(server, "a", "example.test", opts=["-t", "200", "-r", "2"])
        elapsed = time.monotonic() - start
    assert line == "example.test TEMPFAIL Timeout while contacting DNS servers"
    assert 0.2 < elapsed < 5


def test_second_server_answers_when_first_is_dead(dns):
    servers = "127.0.0.1:%d,%s" % (free_port(), dns.server)
    assert dnsq(servers, "aaaa", "mx1.example.test", opts=["-t", "500", "-r", "3"]) == \
        ["mx1.example.test AAAA 2001:db8::1 ttl=300"]


def test_ipv6_server():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    with Dnsmasq({"v6.example.test": {"A": ["192.0.2.6"]}}, host="::1") as server:
        assert server.server.startswith("[::1]:")
        assert dnsq(server.server, "a", "v6.example.test") == \
            ["v6.example.test A 192.0.2.6 ttl=300"]


def test_invalid_server_list_is_refused():
    proc = subprocess.run([DNSQ, "not-an-address", "a", "example.test"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "invalid DNS server list" in proc.stderr


def test_300_concurrent_lookups(dns):
    lines = dnsq(dns.server, "a", "flood.test", opts=["-n", str(FLOOD)])
    assert lines[-1] == "answered %d of %d" % (FLOOD, FLOOD)
    assert lines[:-1] == ["h%d.flood.test A 10.0.%d.%d ttl=300" % (i, i // 256, i % 256)
                          for i in range(FLOOD)]


def test_cancel(dns):
    names = ["h%d.flood.test" % i for i in range(10)]
    lines = dnsq(dns.server, "a", *names, opts=["-C"])
    assert lines[-1] == "cancelled 5, answered 5 of 10"
    assert [line.split()[0] for line in lines[:-1]] == names[0::2]


def test_free_inside_first_callback(dns):
    names = ["h%d.flood.test" % i for i in range(150)]
    lines = dnsq(dns.server, "a", *names, opts=["-F", "1"])
    assert lines[-1] == "freed after 1, answered 1 of 150"
    assert len(lines) == 2


class HoldingServer(threading.Thread):
    """A UDP DNS server that holds every query for `hold` seconds before
    answering it (A 10.0.0.1) and records how many distinct queries it held at
    once: the client's number of queries in flight."""

    def __init__(self, hold=0.3):
        super().__init__(daemon=True)
        self.hold = hold
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.01)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.max_held = 0
        self.answered = 0

    @staticmethod
    def answer(query):
        end = query.index(b"\0", 12) + 5       # end of the question
        header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
        rr = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([10, 0, 0, 1])
        return header + query[12:end] + rr

    def run(self):
        held = {}
        while not self.stopping.is_set():
            try:
                query, addr = self.sock.recvfrom(4096)
                held.setdefault(query[12:], (time.monotonic(), query, addr))
                self.max_held = max(self.max_held, len(held))
                continue
            except socket.timeout:
                pass
            now = time.monotonic()
            for key, (when, query, addr) in list(held.items()):
                if now - when >= self.hold:
                    self.sock.sendto(self.answer(query), addr)
                    self.answered += 1
                    del held[key]

    def stop(self):
        self.stopping.set()
        self.join()
        self.sock.close()


def test_at_most_100_queries_in_flight():
    server = HoldingServer()
    server.start()
    try:
        lines = dnsq("127.0.0.1:%d" % server.port, "a", "bound.test",
                     opts=["-n", str(FLOOD), "-t", "5000", "-r", "1"])
    finally:
        server.stop()
    assert lines[-1] == "answered %d of %d" % (FLOOD, FLOOD)
    assert all(line.endswith(" A 10.0.0.1 ttl=60") for line in lines[:-1])
    assert server.max_held == 100   # DNS_MAX_INFLIGHT, reached and never passed
    assert server.answered == FLOOD


def sanitizer_build():
    """True for a build with AddressSanitizer (make test-asan): valgrind cannot run it."""
    cache = os.path.join(os.environ.get("WARREN_BUILD", ""), "CMakeCache.txt")
    try:
        with open(cache) as f:
            return "WARREN_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
@pytest.mark.skipif(sanitizer_build(), reason="a sanitizer build: ASan checks it instead")
@pytest.mark.parametrize("opts,rtype,names", [
    ([], "mx", ["example.test", "nope.example.test", "bad..name", "long.example.test"]),
    ([], "ptr", ["192.0.2.1", "2001:db8::1", "not-an-ip"]),
    (["-C"], "txt", ["long.example.test", "example.test", "mx1.example.test", "x.test"]),
    (["-F", "2"], "a", ["h%d.flood.test" % i for i in range(120)]),
])
def test_valgrind_clean(dns, opts, rtype, names):
    valgrind = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=all",
                "--errors-for-leak-kinds=all", "--error-exitcode=1"]
    dnsq(dns.server, rtype, *names, opts=opts, prefix=valgrind, timeout=120)
