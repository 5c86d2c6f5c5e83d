"""warren-authd abandons a PAM check that hangs: each check runs in a process of its
own, killed (with what the module started) after auth.helper_timeout; the daemon
gives the client a temporary failure, and other PAM logins go on working. The hung
stack is a pam_exec script that sleeps far longer than the timeout."""

import os
import textwrap
import threading
import time

import pytest

import pamwrap
from protocols import (imap_cmd, imap_open, pop3_cmd, pop3_open, sasl_plain, smtp_cmd,
                       smtp_open, start_instance)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the helper runs only under a root master"),
    pytest.mark.skipif(not pamwrap.available(), reason="pam_wrapper is not installed"),
]

PAM_EXEC = "/usr/lib/x86_64-linux-gnu/security/pam_exec.so"
PASSWORD = "hang Pass-3"
TIMEOUT = 2.0
LISTENERS = {"imap": ("imap", "none"), "pop3": ("pop3", "none"),
             "submission": ("submission", "none")}
DOMAINS = {
    "pam.test": textwrap.dedent("""\
        auth = pam
        pam_service = "warren-test"
        mailbox dave { }
    """),
    "hang.test": textwrap.dedent("""\
        auth = pam
        pam_service = "warren-hang"
        mailbox erin { }
    """),
}


@pytest.fixture(scope="module")
def inst():
    if not os.path.exists(PAM_EXEC):
        pytest.skip("pam_exec is not installed")

    def prepare(inst):
        pamdir = os.path.join(inst.dir, "pam")
        os.makedirs(pamdir)
        os.chmod(pamdir, 0o755)
        env = pamwrap.setup(pamdir, [("dave", PASSWORD), ("erin", PASSWORD)],
                            services=("warren-test",), base_env={})
        script = os.path.join(pamdir, "hang.sh")
        with open(script, "w") as f:
            # one file per run with the pid of the sleeping script
            f.write(f"#!/bin/sh\necho $$ > {pamdir}/hang.$$\nexec sleep 60\n")
        os.chmod(script, 0o755)
        pamwrap.write_service(env["PAM_WRAPPER_SERVICE_DIR"], "warren-hang", [
            f"auth     required {PAM_EXEC} {script}",
            f"account  required {pamwrap.PAM_MATRIX} passdb={env['WARREN_TEST_PAM_PASSDB']}",
        ])
        inst.env.update(env)
        inst.pamdir = pamdir
        # into the harness's own auth { } block
        text = open(inst.config_path).read().replace(
            "auth { failure_delay", "auth { helper_timeout = 2s  failure_delay")
        assert "helper_timeout" in text
        with open(inst.config_path, "w") as f:
            f.write(text)

    inst = start_instance(prepare, listeners=LISTENERS, domains=DOMAINS,
                          listener_extra={n: "auth_plaintext = true\n" for n in LISTENERS})
    # the timeout reached the helper
    inst.wait_log("2000 ms each")
    yield inst
    inst.cleanup()


def hung_pids(inst):
    return [int(open(os.path.join(inst.pamdir, n)).read()) for n in os.listdir(inst.pamdir)
            if n.startswith("hang.") and n != "hang.sh"]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie not yet reaped by init counts as gone
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def imap_login(inst, user):
    c = imap_open(inst, "imap")
    _, tagged = imap_cmd(c, "a", f'LOGIN {user} "{PASSWORD}"', timeout=20)
    c.close()
    return tagged


def pop3_login(inst, user):
    c = pop3_open(inst, "pop3")
    assert pop3_cmd(c, f"USER {user}").startswith("+OK")
    reply = pop3_cmd(c, f"PASS {PASSWORD}", timeout=20)
    c.close()
    return reply


def smtp_login(inst, user):
    c = smtp_open(inst, "submission")
    code, text = smtp_cmd(c, "AUTH PLAIN " + sasl_plain(user, PASSWORD), timeout=20)
    c.close()
    return f"{code} {text[-1]}"


LOGINS = {"imap": imap_login, "pop3": pop3_login, "smtp": smtp_login}
TEMPFAIL = {"imap": "a NO [UNAVAILABLE]", "pop3": "-ERR [SYS/TEMP]", "smtp": "454 4.7.0"}
OK = {"imap": "a OK", "pop3": "+OK", "smtp": "235 "}


def test_hung_pam_check_is_a_temporary_failure(inst):
    # the three daemons at once: each waits for the helper's timeout
    results, took = {}, {}

    def run(proto):
        start = time.monotonic()
        results[proto] = LOGINS[proto](inst, "erin@hang.test")
        took[proto] = time.monotonic() - start

    threads = [threading.Thread(target=run, args=(p,)) for p in LOGINS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for proto in LOGINS:
        assert results.get(proto, "").startswith(TEMPFAIL[proto]), (proto, results,
                                                                    inst.log()[-3000:])
        assert TIMEOUT - 0.2 <= took[proto] <= TIMEOUT + 3, (proto, took)
    inst.wait_log("PAM service warren-hang did not answer within 2000 ms: check abandoned",
                  count=3)
    # the sleeping scripts went with the abandoned checks
    pids = hung_pids(inst)
    assert len(pids) == 3, pids
    deadline = time.monotonic() + 3
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids), "the hung PAM module's process was left running"


def test_other_logins_work_after_a_hang(inst):
    for proto in LOGINS:
        start = time.monotonic()
        reply = LOGINS[proto](inst, "dave@pam.test")
        assert reply.startswith(OK[proto]), (proto, reply, inst.log()[-3000:])
        assert time.monotonic() - start < TIMEOUT, proto
