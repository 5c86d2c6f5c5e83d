"""Logging in: SMTP AUTH, IMAP LOGIN/AUTHENTICATE and POP3 USER/PASS/AUTH for local
users and for a PAM domain, failures, plaintext refusal and the failure delay."""

import imaplib
import os
import poplib
import smtplib
import textwrap
import time

import pytest

import pamwrap
from warren import SECRET_HASH, client_context
from protocols import (LineConn, b64, imap_cmd, imap_open, pop3_cmd, pop3_multiline,
                       pop3_open, sasl_plain, smtp_cmd, smtp_open, start_instance,
                       warrenctl)

HOST = "127.0.0.1"
TIMEOUT = 10
ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@example.org"
PASSWORD = "secret"

# every way a login can be refused: wrong password, unknown user, no domain
BAD_LOGINS = [(ALICE, "Secret"), ("nobody@example.test", PASSWORD),
              ("alice", PASSWORD), ("alice@example.invalid", PASSWORD)]


@pytest.fixture(scope="module")
def shared_warren():
    """One suite for the tests that only log in (each failure is answered after
    the failure delay, which is per client address and per daemon)."""
    inst = start_instance()
    try:
        yield inst
    finally:
        inst.cleanup()


# ---- SMTP ----------------------------------------------------------------------------

def smtplib_submission(inst, listener):
    if listener == "submissions":
        smtp = smtplib.SMTP_SSL(HOST, inst.port(listener), timeout=TIMEOUT,
                                context=client_context())
        smtp.ehlo("client.test")
    else:
        smtp = smtplib.SMTP(HOST, inst.port(listener), timeout=TIMEOUT)
        smtp.ehlo("client.test")
        smtp.starttls(context=client_context())
        smtp.ehlo("client.test")
    return smtp


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("listener", ["submission", "submissions"])
def test_smtp_auth_success_with_smtplib(shared_warren, listener, mech):
    smtp = smtplib_submission(shared_warren, listener)
    try:
        smtp.user, smtp.password = CAROL, PASSWORD
        code, msg = smtp.auth(mech, getattr(smtp, "auth_" + mech.lower()))
        assert code == 235 and msg.startswith(b"2.7.0"), msg
        # authenticated: no more "530 Authentication required"
        code, msg = smtp.docmd("MAIL", "FROM:<carol@example.org>")
        assert code != 530, msg
        code, msg = smtp.docmd("AUTH", "PLAIN " + sasl_plain(CAROL, PASSWORD))
        assert code == 503, msg   # already authenticated
    finally:
        smtp.close()


@pytest.mark.parametrize("user,password", BAD_LOGINS)
def test_smtp_auth_failure_with_smtplib(shared_warren, user, password):
    smtp = smtplib_submission(shared_warren, "submissions")
    try:
        with pytest.raises(smtplib.SMTPAuthenticationError) as exc:
            smtp.login(user, password)
        assert exc.value.smtp_code == 535
        assert exc.value.smtp_error.startswith(b"5.7.8")
        code, _ = smtp.docmd("MAIL", "FROM:<x@example.test>")
        assert code == 530     # still not authenticated
    finally:
        smtp.close()


def test_smtp_auth_plain_without_initial_response(shared_warren):
    conn = smtp_open(shared_warren, "submissions")
    assert smtp_cmd(conn, "AUTH PLAIN") == (334, [""])
    assert smtp_cmd(conn, sasl_plain(BOB, PASSWORD))[0] == 235
    conn.close()


def test_smtp_auth_login_challenges(shared_warren):
    conn = smtp_open(shared_warren, "submissions")
    assert smtp_cmd(conn, "AUTH LOGIN") == (334, [b64("Username:")])
    assert smtp_cmd(conn, b64(BOB)) == (334, [b64("Password:")])
    assert smtp_cmd(conn, b64(PASSWORD))[0] == 235
    conn.close()


def test_smtp_auth_plain_two_spaces_windows_mail(shared_warren):
    conn = smtp_open(shared_warren, "submissions")
    code, text = smtp_cmd(conn, "AUTH PLAIN  " + sasl_plain(BOB, PASSWORD))
    assert code == 235, text
    conn.close()


