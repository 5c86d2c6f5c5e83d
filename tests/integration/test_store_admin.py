"""`warrenctl store verify [--repair]` and `warrenctl store backup DIR` (issue #3)
on a real suite: a clean store verifies clean; a damaged one is reported line by
line with exit status 1; --repair removes old orphan bodies and only those; a
backup taken while deliveries run starts as a new suite's state_dir with every
message committed before it, and verifies clean."""

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import time

import pytest

from warren import BIN, BUILD, SECRET_HASH, WarrenInstance, free_port

WARRENCTL = os.path.join(BIN, "warrenctl")
STORELOAD = os.path.join(BUILD, "tests", "storeload")
USER = "admin@example.test"
# only smtpd: the store is what is tested here, fed by storeload
SMTP_ONLY = {"smtp": ("smtp", "starttls")}
HOUR = 3600


def as_store_user(inst):
    """preexec_fn running a tool as the suite's user (the store files' owner)."""
    if os.geteuid() != 0:
        return None
    pw = pwd.getpwnam(inst.user())

    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return drop


def ctl(inst, *args, timeout=120):
    return subprocess.run([WARRENCTL, "-c", inst.config_path, *args], capture_output=True,
                          text=True, timeout=timeout)


def state_of(inst):
    return os.path.join(inst.dir, "state")


def deliver(inst, count, user=USER):
    """count deliveries through the store API; returns storeload's 'committed' lines."""
    proc = subprocess.run([STORELOAD, state_of(inst), "writer", user, str(count)],
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=as_store_user(inst))
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stdout.splitlines() if l.startswith("committed ")]
    assert len(lines) == count
    return lines


def body_files(inst):
    """{hex name: path} of every body file of the store."""
    found = {}
    blobs = os.path.join(state_of(inst), "blobs")
    for sub in os.listdir(blobs):
        if len(sub) != 2:
            continue
        for name in os.listdir(os.path.join(blobs, sub)):
            if re.fullmatch(r"[0-9a-f]{64}", name):
                found[name] = os.path.join(blobs, sub, name)
    return found


@pytest.fixture
def suite():
    inst = WarrenInstance(listeners=SMTP_ONLY, log_level="info")
    inst.start()
    try:
        yield inst
    except Exception:
        print(inst.log()[-10000:])
        raise
    finally:
        inst.cleanup()


