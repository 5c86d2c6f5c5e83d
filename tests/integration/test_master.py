"""The master process: starting the daemons, restarting one that dies, reloading
on SIGHUP (good and bad configurations), stopping on SIGTERM, privileges."""

import os
import pwd
import re
import signal
import socket
import subprocess
import time

import pytest

from warren import BIN, SECRET_HASH
from protocols import (LineConn, imap_cmd, imap_open, pop3_cmd, pop3_open, sasl_plain,
                       smtp_cmd, smtp_open, warren_check)

DAEMONS = {"smtpd": "submissions", "imapd": "imaps", "pop3d": "pop3s"}


def wait_for(predicate, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def greets(inst, listener):
    try:
        conn = LineConn.open(inst, listener, timeout=5)
    except OSError:
        return False
    with conn:
        try:
            line = conn.readline()
        except Exception:
            return False
    return line.startswith(("220 ", "* OK", "+OK"))


def imap_login(inst, user, password="secret", listener="imaps", timeout=10):
    conn = imap_open(inst, listener, timeout=timeout)
    _, tagged = imap_cmd(conn, "l", f'LOGIN {user} "{password}"')
    return conn, tagged


def config_line_of(path, text):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if text in line:
                return n
    raise AssertionError(f"{text!r} not in {path}")


# ---- start ---------------------------------------------------------------------------

def test_all_daemons_run_after_start(warren):
    children = warren.children()
    assert set(children) == {"smtpd", "imapd", "pop3d"}
    assert len(set(children.values())) == 3
    assert all(pid_alive(pid) for pid in children.values())
    for listener in warren.listeners:
        assert greets(warren, listener), listener
    log = warren.log()
    for name, pid in children.items():
        assert f"started warren-{name} (pid {pid})" in log


def test_master_writes_pid_file(warren):
    path = os.path.join(warren.dir, "state", "warren.pid")
    with open(path) as f:
        assert int(f.read().strip()) == warren.proc.pid


def test_only_needed_daemons_start(make_warren):
    inst = make_warren(listeners={"imaps": ("imap", "implicit")})
    inst.start()
    time.sleep(0.3)
    assert set(inst.children()) == {"imapd"}


# ---- restart -------------------------------------------------------------------------

@pytest.mark.parametrize("daemon", sorted(DAEMONS))
def test_killed_daemon_is_restarted(warren, daemon):
    old = warren.children()
    os.kill(old[daemon], signal.SIGKILL)
    new = wait_for(lambda: (c := warren.children()).get(daemon) not in (None, old[daemon])
                   and c, timeout=8)
    assert new, f"warren-{daemon} was not restarted:\n{warren.log()[-3000:]}"
    assert new[daemon] != old[daemon]
    log = warren.wait_log(f"started warren-{daemon} (pid {new[daemon]})")
    assert f"warren-{daemon} (pid {old[daemon]}) killed by signal 9" in log
    # a process killed while attached to the store means recovery (DESIGN.md):
    # every daemon is stopped, the store recovered, and all of them started again
    assert "store needs recovery (a daemon ended abnormally)" in log
    assert "store recovered; starting the daemons again" in log
    assert f"restarting warren-{daemon} in 500 ms" in log
    for d, service in DAEMONS.items():
        assert wait_for(lambda: greets(warren, service), timeout=5), d


def test_restarted_imapd_logs_users_in(warren):
    old = warren.children()["imapd"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: warren.children().get("imapd") not in (None, old), timeout=5)
    conn, tagged = wait_for(lambda: _try_login(warren), timeout=5)
    assert tagged.startswith("l OK"), tagged
    conn.close()


def _try_login(inst):
    try:
        return imap_login(inst, "alice@example.test", timeout=2)
    except Exception:
        return None


def test_killing_one_daemon_recovers_and_others_serve_again(warren):
    pop = pop3_open(warren, "pop3s")
    assert pop3_cmd(pop, "AUTH PLAIN " + sasl_plain("bob@example.test", "secret")) == \
        "+OK Logged in."
    old = warren.children()
    os.kill(old["imapd"], signal.SIGKILL)
    warren.wait_log("store recovered; starting the daemons again")
    pop.close()
    new = wait_for(lambda: (c := warren.children()).get("pop3d") not in (None, old["pop3d"])
                   and c, timeout=5)
    assert new, warren.log()[-3000:]
    pop = wait_for(lambda: _try_pop_login(warren), timeout=5)
    assert pop, warren.log()[-3000:]
    assert pop3_cmd(pop, "NOOP").startswith("+OK")
    pop.close()


def _try_pop_login(inst):
    try:
        conn = pop3_open(inst, "pop3s")
        if pop3_cmd(conn, "AUTH PLAIN " + sasl_plain("bob@example.test", "secret")) == \
                "+OK Logged in.":
            return conn
        conn.close()
    except Exception:
        pass
    return None


def test_repeated_crashes_back_off(warren):
    first = warren.children()["imapd"]
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: (p := warren.children().get("imapd")) not in (None, first) and p,
                      timeout=5)
    assert second
    os.kill(second, signal.SIGKILL)
    log = warren.wait_log("restarting warren-imapd", count=2)
    # a daemon that dies again right away waits longer before the next start
    assert "restarting warren-imapd in 500 ms" in log
    assert "restarting warren-imapd in 1000 ms" in log
    third = wait_for(lambda: (p := warren.children().get("imapd")) not in (None, first, second)
                     and p, timeout=5)
    assert third
    assert wait_for(lambda: greets(warren, "imaps"), timeout=5)


