"""warrenctl track: following messages through the suite's log by queue id,
Message-ID and address — received from, queued, delivered, bounced (with the
notice the bounce caused), deferred, rejected — after real SMTP sessions."""

import json
import os
import re
import smtplib
import subprocess
import textwrap
import time

import pytest

from warren import SECRET_HASH, free_port
from protocols import start_instance, warrenctl

SINK = "/usr/sbin/smtp-sink"
LISTENERS = {"smtp": ("smtp", "starttls")}


@pytest.fixture(scope="module")
def suite():
    if not os.access(SINK, os.X_OK):
        pytest.fail(f"{SINK} missing: scripts/deps.sh installs postfix")
    sink_port, dead_port = free_port(), free_port()
    args = [SINK, "-f", "RCPT", "-h", "sink.test"]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    sink = subprocess.Popen(args + [f"127.0.0.1:{sink_port}", "10"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    doms = {
        "example.test": f'mailbox alice {{ password = "{SECRET_HASH}" }}\n'
                        f'mailbox bob {{ password = "{SECRET_HASH}" }}\n'
                        'alias info { to = { "alice", "bob" } }\n',
        "sink.test": f'type = remote\nrelay_host = "[127.0.0.1]:{sink_port}"\n',
        "down.test": f'type = remote\nrelay_host = "[127.0.0.1]:{dead_port}"\n',
    }
    inst = start_instance(listeners=LISTENERS, domains=doms, log_level="info",
                          extra="queue { scan_interval = 1s  retry_min = 1s  retry_max = 2s }\n")
    try:
        with smtplib.SMTP(inst.address, inst.port("smtp"), timeout=15) as s:
            s.ehlo("client.example.net")
            s.mail("sender@example.net")
            assert s.rcpt("info@example.test")[0] == 250
            assert s.rcpt("nosuch@example.test")[0] == 550
            s.data(b"Subject: to info\r\nMessage-ID: <local.1@example.net>\r\n\r\nhi\r\n")
        with smtplib.SMTP(inst.address, inst.port("smtp"), timeout=15) as s:
            s.ehlo("client.example.net")
            s.mail("sender@example.net")
            assert s.rcpt("ghost@example.test")[0] == 550
        with smtplib.SMTP(inst.address, inst.port("smtp"), timeout=15) as s:
            s.sendmail("alice@example.test", ["someone@sink.test"],
                       b"Subject: refused\r\nMessage-ID: <bounce.2@example.test>\r\n\r\nx\r\n")
            s.sendmail("alice@example.test", ["later@down.test"],
                       b"Subject: later\r\nMessage-ID: <later.3@example.test>\r\n\r\nx\r\n")
        inst.wait_log("sender non-delivery notification: ", timeout=20)
        inst.wait_log("status=deferred", timeout=20)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and inst.log().count("status=sent") < 3:
            time.sleep(0.1)
        yield inst
    finally:
        inst.cleanup()
        sink.terminate()
        sink.wait(timeout=5)


def track(inst, *args):
    return warrenctl("-c", inst.config_path, "track", "--log", inst.log_path, *args)


def queue_id(inst, msgid):
    m = re.search(rf"warren/cleanup\[\d+\]: ([0-9A-F]+): message-id=<{re.escape(msgid)}>",
                  inst.log())
    assert m, inst.log()[-3000:]
    return m.group(1)


def test_track_by_message_id_local_delivery(suite):
    r = track(suite, "<local.1@example.net>")
    assert r.returncode == 0, r.stderr
    qid = queue_id(suite, "local.1@example.net")
    lines = r.stdout.splitlines()
    kinds = [l.split()[4] for l in lines if l.strip() and qid in l.split()[3:4]]
    # received from, message-id, queued as, one delivery per alias member, removed
    assert kinds[0] == "received" and "message-id" in kinds and "queued" in kinds
    assert kinds.count("delivered") == 2 and kinds[-1] == "removed"
    assert "client=unknown[127.0.0.1]" in r.stdout
    # the session it came in on: its connect line and the reject inside it
    assert re.search(r"\bconnect\s+smtpd\s+connect from unknown\[127\.0\.0\.1\]", r.stdout)
    assert "to=<nosuch@example.test>" in r.stdout and "rejected" in r.stdout
    summary = [l for l in lines if l.startswith(qid + ": ")]
    assert len(summary) == 1
    assert "from <sender@example.net> (received from unknown[127.0.0.1])" in summary[0]
    assert "<alice@example.test> sent" in summary[0] and "<bob@example.test> sent" in summary[0]


def test_track_bounce_by_queue_id_follows_the_notice(suite):
    qid = queue_id(suite, "bounce.2@example.test")
    r = track(suite, qid, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    events = [(e["id"], e["event"]) for e in doc["events"]]
    assert (qid, "bounced") in events and (qid, "notice") in events
    notice = re.search(r"notification: ([0-9A-F]+)",
                       [e["text"] for e in doc["events"] if e["event"] == "notice"][0]).group(1)
    # the notice's own hops: queued from <>, delivered to alice
    assert (notice, "queued") in events and (notice, "delivered") in events
    msgs = {m["id"]: m for m in doc["messages"]}
    assert msgs[qid]["recipients"] == [{"to": "someone@sink.test", "status": "bounced"}]
    assert msgs[notice]["from"] == ""
    assert msgs[notice]["recipients"] == [{"to": "alice@example.test", "status": "sent"}]
    bounced = [e for e in doc["events"] if e["event"] == "bounced"][0]
    assert bounced["program"] == "smtp" and "dsn=5." in bounced["text"]
    assert re.match(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d$", bounced["time"])


def test_track_by_address(suite):
    r = track(suite, "alice@example.test")
    assert r.returncode == 0, r.stderr
    # as a recipient (the alias copy, the notice) and as a sender (two messages)
    assert len([l for l in r.stdout.splitlines() if re.match(r"^[0-9A-F]+: from <", l)]) >= 4
    assert re.search(r"<later@down\.test> deferred", r.stdout)
    assert re.search(r"<someone@sink\.test> bounced", r.stdout)
    # a recipient refused inside a transaction: the message it was refused from
    r = track(suite, "nosuch@example.test")
    assert r.returncode == 0, r.stderr
    assert re.search(r" rejected\s+smtpd\s+reject: RCPT from .*<nosuch@example\.test>", r.stdout)
    assert "<local.1@example.net>" in r.stdout
    # an address that only appears in a NOQUEUE reject
    r = track(suite, "ghost@example.test")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^\S+ +\S+ \S+ +NOQUEUE +rejected +smtpd +reject: RCPT", r.stdout, re.M), \
        r.stdout


def test_track_nothing_found_and_bad_input(suite, tmp_path):
    r = track(suite, "nobody-at-all@example.test")
    assert r.returncode == 1 and "nothing about nobody-at-all@example.test" in r.stderr
    r = warrenctl("-c", suite.config_path, "track", "--log", str(tmp_path / "missing"), "x")
    assert r.returncode == 1 and "No such file or directory" in r.stderr
    r = warrenctl("-c", suite.config_path, "track")
    assert r.returncode == 2 and "usage:" in r.stderr
    # binary garbage and overlong lines are skipped, not a crash
    junk = tmp_path / "junk.log"
    junk.write_bytes(os.urandom(20000) + b"\n" + b"A" * 50000 + b"\n" +
                     b"Dec  1 10:00:00 h warren/smtpd[1]: ABC123: client=x[1.2.3.4]\n")
    r = warrenctl("-c", suite.config_path, "track", "--log", str(junk), "ABC123")
    assert r.returncode == 0 and "client=x[1.2.3.4]" in r.stdout


def test_track_time_range(suite, tmp_path):
    """--since/--until keep only the lines of that time range (classic syslog
    stamps have no year: this year is meant)."""
    log = tmp_path / "mail.log"
    log.write_text(
        "Nov 30 23:59:00 h warren/smtpd[1]: AAA111: client=old[192.0.2.1]\n"
        "Nov 30 23:59:01 h warren/qmgr[1]: AAA111: from=<x@example.net>, size=10, nrcpt=1\n"
        "Dec  1 00:00:05 h warren/smtpd[1]: BBB222: client=new[192.0.2.2]\n"
        "Dec  1 00:00:06 h warren/qmgr[1]: BBB222: from=<x@example.net>, size=10, nrcpt=1\n"
        "2026-12-02T08:00:00.123456+00:00 h warren/smtpd[1]: CCC333: client=rfc[192.0.2.3]\n"
        "2026-12-02T08:00:01.000000+00:00 h warren/qmgr[1]: CCC333: from=<x@example.net>, size=1, nrcpt=1\n")
    year = time.localtime().tm_year

    def ids(*args):
        r = warrenctl("-c", suite.config_path, "track", "--log", str(log), *args,
                      "x@example.net", "--json")
        assert r.returncode in (0, 1), r.stderr
        return sorted(m["id"] for m in json.loads(r.stdout)["messages"]) if r.returncode == 0 else []

    assert ids() == ["AAA111", "BBB222", "CCC333"]
    if year == 2026:
        assert ids("--since", "2026-12-01") == ["BBB222", "CCC333"]
        assert ids("--since", "2026-12-01", "--until", "2026-12-01 23:59") == ["BBB222"]
        assert ids("--until", "2026-11-30 23:59:30") == ["AAA111"]
    assert ids("--since", f"{year + 1}-01-01") == []
    r = warrenctl("-c", suite.config_path, "track", "--log", str(log), "--since", "yesterday",
                  "x@example.net")
    assert r.returncode == 2 and "a time is" in r.stderr