def test_smtp_auth_cancel_and_unknown_mechanism(shared_warren):
    conn = smtp_open(shared_warren, "submissions")
    assert smtp_cmd(conn, "AUTH LOGIN")[0] == 334
    assert smtp_cmd(conn, "*")[0] == 501
    assert smtp_cmd(conn, "AUTH CRAM-MD5")[0] == 504
    assert smtp_cmd(conn, "AUTH PLAIN !!notbase64!!")[0] == 501
    # the session still works and can authenticate
    assert smtp_cmd(conn, "AUTH PLAIN " + sasl_plain(BOB, PASSWORD))[0] == 235
    conn.close()


def test_smtp_auth_refused_before_tls_on_submission(shared_warren):
    conn = smtp_open(shared_warren, "submission")
    code, text = smtp_cmd(conn, "EHLO client.test")
    assert not any(t.startswith("AUTH") for t in text)
    code, text = smtp_cmd(conn, "AUTH PLAIN " + sasl_plain(ALICE, PASSWORD))
    assert code == 538 and text[0].startswith("5.7.11"), text
    assert smtp_cmd(conn, "MAIL FROM:<alice@example.test>")[0] == 530
    conn.close()


def test_smtp_auth_not_on_mx_listener(shared_warren):
    conn = smtp_open(shared_warren, "smtp", tls="starttls")
    code, text = smtp_cmd(conn, "AUTH PLAIN " + sasl_plain(ALICE, PASSWORD))
    assert code == 503 and text[0].startswith("5.5.1"), text
    conn.close()


def test_smtp_auth_before_ehlo(shared_warren):
    conn = LineConn.open(shared_warren, "submissions")
    conn.readline()
    code, _ = smtp_cmd(conn, "AUTH PLAIN " + sasl_plain(ALICE, PASSWORD))
    assert code == 503
    conn.close()


# ---- IMAP ----------------------------------------------------------------------------

def assert_logged_in_imap(conn, tag="chk"):
    # only a logged-in session may list the user's folders
    untagged, tagged = imap_cmd(conn, tag, 'LIST "" "INBOX"')
    assert tagged.startswith(tag + " OK"), tagged
    assert untagged == ['* LIST (\\HasNoChildren) "/" INBOX'], untagged


def test_imap_login_with_imaplib(shared_warren):
    imap = imaplib.IMAP4_SSL(HOST, shared_warren.port("imaps"), ssl_context=client_context(),
                             timeout=TIMEOUT)
    try:
        typ, data = imap.login(ALICE, PASSWORD)
        assert typ == "OK"
        assert data[0].startswith(b"[CAPABILITY IMAP4rev1")
        assert data[0].endswith(b"Logged in")
        typ, data = imap.list('""', "INBOX")
        assert typ == "OK" and data == [b'(\\HasNoChildren) "/" INBOX']
    finally:
        imap.logout()


def test_imap_login_after_starttls_with_imaplib(shared_warren):
    imap = imaplib.IMAP4(HOST, shared_warren.port("imap"), timeout=TIMEOUT)
    try:
        imap.starttls(ssl_context=client_context())
        assert imap.login(CAROL, PASSWORD)[0] == "OK"
    finally:
        imap.logout()


@pytest.mark.parametrize("user,password", BAD_LOGINS)
def test_imap_login_failure(shared_warren, user, password):
    imap = imaplib.IMAP4_SSL(HOST, shared_warren.port("imaps"), ssl_context=client_context(),
                             timeout=TIMEOUT)
    try:
        with pytest.raises(imaplib.IMAP4.error) as exc:
            imap.login(user, password)
        assert "[AUTHENTICATIONFAILED]" in str(exc.value)
        assert imap.state == "NONAUTH"
        # still not logged in on the server's side either
        typ, _ = imap._simple_command("NOOP")
        assert typ == "OK"
    finally:
        imap.logout()


def test_imap_login_reply_carries_capabilities(shared_warren):
    conn = imap_open(shared_warren, "imaps")
    _, tagged = imap_cmd(conn, "40", f"LOGIN {ALICE} {PASSWORD}")
    assert tagged.startswith("40 OK [CAPABILITY IMAP4rev1 "), tagged
    caps = tagged.split("[CAPABILITY ", 1)[1].split("]", 1)[0].split()
    assert "AUTH=PLAIN" not in caps and "STARTTLS" not in caps and "LOGINDISABLED" not in caps
    assert_logged_in_imap(conn)
    conn.close()


