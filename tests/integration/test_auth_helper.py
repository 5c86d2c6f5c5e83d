"""warren-authd: under a root master, PAM checks run in a small root helper while
smtpd, imapd and pop3d run as the unprivileged user. The PAM password file here is
readable by root only (as /etc/shadow is for pam_unix), so a login can succeed only
through the helper; with auth { helper = false } the same login fails. The helper's
socket refuses other users and malformed requests."""

import os
import socket
import textwrap

import pytest

import pamwrap
from warren import SECRET_HASH, WarrenInstance
from protocols import imap_cmd, imap_open, pop3_cmd, pop3_open, sasl_plain, smtp_cmd, \
    smtp_open, start_instance

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the helper runs only under a root master"),
    pytest.mark.skipif(not pamwrap.available(), reason="pam_wrapper is not installed"),
]

PASSWORD = "helper Pass-7"
LISTENERS = {"imap": ("imap", "none"), "pop3": ("pop3", "none"),
             "submission": ("submission", "none")}
DOMAINS = {
    "example.test": f'mailbox alice {{ password = "{SECRET_HASH}" }}\n',
    "pam.test": textwrap.dedent("""\
        auth = pam
        pam_service = "warren-test"
        mailbox dave { }
    """),
}
PLAIN = "auth_plaintext = true\n"


def make(helper):
    def prepare(inst):
        pamdir = os.path.join(inst.dir, "pam")
        os.makedirs(pamdir)
        os.chmod(pamdir, 0o755)
        env = pamwrap.setup(pamdir, [("dave", PASSWORD)], base_env={})
        # like /etc/shadow: root only
        os.chown(env["WARREN_TEST_PAM_PASSDB"], 0, 0)
        os.chmod(env["WARREN_TEST_PAM_PASSDB"], 0o600)
        inst.env.update(env)
    extra = "" if helper else "auth { helper = false }\n"
    # the harness writes its own auth { } block: put helper = false into it
    inst = start_instance(prepare, listeners=LISTENERS, domains=DOMAINS,
                          listener_extra={n: PLAIN for n in LISTENERS})
    if not helper:
        inst.stop()
        text = open(inst.config_path).read().replace(
            "auth { failure_delay", "auth { helper = false  failure_delay")
        assert "helper = false" in text
        open(inst.config_path, "w").write(text)
        inst.start()
    return inst


@pytest.fixture(scope="module")
def with_helper():
    inst = make(True)
    yield inst
    inst.cleanup()


def socket_path(inst):
    """The helper's abstract socket name, from its command line (-S NAME)."""
    pid = inst.children()["authd"]
    args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    return "\0" + args[args.index(b"-S") + 1].decode()


def test_pam_logins_work_through_the_helper(with_helper):
    inst = with_helper
    conn = imap_open(inst, "imap")
    _, tagged = imap_cmd(conn, "a", f'LOGIN dave@pam.test "{PASSWORD}"')
    assert tagged.startswith("a OK"), tagged + inst.log()[-2000:]
    conn.close()
    conn = pop3_open(inst, "pop3")
    assert pop3_cmd(conn, "USER dave@pam.test") == "+OK"
    assert pop3_cmd(conn, "PASS " + PASSWORD) == "+OK Logged in."
    conn.close()
    conn = smtp_open(inst, "submission")
    assert smtp_cmd(conn, "AUTH PLAIN " + sasl_plain("dave@pam.test", PASSWORD))[0] == 235
    conn.close()
    # a wrong password is still refused
    conn = imap_open(inst, "imap")
    _, tagged = imap_cmd(conn, "a", 'LOGIN dave@pam.test "wrong"')
    assert tagged.startswith("a NO [AUTHENTICATIONFAILED]"), tagged
    conn.close()
    assert "serving PAM checks on" in inst.log()