# ---- reload --------------------------------------------------------------------------

def reload_and_wait(inst, count):
    inst.reload()
    # every daemon logs this once per reload
    inst.wait_log("reloaded configuration", count=count * 3)


def test_reload_adds_domain_and_keeps_sessions(warren):
    old_session, tagged = imap_login(warren, "alice@example.test")
    assert tagged.startswith("l OK")
    _, tagged = imap_login(warren, "dan@new.test")
    assert tagged.startswith("l NO")
    children = warren.children()

    warren.domains["new.test"] = f'mailbox dan {{ password = "{SECRET_HASH}" }}\n'
    warren.write_config()
    reload_and_wait(warren, 1)

    # the session opened before the reload goes on, still logged in
    assert imap_cmd(old_session, "n", "NOOP")[1] == "n OK NOOP completed."
    untagged, tagged = imap_cmd(old_session, "ls", 'LIST "" "INBOX"')
    assert tagged.startswith("ls OK") and untagged == ['* LIST (\\HasNoChildren) "/" INBOX']
    old_session.close()
    # the new domain's user logs in everywhere
    conn, tagged = imap_login(warren, "dan@new.test")
    assert tagged.startswith("l OK"), tagged
    conn.close()
    pop = pop3_open(warren, "pop3s")
    assert pop3_cmd(pop, "AUTH PLAIN " + sasl_plain("dan@new.test", "secret")) == \
        "+OK Logged in."
    pop.close()
    smtp = smtp_open(warren, "submissions")
    assert smtp_cmd(smtp, "AUTH PLAIN " + sasl_plain("dan@new.test", "secret"))[0] == 235
    smtp.close()
    # a reload is not a restart
    assert warren.children() == children
    assert warren.proc.poll() is None


def test_reload_removes_user(warren):
    del warren.domains["example.org"]
    warren.write_config()
    reload_and_wait(warren, 1)
    _, tagged = imap_login(warren, "carol@example.org")
    assert tagged.startswith("l NO [AUTHENTICATIONFAILED]"), tagged


def test_reload_with_invalid_config_is_refused(warren):
    warren.extra = "bogus_setting = 1\n"
    warren.domains["new.test"] = f'mailbox dan {{ password = "{SECRET_HASH}" }}\n'
    warren.write_config()
    line = config_line_of(warren.config_path, "bogus_setting")
    children = warren.children()
    warren.reload()
    log = warren.wait_log("reload refused")
    assert f"{warren.config_path}:{line}:" in log, log[-3000:]
    assert "bogus_setting" in log
    time.sleep(0.3)   # give the daemons time to (wrongly) act on it
    assert "reloaded configuration" not in warren.log()
    assert warren.proc.poll() is None
    assert warren.children() == children
    # the old configuration stays: old users log in, the new domain does not exist
    conn, tagged = imap_login(warren, "alice@example.test")
    assert tagged.startswith("l OK"), tagged
    conn.close()
    conn, tagged = imap_login(warren, "dan@new.test")
    assert tagged.startswith("l NO"), tagged
    conn.close()
    for listener in warren.listeners:
        assert greets(warren, listener), listener


