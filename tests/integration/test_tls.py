"""TLS on every listener: STARTTLS and implicit TLS with Python's clients and with
`openssl s_client`, protocol versions, SNI certificates per domain, and the
STARTTLS command-injection class of bugs (CVE-2011-0411)."""

import imaplib
import poplib
import smtplib
import ssl
import textwrap

import pytest

from warren import SECRET_HASH, client_context, make_cert
from protocols import (LineConn, cert_subject_cn, imap_cmd, imap_open, pem_to_der,
                       pop3_cmd, pop3_open, s_client, smtp_cmd, smtp_open,
                       smtp_reply, start_instance)

HOST = "127.0.0.1"
TIMEOUT = 10


def tls_version(sock):
    return sock.version()


@pytest.fixture(scope="module")
def shared_warren():
    """One suite for the read-only tests of this module (starting one per test
    costs a fresh RSA key each time)."""
    inst = start_instance()
    try:
        yield inst
    finally:
        inst.cleanup()


# ---- Python's clients: STARTTLS ----------------------------------------------------

@pytest.mark.parametrize("listener", ["smtp", "submission"])
def test_smtp_starttls_with_smtplib(warren, listener):
    with smtplib.SMTP(HOST, warren.port(listener), timeout=TIMEOUT) as smtp:
        code, _ = smtp.ehlo("client.test")
        assert code == 250
        assert smtp.has_extn("starttls")
        code, msg = smtp.starttls(context=client_context())
        assert code == 220 and b"Ready to start TLS" in msg
        assert tls_version(smtp.sock) in ("TLSv1.2", "TLSv1.3")
        code, _ = smtp.ehlo("client.test")
        assert code == 250
        assert not smtp.has_extn("starttls"), "STARTTLS still offered under TLS"
        assert smtp.noop()[0] == 250


def test_submission_offers_auth_only_after_starttls(warren):
    with smtplib.SMTP(HOST, warren.port("submission"), timeout=TIMEOUT) as smtp:
        smtp.ehlo("client.test")
        assert not smtp.has_extn("auth")
        smtp.starttls(context=client_context())
        smtp.ehlo("client.test")
        assert smtp.has_extn("auth")
        assert set(smtp.esmtp_features["auth"].upper().split()) == {"PLAIN", "LOGIN"}


def test_smtp_listener_never_offers_auth(warren):
    with smtplib.SMTP(HOST, warren.port("smtp"), timeout=TIMEOUT) as smtp:
        smtp.ehlo("client.test")
        smtp.starttls(context=client_context())
        smtp.ehlo("client.test")
        assert not smtp.has_extn("auth")


def test_submissions_implicit_tls_with_smtplib(warren):
    with smtplib.SMTP_SSL(HOST, warren.port("submissions"), timeout=TIMEOUT,
                          context=client_context()) as smtp:
        assert tls_version(smtp.sock) in ("TLSv1.2", "TLSv1.3")
        code, _ = smtp.ehlo("client.test")
        assert code == 250
        assert not smtp.has_extn("starttls")
        assert smtp.has_extn("auth")
        assert smtp.noop()[0] == 250


def test_imap_starttls_with_imaplib(warren):
    imap = imaplib.IMAP4(HOST, warren.port("imap"), timeout=TIMEOUT)
    try:
        assert "STARTTLS" in imap.capabilities
        assert "LOGINDISABLED" in imap.capabilities
        typ, _ = imap.starttls(ssl_context=client_context())
        assert typ == "OK"
        assert tls_version(imap.sock) in ("TLSv1.2", "TLSv1.3")
        assert "STARTTLS" not in imap.capabilities
        assert "LOGINDISABLED" not in imap.capabilities
        assert "AUTH=PLAIN" in imap.capabilities
        assert imap.noop()[0] == "OK"
    finally:
        imap.logout()


def test_imaps_implicit_tls_with_imaplib(warren):
    imap = imaplib.IMAP4_SSL(HOST, warren.port("imaps"), ssl_context=client_context(),
                             timeout=TIMEOUT)
    try:
        assert imap.welcome.startswith(b"* OK [CAPABILITY IMAP4rev1")
        assert imap.welcome.endswith(b"Warren ready.")
        assert "STARTTLS" not in imap.capabilities
        assert "AUTH=PLAIN" in imap.capabilities
        assert imap.noop()[0] == "OK"
    finally:
        imap.logout()


