"""warren-httpd: client auto-configuration (Thunderbird autoconfig, Outlook
autodiscover, Apple mobileconfig) and MTA-STS, each response parsed the way the
client parses it (xml.etree, plistlib) and checked against the listeners of the
test configuration; plus the master starting, restarting and reloading httpd."""

import http.client
import os
import plistlib
import re
import signal
import subprocess
import textwrap
import time
import xml.etree.ElementTree as ET

import pytest

from warren import BIN, LISTENERS, SECRET_HASH, WarrenInstance, wait_port
from protocols import LineConn, start_instance, warren_check

HOST = "mail.warren.test"          # the harness's global hostname
ORG_HOST = "mail.example.org"      # example.org's own hostnames entry

# every standard listener, a plaintext IMAP port that allows passwords without TLS
# (advertised as "plain"), a plaintext POP3 port that does not (never advertised)
HTTP_LISTENERS = dict(LISTENERS)
HTTP_LISTENERS.update({
    "imap-plain": ("imap", "none"),
    "pop3-plain": ("pop3", "none"),
    "http": ("http", "none"),
})
LISTENER_EXTRA = {"imap-plain": "auth_plaintext = yes\n"}

DOMAINS = {
    "example.test": textwrap.dedent(f"""\
        mailbox alice {{ password = "{SECRET_HASH}" }}
        mailbox bob {{ password = "{SECRET_HASH}" }}
    """),
    "example.org": textwrap.dedent(f"""\
        hostnames = {{ "{ORG_HOST}", "imap.example.org" }}
        mailbox carol {{ password = "{SECRET_HASH}" }}
    """),
    "relay.test": 'type = remote\nrelay_host = "127.0.0.1:1"\n',
}

SOCKET_TYPE = {"implicit": "SSL", "starttls": "STARTTLS", "none": "plain"}
KIND = {"imap": "imap", "pop3": "pop3", "submission": "smtp"}


@pytest.fixture(scope="module")
def suite():
    inst = start_instance(listeners=HTTP_LISTENERS, domains=DOMAINS,
                          listener_extra=LISTENER_EXTRA)
    yield inst
    inst.cleanup()


def expected_servers(inst):
    """{(kind, port, socketType)} a client must be told about, from the config."""
    out = set()
    for name, (service, tls) in inst.listeners.items():
        if service not in KIND:
            continue
        if tls == "none" and "auth_plaintext" not in LISTENER_EXTRA.get(name, ""):
            continue
        out.add((KIND[service], inst.port(name), SOCKET_TYPE[tls]))
    return out


def best_port(inst, service, tls="implicit"):
    return next(inst.port(n) for n, (s, t) in inst.listeners.items() if s == service and t == tls)


def request(inst, path, method="GET", body=None, host=None, headers=None):
    conn = http.client.HTTPConnection(inst.address, inst.port("http"), timeout=10)
    hdrs = dict(headers or {})
    if host is not None:
        hdrs["Host"] = host
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


# ---- Thunderbird autoconfig -----------------------------------------------------------

def autoconfig_servers(doc):
    provider = doc.find("emailProvider")
    servers = []
    for el in list(provider.findall("incomingServer")) + list(provider.findall("outgoingServer")):
        servers.append({
            "kind": el.get("type"),
            "hostname": el.findtext("hostname"),
            "port": int(el.findtext("port")),
            "socketType": el.findtext("socketType"),
            "username": el.findtext("username"),
            "authentication": el.findtext("authentication"),
            "element": el.tag,
        })
    return provider, servers