def test_imap_authenticate_plain_sasl_ir(shared_warren):
    conn = imap_open(shared_warren, "imaps")
    _, tagged = imap_cmd(conn, "a", "AUTHENTICATE PLAIN " + sasl_plain(BOB, PASSWORD))
    assert tagged.startswith("a OK [CAPABILITY"), tagged
    assert_logged_in_imap(conn)
    conn.close()


def test_imap_authenticate_plain_with_continuation_like_thunderbird(shared_warren):
    conn = imap_open(shared_warren, "imap", tls="starttls")
    conn.send_line("52 authenticate PLAIN")
    assert conn.readline() == "+ "
    conn.send_line(sasl_plain(CAROL, PASSWORD))
    tagged = conn.readline()
    assert tagged.startswith("52 OK [CAPABILITY"), tagged
    assert_logged_in_imap(conn)
    conn.close()


def test_imap_authenticate_plain_with_imaplib(shared_warren):
    imap = imaplib.IMAP4_SSL(HOST, shared_warren.port("imaps"), ssl_context=client_context(),
                             timeout=TIMEOUT)
    try:
        typ, _ = imap.authenticate("PLAIN", lambda _: f"\0{BOB}\0{PASSWORD}".encode())
        assert typ == "OK" and imap.state == "AUTH"
    finally:
        imap.logout()


def test_imap_authenticate_login(shared_warren):
    conn = imap_open(shared_warren, "imaps")
    conn.send_line("a AUTHENTICATE LOGIN")
    assert conn.readline().startswith("+ ")
    conn.send_line(b64(ALICE))
    assert conn.readline().startswith("+ ")
    conn.send_line(b64(PASSWORD))
    assert conn.readline().startswith("a OK [CAPABILITY")
    assert_logged_in_imap(conn)
    conn.close()


def test_imap_authenticate_login_prompts(shared_warren):
    """LOGIN's challenges are base64 "Username:" and "Password:" (as SMTP sends
    them); clients such as Outlook answer by the prompt's text."""
    conn = imap_open(shared_warren, "imaps")
    conn.send_line("a AUTHENTICATE LOGIN")
    assert conn.readline() == "+ " + b64("Username:")
    conn.send_line(b64(ALICE))
    assert conn.readline() == "+ " + b64("Password:")
    conn.send_line(b64(PASSWORD))
    assert conn.readline().startswith("a OK [CAPABILITY")
    conn.close()
    # with the user name as initial response (SASL-IR) only the password is asked
    conn = imap_open(shared_warren, "imaps")
    conn.send_line("b AUTHENTICATE LOGIN " + b64(ALICE))
    assert conn.readline() == "+ " + b64("Password:")
    conn.close()


def test_imap_authenticate_wrong_password(shared_warren):
    conn = imap_open(shared_warren, "imaps")
    _, tagged = imap_cmd(conn, "a", "AUTHENTICATE PLAIN " + sasl_plain(BOB, "wrong"))
    assert tagged == "a NO [AUTHENTICATIONFAILED] Authentication failed."
    conn.send_line("b AUTHENTICATE PLAIN")
    assert conn.readline() == "+ "
    conn.send_line(sasl_plain("bob", PASSWORD))
    assert conn.readline() == "b NO [AUTHENTICATIONFAILED] Authentication failed."
    _, tagged = imap_cmd(conn, "c", 'LIST "" "*"')
    assert tagged.startswith("c BAD")   # not logged in
    conn.close()


def test_imap_authenticate_cancel(shared_warren):
    conn = imap_open(shared_warren, "imaps")
    conn.send_line("a AUTHENTICATE PLAIN")
    assert conn.readline() == "+ "
    conn.send_line("*")
    assert conn.readline().startswith("a BAD")
    _, tagged = imap_cmd(conn, "b", "NOOP")
    assert tagged == "b OK NOOP completed."
    conn.close()


def test_imap_plaintext_refused_before_tls(shared_warren):
    conn = LineConn.open(shared_warren, "imap")
    greeting = conn.readline()
    assert "LOGINDISABLED" in greeting and "AUTH=PLAIN" not in greeting
    _, tagged = imap_cmd(conn, "a", f"LOGIN {ALICE} {PASSWORD}")
    assert tagged.startswith("a NO [PRIVACYREQUIRED]"), tagged
    _, tagged = imap_cmd(conn, "b", "AUTHENTICATE PLAIN " + sasl_plain(ALICE, PASSWORD))
    assert tagged.startswith("b NO [PRIVACYREQUIRED]"), tagged
    conn.send_line("c AUTHENTICATE LOGIN")
    assert conn.readline().startswith("c NO [PRIVACYREQUIRED]")
    untagged, tagged = imap_cmd(conn, "d", "CAPABILITY")
    assert "LOGINDISABLED" in untagged[0]
    conn.close()