def test_pop3_stls_with_poplib(warren):
    pop = poplib.POP3(HOST, warren.port("pop3"), timeout=TIMEOUT)
    try:
        assert pop.getwelcome() == b"+OK Warren POP3 ready."
        caps = pop.capa()
        assert "STLS" in caps and "USER" not in caps and "SASL" not in caps
        pop.stls(context=client_context())
        assert tls_version(pop.sock) in ("TLSv1.2", "TLSv1.3")
        caps = pop.capa()
        assert "STLS" not in caps
        assert "USER" in caps
        assert caps["SASL"] == ["PLAIN", "LOGIN"]
    finally:
        pop.quit()


def test_pop3s_implicit_tls_with_poplib(warren):
    pop = poplib.POP3_SSL(HOST, warren.port("pop3s"), context=client_context(),
                          timeout=TIMEOUT)
    try:
        assert pop.getwelcome() == b"+OK Warren POP3 ready."
        caps = pop.capa()
        assert "STLS" not in caps and "USER" in caps
    finally:
        assert pop.quit().startswith(b"+OK")


# ---- openssl s_client ----------------------------------------------------------------

def s_client_lines(result):
    return result.stdout.decode("utf-8", "replace").replace("\r", "").splitlines()


def test_s_client_starttls_smtp(warren):
    r = s_client(warren, "submission", ["-starttls", "smtp"],
                 b"EHLO client.test\r\nQUIT\r\n")
    lines = s_client_lines(r)
    assert r.returncode == 0, r.stderr
    assert any(l.startswith("New, TLSv1.3") for l in lines), lines[:40]
    # the EHLO sent under TLS is answered without STARTTLS and with AUTH
    after = lines[next(i for i, l in enumerate(lines) if l.startswith("250-mail.warren.test")):]
    assert "250-AUTH PLAIN LOGIN" in after
    assert "250-STARTTLS" not in after
    assert "221 2.0.0 Bye" in after


def test_s_client_starttls_imap(warren):
    r = s_client(warren, "imap", ["-starttls", "imap"], b"a1 CAPABILITY\r\na2 LOGOUT\r\n")
    lines = s_client_lines(r)
    assert r.returncode == 0, r.stderr
    caps = [l for l in lines if l.startswith("* CAPABILITY")]
    assert len(caps) == 1, lines[-10:]
    assert "STARTTLS" not in caps[0] and "AUTH=PLAIN" in caps[0]
    assert "a1 OK Capability completed." in lines
    assert "* BYE Logging out" in lines
    assert any(l.startswith("a2 OK") for l in lines)


def test_s_client_starttls_pop3(warren):
    r = s_client(warren, "pop3", ["-starttls", "pop3"], b"CAPA\r\nQUIT\r\n")
    lines = s_client_lines(r)
    assert r.returncode == 0, r.stderr
    start = lines.index("+OK Capability list follows")
    caps = lines[start + 1:lines.index(".", start)]
    assert "USER" in caps and "STLS" not in caps
    assert "+OK Logging out." in lines


@pytest.mark.parametrize("listener,data,greeting", [
    ("submissions", b"QUIT\r\n", "220 mail.warren.test ESMTP Warren"),
    ("imaps", b"a LOGOUT\r\n", "* OK [CAPABILITY IMAP4rev1"),
    ("pop3s", b"QUIT\r\n", "+OK Warren POP3 ready."),
])
def test_s_client_implicit_tls_greeting(shared_warren, listener, data, greeting):
    warren = shared_warren
    r = s_client(warren, listener, [], data)
    lines = s_client_lines(r)
    assert r.returncode == 0, r.stderr
    assert any(l.startswith("New, TLSv1.3") for l in lines)
    assert any(l.startswith(greeting) for l in lines), lines[-10:]


# ---- protocol versions -----------------------------------------------------------------