def proc_uid(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Uid:"):
            return int(line.split()[1])


def test_only_the_helper_keeps_root(with_helper):
    kids = with_helper.children()
    assert "authd" in kids, kids
    assert proc_uid(kids["authd"]) == 0
    for name in ("imapd", "pop3d", "smtpd"):
        assert proc_uid(kids[name]) != 0, name
    # no socket file anywhere a daemon could swap for a symlink: the name is abstract
    assert not os.path.exists(os.path.join(with_helper.dir, "state", "auth"))
    name = socket_path(with_helper)
    assert name.startswith("\0warren-authd-") and len(name) == len("\0warren-authd-") + 16


def ask(path, payload):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    data = s.recv(10)
    s.close()
    return data


def test_malformed_requests_are_refused(with_helper):
    path = socket_path(with_helper)
    good = b"WA1\0warren-test\0dave\0" + PASSWORD.encode() + b"\x00127.0.0.1\x00"
    assert ask(path, good) == b"Y"
    assert ask(path, good.replace(b"Pass-7", b"Pass-8")) == b"N"
    for bad in (b"", b"WA2\0warren-test\0dave\0x\0\0", b"WA1\0warren-test\0dave\0x",
                b"WA1\0\0dave\0x\0\0", b"WA1\0a\0b\0c\0d\0e\0", b"x" * 5000):
        assert ask(path, bad) == b"N", bad[:40]
    with_helper.wait_log("malformed, overlong or slow request refused")
    # only the configuration's PAM services, and never a uid 0 account
    assert ask(path, b"WA1\0su\0dave\0" + PASSWORD.encode() + b"\0\0") == b"N"
    with_helper.wait_log("PAM service su is not one of the configuration's")
    assert ask(path, b"WA1\0warren-test\0root\0x\0\0") == b"N"
    with_helper.wait_log("a check of a uid 0 account refused")


def test_other_users_cannot_use_the_helper(with_helper):
    path = socket_path(with_helper)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(1)
            os.setuid(1)   # "daemon": neither root nor the Warren user
            try:
                data = ask(path, b"WA1\0warren-test\0dave\0" + PASSWORD.encode() + b"\0\0")
                code = 0 if data == b"" else 2   # closed without an answer
            except (ConnectionError, OSError):
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    with_helper.wait_log("connection from uid 1 refused")


def test_daemons_send_passwords_only_to_a_root_helper(with_helper):
    """A name squatted by a non-root process gets no password: imapd checks the
    peer's uid before it sends the request."""
    import threading
    path = socket_path(with_helper)
    # stand in for the helper under a name nobody else uses, as uid 1
    fake = "\0warren-authd-fake" + str(os.getpid())
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(1)
            os.setuid(1)
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(fake)
            srv.listen(1)
            os.write(w, b"r")
            srv.settimeout(15)
            c, _ = srv.accept()
            c.settimeout(5)
            got = c.recv(100)
            os._exit(3 if got else 0)
        except socket.timeout:
            os._exit(4)   # the client never came: the probe proves nothing
        except Exception:
            os._exit(1)
    os.read(r, 1)
    from warren import BIN
    import subprocess
    # authcheck-like probe: the client code is the daemons' (common/auth-helper.c)
    probe = os.path.join(os.path.dirname(BIN), "tests", "authcheck")
    env = dict(os.environ, WARREN_AUTH_SOCKET=fake[1:])
    subprocess.run([probe, "pam", "warren-test", "dave"], input=PASSWORD + "\n", env=env,
                   capture_output=True, text=True, timeout=60)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, "the password went to a non-root peer"


def test_without_the_helper_the_same_login_fails():
    inst = make(False)
    try:
        assert "authd" not in inst.children()
        conn = imap_open(inst, "imap")
        _, tagged = imap_cmd(conn, "a", f'LOGIN dave@pam.test "{PASSWORD}"')
        assert tagged.startswith("a NO"), tagged
        conn.close()
    finally:
        inst.cleanup()
