#!/usr/bin/python3
"""bench/compare.py — Warren beside Postfix + Dovecot on the same machine, same run.

Run as root by `make bench-compare` (and `make bench`), after bench/deps.sh has
installed the peers. Everything lives in one temporary folder on a real disk
($BENCH_TMP, else /var/tmp) and listens on loopback high ports:

  Postfix   `postfix -c DIR start` with its own config_directory and queue_directory,
            delivering every message over LMTP into
  Dovecot   `dovecot -F -c FILE` with its own base_dir: maildir, default fsync
            settings (mail_fsync = optimized), IMAP, POP3, LMTP;
  Warren    build/bin/warren -c FILE with its own state_dir (the store).

Both stacks get the same users (same yescrypt hash), the same messages (Postfix's
smtp-source for SMTP, bench/imapload's generated messages for IMAP and POP3) and
the same clients. The peers run with Debian's defaults except: Postfix's services
are not chrooted (the chroot needs files copied into the queue folder); Dovecot has
its auth cache on (auth_cache_size 10M, ttl 60 s, as Warren's default cache_ttl) and
auth_cache_verify_password_with_worker = yes (Dovecot's cache keeps the hash, not
the verification, so every login still pays a yescrypt check; this spreads them
over the auth-worker processes, i.e. both cores, instead of the one auth process);
connection limits are raised where a test needs more connections than the defaults
allow (both stacks).

Environment:
  BENCH_BUILD    Warren's build folder (default build)
  BENCH_SCALE    multiplies every count; 1 = the issue's sizes (5,000 SMTP messages,
                 10,000 idle sessions, 1,000 POP3 messages), 0.05 for a quick check
  BENCH_REPS     measured repetitions per case (default 3; one warm-up run before)
  BENCH_ONLY     comma list of tests to run: fsync,smtp,imap,pop3,idle (default all)
  BENCH_IMAP_SECONDS  length of one IMAP load run (default 20 x scale, at least 3)
  BENCH_IDLE_SECONDS  the idle test stops opening sessions after this long (300)
  BENCH_TMP      parent of the temporary folder (default /var/tmp)
  BENCH_STACKS   which stacks to run: warren,peer (default both)
  BENCH_PEER_PLAIN  1: Dovecot's passwords in {PLAIN} instead of the yescrypt hash,
                 to see what the hash costs Dovecot's logins (diagnosis, not a result)
  BENCH_KEEP     1: leave the temporary folder (configs, logs) behind
"""

import os
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(os.environ.get("BENCH_BUILD", os.path.join(SOURCE, "build")))
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
ONLY = set((os.environ.get("BENCH_ONLY") or "fsync,smtp,imap,pop3,idle").split(","))
KEEP = os.environ.get("BENCH_KEEP") == "1"

# yescrypt hash of "secret" (the one of tests/integration/warren.py)
SECRET_HASH = "$y$j9T$KZcm/P0w5ErqCyNNmLYhX/$zQiryOTt2Yq.tIXMrhCF5NrmBiwqImVnWONvkn/W/o8"
DOMAIN = "bench.test"
MAIL_USER = "nobody"      # both stacks store mail as this user
MAIL_GROUP = "nogroup"


def scaled(n, least):
    return max(least, int(round(n * SCALE)))


SMTP_MSGS = scaled(5000, 20)
SMTP_CASES = [(4, 1), (4, 20), (100, 1), (100, 20)]     # (KB, sessions)
IMAP_CLIENTS = 10
IMAP_MESSAGES = scaled(200, 20)                          # per user, before the load
IMAP_SECONDS = float(os.environ.get("BENCH_IMAP_SECONDS", max(3.0, 20 * SCALE)))
IMAP_ROUNDS = 5
POP3_CLIENTS = 10
POP3_MESSAGES = scaled(100, 5)                           # per user: 1,000 in all
IDLE_SESSIONS = scaled(10000, 100)
IDLE_SOURCES = 40                                        # 127.0.0.1 .. 127.0.0.40
IDLE_MEM_FLOOR_MB = 4096                                 # stop opening sessions below
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", 300))  # ... or after this long
SINKS = len(SMTP_CASES) * (REPS + 1)