def check_autoconfig(inst, data, domain, hostname):
    doc = ET.fromstring(data)
    assert doc.tag == "clientConfig" and doc.get("version") == "1.1"
    provider, servers = autoconfig_servers(doc)
    assert provider.get("id") == domain
    assert [d.text for d in provider.findall("domain")] == [domain]
    assert {(s["kind"], s["port"], s["socketType"]) for s in servers} == expected_servers(inst)
    for s in servers:
        assert s["hostname"] == hostname
        assert s["username"] == "%EMAILADDRESS%"
        assert s["authentication"] == "password-cleartext"
        assert (s["element"] == "outgoingServer") == (s["kind"] == "smtp")
    # the first server of each kind is the one Thunderbird tries first: implicit TLS
    first = {}
    for s in servers:
        first.setdefault(s["kind"], s)
    assert first["imap"]["port"] == best_port(inst, "imap")
    assert first["imap"]["socketType"] == "SSL"
    assert first["smtp"]["port"] == best_port(inst, "submission")
    assert first["pop3"]["port"] == best_port(inst, "pop3")
    # the plaintext POP3 port without auth_plaintext is never offered
    assert inst.port("pop3-plain") not in {s["port"] for s in servers}


@pytest.mark.parametrize("path", ["/mail/config-v1.1.xml",
                                  "/.well-known/autoconfig/mail/config-v1.1.xml"])
def test_autoconfig_with_address(suite, path):
    resp, data = request(suite, path + "?emailaddress=alice%40example.test")
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("application/xml")
    check_autoconfig(suite, data, "example.test", HOST)


def test_autoconfig_uses_the_domains_hostname(suite):
    resp, data = request(suite, "/mail/config-v1.1.xml?emailaddress=carol@example.org")
    assert resp.status == 200
    check_autoconfig(suite, data, "example.org", ORG_HOST)


@pytest.mark.parametrize("host,domain,hostname", [
    ("autoconfig.example.org", "example.org", ORG_HOST),
    ("example.test", "example.test", HOST),
    ("autoconfig.example.test:8080", "example.test", HOST),
    ("imap.example.org", "example.org", ORG_HOST),
])
def test_autoconfig_without_address_takes_the_domain_from_host(suite, host, domain, hostname):
    """Thunderbird for Android and Geary send no ?emailaddress=."""
    resp, data = request(suite, "/mail/config-v1.1.xml", host=host)
    assert resp.status == 200
    check_autoconfig(suite, data, domain, hostname)


def test_autoconfig_without_address_or_known_host_is_generic(suite):
    resp, data = request(suite, "/.well-known/autoconfig/mail/config-v1.1.xml",
                         host="www.unknown.test")
    assert resp.status == 200
    provider, servers = autoconfig_servers(ET.fromstring(data))
    # every local domain, none of the remote ones
    assert sorted(d.text for d in provider.findall("domain")) == ["example.org", "example.test"]
    assert {(s["kind"], s["port"], s["socketType"]) for s in servers} == expected_servers(suite)
    assert all(s["username"] == "%EMAILADDRESS%" for s in servers)
    assert all(s["hostname"] == HOST for s in servers)


@pytest.mark.parametrize("address", ["alice@unknown.test", "x@relay.test", "no-at-sign",
                                     "@example.test", "a b@example.test"])
def test_autoconfig_unknown_or_bad_address_is_404(suite, address):
    from urllib.parse import quote
    resp, _ = request(suite, "/mail/config-v1.1.xml?emailaddress=" + quote(address))
    assert resp.status == 404


