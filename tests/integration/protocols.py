"""Small line-oriented clients for the integration tests (stdlib only).

The standard library clients (smtplib, imaplib, poplib) hide what was sent and
received; these helpers talk to a listener byte for byte so a test can check
exact replies, pipelining, STARTTLS injection and connection limits.
Every read has a timeout, so a server that says nothing fails the test instead
of hanging it.
"""

import base64
import os
import socket
import ssl
import subprocess
import time

from warren import BIN, BUILD, WarrenInstance, client_context

DEFAULT_TIMEOUT = 10.0


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def sasl_plain(user, password, authzid=""):
    """Base64 SASL PLAIN response: authzid NUL authcid NUL password."""
    return b64(f"{authzid}\0{user}\0{password}")


class Closed(Exception):
    """The server closed the connection while a line was expected."""


class LineConn:
    """A socket with a receive buffer and line reading with timeouts."""

    def __init__(self, sock, timeout=DEFAULT_TIMEOUT):
        self.sock = sock
        self.buf = b""
        self.timeout = timeout
        sock.settimeout(timeout)

    @classmethod
    def open(cls, inst, listener, tls=None, server_hostname=None, source=None,
             timeout=DEFAULT_TIMEOUT, context=None):
        """Connects to a listener of inst; implicit-TLS listeners are wrapped."""
        src = (source, 0) if source else None
        sock = socket.create_connection((inst.address, inst.port(listener)),
                                        timeout=timeout, source_address=src)
        if tls is None:
            tls = inst.listeners[listener][1] == "implicit"
        if tls:
            ctx = context or client_context()
            sock = ctx.wrap_socket(sock, server_hostname=server_hostname)
        return cls(sock, timeout)

    # ---- output ----

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send_line(self, line):
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")

    # ---- input ----

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out waiting for the server")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        finally:
            self.sock.settimeout(self.timeout)
        if not chunk:
            raise Closed("connection closed by the server; unread: %r" % self.buf)
        self.buf += chunk

    def readline(self, timeout=None):
        """One line without its CRLF, as str (undecodable bytes replaced)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def read_all_until_close(self, timeout=None):
        """Everything the server sends until it closes; raises on timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                self._fill(deadline)
            except Closed:
                data, self.buf = self.buf, b""
                return data
            except (ConnectionResetError, ssl.SSLError):
                data, self.buf = self.buf, b""
                return data

    def lines_until_close(self, timeout=None):
        data = self.read_all_until_close(timeout)
        return [l.rstrip(b"\r").decode("utf-8", "replace")
                for l in data.split(b"\n") if l != b""]

    def closed_within(self, timeout):
        """True when the server closes (EOF or reset) within timeout seconds."""
        try:
            self.read_all_until_close(timeout)
            return True
        except socket.timeout:
            return False

    def nothing_within(self, seconds):
        """True when no byte arrives within seconds (and the connection stays open)."""
        try:
            self._fill(time.monotonic() + seconds)
        except socket.timeout:
            return True
        except Closed:
            return False
        return False

    # ---- TLS ----

    def starttls(self, server_hostname=None, context=None):
        """Wraps the socket in TLS after the server said go ahead."""
        assert self.buf == b"", "plaintext left over before the TLS handshake: %r" % self.buf
        ctx = context or client_context()
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.sock.settimeout(self.timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- SMTP ----

def smtp_reply(conn, timeout=None):
    """(code, [text lines]) of one possibly multi-line reply."""
    lines = []
    while True:
        line = conn.readline(timeout)
        assert len(line) >= 3 and line[:3].isdigit(), "not an SMTP reply: %r" % line
        lines.append(line[4:])
        if len(line) == 3 or line[3] == " ":
            return int(line[:3]), lines
        assert line[3] == "-", "bad SMTP continuation: %r" % line


def smtp_cmd(conn, line, timeout=None):
    conn.send_line(line)
    return smtp_reply(conn, timeout)


def smtp_open(inst, listener, ehlo="client.test", tls=None, **kw):
    """Connected, greeted, EHLO'd (and STARTTLS'd + EHLO'd again when tls='starttls')."""
    conn = LineConn.open(inst, listener, **kw)
    code, text = smtp_reply(conn)
    assert code == 220, text
    if ehlo:
        code, _ = smtp_cmd(conn, "EHLO " + ehlo)
        assert code == 250
        if tls == "starttls":
            code, text = smtp_cmd(conn, "STARTTLS")
            assert code == 220, text
            conn.starttls()
            code, _ = smtp_cmd(conn, "EHLO " + ehlo)
            assert code == 250
    return conn


# ---- IMAP ----

def imap_read_tagged(conn, tag, timeout=None):
    """([untagged/continuation lines], tagged line) up to the tagged reply for tag."""
    untagged = []
    while True:
        line = conn.readline(timeout)
        if line.startswith(tag + " "):
            return untagged, line
        untagged.append(line)


def imap_cmd(conn, tag, command, timeout=None):
    conn.send_line(f"{tag} {command}")
    return imap_read_tagged(conn, tag, timeout)


def imap_open(inst, listener, tls=None, **kw):
    """Connected and greeted (and STARTTLS'd when tls='starttls')."""
    conn = LineConn.open(inst, listener, **kw)
    greeting = conn.readline()
    assert greeting.startswith("* OK "), greeting
    if tls == "starttls":
        _, tagged = imap_cmd(conn, "st", "STARTTLS")
        assert tagged.startswith("st OK"), tagged
        conn.starttls()
    return conn


# ---- POP3 ----

def pop3_multiline(conn, timeout=None):
    """Lines of a multi-line response body up to the terminating '.'."""
    lines = []
    while True:
        line = conn.readline(timeout)
        if line == ".":
            return lines
        lines.append(line[1:] if line.startswith("..") else line)


def pop3_cmd(conn, line, timeout=None):
    conn.send_line(line)
    return conn.readline(timeout)


def pop3_open(inst, listener, tls=None, **kw):
    conn = LineConn.open(inst, listener, **kw)
    greeting = conn.readline()
    assert greeting.startswith("+OK"), greeting
    if tls == "starttls":
        reply = pop3_cmd(conn, "STLS")
        assert reply.startswith("+OK"), reply
        conn.starttls()
    return conn


# ---- openssl s_client ----

def s_client(inst, listener, args=(), data=b"", timeout=10):
    """Runs `openssl s_client` against a listener, feeding data on stdin.

    -ign_eof keeps it reading after stdin ends, so it returns once the server
    closes (send a QUIT/LOGOUT in data); -nocommands keeps lines starting with
    Q or R from being taken as s_client commands.
    """
    cmd = ["openssl", "s_client", "-connect", f"{inst.address}:{inst.port(listener)}",
           "-ign_eof", "-nocommands", *args]
    return subprocess.run(cmd, input=data, capture_output=True, timeout=timeout)


def cert_subject_cn(der):
    """The subject CN of a DER certificate, via openssl x509."""
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject",
                          "-nameopt", "multiline"], input=der, capture_output=True,
                         check=True, timeout=10).stdout.decode()
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("commonName"):
            return line.split("=", 1)[1].strip()
    return None


