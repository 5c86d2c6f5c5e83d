"""fetchmail (the Debian package) against pop3d: collecting a mailbox over STLS
and over implicit TLS, and Demon's SDPS: a domain's multi-drop mailbox collected
with one account, fetchmail's protocol sdps (--protocol sdps) asking *ENV for each message's envelope
recipient and handing the message to that local user. fetchmail's MDA is a small
script that records who got what."""

import os
import stat
import subprocess
import textwrap

import pytest

from test_pop3 import (PASSWORD, addr, message, pop3_instance, store_list, storedeliver)

FETCHMAIL = "/usr/bin/fetchmail"

MDA = textwrap.dedent("""\
    import os, sys
    out, rcpt, sender = sys.argv[1], sys.argv[2], sys.argv[3]
    data = sys.stdin.buffer.read()
    subject = b""
    for line in data.split(b"\\n"):
        if line.lower().startswith(b"subject:"):
            subject = line[8:].strip()
            break
    with open(os.path.join(out, "deliveries.log"), "ab") as f:
        f.write(rcpt.encode() + b" " + sender.encode() + b" " + subject + b"\\n")
    with open(os.path.join(out, "%s.%d" % (rcpt, len(os.listdir(out)))), "wb") as f:
        f.write(data)
""")


@pytest.fixture(scope="module")
def suite():
    inst = pop3_instance()
    try:
        yield inst
    except Exception:
        print(inst.log()[-20000:])
        raise
    finally:
        inst.cleanup()


def run_fetchmail(tmp_path, poll, args=(), timeout=60):
    """Runs fetchmail once on an rc file holding poll; returns (proc, deliveries)."""
    out = tmp_path / "out"
    out.mkdir()
    mda = tmp_path / "mda.py"
    mda.write_text(MDA)
    rc = tmp_path / "fetchmailrc"
    rc.write_text("set no bouncemail\nset no syslog\n" +
                  poll.replace("MDA", f"/usr/bin/python3 {mda} {out} %T %F"))
    os.chmod(rc, stat.S_IRUSR | stat.S_IWUSR)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    proc = subprocess.run([FETCHMAIL, "-f", str(rc), "--idfile", str(tmp_path / "ids"),
                           "--pidfile", str(tmp_path / "pid"), "-N", "-v", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)
    log = out / "deliveries.log"
    deliveries = log.read_text().splitlines() if log.exists() else []
    return proc, deliveries


def poll_block(port, user, options, local="localuser"):
    return (f"poll 127.0.0.1 service {port} protocol pop3 {options}\n"
            f"  user '{addr(user)}' there with password '{PASSWORD}' is '{local}' here\n"
            f"  options fetchall no keep no sslcertck mda 'MDA'\n")


@pytest.mark.parametrize("mode", ["stls", "pop3s"])
def test_fetchmail_collects_a_mailbox(suite, tmp_path, mode):
    user = {"stls": "alice", "pop3s": "bob"}[mode]
    for i in range(3):
        storedeliver(suite, [user], message(f"{mode} {i}", f"text {i}\n.dot line\n"),
                     sender=f"s{i}@remote.test")
    if mode == "stls":
        poll = poll_block(suite.port("pop3"), user, "") + "  sslproto 'TLS1.2+'\n"
    else:
        poll = poll_block(suite.port("pop3s"), user, "") + "  ssl\n"
    proc, deliveries = run_fetchmail(tmp_path, poll)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # (without SDPS fetchmail takes %F from the From: header)
    assert sorted(deliveries) == [f"localuser sender@remote.test {mode} {i}" for i in range(3)]
    if mode == "stls":
        assert "STLS" in proc.stderr + proc.stdout
    # fetchmail gets the body byte-stuffing undone
    got = [p for p in (tmp_path / "out").iterdir() if p.name.startswith("localuser")]
    assert all(b"\n.dot line" in p.read_bytes() for p in got)
    # it deleted what it fetched (no keep): gone from the store at its QUIT
    assert store_list(suite, user) == []
    # a second run finds nothing
    again = tmp_path / "again"
    again.mkdir()
    proc, deliveries = run_fetchmail(again, poll)
    assert proc.returncode == 1, proc.stdout + proc.stderr      # 1: no mail
    assert deliveries == []


def test_fetchmail_sdps_multidrop_domain_mailbox(suite, tmp_path):
    # the domain's mail, each copy keeping its envelope recipient; the headers name
    # a list address, so only the envelope (*ENV) can tell who gets what
    plan = [("alice", "for alice 1"), ("bob", "for bob 1"), ("alice", "for alice 2"),
            ("carol", "for carol"), ("bob", "for bob 2")]
    for rcpt, subject in plan:
        storedeliver(suite, [f"drop=local-{rcpt}@example.test"],
                     "From: sender@remote.test\nTo: list@lists.remote.test\n"
                     f"Subject: {subject}\n\nhello {rcpt}\n",
                     sender="bounces@remote.test")
    # one message for three of them: three identical copies in a row, which
    # fetchmail tells apart only by the Delivered-To line pop3d puts first
    storedeliver(suite, [f"drop=local-{r}@example.test" for r in ("alice", "bob", "carol")],
                 "From: sender@remote.test\nTo: list@lists.remote.test\n"
                 "Subject: for all\n\nhello all\n", sender="bounces@remote.test")
    plan += [("alice", "for all"), ("bob", "for all"), ("carol", "for all")]
    poll = (f"poll 127.0.0.1 service {suite.port('pop3s')} protocol sdps "
            f"aka example.test\n"
            f"  user '{addr('drop')}' there with password '{PASSWORD}' "
            f"is local-alice local-bob local-carol here\n"
            f"  options ssl fetchall no keep no sslcertck mda 'MDA'\n")
    proc, deliveries = run_fetchmail(tmp_path, poll)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = sorted(d.split(" ", 2)[0] + " " + d.split(" ", 2)[2] for d in deliveries)
    want = sorted(f"local-{rcpt} {subject}" for rcpt, subject in plan)
    assert got == want, proc.stdout + proc.stderr
    # the envelope sender came from *ENV too (the From: header says otherwise)
    assert all(d.split(" ")[1] == "bounces@remote.test" for d in deliveries), deliveries
    assert store_list(suite, "drop") == []
