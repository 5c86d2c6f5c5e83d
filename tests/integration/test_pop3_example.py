"""The example configuration (conf/example, as the README starts it) with its IMAP
and POP3 listeners on 2143/2993 and 2110/2995: mail sent over SMTP (2525) is read
with imaplib over STARTTLS and implicit TLS, with poplib over STLS and POP3S, with
curl pop3s://, and collected by fetchmail, normally and with SDPS from a
multi-drop domain added as a file in the example's domains/ folder."""

import imaplib
import os
import poplib
import re
import shutil
import smtplib
import socket
import subprocess

import pytest

from protocols import client_context
from test_pop3_fetchmail import FETCHMAIL, run_fetchmail
from warren import SECRET_HASH, SOURCE, WarrenInstance, free_port

HOST = "127.0.0.1"
TIMEOUT = 20
PASSWORD = "secret"
CURL = shutil.which("curl")

EXAMPLE_PORTS = {"smtp": 2525, "imap": 2143, "imaps": 2993, "pop3": 2110, "pop3s": 2995}

SDPS_DOMAIN = f"""domain "sdps.test" {{
	multidrop = "drop"
	mailbox drop {{ password = "{SECRET_HASH}" }}
	mailbox ann {{ password = "{SECRET_HASH}" }}
	mailbox ben {{ password = "{SECRET_HASH}" }}
}}
"""


class ExampleInstance(WarrenInstance):
    """conf/example/warren.conf as shipped, with state_dir, the certificate and the
    user moved into the test's folder, without the submission and http listeners.
    When the example's ports are taken (a `make run` on this machine), the
    listeners move to free ports and nothing else changes."""

    def write_config(self):
        self.ports = dict(EXAMPLE_PORTS)
        if not ports_free():
            self.ports = {name: free_port(HOST) for name in EXAMPLE_PORTS}
        src = os.path.join(SOURCE, "conf", "example")
        shutil.copytree(os.path.join(src, "domains"), os.path.join(self.dir, "domains"))
        with open(os.path.join(self.dir, "domains", "sdps.test.conf"), "w") as f:
            f.write(SDPS_DOMAIN)
        with open(os.path.join(src, "warren.conf")) as f:
            text = f.read()
        text = re.sub(r'(?ms)^listener (submissions?|http) \{.*?^\}\n', '', text)
        for name, port in EXAMPLE_PORTS.items():
            block = rf'(?ms)^(listener {name} \{{.*?port = ){port}\n'
            assert re.search(block, text), name
            text = re.sub(block, rf'\g<1>{self.ports[name]}\n', text)
        text = re.sub(r'(?m)^state_dir = .*$', 'state_dir = "state"', text)
        text = re.sub(r'(?m)^user = .*$', f'user = "{self.user()}"', text)
        text = re.sub(r'(?m)^(\s*)cert = .*$', r'\1cert = "default.pem"', text)
        text = re.sub(r'(?m)^(\s*)key = .*$', r'\1key = "default.key"', text)
        with open(self.config_path, "w") as f:
            f.write(text)
        for root, dirs, files in os.walk(self.dir):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)

    def expected_daemons(self):
        return 3


def ports_free():
    for port in EXAMPLE_PORTS.values():
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                return False
    return True


@pytest.fixture(scope="module")
def example():
    inst = ExampleInstance(listeners={"smtp": ("smtp", "starttls"),
                                      "imap": ("imap", "starttls"),
                                      "imaps": ("imap", "implicit"),
                                      "pop3": ("pop3", "starttls"),
                                      "pop3s": ("pop3", "implicit")})
    try:
        inst.start()
        yield inst
    except Exception:
        print(inst.log()[-20000:])
        raise
    finally:
        inst.cleanup()