def test_autoconfig_with_curl(suite):
    url = (f"http://{suite.address}:{suite.port('http')}"
           "/mail/config-v1.1.xml?emailaddress=bob@example.test")
    out = subprocess.run(["curl", "-sS", "--fail", "--max-time", "10", url],
                         capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    check_autoconfig(suite, out.stdout, "example.test", HOST)


# ---- Outlook autodiscover ---------------------------------------------------------------

NS_REQ = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
NS_RESP = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
NS_OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"


def autodiscover_body(address, schema=NS_OUTLOOK):
    return (f'<?xml version="1.0" encoding="utf-8"?>\n'
            f'<Autodiscover xmlns="{NS_REQ}"><Request>'
            f'<EMailAddress>{address}</EMailAddress>'
            f'<AcceptableResponseSchema>{schema}</AcceptableResponseSchema>'
            f'</Request></Autodiscover>').encode()


def autodiscover_protocols(data):
    doc = ET.fromstring(data)
    assert doc.tag == f"{{{NS_RESP}}}Autodiscover"
    account = doc.find(f"{{{NS_OUTLOOK}}}Response/{{{NS_OUTLOOK}}}Account")
    assert account.findtext(f"{{{NS_OUTLOOK}}}AccountType") == "email"
    assert account.findtext(f"{{{NS_OUTLOOK}}}Action") == "settings"
    protos = {}
    for p in account.findall(f"{{{NS_OUTLOOK}}}Protocol"):
        fields = {child.tag.split("}")[1]: child.text for child in p}
        protos[fields["Type"]] = fields
    return protos


@pytest.mark.parametrize("path", ["/autodiscover/autodiscover.xml",
                                  "/Autodiscover/Autodiscover.xml"])
def test_autodiscover_implicit_tls_gets_ssl_only(suite, path):
    resp, data = request(suite, path, "POST", autodiscover_body("alice@example.test"),
                         headers={"Content-Type": "text/xml"})
    assert resp.status == 200
    protos = autodiscover_protocols(data)
    assert set(protos) == {"IMAP", "POP3", "SMTP"}
    for kind, service in (("IMAP", "imap"), ("POP3", "pop3"), ("SMTP", "submission")):
        p = protos[kind]
        assert p["Server"] == HOST
        assert int(p["Port"]) == best_port(suite, service)
        assert p["LoginName"] == "alice@example.test"
        assert p["SSL"] == "on"
        # Outlook would try STARTTLS on 993/995/465 if told <Encryption>TLS</Encryption>
        assert "Encryption" not in p
        assert p["AuthRequired"] == "on"


def test_autodiscover_uses_the_domains_hostname(suite):
    resp, data = request(suite, "/autodiscover/autodiscover.xml", "POST",
                         autodiscover_body("carol@example.org"))
    assert resp.status == 200
    assert {p["Server"] for p in autodiscover_protocols(data).values()} == {ORG_HOST}


def test_autodiscover_starttls_gets_encryption_tls(make_warren):
    listeners = {"submission": ("submission", "starttls"), "imap": ("imap", "starttls"),
                 "http": ("http", "none")}
    inst = make_warren(listeners=listeners, domains=DOMAINS)
    inst.start()
    resp, data = request(inst, "/autodiscover/autodiscover.xml", "POST",
                         autodiscover_body("bob@example.test"))
    assert resp.status == 200
    protos = autodiscover_protocols(data)
    assert set(protos) == {"IMAP", "SMTP"}     # no POP3 listener, none described
    assert int(protos["IMAP"]["Port"]) == inst.port("imap")
    assert int(protos["SMTP"]["Port"]) == inst.port("submission")
    for p in protos.values():
        assert p["Encryption"] == "TLS"
        assert "SSL" not in p


def test_autodiscover_unknown_domain_is_404(suite):
    resp, _ = request(suite, "/autodiscover/autodiscover.xml", "POST",
                      autodiscover_body("alice@unknown.test"))
    assert resp.status == 404


def test_autodiscover_bad_requests(suite):
    resp, data = request(suite, "/autodiscover/autodiscover.xml", "POST", b"<not xml")
    assert resp.status == 400
    assert ET.fromstring(data).find(f".//{{{NS_RESP}}}ErrorCode").text == "600"
    # ActiveSync's schema is not served: error 601 in the response schema
    resp, data = request(suite, "/autodiscover/autodiscover.xml", "POST",
                         autodiscover_body("alice@example.test", "http://schemas.microsoft.com/"
                                           "exchange/autodiscover/mobilesync/responseschema/2006"))
    assert resp.status == 200
    assert ET.fromstring(data).find(f".//{{{NS_RESP}}}ErrorCode").text == "601"
    # an address longer than any address: refused, never truncated into a valid one
    resp, data = request(suite, "/autodiscover/autodiscover.xml", "POST",
                         autodiscover_body("alice@example.test" + " " * 2000 + "x"))
    assert ET.fromstring(data).find(f".//{{{NS_RESP}}}ErrorCode").text == "600"
    resp, _ = request(suite, "/autodiscover/autodiscover.xml")
    assert resp.status == 405 and resp.getheader("Allow") == "POST"
    resp, _ = request(suite, "/autodiscover/autodiscover.xml", "POST", b"x" * (200 * 1024))
    assert resp.status == 413
    # after all of that the daemon still answers
    resp, _ = request(suite, "/autodiscover/autodiscover.xml", "POST",
                      autodiscover_body("alice@example.test"))
    assert resp.status == 200


def test_autodiscover_with_curl(suite):
    url = f"http://{suite.address}:{suite.port('http')}/Autodiscover/Autodiscover.xml"
    out = subprocess.run(["curl", "-sS", "--fail", "--max-time", "10", "-H",
                          "Content-Type: text/xml", "--data-binary", "@-", url],
                         input=autodiscover_body("bob@example.test"), capture_output=True,
                         timeout=20)
    assert out.returncode == 0, out.stderr
    assert autodiscover_protocols(out.stdout)["IMAP"]["LoginName"] == "bob@example.test"


def test_autodiscover_v2_json_points_to_the_pox_service(suite):
    """Newer Outlook first asks the JSON service (Autodiscover V2) for the URL of
    the POX one."""
    import json
    resp, data = request(suite, "/autodiscover/autodiscover.json/v1.0/alice@example.test"
                         "?Protocol=AutodiscoverV1&RedirectCount=1",
                         host="autodiscover.example.test")
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("application/json")
    assert json.loads(data) == {"Protocol": "AutodiscoverV1",
                                "Url": "https://autodiscover.example.test/Autodiscover/Autodiscover.xml"}
    # the query form, reached by address: the domain's mail host
    resp, data = request(suite, "/autodiscover/autodiscover.json?Email=carol%40example.org"
                         "&Protocol=autodiscoverv1")
    assert resp.status == 200
    assert json.loads(data)["Url"] == f"https://{ORG_HOST}/Autodiscover/Autodiscover.xml"
    resp, data = request(suite, "/autodiscover/autodiscover.json?Email=carol%40example.org"
                         "&Protocol=ActiveSync")
    assert resp.status == 400 and json.loads(data)["ErrorCode"] == "InvalidProtocol"
    resp, _ = request(suite, "/autodiscover/autodiscover.json/v1.0/x@unknown.test"
                      "?Protocol=AutodiscoverV1")
    assert resp.status == 404
    assert request(suite, "/autodiscover/autodiscover.jsonx")[0].status == 404


# ---- Apple configuration profile --------------------------------------------------------

def verify_profile(data):
    """(plist bytes, signer certificate PEM) of a signed profile, checking the CMS
    signature the way a device does (the chain itself is self-signed here)."""
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".pem") as signer:
        out = subprocess.run(["openssl", "cms", "-verify", "-inform", "DER", "-noverify",
                              "-binary", "-signer", signer.name], input=data,
                             capture_output=True, timeout=20)
        assert out.returncode == 0, out.stderr.decode()
        return out.stdout, open(signer.name).read()