USERS = ([f"sink{i}" for i in range(1, SINKS + 1)] +
         [f"imap{i}" for i in range(1, IMAP_CLIENTS + 1)] +
         [f"pop{i}" for i in range(1, POP3_CLIENTS + 1)])


def log(msg):
    if msg.startswith("  ") and not msg.startswith("   "):
        msg = f"{msg}  [load {os.getloadavg()[0]:.1f}]"    # the noise of a shared machine
    print(msg, flush=True)


def run(cmd, **kw):
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


_ports = set()


def free_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports:
            _ports.add(port)
            return port


def wait_port(port, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.recv(100)
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def chown_tree(path, user, group):
    uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
    import grp
    gid = grp.getgrnam(group).gr_gid
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)


def tree_pids(root_pid):
    """root_pid and all its descendants."""
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(pid))
    out, todo = [], [root_pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_memory(root_pid):
    """(processes, RSS KB, PSS KB) summed over root_pid's process tree."""
    n = rss = pss = 0
    for pid in tree_pids(root_pid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
            n += 1
        except OSError:
            pass
    return n, rss, pss


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ---------------------------------------------------------------- the fsync ceiling

def fsync_rate(folder, seconds=2.0):
    path = os.path.join(folder, "fsync-probe")
    block = b"x" * 4096
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    n, t0 = 0, time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            os.write(fd, block)
            os.fsync(fd)
            n += 1
    finally:
        os.close(fd)
        os.unlink(path)
    return n / (time.monotonic() - t0)


# ---------------------------------------------------------------- Warren

class Warren:
    name = "warren"

    def __init__(self, base):
        self.dir = os.path.join(base, "warren")
        os.makedirs(os.path.join(self.dir, "domains"))
        self.smtp, self.imap, self.pop3 = free_port(), free_port(), free_port()
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "30",
             "-nodes", "-keyout", os.path.join(self.dir, "default.key"),
             "-out", os.path.join(self.dir, "default.pem"), "-subj", "/CN=mail.bench.test"])
        listen = "address = \"127.0.0.1\"  tls = none  max_connections = 0  max_connections_per_ip = 0"
        conf = f"""hostname = "mail.{DOMAIN}"
state_dir = "state"
user = "{MAIL_USER}"
log {{ level = info }}
smtp {{ trusted_networks = {{ "127.0.0.0/8" }} }}
tls {{ cert = "default.pem"  key = "default.key" }}
listener smtp {{ {listen}  port = {self.smtp}  service = smtp }}
listener imap {{ {listen}  port = {self.imap}  service = imap  auth_plaintext = yes }}
listener pop3 {{ {listen}  port = {self.pop3}  service = pop3  auth_plaintext = yes }}
include("domains/*.conf")
"""
        with open(os.path.join(self.dir, "warren.conf"), "w") as f:
            f.write(conf)
        with open(os.path.join(self.dir, "domains", DOMAIN + ".conf"), "w") as f:
            f.write(f'domain "{DOMAIN}" {{\n')
            for u in USERS:
                f.write(f'    mailbox {u} {{ password = "{SECRET_HASH}" }}\n')
            f.write("}\n")
        for root, dirs, files in os.walk(self.dir):
            os.chmod(root, 0o755)
            for x in files:
                os.chmod(os.path.join(root, x), 0o644)
        self.proc = None

    def describe(self):
        return (f"Warren {BUILD}/bin/warren, one smtpd, imapd and pop3d process, "
                f"state_dir {self.dir}/state, log level info, "
                f"smtp.trusted_networks 127.0.0.0/8 (no anti-spam checks, as Postfix's mynetworks)")

    def start(self):
        self.logf = open(os.path.join(self.dir, "warren.log"), "ab")
        self.proc = subprocess.Popen([os.path.join(BUILD, "bin", "warren"), "-c",
                                      os.path.join(self.dir, "warren.conf")],
                                     stdout=self.logf, stderr=subprocess.STDOUT, cwd=self.dir)
        for p in (self.smtp, self.imap, self.pop3):
            wait_port(p)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with open(os.path.join(self.dir, "warren.log"), errors="replace") as f:
                if f.read().count("started (") >= 3:
                    return
            time.sleep(0.1)
        raise RuntimeError("warren did not start; see " + self.dir + "/warren.log")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def mem_root(self):
        return self.proc.pid

    def mailbox_count(self, user):
        """Messages in user's INBOX (IMAP STATUS): what the user would see."""
        import imaplib
        if not hasattr(self, "_imap"):
            self._imap = {}
        c = self._imap.get(user)
        if c is None:
            c = imaplib.IMAP4("127.0.0.1", self.imap)
            c.login(f"{user}@{DOMAIN}", "secret")
            self._imap[user] = c
        typ, data = c.status("INBOX", "(MESSAGES)")
        if typ != "OK":
            return 0
        m = re.search(rb"MESSAGES (\d+)", data[0])
        return int(m.group(1)) if m else 0

    def mailbox_done(self, user):
        c = getattr(self, "_imap", {}).pop(user, None)
        if c:
            try:
                c.logout()
            except Exception:
                pass