def test_verify_is_clean_on_a_store_with_deliveries(suite):
    deliver(suite, 40)
    deliver(suite, 10, user="other@example.test")
    proc = ctl(suite, "store", "verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("store is consistent")
    # the same as JSON
    proc = ctl(suite, "--json", "store", "verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["consistent"] is True and report["faults"] == 0
    assert report["state_dir"] == state_of(suite)


def test_verify_reports_a_missing_and_a_truncated_body(suite):
    deliver(suite, 5)
    files = body_files(suite)
    assert len(files) == 5
    (gone_hex, gone), (short_hex, short) = sorted(files.items())[:2]
    saved = {p: open(p, "rb").read() for p in (gone, short)}
    try:
        os.unlink(gone)
        with open(short, "r+b") as f:
            f.truncate(10)
        proc = ctl(suite, "store", "verify")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        out = proc.stdout
        assert f"body {gone_hex}: file {gone} missing" in out, out
        assert f"body {short_hex}: file is 10 bytes, record says {len(saved[short])}" in out
        assert "2 faults found" in out
        # --repair does not hide faults it cannot repair
        proc = ctl(suite, "store", "verify", "--repair")
        assert proc.returncode == 1 and f"{gone} missing" in proc.stdout
    finally:
        for path, data in saved.items():
            with open(path, "wb") as f:
                f.write(data)
    proc = ctl(suite, "store", "verify")
    assert proc.returncode == 0, proc.stdout


def test_repair_removes_old_orphans_only(suite):
    deliver(suite, 3)
    blobs = os.path.join(state_of(suite), "blobs")
    old_orphan = os.path.join(blobs, "ab", "ab" + "1" * 62)
    new_orphan = os.path.join(blobs, "cd", "cd" + "2" * 62)
    stale_tmp = os.path.join(blobs, "tmp", "0123456789abcdef01234567")
    for path in (old_orphan, new_orphan, stale_tmp):
        with open(path, "w") as f:
            f.write("From: nobody\r\n\r\nleft by a crash\r\n")
    past = time.time() - 2 * HOUR
    os.utime(old_orphan, (past, past))
    os.utime(stale_tmp, (past, past))

    proc = ctl(suite, "store", "verify")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"orphan body file {old_orphan} (no references)" in proc.stdout
    assert f"stale temporary body file {stale_tmp}" in proc.stdout
    assert new_orphan not in proc.stdout     # younger than an hour: maybe in flight

    proc = ctl(suite, "store", "verify", "--repair")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"removed orphan body {old_orphan}" in proc.stdout
    assert f"removed stale temporary body file {stale_tmp}" in proc.stdout
    assert not os.path.exists(old_orphan) and not os.path.exists(stale_tmp)
    assert os.path.exists(new_orphan)
    assert len(body_files(suite)) == 3 + 1   # the delivered bodies are all there
    proc = ctl(suite, "store", "verify")
    assert proc.returncode == 0, proc.stdout
    os.unlink(new_orphan)


def test_backup_during_deliveries_starts_as_a_new_suite(suite, tmp_path):
    state = state_of(suite)
    committed = tmp_path / "committed.log"
    with open(committed, "w") as out:
        writer = subprocess.Popen([STORELOAD, state, "writer", USER, "1000000"], stdout=out,
                                  stderr=subprocess.PIPE, preexec_fn=as_store_user(suite))
    copy = WarrenInstance(listeners=SMTP_ONLY, log_level="info")
    try:
        deadline = time.monotonic() + 30
        while committed.read_text().count("committed ") < 200:
            assert writer.poll() is None, writer.stderr.read()
            assert time.monotonic() < deadline, "the writer committed too little"
            time.sleep(0.05)
        # everything committed before the backup starts must be in it
        before = committed.read_text().splitlines()
        before = [l for l in before if l.startswith("committed ")]
        dest = state_of(copy)
        proc = ctl(suite, "store", "backup", dest)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "backup of" in proc.stdout and "store is consistent" in proc.stdout
        assert writer.poll() is None, "the deliveries stopped during the backup"
        during = committed.read_text().count("committed ")
        assert during > len(before), "no delivery committed while the backup ran"
    finally:
        writer.send_signal(signal.SIGTERM)
        writer.wait(timeout=10)
    before_log = os.path.join(copy.dir, "before.log")   # readable by the store's user
    with open(before_log, "w") as f:
        f.write("\n".join(before) + "\n")
    os.chmod(before_log, 0o644)
    try:
        copy.start()
        check = subprocess.run([STORELOAD, dest, "check", USER, before_log],
                               capture_output=True, text=True, timeout=60,
                               preexec_fn=as_store_user(copy))
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"{len(before)} committed" in check.stdout and "0 faults" in check.stdout
        stored = int(re.search(r"(\d+) stored", check.stdout).group(1))
        assert len(before) <= stored <= during
        proc = ctl(copy, "store", "verify")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # the copy is a store of its own: it takes new deliveries
        deliver(copy, 5, user="after@example.test")
        assert ctl(copy, "store", "verify").returncode == 0
    finally:
        copy.cleanup()
    # and the original is unharmed
    proc = ctl(suite, "store", "verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_backup_keeps_queued_mail(tmp_path):
    """Mail waiting in the outbound queue is part of the backup: the copy, started
    as a suite of its own, still has it queued with its body."""
    closed = free_port()      # nothing listens there
    domains = {
        "example.test": f'mailbox admin {{ password = "{SECRET_HASH}" }}\n',
        "down.test": f'type = remote\nrelay_host = "[127.0.0.1]:{closed}"\n',
    }
    orig = WarrenInstance(listeners=SMTP_ONLY, log_level="info", domains=domains)
    copy = WarrenInstance(listeners=SMTP_ONLY, log_level="info", domains=domains)
    try:
        orig.start()
        body = b"Subject: waiting\r\n\r\nstill here after the backup\r\n"
        inject = subprocess.run([os.path.join(BUILD, "tests", "queueinject"), state_of(orig),
                                 "admin@example.test", "someone@down.test"], input=body,
                                capture_output=True, timeout=30, preexec_fn=as_store_user(orig))
        assert inject.returncode == 0, inject.stderr
        qid = inject.stdout.decode().strip()
        # the relay host refuses connections: the message stays queued (deferred)
        orig.wait_log(f"{qid}: to=<someone@down.test>")
        proc = ctl(orig, "store", "backup", state_of(copy))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        copy.start()
        shown = ctl(copy, "queue", "show", qid)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "someone@down.test" in shown.stdout
        assert "Subject: waiting" in shown.stdout      # show prints the headers
        with open(os.path.join(state_of(copy), "queue", qid), "rb") as f:
            assert b"still here after the backup" in f.read()
    finally:
        copy.cleanup()
        orig.cleanup()


def test_backup_refuses_the_store_itself(suite):
    proc = ctl(suite, "store", "backup", state_of(suite))
    assert proc.returncode == 1
    assert "is the store itself" in proc.stderr


def test_verify_without_a_store_fails_clearly(tmp_path):
    inst = WarrenInstance(listeners=SMTP_ONLY)
    try:
        proc = ctl(inst, "store", "verify")
        assert proc.returncode == 1
        assert "no store in" in proc.stderr
        proc = ctl(inst, "store", "frobnicate")
        assert proc.returncode == 2 and "unknown command" in proc.stderr
    finally:
        inst.cleanup()


def test_help_lists_the_store_commands():
    proc = subprocess.run([WARRENCTL, "--help"], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0
    assert "store verify [--repair]" in proc.stdout
    assert "store backup DIR" in proc.stdout