def load_profile(data):
    return plistlib.loads(verify_profile(data)[0])


def cert_cn(pem):
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "multiline"],
                         input=pem.encode(), capture_output=True, timeout=20)
    return re.search(r"commonName\s*=\s*(\S+)", out.stdout.decode()).group(1)


def test_mobileconfig_profile(suite):
    resp, data = request(suite, "/apple/mobileconfig?emailaddress=carol@example.org")
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "application/x-apple-aspen-config"
    assert "example.org.mobileconfig" in resp.getheader("Content-Disposition")
    profile = load_profile(data)
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadVersion"] == 1
    (payload,) = profile["PayloadContent"]
    assert payload["PayloadType"] == "com.apple.mail.managed"
    assert payload["EmailAccountType"] == "EmailTypeIMAP"
    assert payload["EmailAddress"] == "carol@example.org"
    assert payload["IncomingMailServerHostName"] == ORG_HOST
    assert payload["IncomingMailServerPortNumber"] == best_port(suite, "imap")
    assert payload["IncomingMailServerUseSSL"] is True
    assert payload["IncomingMailServerUsername"] == "carol@example.org"
    assert payload["OutgoingMailServerHostName"] == ORG_HOST
    assert payload["OutgoingMailServerPortNumber"] == best_port(suite, "submission")
    assert payload["OutgoingMailServerUseSSL"] is True
    assert payload["IncomingMailServerAuthentication"] == "EmailAuthPassword"
    assert profile["PayloadUUID"] != payload["PayloadUUID"]
    # the same address gets the same UUIDs (a new download replaces the profile)
    again = load_profile(request(suite, "/apple/mobileconfig?emailaddress=carol@example.org")[1])
    assert again["PayloadUUID"] == profile["PayloadUUID"]
    other = load_profile(request(suite, "/apple/mobileconfig?emailaddress=alice@example.test")[1])
    assert other["PayloadUUID"] != profile["PayloadUUID"]
    assert other["PayloadContent"][0]["IncomingMailServerHostName"] == HOST


