"""Warren's log is Postfix's: Debian's pflogsumm, run on the log of a session
with local deliveries, rejected recipients, a bounce from a foreign MTA
(Postfix's smtp-sink refusing every RCPT) and a deferral, reports the counts
that were sent."""

import os
import re
import urllib.request
import shutil
import smtplib
import subprocess
import textwrap
import time

import pytest

from warren import SECRET_HASH, free_port
from protocols import start_instance

PFLOGSUMM = "/usr/sbin/pflogsumm"
SINK = "/usr/sbin/smtp-sink"
LISTENERS = {"smtp": ("smtp", "starttls"), "http": ("http", "none")}


def domains(sink_port, dead_port):
    return {
        "example.test": textwrap.dedent(f"""\
            mailbox alice {{ password = "{SECRET_HASH}" }}
            mailbox bob {{ password = "{SECRET_HASH}" }}
        """),
        "sink.test": f'type = remote\nrelay_host = "[127.0.0.1]:{sink_port}"\n',
        "down.test": f'type = remote\nrelay_host = "[127.0.0.1]:{dead_port}"\n',
    }


@pytest.fixture(scope="module")
def session():
    for tool in (PFLOGSUMM, SINK):
        if not os.access(tool, os.X_OK):
            pytest.fail(f"{tool} missing: scripts/deps.sh installs pflogsumm and postfix")
    sink_port, dead_port = free_port(), free_port()
    # smtp-sink refuses every RCPT with a 5xx: Warren's queue bounces
    args = [SINK, "-f", "RCPT", "-h", "sink.test"]
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    sink = subprocess.Popen(args + [f"127.0.0.1:{sink_port}", "10"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    inst = start_instance(listeners=LISTENERS, domains=domains(sink_port, dead_port),
                          extra="queue { scan_interval = 1s  retry_min = 1s  retry_max = 2s }\n")
    try:
        yield inst, sink_port
    finally:
        inst.cleanup()
        sink.terminate()
        sink.wait(timeout=5)


def mail(subject):
    return (f"From: sender@example.net\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@example.net>\r\n\r\nbody\r\n").encode()


def run_traffic(inst):
    with smtplib.SMTP(inst.address, inst.port("smtp"), timeout=15) as s:
        s.sendmail("sender@example.net", ["alice@example.test"], mail("one"))
        s.sendmail("sender@example.net", ["alice@example.test", "bob@example.test"], mail("two"))
    with smtplib.SMTP(inst.address, inst.port("smtp"), timeout=15) as s:
        s.ehlo("client.example.net")
        s.mail("sender@example.net")
        assert s.rcpt("nosuch@example.test")[0] == 550
        assert s.rcpt("ghost@example.test")[0] == 550
        assert s.rcpt("bob@example.test")[0] == 250
        s.data(mail("three"))
    # a local user sends to the refusing sink: bounced back to alice
    with smtplib.SMTP(inst.address, inst.port("smtp"), timeout=15) as s:
        s.sendmail("alice@example.test", ["someone@sink.test"], mail("four"))
    with smtplib.SMTP(inst.address, inst.port("smtp"), timeout=15) as s:
        s.sendmail("alice@example.test", ["someone@down.test"], mail("five"))


def pflogsumm(log_path):
    out = subprocess.run([PFLOGSUMM, "--syslog-name=warren", "--problems-first", log_path],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    counts = {}
    for name in ("received", "delivered", "forwarded", "deferred", "bounced", "rejected",
                 "held", "discarded"):
        m = re.search(rf"^\s*(\d+)\s+{name}\b", out.stdout, re.M)
        counts[name] = int(m.group(1)) if m else None
    return counts, out.stdout


def test_pflogsumm_counts(session):
    inst, sink_port = session
    run_traffic(inst)
    # the bounce notice is delivered to alice, the deferral logged at least once
    deadline = time.monotonic() + 20
    log = inst.log()
    while time.monotonic() < deadline:
        log = inst.log()
        if "status=bounced" in log and "status=deferred" in log and \
                log.count("status=sent") >= 5:
            break
        time.sleep(0.2)
    counts, report = pflogsumm(inst.log_path)
    print(report)
    assert counts["received"] == 5, report
    # one, two (two recipients) and three to local users, plus the bounce notice
    assert counts["delivered"] == 5, report
    assert counts["bounced"] == 1, report
    assert counts["rejected"] == 2, report
    assert counts["deferred"] == 1, report
    assert counts["held"] == 0 and counts["discarded"] == 0, report
    # the details pflogsumm takes from the same lines
    assert re.search(r"^\s*[1-9]\d*\s+bytes received", report, re.M), report
    assert re.search(rf"127\.0\.0\.1\[127\.0\.0\.1\]:{sink_port} \(total: 1\)", report), report
    assert "Connection refused" in report.split("message deferral detail")[1].split(
        "message bounce detail")[0], report
    rejects = report.split("message reject detail")[1].split("message reject warning")[0]
    assert "User unknown in local recipient table (total: 2)" in rejects, report
    assert "nosuch@example.test" in rejects and "ghost@example.test" in rejects
    # every delivery had its sender and size line (none "with no size data")
    assert "no size data" not in report, report

    # httpd's /metrics, counted by the daemons themselves, says the same
    with urllib.request.urlopen(f"http://{inst.address}:{inst.port('http')}/metrics",
                                timeout=10) as resp:
        text = resp.read().decode()
    metrics = dict(re.findall(r"^(warren_\S+) (\d+)$", text, re.M))
    assert metrics["warren_messages_received_total"] == "5", text
    assert metrics["warren_messages_delivered_total"] == "5", text
    assert metrics["warren_messages_bounced_total"] == "1", text
    assert metrics['warren_deliveries_total{daemon="smtpd",relay="smtp",status="bounced"}'] == "1"
    assert metrics['warren_deliveries_total{daemon="smtpd",relay="local",status="sent"}'] == "5"
    assert metrics["warren_notices_total"] == "1"
    # the deferred message waits in the queue
    assert metrics["warren_queue_messages"] == "1", text
    assert 0 <= int(metrics["warren_queue_oldest_message_age_seconds"]) < 120
    deferrals = int(re.search(r"deferred\s+\((\d+)\s+deferrals\)", report).group(1))
    # the queue may have retried once more between pflogsumm's read and the scrape
    assert int(metrics["warren_messages_deferred_total"]) >= deferrals >= 1