# ---------------------------------------------------------------- Postfix + Dovecot

class PostfixDovecot:
    name = "postfix+dovecot"

    def __init__(self, base):
        self.pdir = os.path.join(base, "postfix", "etc")      # config_directory
        self.pqueue = os.path.join(base, "postfix", "queue")  # queue_directory
        self.pdata = os.path.join(base, "postfix", "data")    # data_directory
        self.ddir = os.path.join(base, "dovecot")
        self.smtp, self.lmtp, self.imap, self.pop3 = (free_port(), free_port(),
                                                       free_port(), free_port())
        os.makedirs(self.pdir)
        os.makedirs(self.pqueue)     # postfix start creates what is inside
        os.makedirs(self.pdata)
        pw = pwd.getpwnam("postfix")
        os.chown(self.pdata, pw.pw_uid, pw.pw_gid)
        os.makedirs(os.path.join(self.ddir, "mail"))
        os.makedirs(os.path.join(self.ddir, "run"))
        os.makedirs(os.path.join(self.ddir, "state"))
        chown_tree(os.path.join(self.ddir, "mail"), MAIL_USER, MAIL_GROUP)
        self.postfix_config()
        self.dovecot_config()
        self.dproc = None
        self.postfix_started = False

    def postfix_config(self):
        d = self.pdir
        main = f"""# written by bench/compare.py: Debian's defaults but for what a private instance needs
compatibility_level = 3.6
config_directory = {d}
queue_directory = {self.pqueue}
data_directory = {self.pdata}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{DOMAIN}
mydomain = {DOMAIN}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = texthash:{d}/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:{self.lmtp}
maillog_file = {d}/maillog
"""
        with open(os.path.join(d, "main.cf"), "w") as f:
            f.write(main)
        services = [
            (f"127.0.0.1:{self.smtp}", "inet", "n", "-", "n", "-", "-", "smtpd"),
            ("pickup", "unix", "n", "-", "n", "60", "1", "pickup"),
            ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
            ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
            ("tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"),
            ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
            ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
            ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
            ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
            ("proxywrite", "unix", "-", "-", "n", "-", "1", "proxymap"),
            ("smtp", "unix", "-", "-", "n", "-", "-", "smtp"),
            ("relay", "unix", "-", "-", "n", "-", "-", "smtp"),
            ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
            ("error", "unix", "-", "-", "n", "-", "-", "error"),
            ("retry", "unix", "-", "-", "n", "-", "-", "error"),
            ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
            ("local", "unix", "-", "n", "n", "-", "-", "local"),
            ("virtual", "unix", "-", "n", "n", "-", "-", "virtual"),
            ("lmtp", "unix", "-", "-", "n", "-", "-", "lmtp"),
            ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
            ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
            ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
        ]
        with open(os.path.join(d, "master.cf"), "w") as f:
            f.write("# Debian's master.cf without chroot (bench/compare.py)\n")
            for s in services:
                f.write("%-12s %-10s %-2s %-2s %-2s %-6s %-3s %s\n" % s)
        with open(os.path.join(d, "vmailbox"), "w") as f:
            for u in USERS:
                f.write(f"{u}@{DOMAIN} ok\n")

    def dovecot_config(self):
        d = self.ddir
        conf = f"""# written by bench/compare.py: Dovecot's defaults but for what a private
# instance needs, the auth cache, and raised connection limits
protocols = imap pop3 lmtp
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:~/Maildir
auth_cache_size = 10M
auth_cache_ttl = 60s
auth_cache_verify_password_with_worker = yes
mail_max_userip_connections = 100000
default_client_limit = 25000
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={MAIL_USER} gid={MAIL_GROUP} home={d}/mail/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp}
  }}
}}
service imap {{
  process_limit = 12000
}}
service anvil {{
  client_limit = 25000
}}
"""
        with open(os.path.join(d, "dovecot.conf"), "w") as f:
            f.write(conf)
        with open(os.path.join(d, "passwd"), "w") as f:
            for u in USERS:
                if os.environ.get("BENCH_PEER_PLAIN") == "1":   # diagnosis only
                    f.write(f"{u}@{DOMAIN}:{{PLAIN}}secret\n")
                else:
                    f.write(f"{u}@{DOMAIN}:{{CRYPT}}{SECRET_HASH}\n")
        os.chmod(os.path.join(d, "passwd"), 0o644)

    def describe(self):
        return (f"Postfix {postfix_version()} (postfix -c {self.pdir}), LMTP into Dovecot "
                f"{dovecot_version()} (dovecot -c {self.ddir}/dovecot.conf), maildir, "
                f"mail_fsync = optimized (default), auth cache on, "
                f"auth_cache_verify_password_with_worker = yes")

    def start(self):
        self.dlog = open(os.path.join(self.ddir, "stdout.log"), "ab")
        self.dproc = subprocess.Popen(["dovecot", "-F", "-c",
                                       os.path.join(self.ddir, "dovecot.conf")],
                                      stdout=self.dlog, stderr=subprocess.STDOUT)
        for p in (self.imap, self.pop3, self.lmtp):
            wait_port(p)
        r = run(["postfix", "-c", self.pdir, "start"], check=False)
        if r.returncode != 0:
            raise RuntimeError("postfix start failed:\n" + r.stdout + r.stderr)
        self.postfix_started = True
        wait_port(self.smtp)

    def stop(self):
        if self.postfix_started:
            run(["postfix", "-c", self.pdir, "stop"], check=False)
            self.postfix_started = False
        if self.dproc and self.dproc.poll() is None:
            self.dproc.send_signal(signal.SIGTERM)
            try:
                self.dproc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.dproc.kill()
                self.dproc.wait()
        self.dproc = None

    def mem_root(self):
        return self.dproc.pid

    def mailbox_count(self, user):
        """Messages delivered into user's maildir (new/ and cur/)."""
        md = os.path.join(self.ddir, "mail", DOMAIN, user, "Maildir")
        n = 0
        for sub in ("new", "cur"):
            try:
                n += len(os.listdir(os.path.join(md, sub)))
            except FileNotFoundError:
                pass
        return n

    def mailbox_done(self, user):
        pass


