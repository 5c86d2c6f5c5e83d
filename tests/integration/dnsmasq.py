"""dnsmasq.py — a throwaway local DNS server for integration tests (stdlib only).

Starts Debian's dnsmasq (package dnsmasq-base, /usr/sbin/dnsmasq) on 127.0.0.1
and a free high port, serving records given as Python data, and stops it again:

    from dnsmasq import Dnsmasq

    records = {
        "example.test": {
            "MX": [(10, "mx1.example.test"), (20, "mx2.example.test")],
            "TXT": ["v=spf1 ip4:192.0.2.0/24 -all"],
        },
        "mx1.example.test": {"A": ["192.0.2.1"], "AAAA": ["2001:db8::1"]},
        "2.0.0.127.rbl.test": {"A": ["127.0.0.2"], "TXT": ["listed"]},
        "192.0.2.1": {"PTR": ["mx1.example.test"]},   # an IP: its reverse name
    }
    with Dnsmasq(records) as dns:
        run_something(dns_server=dns.server)        # "127.0.0.1:PORT"
        dns.query("example.test", "MX")             # (rcode, [(type, ttl, rdata)])

Record types:
  A, AAAA  list of addresses; an entry may be (address, ttl) for its own TTL
  MX       list of (preference, host)
  TXT      list of records; a record is a str, or a list of str for a record
           made of several character-strings (dnsmasq splits a str longer than
           255 bytes into 255-byte strings)
  PTR      list of host names; the owner may be an IP address (turned into its
           in-addr.arpa/ip6.arpa name) or a reverse name
  CNAME    one target, or (target, ttl); dnsmasq serves it only when the
           target is a name it has records for

What dnsmasq does with this (dnsmasq 2.90, measured):
- Records go into a generated config file (given as --conf-file, so no system
  config is read): on the command line dnsmasq splits TXT at every comma and
  keeps quotes literally, while in a config file "quoted, strings" and the
  escapes \\" and \\\\ work.
- Every name's top-level domain, in-addr.arpa and ip6.arpa become
  --local=/DOMAIN/ ("local_zones" to change): dnsmasq answers those from its own
  records only, never forwarding. A name it has no record for at all gets
  NXDOMAIN; a name that has records, but not of the asked type, gets NOERROR
  with an empty answer (NODATA). Neither carries an SOA record.
  (--auth-zone was measured too: it gives SOA records and the AA bit, but
  --auth-server is then mandatory and turns the address into a purely
  authoritative server that refuses everything else, reverse zones need
  subnets, and --ptr-record is not served from auth zones.)
- A name outside every local zone gets REFUSED (--no-resolv: no upstream
  servers), which callers see as a temporary failure. Good for TEMPFAIL tests.
- --local-ttl sets the TTL of every answer (dnsmasq's default is 0).
- Run as root, dnsmasq switches to the "dnsmasq" user (missing in some
  containers) unless told --user=root; not root, it keeps the current user.
- --keep-in-foreground, not --no-daemon (that is a debug mode which also
  serves TCP without forking). --pid-file= (empty) writes no pid file.
  --log-facility=FILE keeps its log for a failing test to show (log_text()).
"""

import ipaddress
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import time

DNSMASQ = "/usr/sbin/dnsmasq"

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def reverse_name(ip):
    """The in-addr.arpa / ip6.arpa name of an IP address in text form."""
    return ipaddress.ip_address(ip).reverse_pointer


def free_port(host="127.0.0.1"):
    """A port that is free for both UDP and TCP on host right now."""
    for _ in range(50):
        port = random.randrange(20000, 60000)
        try:
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                               socket.SOCK_DGRAM) as u, \
                 socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                               socket.SOCK_STREAM) as t:
                u.bind((host, port))
                t.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port found")


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_name(name):
    if not name or any(c in name for c in ",/\n\r\"\\ ") or name.startswith("."):
        raise ValueError("bad DNS name for dnsmasq: %r" % name)
    return name.rstrip(".")


def _owner(name):
    """Record owner: IP addresses become their reverse names."""
    try:
        return reverse_name(name)
    except ValueError:
        return _check_name(name)


def config_lines(records):
    """dnsmasq config lines (without the server options) for the records."""
    lines = []
    for name, rrsets in records.items():
        owner = _owner(name)
        for rtype, values in rrsets.items():
            rtype = rtype.upper()
            if rtype == "CNAME":
                values = [values]
            for value in values:
                lines.append(_config_line(owner, rtype, value))
    return lines


def _config_line(owner, rtype, value):
    if rtype in ("A", "AAAA"):
        addr, ttl = (value, None) if isinstance(value, str) else value
        ipaddress.ip_address(addr)  # raises on a bad address
        return "host-record=%s,%s%s" % (owner, addr, "" if ttl is None else ",%d" % ttl)
    if rtype == "MX":
        pref, host = value
        return "mx-host=%s,%s,%d" % (owner, _check_name(host), int(pref))
    if rtype == "TXT":
        strings = [value] if isinstance(value, str) else list(value)
        return "txt-record=%s,%s" % (owner, ",".join(_quote(s) for s in strings))
    if rtype == "PTR":
        return "ptr-record=%s,%s" % (owner, _check_name(value))
    if rtype == "CNAME":
        target, ttl = (value, None) if isinstance(value, str) else value
        return "cname=%s,%s%s" % (owner, _check_name(target), "" if ttl is None else ",%d" % ttl)
    raise ValueError("record type %s not supported" % rtype)


