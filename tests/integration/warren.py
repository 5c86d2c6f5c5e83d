"""Start and stop a real Warren suite on loopback for integration tests.

A WarrenInstance writes a configuration into a fresh temporary folder, starts
build/bin/warren on it, waits until every listener accepts connections, and
stops it (SIGTERM, then SIGKILL) at the end. Everything is stdlib-only and runs
under Debian's /usr/bin/python3.

When the tests run as root (as in CI), the daemons drop privileges to "nobody",
so the folder is made world-readable (files hold nothing secret but test keys).
"""

import hashlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import textwrap
import time

BUILD = os.environ.get("WARREN_BUILD",
                       os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("WARREN_SOURCE",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(BUILD, "bin")
CERT_CACHE = os.path.join(BUILD, "tests", "cert-cache")   # make_cert's certificates
# what a daemon logs once it serves ("started (3 listeners, configuration generation
# 1)"); not just "started (": smtpd's "queue: runner started (scan every 60s" has it too
DAEMON_STARTED = " listeners, configuration generation "

# yescrypt hash of "secret" (made with `warrenctl passwd`)
SECRET_HASH = "$y$j9T$KZcm/P0w5ErqCyNNmLYhX/$zQiryOTt2Yq.tIXMrhCF5NrmBiwqImVnWONvkn/W/o8"

LISTENERS = {
    # name: (service, tls mode)
    "smtp": ("smtp", "starttls"),
    "submission": ("submission", "starttls"),
    "submissions": ("submission", "implicit"),
    "imap": ("imap", "starttls"),
    "imaps": ("imap", "implicit"),
    "pop3": ("pop3", "starttls"),
    "pop3s": ("pop3", "implicit"),
}


_handed_out = set()


def free_port(address="127.0.0.1"):
    """A TCP port that is free on address right now and was not handed out
    before by this process (the kernel may give the same free port twice in a
    row, and one suite's listeners must not collide)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as s:
            s.bind((address, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


def make_cert(directory, name, sans):
    """A self-signed certificate for sans; returns (cert_path, key_path).

    An RSA key takes a good part of a suite start's CPU, so a certificate for
    the same sans is made once a day and copied (CERT_CACHE, shared by the test
    processes of a run: made in a temporary directory, then renamed into place)."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    tag = hashlib.sha256("\0".join(sans).encode()).hexdigest()[:16]
    cached = os.path.join(CERT_CACHE, time.strftime("%Y%m%d-") + tag)
    if not os.path.isdir(cached):
        os.makedirs(CERT_CACHE, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=CERT_CACHE, prefix="new-")
        alt = ",".join(("IP:" + s) if s[0].isdigit() else ("DNS:" + s) for s in sans)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "30",
             "-nodes", "-keyout", os.path.join(tmp, "key"), "-out", os.path.join(tmp, "pem"),
             "-subj", "/CN=" + sans[0], "-addext", "subjectAltName=" + alt],
            check=True, capture_output=True)
        try:
            os.rename(tmp, cached)      # one directory: key and certificate go together
        except OSError:                 # another test process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    shutil.copyfile(os.path.join(cached, "pem"), cert)
    shutil.copyfile(os.path.join(cached, "key"), key)
    os.chmod(key, 0o644)
    return cert, key


# What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer write to a
# process's stderr (the suite's log) in a `make test-asan` build.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def sanitizer_reports(text):
    """Excerpts of text around each sanitizer report in it ([] for none)."""
    found = []
    for marker in SANITIZER_MARKERS:
        start = 0
        while len(found) < 5:
            i = text.find(marker, start)
            if i < 0:
                break
            found.append(text[max(0, i - 300):i + 4000])
            start = i + len(marker)
    return found