LEGACY = ["-cipher", "DEFAULT@SECLEVEL=0"]
GOODBYE = {"imaps": b"a LOGOUT\r\n", "pop3s": b"QUIT\r\n", "submissions": b"QUIT\r\n"}


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
@pytest.mark.parametrize("listener", ["imaps", "pop3s", "submissions"])
def test_old_tls_versions_refused(shared_warren, listener, version):
    warren = shared_warren
    r = s_client(warren, listener, [version, *LEGACY], GOODBYE[listener])
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode != 0
    assert "Warren" not in out, "a greeting was sent over " + version
    assert "New, (NONE)" in out
    log = warren.wait_log("unsupported protocol")
    assert "TLS handshake failed" in log


@pytest.mark.parametrize("version,name", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
@pytest.mark.parametrize("listener", ["imaps", "pop3s", "submissions"])
def test_tls12_and_tls13_accepted(shared_warren, listener, version, name):
    r = s_client(shared_warren, listener, [version], GOODBYE[listener])
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, r.stderr
    assert f"New, {name}, Cipher is" in out
    assert "Warren" in out


def test_old_tls_refused_after_starttls(warren):
    r = s_client(warren, "imap", ["-starttls", "imap", "-tls1_1", *LEGACY], b"a LOGOUT\r\n")
    assert r.returncode != 0
    assert "New, (NONE)" in r.stdout.decode("utf-8", "replace")


@pytest.mark.parametrize("maxver,name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                                         (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_python_negotiates_tls12_and_tls13(shared_warren, maxver, name):
    warren = shared_warren
    ctx = client_context()
    ctx.maximum_version = maxver
    with LineConn.open(warren, "imaps", context=ctx) as conn:
        assert conn.sock.version() == name
        assert conn.readline().startswith("* OK [CAPABILITY")


def test_min_protocol_tls13_refuses_tls12(make_warren):
    inst = make_warren(extra="")
    # the harness's tls block sets no min_protocol: rewrite it
    text = inst.config_text().replace('tls { cert = "default.pem"  key = "default.key" }',
                                      'tls { cert = "default.pem"  key = "default.key"  '
                                      'min_protocol = TLSv1.3 }')
    assert "min_protocol = TLSv1.3" in text
    with open(inst.config_path, "w") as f:
        f.write(text)
    inst.start()
    assert s_client(inst, "imaps", ["-tls1_2"], b"a LOGOUT\r\n").returncode != 0
    r = s_client(inst, "imaps", ["-tls1_3"], b"a LOGOUT\r\n")
    assert r.returncode == 0 and b"New, TLSv1.3" in r.stdout


# ---- SNI -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sni_warren():
    """example.org has its own certificate (SANs example.org, imap.example.org,
    *.wild.example.org) and the host name mail.example.org."""
    def prepare(inst):
        cert, key = make_cert(inst.dir, "example.org",
                              ["example.org", "imap.example.org", "*.wild.example.org"])
        inst.domains["example.org"] = textwrap.dedent(f"""\
            hostnames = {{ "mail.example.org" }}
            tls {{ cert = "{cert}"  key = "{key}" }}
            mailbox carol {{ password = "{SECRET_HASH}" }}
        """)
        inst.write_config()
        inst.sni_cert = cert
    inst = start_instance(prepare)
    try:
        yield inst
    finally:
        inst.cleanup()


def peer_cert(inst, listener, server_hostname, starttls=None):
    if starttls == "smtp":
        conn = smtp_open(inst, listener)
        assert smtp_cmd(conn, "STARTTLS")[0] == 220
        conn.starttls(server_hostname=server_hostname)
    elif starttls == "imap":
        conn = imap_open(inst, listener)
        assert imap_cmd(conn, "s", "STARTTLS")[1].startswith("s OK")
        conn.starttls(server_hostname=server_hostname)
    elif starttls == "pop3":
        conn = pop3_open(inst, listener)
        assert pop3_cmd(conn, "STLS").startswith("+OK")
        conn.starttls(server_hostname=server_hostname)
    else:
        conn = LineConn.open(inst, listener, server_hostname=server_hostname)
    with conn:
        return conn.sock.getpeercert(binary_form=True)


@pytest.mark.parametrize("name", ["example.org", "mail.example.org", "imap.example.org",
                                  "MAIL.Example.ORG", "x.wild.example.org"])
@pytest.mark.parametrize("listener", ["imaps", "pop3s", "submissions"])
def test_sni_selects_domain_certificate(sni_warren, listener, name):
    der = peer_cert(sni_warren, listener, name)
    assert der == pem_to_der(sni_warren.sni_cert)
    assert cert_subject_cn(der) == "example.org"


@pytest.mark.parametrize("name", [None, "mail.warren.test", "example.test",
                                  "other.example.net", "org"])
def test_sni_other_names_get_default_certificate(sni_warren, name):
    der = peer_cert(sni_warren, "imaps", name)
    assert der == pem_to_der(sni_warren.cert)
    assert cert_subject_cn(der) == "mail.warren.test"


@pytest.mark.parametrize("listener,proto", [("submission", "smtp"), ("imap", "imap"),
                                            ("pop3", "pop3")])
def test_sni_after_starttls(sni_warren, listener, proto):
    assert peer_cert(sni_warren, listener, "mail.example.org", proto) == \
        pem_to_der(sni_warren.sni_cert)
    assert peer_cert(sni_warren, listener, "mail.warren.test", proto) == \
        pem_to_der(sni_warren.cert)


def test_s_client_servername_shows_domain_subject(sni_warren):
    r = s_client(sni_warren, "imaps", ["-servername", "mail.example.org"], b"a LOGOUT\r\n")
    assert r.returncode == 0
    out = r.stdout.decode()
    assert "subject=CN = example.org" in out
    r = s_client(sni_warren, "imaps", ["-servername", "mail.warren.test"], b"a LOGOUT\r\n")
    assert "subject=CN = mail.warren.test" in r.stdout.decode()


# ---- STARTTLS injection (CVE-2011-0411) ------------------------------------------------

def test_smtp_starttls_injection_is_discarded(warren):
    conn = LineConn.open(warren, "smtp")
    assert smtp_reply(conn)[0] == 220
    assert smtp_cmd(conn, "EHLO client.test")[0] == 250
    conn.send(b"STARTTLS\r\nXINJECTED\r\nNOOP\r\n")
    code, text = smtp_reply(conn)
    assert code == 220, text
    conn.starttls()
    # under TLS: the first reply must be the one to HELP, not one to NOOP/XINJECTED
    conn.send(b"HELP\r\nQUIT\r\n")
    lines = conn.lines_until_close()
    assert lines[0].startswith("214 "), lines
    assert lines[1:] == ["221 2.0.0 Bye"], lines
    log = warren.log()
    assert "XINJECTED" not in log, "the injected command was run"
    # EHLO, STARTTLS, HELP, QUIT: nothing else was counted as a command
    warren.wait_log("commands=4/4")


def test_smtp_starttls_injection_does_not_carry_state(warren):
    """An injected EHLO must not count as the EHLO under TLS."""
    conn = LineConn.open(warren, "submission")
    assert smtp_reply(conn)[0] == 220
    assert smtp_cmd(conn, "EHLO client.test")[0] == 250
    conn.send(b"STARTTLS\r\nEHLO evil.test\r\n")
    assert smtp_reply(conn)[0] == 220
    conn.starttls()
    code, text = smtp_cmd(conn, "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=")
    assert code == 503, text  # EHLO first: the one before TLS is forgotten


def test_imap_starttls_injection_is_discarded(warren):
    conn = LineConn.open(warren, "imap")
    assert conn.readline().startswith("* OK")
    conn.send(b'a STARTTLS\r\nb ID ("name" "injected")\r\nc NOOP\r\n')
    assert conn.readline() == "a OK Begin TLS negotiation now."
    conn.starttls()
    conn.send(b"d NOOP\r\ne LOGOUT\r\n")
    lines = conn.lines_until_close()
    assert lines[0] == "d OK NOOP completed.", lines
    assert lines[1:] == ["* BYE Logging out", "e OK Logout completed."], lines
    assert "injected" not in warren.log()


def test_imap_starttls_injected_login_is_discarded(warren):
    conn = LineConn.open(warren, "imap")
    assert conn.readline().startswith("* OK")
    conn.send(b"a STARTTLS\r\nb LOGIN alice@example.test secret\r\n")
    assert conn.readline().startswith("a OK")
    conn.starttls()
    untagged, tagged = imap_cmd(conn, "c", 'LIST "" "*"')
    assert tagged.startswith("c BAD"), (untagged, tagged)  # still not logged in
    assert "imap login" not in warren.log()


def test_pop3_stls_injection_is_discarded(warren):
    conn = LineConn.open(warren, "pop3")
    assert conn.readline().startswith("+OK")
    conn.send(b"STLS\r\nUSER alice@example.test\r\nCAPA\r\n")
    assert conn.readline() == "+OK Begin TLS negotiation now."
    conn.starttls()
    # had the USER been run, PASS would log in
    assert pop3_cmd(conn, "PASS secret") == "-ERR No USER given."
    conn.send(b"QUIT\r\n")
    assert conn.lines_until_close() == ["+OK Logging out."]
    assert "pop3 login" not in warren.log()


# ---- STARTTLS where it does not belong ----------------------------------------------------

def test_smtp_second_starttls_refused(warren):
    conn = smtp_open(warren, "smtp", tls="starttls")
    code, text = smtp_cmd(conn, "STARTTLS")
    assert code == 554 and text[0].startswith("5.5.1"), text
    assert smtp_cmd(conn, "NOOP")[0] == 250   # the session goes on under TLS
    conn.close()


def test_imap_second_starttls_refused(warren):
    conn = imap_open(warren, "imap", tls="starttls")
    _, tagged = imap_cmd(conn, "x", "STARTTLS")
    assert tagged.startswith("x BAD"), tagged
    assert imap_cmd(conn, "y", "NOOP")[1] == "y OK NOOP completed."
    conn.close()


def test_pop3_second_stls_refused(warren):
    conn = pop3_open(warren, "pop3", tls="starttls")
    assert pop3_cmd(conn, "STLS").startswith("-ERR")
    conn.send_line("CAPA")
    assert conn.readline().startswith("+OK")
    conn.close()


def test_starttls_refused_on_implicit_listeners(warren):
    conn = LineConn.open(warren, "submissions")
    assert smtp_reply(conn)[0] == 220
    assert smtp_cmd(conn, "EHLO client.test")[0] == 250
    code, _ = smtp_cmd(conn, "STARTTLS")
    assert code in (502, 554)
    conn.close()
    conn = LineConn.open(warren, "imaps")
    conn.readline()
    assert imap_cmd(conn, "a", "STARTTLS")[1].startswith("a BAD")
    conn.close()
    conn = LineConn.open(warren, "pop3s")
    conn.readline()
    assert pop3_cmd(conn, "STLS").startswith("-ERR")
    conn.close()


def test_smtp_starttls_with_argument_refused(warren):
    conn = smtp_open(warren, "smtp")
    code, _ = smtp_cmd(conn, "STARTTLS now")
    assert code == 501
    assert smtp_cmd(conn, "NOOP")[0] == 250
    conn.close()


def test_smtp_tls_required_refuses_commands_before_tls(make_warren):
    inst = make_warren(listener_extra={"submission": "tls_required = true\n"})
    inst.start()
    conn = smtp_open(inst, "submission")
    code, text = smtp_cmd(conn, "MAIL FROM:<a@example.test>")
    assert code == 530 and text[0].startswith("5.7.0"), text
    assert smtp_cmd(conn, "NOOP")[0] == 250
    assert smtp_cmd(conn, "STARTTLS")[0] == 220
    conn.starttls()
    assert smtp_cmd(conn, "EHLO client.test")[0] == 250
    code, text = smtp_cmd(conn, "MAIL FROM:<a@example.test>")
    assert "Must issue a STARTTLS" not in text[0]
    conn.close()


def test_garbage_instead_of_handshake_closes_connection(warren):
    conn = LineConn.open(warren, "imaps", tls=False)
    conn.send(b"a LOGIN alice@example.test secret\r\n")
    assert conn.closed_within(5)
    conn.close()
    # the daemon still serves
    with LineConn.open(warren, "imaps") as ok:
        assert ok.readline().startswith("* OK")