def test_mobileconfig_is_signed_with_the_domains_certificate(make_warren):
    from warren import make_cert
    inst = make_warren(listeners={"imaps": ("imap", "implicit"),
                                  "submissions": ("submission", "implicit"),
                                  "http": ("http", "none")}, domains=dict(DOMAINS))
    cert, key = make_cert(inst.dir, "org", [ORG_HOST])
    inst.domains["example.org"] += f'tls {{ cert = "{cert}"  key = "{key}" }}\n'
    inst.write_config()
    inst.start()
    _, signer = verify_profile(request(inst, "/apple/mobileconfig?emailaddress=carol@example.org")[1])
    assert cert_cn(signer) == ORG_HOST
    # a domain without its own certificate: the default one
    _, signer = verify_profile(request(inst, "/apple/mobileconfig?emailaddress=alice@example.test")[1])
    assert cert_cn(signer) == "mail.warren.test"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the key must be unreadable to httpd")
def test_mobileconfig_unsigned_when_the_key_is_unreadable(make_warren):
    inst = make_warren(listeners={"imaps": ("imap", "implicit"),
                                  "submissions": ("submission", "implicit"),
                                  "http": ("http", "none")}, domains=DOMAINS)
    os.chmod(inst.key, 0o600)          # root's; httpd runs as nobody
    inst.start()
    resp, data = request(inst, "/apple/mobileconfig?emailaddress=alice@example.test")
    assert resp.status == 200
    assert plistlib.loads(data)["PayloadContent"][0]["EmailAddress"] == "alice@example.test"
    assert "the profile goes out unsigned" in inst.wait_log("goes out unsigned")


def test_mobileconfig_escapes_the_address(suite):
    from urllib.parse import quote
    address = "o'neil&co@example.test"
    resp, data = request(suite, "/apple/mobileconfig?emailaddress=" + quote(address))
    assert resp.status == 200
    assert load_profile(data)["PayloadContent"][0]["EmailAddress"] == address


def test_mobileconfig_needs_a_known_address(suite):
    assert request(suite, "/apple/mobileconfig")[0].status == 400
    assert request(suite, "/apple/mobileconfig?emailaddress=a@unknown.test")[0].status == 404


def test_mobileconfig_pop3_only(make_warren):
    inst = make_warren(listeners={"pop3": ("pop3", "starttls"),
                                  "submission": ("submission", "starttls"),
                                  "http": ("http", "none")}, domains=DOMAINS)
    inst.start()
    resp, data = request(inst, "/apple/mobileconfig?emailaddress=alice@example.test")
    assert resp.status == 200
    payload = load_profile(data)["PayloadContent"][0]
    assert payload["EmailAccountType"] == "EmailTypePOP"
    assert payload["IncomingMailServerPortNumber"] == inst.port("pop3")
    assert payload["IncomingMailServerUseSSL"] is True      # STARTTLS