def client_context():
    """TLS client context that accepts the test's self-signed certificates."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wait_port(address, port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class WarrenInstance:
    """One running suite. Use as a context manager or call start()/stop()."""

    def __init__(self, address="127.0.0.1", listeners=None, domains=None, extra="",
                 env=None, log_level="debug", listener_extra=None):
        self.dir = tempfile.mkdtemp(prefix="warren-test-")
        os.chmod(self.dir, 0o755)
        self.address = address
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.extra = extra
        self.log_level = log_level
        self.listener_extra = listener_extra or {}
        self.ports = {}
        self.listeners = dict(LISTENERS if listeners is None else listeners)
        for name in self.listeners:
            self.ports[name] = free_port(address)
        self.cert, self.key = make_cert(self.dir, "default",
                                        ["mail.warren.test", "localhost", "127.0.0.1"])
        self.domains = domains if domains is not None else {
            "example.test": textwrap.dedent(f"""\
                mailbox alice {{ password = "{SECRET_HASH}" }}
                mailbox bob {{ password = "{SECRET_HASH}" }}
                alias info {{ to = {{ "alice", "bob" }} }}
            """),
            "example.org": textwrap.dedent(f"""\
                mailbox carol {{ password = "{SECRET_HASH}" }}
            """),
        }
        self.config_path = os.path.join(self.dir, "warren.conf")
        self.log_path = os.path.join(self.dir, "warren.log")
        self.proc = None
        self.write_config()

    # ---- configuration ----

    def user(self):
        if os.geteuid() == 0:
            return "nobody"
        return pwd.getpwuid(os.geteuid()).pw_name

    def listener_block(self, name, service, tls):
        extra = self.listener_extra.get(name, "")
        return textwrap.dedent(f"""\
            listener {name} {{
                address = "{self.address}"
                port = {self.ports[name]}
                service = {service}
                tls = {tls}
            {textwrap.indent(extra, "    ")}}}
            """)

    def domain_block(self, name, body):
        return f'domain "{name}" {{\n{textwrap.indent(body, "    ")}}}\n'

    def config_text(self):
        parts = [textwrap.dedent(f"""\
            hostname = "mail.warren.test"
            state_dir = "state"
            user = "{self.user()}"
            log {{ level = {self.log_level} }}
            auth {{ failure_delay = 100ms  failure_delay_max = 400ms }}
            tls {{ cert = "default.pem"  key = "default.key" }}
            """)]
        if "security {" not in self.extra:
            # suites that log in wrongly many times from 127.0.0.1 must not be
            # blocked; test_access.py writes its own security { } block
            parts.append("security { max_ip_failures = 0  max_user_failures = 0 }\n")
        parts.append(self.extra)
        for name, (service, tls) in self.listeners.items():
            parts.append(self.listener_block(name, service, tls))
        parts.append('include("domains/*.conf")\n')
        return "\n".join(parts)

    def write_config(self):
        domains_dir = os.path.join(self.dir, "domains")
        shutil.rmtree(domains_dir, ignore_errors=True)
        os.makedirs(domains_dir)
        os.chmod(domains_dir, 0o755)
        for name, body in self.domains.items():
            path = os.path.join(domains_dir, name + ".conf")
            with open(path, "w") as f:
                f.write(self.domain_block(name, body))
            os.chmod(path, 0o644)
        with open(self.config_path, "w") as f:
            f.write(self.config_text())
        os.chmod(self.config_path, 0o644)

    # ---- process ----

    # Berkeley DB's own configuration file in the store's folder (read when the
    # environment is created, before the values the program sets): a lock table
    # for a test's handful of sessions instead of the production 200,000 entries,
    # which every suite start would otherwise create (a 43 MB region file instead
    # of 3.8 MB; 27% of a start's CPU). A test that needed more would fail with
    # Berkeley DB's "out of available locks", not pass wrongly.
    DB_CONFIG = ("set_lk_max_locks 20000\nset_lk_max_objects 20000\n"
                 "set_lk_max_lockers 4000\n")

    def write_db_config(self):
        store = os.path.join(self.dir, "state", "store")
        if os.path.exists(os.path.join(store, "DB_CONFIG")):
            return
        os.makedirs(store, mode=0o750, exist_ok=True)   # as the master makes them
        os.chmod(os.path.join(self.dir, "state"), 0o750)
        os.chmod(store, 0o750)
        with open(os.path.join(store, "DB_CONFIG"), "w") as f:
            f.write(self.DB_CONFIG)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.user())
            for path in (os.path.join(self.dir, "state"), store,
                         os.path.join(store, "DB_CONFIG")):
                os.chown(path, pw.pw_uid, pw.pw_gid)

    def start(self, wait=True):
        self.write_db_config()
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.path.join(BIN, "warren"), "-c", self.config_path],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=self.env)
        if wait:
            for name in self.listeners:
                if not wait_port(self.address, self.ports[name]):
                    self.stop()
                    raise RuntimeError(f"listener {name} did not come up:\n{self.log()}")
            self.wait_log(DAEMON_STARTED, count=self.expected_daemons())
        return self

    def expected_daemons(self):
        services = {s for s, _ in self.listeners.values()}
        n = 0
        n += bool(services & {"smtp", "submission"})
        n += "imap" in services
        n += "pop3" in services
        n += "http" in services
        return n

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.logf.close()

    # `warrenctl store verify` runs on the stopped suite's store at cleanup (issue
    # #3: the store verifies clean after every test); a test that damages the
    # store on purpose sets this to False.
    verify_store = True

    def cleanup(self):
        self.stop()
        try:
            reports = sanitizer_reports(self.log())
            if reports:
                raise AssertionError("sanitizer reports in the suite's log (make test-asan):\n"
                                     + "\n----\n".join(reports))
            state = os.path.join(self.dir, "state")
            if self.verify_store and os.path.isdir(os.path.join(state, "store")):
                # a config of its own: the test may have left an invalid one behind
                conf = os.path.join(self.dir, "verify.conf")
                with open(conf, "w") as f:
                    f.write(f'hostname = "mail.warren.test"\nstate_dir = "{state}"\n'
                            f'user = "{self.user()}"\n')
                proc = subprocess.run(
                    [os.path.join(BIN, "warrenctl"), "-c", conf, "store", "verify"],
                    capture_output=True, text=True, timeout=120)
                if proc.returncode != 0:
                    raise AssertionError(f"warrenctl store verify after the test failed "
                                         f"(exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if any(exc):
            print("---- warren log ----")
            print(self.log()[-20000:])
        self.cleanup()

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text, count=1, timeout=10.0):
        """Waits until text appears count times in the log; returns the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if log.count(text) >= count:
                return log
            time.sleep(0.05)
        raise AssertionError(f"{text!r} x{count} not in log:\n{self.log()[-5000:]}")

    def children(self):
        """{daemon name: pid} of the master's running children."""
        found = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")[0].decode()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid and os.path.basename(cmd).startswith("warren-"):
                found[os.path.basename(cmd)[len("warren-"):]] = int(pid)
        return found

    # ---- clients ----

    def port(self, name):
        return self.ports[name]

    def connect(self, name, tls=None, server_hostname=None, timeout=10):
        """A connected socket to a listener; TLS-wrapped for implicit listeners."""
        sock = socket.create_connection((self.address, self.ports[name]), timeout=timeout)
        if tls is None:
            tls = self.listeners[name][1] == "implicit"
        if tls:
            sock = client_context().wrap_socket(sock, server_hostname=server_hostname)
        return sock