def postfix_version():
    r = run(["postconf", "-d", "-h", "mail_version"], check=False)
    return r.stdout.strip() or "?"


def dovecot_version():
    r = run(["dovecot", "--version"], check=False)
    return r.stdout.split()[0] if r.stdout else "?"


# ---------------------------------------------------------------- the tests

def bench_bin(name):
    return os.path.join(BUILD, "bench", name)


def smtp_once(stack, kb, sessions, sink):
    n = SMTP_MSGS
    cmd = ["smtp-source", "-4", "-d", "-s", str(sessions), "-m", str(n),
           "-l", str(kb * 1024), "-M", "client.bench.test",
           "-f", f"sender@client.bench.test", "-t", f"{sink}@{DOMAIN}",
           f"127.0.0.1:{stack.smtp}"]
    t0 = time.monotonic()
    src = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timeout = max(300.0, n / 5.0)
    accepted = None
    count = 0
    while True:
        if accepted is None and src.poll() is not None:
            accepted = time.monotonic() - t0
            if src.returncode != 0:
                raise RuntimeError("smtp-source failed: " + src.stdout.read()[-2000:])
        count = stack.mailbox_count(sink)
        if count >= n:
            break
        if time.monotonic() - t0 > timeout:
            src.kill()
            raise RuntimeError(f"{stack.name}: only {count}/{n} messages in {sink}'s "
                               f"mailbox after {timeout:.0f} s")
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    if accepted is None:
        src.wait()
        accepted = elapsed
    stack.mailbox_done(sink)
    return n / elapsed, n / accepted