def pem_to_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def warrenctl(*args, stdin=None, timeout=20):
    return subprocess.run([os.path.join(BIN, "warrenctl"), *args], input=stdin,
                          capture_output=True, timeout=timeout, text=True)


def warren_check(path, timeout=20):
    return subprocess.run([os.path.join(BIN, "warren"), "-t", "-c", path],
                          capture_output=True, timeout=timeout, text=True)


def store_dump(inst, user, bodies=True):
    """user's messages read from the store by tests/storedump (tests/tools/storedump.c):
    [(mailbox, uid, env_from, env_to, body)], body the message's bytes, or its size
    in bytes with bodies=False (storedump -n)."""
    args = [os.path.join(BUILD, "tests", "storedump"), os.path.join(inst.dir, "state"), user]
    if not bodies:
        args.append("-n")
    out = subprocess.run(args, capture_output=True, timeout=60, check=True).stdout
    msgs = []
    while out:
        assert out.startswith(b"MSG "), out[:200]
        head, out = out.split(b"\n", 1)
        box, uid, env_from, env_to, size = head[4:].decode().split("\t")
        size = int(size)
        if bodies:
            body, out = out[:size], out[size + 1:]
        else:
            body = size
        msgs.append((box, int(uid), env_from, env_to, body))
    return msgs


def wait_probes_closed(inst, timeout=5.0):
    """Waits until the daemons have seen the harness's start-up probes (one
    connection per listener) close, so they no longer count against connection
    limits. Every session logs a line containing "disconnect" when it ends."""
    inst.wait_log("disconnect", count=len(inst.listeners), timeout=timeout)


def start_instance(prepare=None, attempts=3, **kwargs):
    """A started WarrenInstance for a module-scoped fixture, retried with fresh
    ports when the start fails: a port free_port() picked can be taken by another
    process's connection before the master binds it, and one such collision
    would otherwise fail every test of the module. prepare(inst), if given,
    runs before each start (to add certificates, domains, environment)."""
    error = None
    for _ in range(attempts):
        inst = WarrenInstance(**kwargs)
        try:
            if prepare is not None:
                prepare(inst)
            inst.start()
            return inst
        except RuntimeError as e:
            error = e
            print(f"start failed, retrying with new ports: {e}")
            inst.cleanup()
    raise error