def test_reload_after_refused_reload_works(warren):
    warren.extra = "bogus_setting = 1\n"
    warren.write_config()
    warren.reload()
    warren.wait_log("reload refused")
    warren.extra = ""
    warren.domains["new.test"] = f'mailbox dan {{ password = "{SECRET_HASH}" }}\n'
    warren.write_config()
    reload_and_wait(warren, 1)
    conn, tagged = imap_login(warren, "dan@new.test")
    assert tagged.startswith("l OK"), tagged
    conn.close()


def test_restarted_daemon_uses_reloaded_config(warren):
    warren.domains["new.test"] = f'mailbox dan {{ password = "{SECRET_HASH}" }}\n'
    warren.write_config()
    reload_and_wait(warren, 1)
    old = warren.children()["pop3d"]
    os.kill(old, signal.SIGKILL)
    assert wait_for(lambda: warren.children().get("pop3d") not in (None, old), timeout=5)
    assert wait_for(lambda: greets(warren, "pop3s"), timeout=5)
    pop = pop3_open(warren, "pop3s")
    assert pop3_cmd(pop, "AUTH PLAIN " + sasl_plain("dan@new.test", "secret")) == \
        "+OK Logged in."
    pop.close()


# ---- stop ----------------------------------------------------------------------------

def test_sigterm_stops_everything(warren):
    children = warren.children()
    conn = imap_open(warren, "imaps")
    proc = warren.proc
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    for name, pid in children.items():
        assert wait_for(lambda: not pid_alive(pid), timeout=5), f"warren-{name} still runs"
    # sessions were told, ports are closed
    rest = conn.read_all_until_close(timeout=5)
    assert b"BYE" in rest
    for listener in warren.listeners:
        with pytest.raises(OSError):
            socket.create_connection((warren.address, warren.port(listener)), timeout=1).close()
    log = warren.log()
    assert "stopping (signal 15)" in log
    assert log.rstrip().endswith("stopped")
    assert not os.path.exists(os.path.join(warren.dir, "state", "warren.pid"))


def test_sigterm_with_open_sessions_is_prompt(warren):
    conns = [LineConn.open(warren, l) for l in ("smtp", "imap", "pop3")]
    for c in conns:
        c.readline()
    start = time.monotonic()
    warren.proc.send_signal(signal.SIGTERM)
    assert warren.proc.wait(timeout=10) == 0
    assert time.monotonic() - start < 6
    replies = [c.lines_until_close(timeout=5) for c in conns]
    assert replies[0][-1].startswith("421 4.3.2"), replies[0]
    assert replies[1][-1].startswith("* BYE"), replies[1]
    assert replies[2][-1].startswith("-ERR [SYS/TEMP]"), replies[2]


# ---- privileges ----------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="privileges are only dropped when run as root")
def test_daemons_run_as_unprivileged_user(warren):
    user = pwd.getpwnam(warren.user())
    for name, pid in warren.children().items():
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
        gids = re.search(r"^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
        assert set(map(int, uids)) == {user.pw_uid}, (name, uids)
        assert set(map(int, gids)) == {user.pw_gid}, (name, gids)
        groups = re.search(r"^Groups:[ \t]*(.*)$", status, re.M).group(1).split()
        assert all(int(g) == user.pw_gid for g in groups), (name, groups)


@pytest.mark.skipif(os.geteuid() != 0, reason="privileges are only dropped when run as root")
def test_restarted_daemon_runs_as_unprivileged_user(warren):
    user = pwd.getpwnam(warren.user())
    old = warren.children()["smtpd"]
    os.kill(old, signal.SIGKILL)
    pid = wait_for(lambda: (p := warren.children().get("smtpd")) not in (None, old) and p,
                   timeout=5)
    assert pid
    assert wait_for(lambda: greets(warren, "smtp"), timeout=5)
    with open(f"/proc/{pid}/status") as f:
        uid = int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))
    assert uid == user.pw_uid