def test_smtp(stack, results):
    sink = 0
    for kb, sessions in SMTP_CASES:
        rates = []
        for rep in range(REPS + 1):
            sink += 1
            rate, acc = smtp_once(stack, kb, sessions, f"sink{sink}")
            tag = "warm-up" if rep == 0 else f"run {rep}"
            log(f"  {stack.name:16} smtp {kb:3} KB x{sessions:2} sessions {tag:8}: "
                f"{rate:7.1f} msg/s in the mailbox ({acc:7.1f}/s accepted)")
            if rep:
                rates.append(rate)
        results[("smtp", kb, sessions)] = median(rates)


def imapload(stack, *args):
    cmd = [bench_bin("imapload"), "-H", "127.0.0.1", "-p", str(stack.imap), "-w", "secret"]
    cmd += [str(a) for a in args]
    return run(cmd, check=False)


def parse_result(text):
    m = re.search(r"^RESULT (.*)$", text, re.M)
    if not m:
        return None
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def populate(stack):
    """The same generated messages in both stacks, by IMAP APPEND: IMAP_MESSAGES for
    each imap user, POP3_MESSAGES for each pop user."""
    for fmt, clients, n in ((f"imap%d@{DOMAIN}", IMAP_CLIENTS, IMAP_MESSAGES),
                            (f"pop%d@{DOMAIN}", POP3_CLIENTS, POP3_MESSAGES)):
        r = imapload(stack, "-u", fmt, "-c", clients, "-P", n)
        log(f"  {stack.name:16} {fmt}: {r.stdout.strip()} {r.stderr.strip()}")
        if r.returncode != 0:
            raise RuntimeError(f"populating {stack.name} failed")