def test_imap_login_with_synchronizing_literals(shared_warren):
    conn = imap_open(shared_warren, "imaps")
    conn.send(f"a LOGIN {{{len(ALICE)}}}\r\n")
    assert conn.readline().startswith("+")
    conn.send(f"{ALICE} {{{len(PASSWORD)}}}\r\n")
    assert conn.readline().startswith("+")
    conn.send(f"{PASSWORD}\r\n")
    tagged = conn.readline()
    assert tagged.startswith("a OK [CAPABILITY"), tagged
    assert_logged_in_imap(conn)
    conn.close()


def test_imap_literal_waits_for_continuation(shared_warren):
    """A client sending a synchronizing literal gets '+' before it sends the data."""
    conn = imap_open(shared_warren, "imaps")
    conn.send(f"a LOGIN {{{len(ALICE)}}}\r\n")
    line = conn.readline()
    assert line.startswith("+ "), line
    conn.close()


# a password with spaces, quotes and a backslash
ODD_PASSWORD = 'pa ss "quoted" \\ end'


@pytest.fixture(scope="module")
def odd_password_warren():
    result = warrenctl("passwd", stdin=ODD_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    odd_hash = result.stdout.strip()
    inst = start_instance(domains={"example.test": textwrap.dedent(f"""\
        mailbox alice {{ password = "{SECRET_HASH}" }}
        mailbox odd {{ password = "{odd_hash}" }}
    """)})
    try:
        yield inst
    finally:
        inst.cleanup()


def test_imap_login_literal_plus_password_with_spaces_and_quotes(odd_password_warren):
    conn = imap_open(odd_password_warren, "imaps")
    pw = ODD_PASSWORD.encode()
    # LITERAL+: everything in one send, no continuation expected
    conn.send(b"a LOGIN odd@example.test {%d+}\r\n%s\r\n" % (len(pw), pw))
    tagged = conn.readline()
    assert tagged.startswith("a OK [CAPABILITY"), tagged
    assert_logged_in_imap(conn)
    conn.close()


def test_imap_login_quoted_password_with_escapes(odd_password_warren):
    conn = imap_open(odd_password_warren, "imaps")
    quoted = '"' + ODD_PASSWORD.replace("\\", "\\\\").replace('"', '\\"') + '"'
    _, tagged = imap_cmd(conn, "a", f'LOGIN "odd@example.test" {quoted}')
    assert tagged.startswith("a OK [CAPABILITY"), tagged
    conn.close()


def test_imap_literal_plus_wrong_password_fails(odd_password_warren):
    conn = imap_open(odd_password_warren, "imaps")
    pw = ODD_PASSWORD.replace("quoted", "Quoted").encode()
    conn.send(b"a LOGIN odd@example.test {%d+}\r\n%s\r\n" % (len(pw), pw))
    assert conn.readline() == "a NO [AUTHENTICATIONFAILED] Authentication failed."
    conn.close()


def test_pop3_and_smtp_password_with_spaces_and_quotes(odd_password_warren):
    conn = pop3_open(odd_password_warren, "pop3s")
    assert pop3_cmd(conn, "USER odd@example.test") == "+OK"
    assert pop3_cmd(conn, "PASS " + ODD_PASSWORD) == "+OK Logged in."
    conn.close()
    conn = smtp_open(odd_password_warren, "submissions")
    assert smtp_cmd(conn, "AUTH PLAIN " + sasl_plain("odd@example.test", ODD_PASSWORD))[0] == 235
    conn.close()


# ---- POP3 ----------------------------------------------------------------------------

def test_pop3_user_pass_with_poplib(shared_warren):
    pop = poplib.POP3_SSL(HOST, shared_warren.port("pop3s"), context=client_context(),
                          timeout=TIMEOUT)
    try:
        assert pop.user(ALICE) == b"+OK"
        assert pop.pass_(PASSWORD) == b"+OK Logged in."
        assert pop._shortcmd("NOOP").startswith(b"+OK")   # TRANSACTION state
    finally:
        pop.quit()


def test_pop3_user_pass_after_stls(shared_warren):
    pop = poplib.POP3(HOST, shared_warren.port("pop3"), timeout=TIMEOUT)
    try:
        pop.stls(context=client_context())
        pop.user(CAROL)
        assert pop.pass_(PASSWORD) == b"+OK Logged in."
    finally:
        pop.quit()


@pytest.mark.parametrize("user,password", BAD_LOGINS)
def test_pop3_user_pass_failure(shared_warren, user, password):
    pop = poplib.POP3_SSL(HOST, shared_warren.port("pop3s"), context=client_context(),
                          timeout=TIMEOUT)
    try:
        pop.user(user)
        with pytest.raises(poplib.error_proto) as exc:
            pop.pass_(password)
        assert exc.value.args[0] == b"-ERR [AUTH] Authentication failed."
        with pytest.raises(poplib.error_proto):
            pop._shortcmd("NOOP")   # still in AUTHORIZATION
    finally:
        pop.close()


def test_pop3_auth_plain_initial_response(shared_warren):
    conn = pop3_open(shared_warren, "pop3s")
    assert pop3_cmd(conn, "AUTH PLAIN " + sasl_plain(BOB, PASSWORD)) == "+OK Logged in."
    assert pop3_cmd(conn, "NOOP").startswith("+OK")
    conn.close()


def test_pop3_auth_plain_continuation(shared_warren):
    conn = pop3_open(shared_warren, "pop3", tls="starttls")
    assert pop3_cmd(conn, "AUTH PLAIN") == "+ "
    assert pop3_cmd(conn, sasl_plain(BOB, PASSWORD)) == "+OK Logged in."
    conn.close()


def test_pop3_auth_login(shared_warren):
    conn = pop3_open(shared_warren, "pop3s")
    assert pop3_cmd(conn, "AUTH LOGIN").startswith("+ ")
    assert pop3_cmd(conn, b64(CAROL)).startswith("+ ")
    assert pop3_cmd(conn, b64(PASSWORD)) == "+OK Logged in."
    conn.close()


def test_pop3_auth_login_prompts(shared_warren):
    """As in SMTP: the challenges are base64 "Username:" and "Password:"."""
    conn = pop3_open(shared_warren, "pop3s")
    assert pop3_cmd(conn, "AUTH LOGIN") == "+ " + b64("Username:")
    assert pop3_cmd(conn, b64(CAROL)) == "+ " + b64("Password:")
    assert pop3_cmd(conn, b64(PASSWORD)) == "+OK Logged in."
    conn.close()


def test_pop3_auth_failure_and_cancel(shared_warren):
    conn = pop3_open(shared_warren, "pop3s")
    assert pop3_cmd(conn, "AUTH PLAIN " + sasl_plain(BOB, "nope")) == \
        "-ERR [AUTH] Authentication failed."
    assert pop3_cmd(conn, "AUTH PLAIN") == "+ "
    assert pop3_cmd(conn, "*").startswith("-ERR")
    assert pop3_cmd(conn, "AUTH PLAIN " + sasl_plain(BOB, PASSWORD)) == "+OK Logged in."
    conn.close()


def test_pop3_auth_lists_mechanisms(shared_warren):
    conn = pop3_open(shared_warren, "pop3s")
    assert pop3_cmd(conn, "AUTH") == "+OK"
    assert pop3_multiline(conn) == ["PLAIN", "LOGIN"]
    conn.close()


def test_pop3_plaintext_refused_before_tls(shared_warren):
    conn = pop3_open(shared_warren, "pop3")
    conn.send_line("CAPA")
    assert conn.readline().startswith("+OK")
    caps = pop3_multiline(conn)
    assert "USER" not in caps and not any(c.startswith("SASL") for c in caps)
    reply = pop3_cmd(conn, f"USER {ALICE}")
    assert reply.startswith("-ERR [AUTH]"), reply
    assert pop3_cmd(conn, f"PASS {PASSWORD}").startswith("-ERR")
    reply = pop3_cmd(conn, "AUTH PLAIN " + sasl_plain(ALICE, PASSWORD))
    assert reply.startswith("-ERR [AUTH]"), reply
    conn.close()


# ---- case, plaintext listeners, cache ------------------------------------------------

def test_login_address_is_case_insensitive(shared_warren):
    conn = imap_open(shared_warren, "imaps")
    _, tagged = imap_cmd(conn, "a", f"LOGIN Alice@Example.TEST {PASSWORD}")
    assert tagged.startswith("a OK"), tagged
    conn.close()
    conn = pop3_open(shared_warren, "pop3s")
    assert pop3_cmd(conn, "AUTH PLAIN " + sasl_plain("BOB@EXAMPLE.TEST", PASSWORD)) == \
        "+OK Logged in."
    conn.close()


def test_password_is_case_sensitive_even_after_a_cached_success(shared_warren):
    conn = imap_open(shared_warren, "imaps")
    assert imap_cmd(conn, "a", f"LOGIN {CAROL} {PASSWORD}")[1].startswith("a OK")
    conn.close()
    conn = imap_open(shared_warren, "imaps")
    _, tagged = imap_cmd(conn, "a", f"LOGIN {CAROL} {PASSWORD.upper()}")
    assert tagged.startswith("a NO [AUTHENTICATIONFAILED]"), tagged
    conn.close()


def test_auth_plaintext_listeners_allow_login_without_tls(make_warren):
    inst = make_warren(listener_extra={name: "auth_plaintext = true\n"
                                       for name in ("submission", "imap", "pop3")})
    inst.start()
    conn = smtp_open(inst, "submission")
    code, text = smtp_cmd(conn, "EHLO client.test")
    assert "AUTH PLAIN LOGIN" in text
    assert smtp_cmd(conn, "AUTH PLAIN " + sasl_plain(ALICE, PASSWORD))[0] == 235
    conn.close()
    conn = LineConn.open(inst, "imap")
    greeting = conn.readline()
    assert "AUTH=PLAIN" in greeting and "LOGINDISABLED" not in greeting
    assert imap_cmd(conn, "a", f"LOGIN {ALICE} {PASSWORD}")[1].startswith("a OK")
    conn.close()
    conn = pop3_open(inst, "pop3")
    assert pop3_cmd(conn, f"USER {ALICE}") == "+OK"
    assert pop3_cmd(conn, f"PASS {PASSWORD}") == "+OK Logged in."
    conn.close()


# ---- failure delay ---------------------------------------------------------------------

def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def test_failure_delay_grows_and_is_bounded(make_warren):
    inst = make_warren()
    inst.start()
    conn = imap_open(inst, "imaps")
    times = []
    for i in range(5):
        (_, tagged), t = timed(lambda: imap_cmd(conn, f"f{i}", f"LOGIN {ALICE} wrong"))
        assert tagged.startswith(f"f{i} NO [AUTHENTICATIONFAILED]")
        times.append(t)
    # 100 ms, 200 ms, 400 ms, then at most 400 ms (+ the hash and some slack)
    assert times[0] >= 0.09, times
    assert times[1] >= 0.19 and times[1] > times[0], times
    assert times[2] >= 0.38 and times[2] > times[1], times
    assert all(0.38 <= t < 0.4 + 0.5 for t in times[3:]), times
    # a right password after the failures still logs in, and is not held back
    (_, tagged), t = timed(lambda: imap_cmd(conn, "ok", f"LOGIN {ALICE} {PASSWORD}"))
    assert tagged.startswith("ok OK"), tagged
    # the same hash check as each failure, without their 400 ms (a sanitizer build's
    # hash alone can take more than that)
    assert t < min(times[3:]) - 0.2, (t, times)
    conn.close()


def test_failure_delay_is_per_connection_address_not_per_session(make_warren):
    """New connections from the same address do not reset the delay."""
    inst = make_warren()
    inst.start()
    times = []
    for i in range(3):
        conn = pop3_open(inst, "pop3s")
        _, t = timed(lambda: pop3_cmd(conn, "AUTH PLAIN " + sasl_plain(ALICE, "wrong")))
        times.append(t)
        conn.close()
    assert times[0] >= 0.09 and times[1] >= 0.19 and times[2] >= 0.38, times
    # another client address is not held back by these failures
    conn = pop3_open(inst, "pop3s", source="127.0.0.2")
    reply, t = timed(lambda: pop3_cmd(conn, "AUTH PLAIN " + sasl_plain(ALICE, "wrong")))
    assert reply.startswith("-ERR [AUTH]")
    assert t < 0.38, t
    conn.close()


def test_failed_smtp_login_is_delayed(make_warren):
    inst = make_warren()
    inst.start()
    conn = smtp_open(inst, "submissions")
    (code, _), t1 = timed(lambda: smtp_cmd(conn, "AUTH PLAIN " + sasl_plain(ALICE, "x")))
    (code2, _), t2 = timed(lambda: smtp_cmd(conn, "AUTH PLAIN " + sasl_plain(ALICE, "y")))
    assert code == code2 == 535
    assert t1 >= 0.09 and t2 >= 0.19, (t1, t2)
    assert smtp_cmd(conn, "AUTH PLAIN " + sasl_plain(ALICE, PASSWORD))[0] == 235
    conn.close()


# ---- PAM -------------------------------------------------------------------------------

PAM_PASSWORD = "pam Pass-1"


@pytest.fixture(scope="module")
def pam_warren():
    if not pamwrap.available():
        pytest.skip("pam_wrapper is not installed")
    def prepare(inst):
        pamdir = os.path.join(inst.dir, "pam")
        os.makedirs(pamdir)
        os.chmod(pamdir, 0o755)
        # erin is known to PAM but has no mailbox in pam.test
        env = pamwrap.setup(pamdir, [("dave", PAM_PASSWORD), ("erin", PAM_PASSWORD)],
                            base_env={})
        inst.env.update(env)   # LD_PRELOAD for this instance only
    inst = start_instance(prepare, domains={
        "example.test": f'mailbox alice {{ password = "{SECRET_HASH}" }}\n',
        "pam.test": textwrap.dedent("""\
            auth = pam
            pam_service = "warren-test"
            mailbox dave { }
        """),
    })
    try:
        yield inst
    finally:
        inst.cleanup()


def test_pam_environment_is_not_in_the_test_runner():
    assert "libpam_wrapper" not in os.environ.get("LD_PRELOAD", "")


def test_pam_user_imap(pam_warren):
    conn = imap_open(pam_warren, "imaps")
    _, tagged = imap_cmd(conn, "a", f'LOGIN dave@pam.test "{PAM_PASSWORD}"')
    assert tagged.startswith("a OK [CAPABILITY"), tagged + pam_warren.log()[-3000:]
    assert_logged_in_imap(conn)
    conn.close()


def test_pam_user_pop3(pam_warren):
    conn = pop3_open(pam_warren, "pop3s")
    assert pop3_cmd(conn, "USER dave@pam.test") == "+OK"
    assert pop3_cmd(conn, "PASS " + PAM_PASSWORD) == "+OK Logged in."
    conn.close()


def test_pam_user_smtp(pam_warren):
    conn = smtp_open(pam_warren, "submissions")
    code, text = smtp_cmd(conn, "AUTH PLAIN " + sasl_plain("dave@pam.test", PAM_PASSWORD))
    assert code == 235, text
    conn.close()


def test_pam_user_wrong_password(pam_warren):
    conn = imap_open(pam_warren, "imaps")
    _, tagged = imap_cmd(conn, "a", 'LOGIN dave@pam.test "pam pass-1"')
    assert tagged == "a NO [AUTHENTICATIONFAILED] Authentication failed."
    conn.close()
    conn = pop3_open(pam_warren, "pop3s")
    assert pop3_cmd(conn, "AUTH PLAIN " + sasl_plain("dave@pam.test", "PAM PASS-1")) == \
        "-ERR [AUTH] Authentication failed."
    conn.close()
    conn = smtp_open(pam_warren, "submissions")
    assert smtp_cmd(conn, "AUTH PLAIN " + sasl_plain("dave@pam.test", "wrong"))[0] == 535
    conn.close()


def test_pam_domain_does_not_accept_undeclared_pam_users(pam_warren):
    """The PAM stack knows only dave, but only declared mailboxes may log in:
    a name PAM would accept must still be declared in the domain."""
    conn = imap_open(pam_warren, "imaps")
    _, tagged = imap_cmd(conn, "a", f'LOGIN erin@pam.test "{PAM_PASSWORD}"')
    assert tagged.startswith("a NO [AUTHENTICATIONFAILED]"), tagged
    conn.close()


def test_local_users_next_to_pam_domain(pam_warren):
    conn = imap_open(pam_warren, "imaps")
    assert imap_cmd(conn, "a", f"LOGIN {ALICE} {PASSWORD}")[1].startswith("a OK")
    conn.close()