# ---- warren -t -------------------------------------------------------------------------

def test_check_mode_accepts_good_config(warren):
    result = warren_check(warren.config_path)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    assert warren.config_path in result.stdout


def test_check_mode_does_not_start_anything(make_warren):
    inst = make_warren()
    result = warren_check(inst.config_path)
    assert result.returncode == 0, result.stderr
    for listener in inst.listeners:
        with pytest.raises(OSError):
            socket.create_connection((inst.address, inst.port(listener)), timeout=1).close()


def test_start_with_invalid_config_fails(make_warren):
    inst = make_warren(extra="bogus_setting = 1\n")
    proc = subprocess.run([os.path.join(BIN, "warren"), "-c", inst.config_path],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 1
    line = config_line_of(inst.config_path, "bogus_setting")
    assert f"{inst.config_path}:{line}:" in proc.stderr


# ---- what a reload changes --------------------------------------------------------------

def test_reload_password_change_takes_effect_at_once(warren):
    # a successful login is cached; the cache must not outlive the old password
    conn, tagged = imap_login(warren, "bob@example.test")
    assert tagged.startswith("l OK")
    conn.close()
    new_hash = subprocess.run([os.path.join(BIN, "warrenctl"), "passwd"],
                              input="n3w pass\n", capture_output=True, text=True,
                              timeout=20).stdout.strip()
    assert new_hash.startswith("$y$")
    warren.domains["example.test"] = warren.domains["example.test"].replace(
        f'mailbox bob {{ password = "{SECRET_HASH}" }}',
        f'mailbox bob {{ password = "{new_hash}" }}')
    assert new_hash in warren.domains["example.test"]
    warren.write_config()
    reload_and_wait(warren, 1)
    conn, tagged = imap_login(warren, "bob@example.test", "secret")
    assert tagged.startswith("l NO"), tagged
    conn.close()
    conn, tagged = imap_login(warren, "bob@example.test", "n3w pass")
    assert tagged.startswith("l OK"), tagged
    conn.close()


def test_reload_applies_new_listener_limits(warren):
    a = LineConn.open(warren, "pop3")
    assert a.readline().startswith("+OK")
    warren.listener_extra = {"pop3": "max_connections_per_ip = 1\n"}
    warren.write_config()
    reload_and_wait(warren, 1)
    b = LineConn.open(warren, "pop3")
    assert b.readline().startswith("-ERR [SYS/TEMP]")
    a.close()
    b.close()


def test_reload_picks_up_renewed_certificate(warren):
    from warren import make_cert
    from protocols import pem_to_der
    before = LineConn.open(warren, "imaps")
    old_der = before.sock.getpeercert(binary_form=True)
    assert old_der == pem_to_der(warren.cert)
    # renew: new key and certificate at the same paths
    make_cert(warren.dir, "default", ["mail.warren.test", "renewed.warren.test"])
    assert pem_to_der(warren.cert) != old_der
    reload_and_wait(warren, 1)
    after = LineConn.open(warren, "imaps")
    assert after.sock.getpeercert(binary_form=True) == pem_to_der(warren.cert)
    assert after.readline().startswith("* OK")
    # the session from before goes on with the old certificate
    assert before.readline().startswith("* OK")
    assert imap_cmd(before, "n", "NOOP")[1] == "n OK NOOP completed."
    before.close()
    after.close()


def test_daemon_restarted_after_refused_reload_still_serves(warren):
    """The running configuration stays after a refused reload: a daemon that dies
    afterwards must come back with it, not die on the broken file for good."""
    warren.extra = "bogus_setting = 1\n"
    warren.write_config()
    warren.reload()
    warren.wait_log("reload refused")
    old = warren.children()["imapd"]
    os.kill(old, signal.SIGKILL)
    ok = wait_for(lambda: _try_login(warren), timeout=5)
    assert ok, "imapd did not come back:\n" + warren.log()[-2500:]
    conn, tagged = ok
    assert tagged.startswith("l OK"), tagged
    conn.close()