def test_imap(stack, results):
    u = f"imap%d@{DOMAIN}"
    runs = []
    for rep in range(REPS + 1):
        secs = max(2.0, IMAP_SECONDS / 4) if rep == 0 else IMAP_SECONDS
        r = imapload(stack, "-u", u, "-c", IMAP_CLIENTS, "-t", secs, "-r", IMAP_ROUNDS,
                     "-S", rep + 1)
        res = parse_result(r.stdout)
        if res is None:
            raise RuntimeError(f"imapload failed against {stack.name}:\n{r.stdout}{r.stderr}")
        tag = "warm-up" if rep == 0 else f"run {rep}"
        log(f"  {stack.name:16} imap {tag:8}: {res['ops_per_s']:8.1f} ops/s  "
            f"p50 {res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms  fails {res['fails']:.0f}")
        if rep:
            runs.append((res, r.stdout))
    results[("imap", "ops")] = median([x["ops_per_s"] for x, _ in runs])
    results[("imap", "p50")] = median([x["p50_ms"] for x, _ in runs])
    results[("imap", "p99")] = median([x["p99_ms"] for x, _ in runs])
    mid = sorted(runs, key=lambda x: x[0]["ops_per_s"])[len(runs) // 2]
    results[("imap", "detail")] = mid[1]


def test_pop3(stack, results):
    u = f"pop%d@{DOMAIN}"
    rates, p99s = [], []
    for rep in range(REPS + 1):
        r = run([bench_bin("pop3load"), "-H", "127.0.0.1", "-p", str(stack.pop3),
                 "-u", u, "-w", "secret", "-c", str(POP3_CLIENTS)], check=False)
        res = parse_result(r.stdout)
        if res is None or res["failed"] or res["msgs"] != POP3_CLIENTS * POP3_MESSAGES:
            raise RuntimeError(f"pop3load failed against {stack.name}:\n{r.stdout}{r.stderr}")
        tag = "warm-up" if rep == 0 else f"run {rep}"
        log(f"  {stack.name:16} pop3 {tag:8}: {res['msgs']:.0f} messages in "
            f"{res['seconds']:.3f} s = {res['msgs_per_s']:8.1f}/s  RETR p99 {res['p99_ms']:.2f} ms")
        if rep:
            rates.append(res["msgs_per_s"])
            p99s.append(res["p99_ms"])
    results[("pop3", "rate")] = median(rates)
    results[("pop3", "p99")] = median(p99s)


def test_idle(stack, results):
    n0, rss0, pss0 = tree_memory(stack.mem_root())
    cmd = [bench_bin("imapload"), "-H", "127.0.0.1", "-p", str(stack.imap), "-w", "secret",
           "-u", f"imap%d@{DOMAIN}", "-c", str(IMAP_CLIENTS), "-I", str(IDLE_SESSIONS),
           "-s", str(IDLE_SOURCES), "-m", str(IDLE_MEM_FLOOR_MB), "-T", str(IDLE_SECONDS)]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        m = re.match(r"ready (\d+) failed (\d+)", line)
        if not m:
            raise RuntimeError(f"imapload -I failed: {line}{p.stderr.read()[-2000:]}")
        opened = int(m.group(1))
        time.sleep(3)     # let the servers settle (hand-offs, buffers given back)
        n1, rss1, pss1 = tree_memory(stack.mem_root())
    finally:
        p.stdin.close()
        p.wait(timeout=120)
    log(f"  {stack.name:16} idle: {opened} IDLE sessions open ({m.group(2)} failed) "
        f"in {time.monotonic() - t0:.1f} s; processes {n0} -> {n1}, "
        f"RSS {rss0} -> {rss1} KB, PSS {pss0} -> {pss1} KB")
    results[("idle", "opened")] = opened
    results[("idle", "rss")] = (rss1 - rss0) / max(1, opened)
    results[("idle", "pss")] = (pss1 - pss0) / max(1, opened)
    results[("idle", "total")] = rss1
    time.sleep(2)


# ---------------------------------------------------------------- the table

def fmt(x, digits=1):
    if isinstance(x, str):
        return x
    if x is None or x != x:
        return "-"
    return f"{x:.{digits}f}"


def print_table(res, fs):
    w, p = res.get("warren", {}), res.get("postfix+dovecot", {})
    rows = []
    for kb, s in SMTP_CASES:
        k = ("smtp", kb, s)
        rows.append((f"SMTP {SMTP_MSGS} x {kb} KB, {s} session{'s' if s > 1 else ''}",
                     "msg/s", w.get(k), p.get(k), True))
    rows.append((f"IMAP mix, {IMAP_CLIENTS} clients", "ops/s", w.get(("imap", "ops")),
                 p.get(("imap", "ops")), True))
    rows.append(("IMAP latency p50", "ms", w.get(("imap", "p50")), p.get(("imap", "p50")), False))
    rows.append(("IMAP latency p99", "ms", w.get(("imap", "p99")), p.get(("imap", "p99")), False))
    rows.append((f"POP3 {POP3_CLIENTS * POP3_MESSAGES} RETR, {POP3_CLIENTS} clients", "msg/s",
                 w.get(("pop3", "rate")), p.get(("pop3", "rate")), True))
    rows.append(("POP3 RETR p99", "ms", w.get(("pop3", "p99")), p.get(("pop3", "p99")), False))
    rows.append((f"IDLE sessions opened (of {IDLE_SESSIONS})", "", w.get(("idle", "opened")),
                 p.get(("idle", "opened")), None))
    rows.append(("memory per IDLE session, RSS", "KB", w.get(("idle", "rss")),
                 p.get(("idle", "rss")), False))
    rows.append(("memory per IDLE session, PSS", "KB", w.get(("idle", "pss")),
                 p.get(("idle", "pss")), False))
    print()
    print(f"{'test':42} {'unit':6} {'warren':>10} {'postfix+dovecot':>16} {'ratio':>8}  better")
    for name, unit, a, b, higher in rows:
        ratio = "-"
        if a is not None and b is not None and higher is not None and a == a and b == b:
            if b > 0 and a > 0:
                ratio = f"{a / b:.3g}x"
        better = {True: "higher", False: "lower", None: ""}[higher]
        digits = 0 if unit in ("", "msg/s", "ops/s") else 2 if unit == "ms" else 1
        print(f"{name:42} {unit:6} {fmt(a, digits):>10} {fmt(b, digits):>16} {ratio:>8}  {better}")
    if fs:
        print(f"{'fsync ceiling (4 KB append + fsync)':42} {'/s':6} "
              + "  ".join(f"{x:.0f}" for x in fs) + "   (start, between, end)")
    print("ratio = warren / postfix+dovecot; medians of", REPS, "runs after one warm-up")


# ---------------------------------------------------------------- main

def main():
    if os.geteuid() != 0:
        sys.exit("bench/compare.py runs as root (it starts Postfix and Dovecot instances)")
    for tool in ("smtp-source", "postfix", "dovecot"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            sys.exit(f"{tool} is missing: run bench/deps.sh (make bench-deps)")
    for b in ("imapload", "pop3load"):
        if not os.path.exists(bench_bin(b)):
            sys.exit(f"{bench_bin(b)} is missing: build first (make build)")
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(hard, 4 * IDLE_SESSIONS + 1000)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    parent = os.environ.get("BENCH_TMP", "/var/tmp")
    base = tempfile.mkdtemp(prefix="warren-compare-", dir=parent)
    os.chmod(base, 0o755)
    log("bench-compare: Warren beside Postfix + Dovecot")
    log(f"  folder {base} ({disk_of(base)}); {machine()}")
    log(f"  BENCH_SCALE={SCALE} BENCH_REPS={REPS} tests={','.join(sorted(ONLY))}")
    log(f"  SMTP: smtp-source -d -s SESSIONS -m {SMTP_MSGS} -l SIZE, one recipient, timed "
        f"until all {SMTP_MSGS} are in the mailbox; cases {SMTP_CASES} (KB, sessions)")
    log(f"  IMAP: imapload -c {IMAP_CLIENTS} -t {IMAP_SECONDS:g} -r {IMAP_ROUNDS}, "
        f"{IMAP_MESSAGES} messages of 4 KB per user to start with")
    log(f"  POP3: pop3load -c {POP3_CLIENTS}, {POP3_MESSAGES} messages of 4 KB per user")
    log(f"  idle: imapload -I {IDLE_SESSIONS} (LOGIN, SELECT, IDLE) from {IDLE_SOURCES} "
        f"source addresses, stopping early if MemAvailable < {IDLE_MEM_FLOOR_MB} MB "
        f"or after {IDLE_SECONDS:g} s")
    which = (os.environ.get("BENCH_STACKS") or "warren,peer").split(",")
    stacks = ([Warren(base)] if "warren" in which else []) + \
        ([PostfixDovecot(base)] if "peer" in which else [])
    for s in stacks:
        log(f"  {s.name}: {s.describe()}")
    results = {s.name: {} for s in stacks}
    fs = []
    try:
        if "fsync" in ONLY:
            fs.append(fsync_rate(base))
            log(f"  fsync ceiling: {fs[-1]:.0f}/s")
        for s in stacks:
            log(f"{s.name}: starting")
            s.start()
            try:
                if ONLY & {"imap", "pop3", "idle"}:
                    populate(s)
                # idle first: the memory baseline is a freshly started server
                if "idle" in ONLY:
                    test_idle(s, results[s.name])
                if "smtp" in ONLY:
                    test_smtp(s, results[s.name])
                if "imap" in ONLY:
                    test_imap(s, results[s.name])
                if "pop3" in ONLY:
                    test_pop3(s, results[s.name])
            finally:
                s.stop()
            if "fsync" in ONLY:
                fs.append(fsync_rate(base))
                log(f"  fsync ceiling: {fs[-1]:.0f}/s")
        for s in stacks:
            d = results[s.name].get(("imap", "detail"))
            if d:
                log(f"\nIMAP by command, {s.name} (the median run):\n{d.strip()}")
        print_table(results, fs)
    finally:
        for s in stacks:
            try:
                s.stop()
            except Exception as e:
                log(f"stopping {s.name}: {e}")
        if KEEP:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def disk_of(path):
    r = run(["df", "-T", path], check=False)
    lines = r.stdout.strip().splitlines()
    if len(lines) < 2:
        return "?"
    f = lines[1].split()
    return f"{f[1]} on {f[0]}"


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM, "
            f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