def subdir(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    return d


def send(inst, rcpts, subject, sender="sender@remote.test"):
    body = (f"From: {sender}\r\nTo: list@lists.remote.test\r\nSubject: {subject}\r\n\r\n"
            f"hello\r\n.leading dot\r\n")
    with smtplib.SMTP(HOST, inst.port("smtp"), timeout=TIMEOUT) as smtp:
        smtp.sendmail(sender, rcpts, body)


def test_imap_on_2143_and_2993(example):
    send(example, ["bob@example.test"], "for imap")
    imap = imaplib.IMAP4(HOST, example.port("imap"), timeout=TIMEOUT)
    imap.starttls(ssl_context=client_context())
    assert imap.login("bob@example.test", PASSWORD)[0] == "OK"
    assert imap.select("INBOX")[0] == "OK"
    typ, data = imap.uid("SEARCH", None, "SUBJECT", '"for imap"')
    assert typ == "OK" and len(data[0].split()) == 1, data
    imap.logout()
    imap = imaplib.IMAP4_SSL(HOST, example.port("imaps"), ssl_context=client_context(), timeout=TIMEOUT)
    assert imap.login("bob@example.test", PASSWORD)[0] == "OK"
    assert imap.select("INBOX", readonly=True)[0] == "OK"
    typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and b"Subject: for imap" in data[0][1], data
    imap.logout()


def test_poplib_on_2110_and_2995(example):
    send(example, ["alice@example.test"], "for pop3")
    pop = poplib.POP3(HOST, example.port("pop3"), timeout=TIMEOUT)
    pop.stls(context=client_context())
    pop.user("alice@example.test")
    pop.pass_(PASSWORD)
    count, _ = pop.stat()
    assert count >= 1
    uidls = pop.uidl()[1]
    pop.quit()
    pop = poplib.POP3_SSL(HOST, example.port("pop3s"), context=client_context(), timeout=TIMEOUT)
    pop.user("alice@example.test")
    pop.pass_(PASSWORD)
    assert pop.uidl()[1] == uidls
    lines = pop.retr(count)[1]
    assert b"Subject: for pop3" in lines and b".leading dot" in lines, lines
    pop.quit()


@pytest.mark.skipif(CURL is None, reason="curl not installed")
def test_curl_pop3s_on_2995(example):
    send(example, ["alice@example.test"], "for curl")
    auth = ["-u", f"alice@example.test:{PASSWORD}", "--insecure", "--max-time", "20"]
    listing = subprocess.run([CURL, "-s", *auth, f"pop3s://{HOST}:{example.port('pop3s')}/"],
                             capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    last = listing.stdout.strip().splitlines()[-1].split()[0]
    got = subprocess.run([CURL, "-s", *auth, f"pop3s://{HOST}:{example.port('pop3s')}/{last}"],
                         capture_output=True, text=True, timeout=30)
    assert got.returncode == 0, got.stderr
    assert "Subject: for curl" in got.stdout, got.stdout


@pytest.mark.skipif(not os.path.exists(FETCHMAIL), reason="fetchmail not installed")
def test_fetchmail_on_2995_and_2110(example, tmp_path):
    send(example, ["carol@example.org"], "fetch me 1")
    send(example, ["carol@example.org"], "fetch me 2")
    poll = (f"poll 127.0.0.1 service {example.port('pop3')} protocol pop3\n"
            f"  user 'carol@example.org' there with password '{PASSWORD}' is 'carol' here\n"
            "  options fetchall no keep no sslcertck sslproto 'TLS1.2+' mda 'MDA'\n")
    proc, deliveries = run_fetchmail(subdir(tmp_path, "stls"), poll)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(deliveries) == ["carol sender@remote.test fetch me 1",
                                  "carol sender@remote.test fetch me 2"], deliveries
    # collected and deleted: a POP3S run finds nothing more
    send(example, ["carol@example.org"], "fetch me 3")
    poll = poll.replace(f"service {example.port('pop3')}", f"service {example.port('pop3s')}").replace(
        "sslproto 'TLS1.2+'", "ssl")
    proc, deliveries = run_fetchmail(subdir(tmp_path, "pop3s"), poll)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert deliveries == ["carol sender@remote.test fetch me 3"], deliveries


@pytest.mark.skipif(not os.path.exists(FETCHMAIL), reason="fetchmail not installed")
def test_fetchmail_sdps_collects_the_multidrop_domain(example, tmp_path):
    send(example, ["ann@sdps.test"], "for ann", sender="bounces@remote.test")
    send(example, ["ben@sdps.test", "ann@sdps.test"], "for both", sender="bounces@remote.test")
    poll = (f"poll 127.0.0.1 service {example.port('pop3s')} protocol sdps aka sdps.test\n"
            f"  user 'drop@sdps.test' there with password '{PASSWORD}' is ann ben here\n"
            "  options ssl fetchall no keep no sslcertck mda 'MDA'\n")
    proc, deliveries = run_fetchmail(subdir(tmp_path, "sdps"), poll)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the envelope (*ENV) says who gets what: the headers name a list address
    assert sorted(deliveries) == ["ann bounces@remote.test for ann",
                                  "ann bounces@remote.test for both",
                                  "ben bounces@remote.test for both"], \
        proc.stdout + proc.stderr