# ---- MTA-STS, errors ----------------------------------------------------------------------

def test_mta_sts_policy(suite):
    resp, data = request(suite, "/.well-known/mta-sts.txt", host="mta-sts.example.org")
    assert resp.status == 200
    fields = dict(line.split(": ", 1) for line in data.decode().splitlines())
    assert fields == {"version": "STSv1", "mode": "testing", "mx": ORG_HOST,
                      "max_age": "86400"}
    assert request(suite, "/.well-known/mta-sts.txt", host="mta-sts.unknown.test")[0].status == 404


def test_unknown_path_and_method(suite):
    assert request(suite, "/")[0].status == 404
    assert request(suite, "/../../etc/passwd")[0].status == 404
    resp, _ = request(suite, "/mail/config-v1.1.xml", "DELETE")
    assert resp.status == 405
    # garbage instead of HTTP: the daemon answers the next client all the same
    conn = LineConn.open(suite, "http", timeout=5)
    conn.sock.sendall(b"\x00\xff garbage \r\n\r\n")
    try:
        conn.sock.recv(4096)
    except OSError:
        pass
    conn.sock.close()
    assert request(suite, "/mail/config-v1.1.xml")[0].status == 200


def test_requests_are_logged(suite):
    request(suite, "/mail/config-v1.1.xml?emailaddress=alice@example.test")
    log = suite.wait_log("method=GET, path=/mail/config-v1.1.xml, status=200")
    assert "warren/httpd[" in log


# ---- the master and httpd ---------------------------------------------------------------

def test_master_starts_httpd_only_with_an_http_listener(make_warren):
    inst = make_warren(listeners={"imaps": ("imap", "implicit"), "http": ("http", "none")},
                       domains=DOMAINS)
    inst.start()
    assert set(inst.children()) == {"imapd", "httpd"}
    inst2 = make_warren(listeners={"imaps": ("imap", "implicit")}, domains=DOMAINS)
    inst2.start()
    time.sleep(0.3)
    assert set(inst2.children()) == {"imapd"}