def default_zones(records):
    """Top-level domains of all record names, plus both reverse trees."""
    zones = {"in-addr.arpa", "ip6.arpa"}
    for name in records:
        zones.add(_owner(name).rsplit(".", 1)[-1])
    return sorted(zones)


def build_query(name, rtype, qid=None):
    """A DNS query message (RD set) for name and type ("A", "MX", ... or a number)."""
    qid = random.randrange(65536) if qid is None else qid
    qtype = TYPES[rtype.upper()] if isinstance(rtype, str) else rtype
    msg = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        msg += bytes([len(label)]) + label.encode("ascii")
    return msg + b"\0" + struct.pack("!HH", qtype, 1)


def _skip_name(msg, pos):
    while True:
        n = msg[pos]
        if n & 0xC0 == 0xC0:
            return pos + 2
        if n == 0:
            return pos + 1
        pos += n + 1


def parse_response(msg):
    """(rcode, [(type, ttl, rdata bytes)]) of the answer section of msg."""
    flags, qdcount, ancount = struct.unpack("!HHH", msg[2:8])
    pos = 12
    for _ in range(qdcount):
        pos = _skip_name(msg, pos) + 4
    answers = []
    for _ in range(ancount):
        pos = _skip_name(msg, pos)
        rtype, _cls, ttl, rdlen = struct.unpack("!HHIH", msg[pos:pos + 10])
        pos += 10
        answers.append((rtype, ttl, msg[pos:pos + rdlen]))
        pos += rdlen
    return flags & 0xF, answers


def udp_query(host, port, name, rtype, timeout=1.0):
    """Sends one query over UDP; returns parse_response() of the reply."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(build_query(name, rtype), (host, port))
        reply, _ = s.recvfrom(65535)
    return parse_response(reply)


class Dnsmasq:
    """A dnsmasq serving `records` (see the module docstring) until stop().

    Use as a context manager, or call start() and stop(). Attributes once
    started: host, port, server ("HOST:PORT", "[HOST]:PORT" for IPv6, the
    form Warren's dns_resolver_new() takes), workdir (a temporary directory
    holding dnsmasq.conf and dnsmasq.log).

    records     {name: {TYPE: [values]}}
    ttl         TTL of every answer (--local-ttl)
    local_zones domains answered only locally (NXDOMAIN/NODATA for unknown
                names); default: default_zones(records)
    host        listen address ("127.0.0.1"; "::1" for IPv6)
    port        a fixed port; default: a free random high port
    extra_args  more dnsmasq arguments (e.g. ["--log-queries"])
    """

    def __init__(self, records=None, ttl=300, local_zones=None, host="127.0.0.1",
                 port=None, extra_args=()):
        self.records = dict(records or {})
        self.ttl = ttl
        self.local_zones = list(local_zones) if local_zones is not None \
            else default_zones(self.records)
        self.host = host
        self.port = port
        self.extra_args = list(extra_args)
        self.proc = None
        self.workdir = None

    @property
    def server(self):
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)

    def config(self):
        """The generated dnsmasq.conf text."""
        lines = ["local-ttl=%d" % self.ttl]
        lines += ["local=/%s/" % zone for zone in self.local_zones]
        lines += config_lines(self.records)
        return "\n".join(lines) + "\n"

    def command(self):
        cmd = [DNSMASQ, "--keep-in-foreground",
               "--conf-file=" + os.path.join(self.workdir, "dnsmasq.conf"),
               "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
               "--listen-address=" + self.host, "--port=%d" % self.port,
               "--pid-file=", "--log-facility=" + os.path.join(self.workdir, "dnsmasq.log")]
        if os.geteuid() == 0:
            cmd += ["--user=root", "--group=root"]
        return cmd + self.extra_args

    def start(self, timeout=10.0):
        if not os.path.exists(DNSMASQ):
            raise RuntimeError("%s missing: apt-get install dnsmasq-base" % DNSMASQ)
        self.workdir = tempfile.mkdtemp(prefix="warren-dnsmasq-")
        with open(os.path.join(self.workdir, "dnsmasq.conf"), "w") as f:
            f.write(self.config())
        fixed_port = self.port is not None
        for _ in range(1 if fixed_port else 5):
            if not fixed_port:
                self.port = free_port(self.host)
            with open(os.path.join(self.workdir, "stderr"), "wb") as err:
                self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=err)
            if self._wait_ready(timeout):
                return self
            self._reap()
            err = self._read("stderr")
            if "Address already in use" not in err:
                break
        log = self.log_text()
        self.stop()
        raise RuntimeError("dnsmasq did not start: %s\n%s" % (err, log))

    def _wait_ready(self, timeout):
        """Waits until dnsmasq answers a query (any answer will do)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                udp_query(self.host, self.port, "ready.invalid", "A", timeout=0.2)
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def _reap(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def _read(self, name):
        try:
            with open(os.path.join(self.workdir, name), errors="replace") as f:
                return f.read().strip()
        except (OSError, TypeError):
            return ""

    def log_text(self):
        """dnsmasq's log so far ("" if none)."""
        return self._read("dnsmasq.log")

    def query(self, name, rtype, timeout=1.0):
        """Asks this dnsmasq directly: (rcode, [(type, ttl, rdata bytes)])."""
        return udp_query(self.host, self.port, name, rtype, timeout)

    def stop(self):
        self._reap()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