def test_killed_httpd_is_restarted_without_touching_mail(make_warren):
    inst = make_warren(listeners={"imaps": ("imap", "implicit"), "http": ("http", "none")},
                       domains=DOMAINS)
    inst.start()
    before = inst.children()
    os.kill(before["httpd"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = inst.children()
        if now.get("httpd") not in (None, before["httpd"]):
            break
        time.sleep(0.05)
    assert now["httpd"] != before["httpd"]
    assert now["imapd"] == before["imapd"]       # mail was not stopped
    inst.wait_log(f"started warren-httpd (pid {now['httpd']})")
    assert wait_port(inst.address, inst.port("http"))
    log = inst.log()
    assert "store needs recovery" not in log
    assert request(inst, "/mail/config-v1.1.xml")[0].status == 200


def test_reload_adds_a_domain(make_warren):
    inst = make_warren(listeners={"imaps": ("imap", "implicit"),
                                  "submissions": ("submission", "implicit"),
                                  "http": ("http", "none")}, domains=dict(DOMAINS))
    inst.start()
    path = "/mail/config-v1.1.xml?emailaddress=dave@new.test"
    assert request(inst, path)[0].status == 404
    inst.domains["new.test"] = f'mailbox dave {{ password = "{SECRET_HASH}" }}\n'
    inst.write_config()
    inst.reload()
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline:
        status = request(inst, path)[0].status
        if status == 200:
            break
        time.sleep(0.1)
    assert status == 200
    assert re.search(r"warren/httpd\[\d+\]: reloaded configuration", inst.log())


def test_httpd_runs_alone(tmp_path):
    inst = WarrenInstance(listeners={"imaps": ("imap", "implicit"),
                                     "http": ("http", "none")}, domains=DOMAINS)
    proc = subprocess.Popen([os.path.join(BIN, "warren-httpd"), "-c", inst.config_path],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_port(inst.address, inst.port("http"))
        resp, data = request(inst, "/mail/config-v1.1.xml?emailaddress=alice@example.test")
        assert resp.status == 200
        _, servers = autoconfig_servers(ET.fromstring(data))
        assert [(s["port"], s["socketType"]) for s in servers] == [(inst.port("imaps"), "SSL")]
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=10)[0].decode()
        inst.cleanup()
    assert proc.returncode == 0
    assert "stopped" in out


def test_master_survives_a_missing_httpd_binary(tmp_path):
    """A suite installed without warren-httpd keeps serving mail: the master logs
    the failed start, retries with back-off, and does not fall over (a failed
    spawn's handle was once restarted before libuv had closed it)."""
    import shutil
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for prog in ("warren", "warren-imapd"):
        shutil.copy(os.path.join(BIN, prog), bindir / prog)
    inst = WarrenInstance(listeners={"imaps": ("imap", "implicit"), "http": ("http", "none")},
                          domains=DOMAINS)
    inst.logf = open(inst.log_path, "ab")
    inst.proc = subprocess.Popen([str(bindir / "warren"), "-c", inst.config_path],
                                 stdout=inst.logf, stderr=subprocess.STDOUT)
    try:
        inst.wait_log("cannot start", count=3, timeout=15)     # retried, still alive
        assert inst.proc.poll() is None, inst.log()
        conn = LineConn.open(inst, "imaps", timeout=5)
        assert conn.readline().startswith("* OK")
        conn.sock.close()
        assert "warren-httpd: no such file or directory" in inst.log()
    finally:
        inst.proc.send_signal(signal.SIGTERM)
        assert inst.proc.wait(timeout=15) == 0
        inst.proc = None
        inst.logf.close()
        inst.cleanup()


def _sanitizer_build():
    cache = os.path.join(os.environ.get("WARREN_BUILD", ""), "CMakeCache.txt")
    try:
        with open(cache) as f:
            return "WARREN_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


@pytest.mark.skipif(__import__("shutil").which("valgrind") is None,
                    reason="valgrind not installed")
@pytest.mark.skipif(_sanitizer_build(), reason="a sanitizer build: ASan checks it instead")
def test_httpd_valgrind_clean():
    """Every endpoint, bad requests and a reload under valgrind: no invalid access,
    nothing left allocated after SIGTERM."""
    inst = WarrenInstance(listeners=HTTP_LISTENERS, domains=DOMAINS,
                          listener_extra=LISTENER_EXTRA)
    proc = subprocess.Popen(["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=all",
                             "--errors-for-leak-kinds=all", "--error-exitcode=9", "--vgdb=no",
                             os.path.join(BIN, "warren-httpd"), "-c", inst.config_path],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_port(inst.address, inst.port("http"), timeout=60)
        for path, status in [("/mail/config-v1.1.xml?emailaddress=alice@example.test", 200),
                             ("/.well-known/autoconfig/mail/config-v1.1.xml", 200),
                             ("/apple/mobileconfig?emailaddress=carol@example.org", 200),
                             ("/apple/mobileconfig", 400), ("/metrics", 200), ("/nope", 404),
                             ("/autodiscover/autodiscover.json?Protocol=AutodiscoverV1", 200)]:
            assert request(inst, path)[0].status == status, path
        assert request(inst, "/.well-known/mta-sts.txt", host="mta-sts.example.org")[0].status == 200
        for body, status in [(autodiscover_body("alice@example.test"), 200), (b"<bad", 400),
                             (b"x" * 100000, 413)]:
            assert request(inst, "/autodiscover/autodiscover.xml", "POST", body)[0].status == status
        proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert request(inst, "/mail/config-v1.1.xml")[0].status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=120)[0].decode()
        inst.cleanup()
    assert proc.returncode == 0, out
    assert not re.search(r"^==\d+==", out, re.M), out
