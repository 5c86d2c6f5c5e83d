"""Access rules (domain and mailbox access { } blocks) and brute-force blocking
(security { }, `warrenctl ban`), through real logins with imaplib, poplib and
smtplib (AUTH on the submissions listener) from chosen loopback addresses."""

import datetime
import imaplib
import poplib
import smtplib
import socket
import textwrap
import time
import zoneinfo

import pytest

from protocols import warrenctl
from warren import SECRET_HASH, client_context
from protocols import start_instance

HOST = "127.0.0.1"
TIMEOUT = 10
PASSWORD = "secret"
LISTENERS = {
    "submissions": ("submission", "implicit"),
    "imaps": ("imap", "implicit"),
    "pop3s": ("pop3", "implicit"),
}
PROTOCOLS = ["imap", "pop3", "smtp"]


# ---- clients that connect from a chosen source address ----------------------------

class IMAP(imaplib.IMAP4_SSL):
    def __init__(self, port, source):
        self._source = source
        super().__init__(HOST, port, ssl_context=client_context(), timeout=TIMEOUT)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


class POP3(poplib.POP3_SSL):
    def __init__(self, port, source):
        self._source = source
        super().__init__(HOST, port, context=client_context(), timeout=TIMEOUT)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))
        return self.context.wrap_socket(sock, server_hostname=self.host)


def login(inst, proto, user, password, source="127.0.0.1"):
    """"OK" or the server's refusal text (with the SMTP code in front)."""
    if proto == "imap":
        conn = IMAP(inst.port("imaps"), source)
        try:
            conn.login(user, password)
            return "OK"
        except imaplib.IMAP4.error as e:
            text = e.args[0]
            return text.decode() if isinstance(text, bytes) else str(text)
        finally:
            try:
                conn.logout()
            except (imaplib.IMAP4.error, OSError):
                pass
    if proto == "pop3":
        conn = POP3(inst.port("pop3s"), source)
        try:
            conn.user(user)
            conn.pass_(password)
            return "OK"
        except poplib.error_proto as e:
            return e.args[0].decode()
        finally:
            try:
                conn.quit()
            except (poplib.error_proto, OSError):
                pass
    smtp = smtplib.SMTP_SSL(HOST, inst.port("submissions"), timeout=TIMEOUT,
                            context=client_context(), source_address=(source, 0))
    try:
        smtp.ehlo("client.test")
        # one AUTH command per login (smtplib's login() tries every mechanism)
        smtp.user, smtp.password = user, password
        smtp.auth("PLAIN", smtp.auth_plain)
        return "OK"
    except smtplib.SMTPAuthenticationError as e:
        return f"{e.smtp_code} {e.smtp_error.decode()}"
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass


# what each daemon answers: a wrong password, a rule, a switched-off service
WRONG = {"imap": "[AUTHENTICATIONFAILED]", "pop3": "-ERR [AUTH] Authentication failed",
         "smtp": "535 5.7.8 Error: authentication failed"}
DENIED = {"imap": "[AUTHORIZATIONFAILED]", "pop3": "-ERR [AUTH] Access not allowed",
          "smtp": "535 5.7.8 Error: authentication failed: access not allowed"}
DISABLED = {"imap": "[CONTACTADMIN]", "pop3": "-ERR [AUTH] POP3 access is disabled",
            "smtp": "550 5.7.1"}
LOGNAME = {"imap": "imap", "pop3": "pop3", "smtp": "smtp"}


def assert_refused(reply, expected):
    assert reply != "OK" and expected in reply, reply


# ---- access rules ---------------------------------------------------------------------

def clock(minutes):
    minutes %= 1440
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def time_rules():
    """Hour windows in Europe/Berlin that hold now and that do not, and a day
    rule that excludes today (computed from the current time)."""
    now = datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Berlin"))
    m = now.hour * 60 + now.minute
    inside = f"{clock(m - 60)}-{clock(m + 60)}"      # may run past midnight: fine
    outside = f"{clock(m + 120)}-{clock(m + 180)}"
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    today = now.weekday()
    if 5 <= m <= 1435:
        other_days = f"{days[(today + 1) % 7]}-{days[(today + 6) % 7]} 00:00-24:00"
    else:   # too close to midnight for a day rule to be sure: hours instead
        other_days = outside
    return inside, outside, other_days


def mailbox(name, access=""):
    block = f" access {{ {access} }}" if access else ""
    return f'mailbox {name} {{ password = "{SECRET_HASH}"{block} }}\n'


@pytest.fixture(scope="module")
def rules_warren():
    inside, outside, other_days = time_rules()
    berlin = 'timezone = "Europe/Berlin"'
    domains = {
        "example.test": "access { deny_networks = { \"127.0.0.3\" } }\n" + "".join([
            mailbox("alice"),
            mailbox("office", 'allow_networks = { "127.0.0.1/32", "::1/128" }'),
            mailbox("blocked", 'deny_networks = { "127.0.0.2/32" }'),
            mailbox("nopop", "pop3 = off"),
            mailbox("noimap", "imap = off"),
            mailbox("nosubmit", "submission = off"),
            mailbox("daytime", f'hours = {{ "{inside}" }} {berlin}'),
            mailbox("night", f'hours = {{ "{outside}" }} {berlin}'),
            mailbox("weekday", f'hours = {{ "{other_days}" }} {berlin}'),
            mailbox("expired", 'valid_until = "2020-01-31"'),
            mailbox("later", 'valid_from = "2099-01-01 08:00"'),
            mailbox("current", 'valid_from = "2020-01-01" valid_until = "2099-12-31"'),
        ]),
        # domain-level rules: IMAP off and office hours; a mailbox overrides both
        "example.org": (f"access {{ imap = off  hours = {{ \"{outside}\" }} {berlin} }}\n" +
                        mailbox("carol") +
                        mailbox("dave", f'imap = on  hours = {{ "{inside}" }}')),
    }
    inst = start_instance(listeners=LISTENERS, domains=domains)
    try:
        yield inst
    finally:
        inst.cleanup()


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_no_rules_logs_in(rules_warren, proto):
    assert login(rules_warren, proto, "alice@example.test", PASSWORD) == "OK"
    assert login(rules_warren, proto, "alice@example.test", PASSWORD, "127.0.0.2") == "OK"


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_allow_networks(rules_warren, proto):
    inst = rules_warren
    assert login(inst, proto, "office@example.test", PASSWORD, "127.0.0.1") == "OK"
    assert_refused(login(inst, proto, "office@example.test", PASSWORD, "127.0.0.2"),
                   DENIED[proto])
    inst.wait_log(f"{LOGNAME[proto]} login refused: user=<office@example.test>, "
                  "rip=127.0.0.2, rule=mailbox office@example.test allow_networks")


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_deny_networks_of_mailbox_and_domain(rules_warren, proto):
    inst = rules_warren
    assert login(inst, proto, "blocked@example.test", PASSWORD, "127.0.0.1") == "OK"
    assert_refused(login(inst, proto, "blocked@example.test", PASSWORD, "127.0.0.2"),
                   DENIED[proto])
    inst.wait_log(f"{LOGNAME[proto]} login refused: user=<blocked@example.test>, "
                  "rip=127.0.0.2, rule=mailbox blocked@example.test deny_networks")
    # the domain's deny list applies to every mailbox of it
    assert_refused(login(inst, proto, "alice@example.test", PASSWORD, "127.0.0.3"),
                   DENIED[proto])
    inst.wait_log(f"{LOGNAME[proto]} login refused: user=<alice@example.test>, "
                  "rip=127.0.0.3, rule=domain example.test deny_networks")


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_wrong_password_does_not_reveal_the_rule(rules_warren, proto):
    """Rules are checked after the password: without it, a refused client gets
    the answer of a wrong password."""
    reply = login(rules_warren, proto, "office@example.test", "wrong", "127.0.0.2")
    assert_refused(reply, WRONG[proto])
    assert "AUTHORIZATIONFAILED" not in reply and "not allowed" not in reply


@pytest.mark.parametrize("proto,user", [("imap", "noimap"), ("pop3", "nopop"),
                                        ("smtp", "nosubmit")])
def test_service_off_per_mailbox(rules_warren, proto, user):
    inst = rules_warren
    assert_refused(login(inst, proto, f"{user}@example.test", PASSWORD), DISABLED[proto])
    key = {"imap": "imap", "pop3": "pop3", "smtp": "submission"}[proto]
    inst.wait_log(f"{LOGNAME[proto]} login refused: user=<{user}@example.test>, "
                  f"rip=127.0.0.1, rule=mailbox {user}@example.test {key}")
    # the other services stay on
    for other in PROTOCOLS:
        if other != proto:
            assert login(inst, other, f"{user}@example.test", PASSWORD) == "OK", other


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_hours(rules_warren, proto):
    inst = rules_warren
    assert login(inst, proto, "daytime@example.test", PASSWORD) == "OK"
    assert_refused(login(inst, proto, "night@example.test", PASSWORD), DENIED[proto])
    inst.wait_log(f"{LOGNAME[proto]} login refused: user=<night@example.test>, "
                  "rip=127.0.0.1, rule=mailbox night@example.test hours")
    assert_refused(login(inst, proto, "weekday@example.test", PASSWORD), DENIED[proto])


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_valid_from_and_until(rules_warren, proto):
    inst = rules_warren
    assert_refused(login(inst, proto, "expired@example.test", PASSWORD), DENIED[proto])
    inst.wait_log(f"{LOGNAME[proto]} login refused: user=<expired@example.test>, "
                  "rip=127.0.0.1, rule=mailbox expired@example.test valid_until")
    assert_refused(login(inst, proto, "later@example.test", PASSWORD), DENIED[proto])
    inst.wait_log("rule=mailbox later@example.test valid_from")
    assert login(inst, proto, "current@example.test", PASSWORD) == "OK"


def test_domain_rules_and_mailbox_override(rules_warren):
    inst = rules_warren
    # carol has the domain's rules: IMAP off, then hours that exclude now
    assert_refused(login(inst, "imap", "carol@example.org", PASSWORD), DISABLED["imap"])
    inst.wait_log("imap login refused: user=<carol@example.org>, rip=127.0.0.1, "
                  "rule=domain example.org imap")
    assert_refused(login(inst, "pop3", "carol@example.org", PASSWORD), DENIED["pop3"])
    inst.wait_log("pop3 login refused: user=<carol@example.org>, rip=127.0.0.1, "
                  "rule=domain example.org hours")
    # dave switches IMAP back on and has his own hours (the domain's time zone)
    for proto in PROTOCOLS:
        assert login(inst, proto, "dave@example.org", PASSWORD) == "OK", proto


def test_bad_rules_are_config_errors(tmp_path):
    conf = tmp_path / "w.conf"
    conf.write_text(textwrap.dedent("""\
        state_dir = "state"
        security { exempt_networks = { "10.0.0.0/99" } }
        domain "example.test" {
            access { timezone = "Mars/Olympus_Mons"  hours = { "Mon-Fry 07:00-19:00" } }
            mailbox alice {
                access { deny_networks = { "not-a-net" }  valid_until = "31.12.2026" }
            }
        }
        """))
    r = warrenctl("-c", str(conf), "check")
    assert r.returncode == 1
    err = r.stderr
    assert "security: exempt_networks: \"10.0.0.0/99\" is not an address or network" in err
    assert "domain example.test: access: timezone: \"Mars/Olympus_Mons\"" in err
    assert "domain example.test: access: hours: \"Mon-Fry 07:00-19:00\"" in err
    assert "mailbox alice@example.test: access: deny_networks: \"not-a-net\"" in err
    assert "mailbox alice@example.test: access: valid_until: \"31.12.2026\"" in err
    conf.write_text('state_dir = "state"\ndomain "example.test" {\n'
                    '    mailbox alice { access { pop3 = maybe } }\n}\n')
    r = warrenctl("-c", str(conf), "check")
    assert r.returncode == 1 and 'pop3: "maybe" is not one of off, on, inherit' in r.stderr


# ---- brute force ------------------------------------------------------------------------

SECURITY = ("security { max_ip_failures = 3  max_user_failures = 5  failure_window = 2m  "
            "block_time = 1m  exempt_networks = { \"127.0.2.0/24\" }  hide_refusals = true }\n")


@pytest.fixture(scope="module")
def bf_warren():
    domains = {"example.test": mailbox("alice") + mailbox("bob") + mailbox("dave") +
               mailbox("erin") +
               "".join(mailbox(f"office{p}", 'allow_networks = { "127.0.0.1" }')
                       for p in PROTOCOLS),
               "example.org": mailbox("carol")}
    inst = start_instance(listeners=LISTENERS, extra=SECURITY, domains=domains)
    try:
        yield inst
    finally:
        inst.cleanup()


def ban(inst, *args):
    return warrenctl("-c", inst.config_path, "ban", *args)


def test_block_after_failures_then_ban_remove(bf_warren):
    inst = bf_warren
    src = "127.0.0.5"
    for _ in range(3):
        assert_refused(login(inst, "imap", "alice@example.test", "wrong", src), WRONG["imap"])
    inst.wait_log("imap: client 127.0.0.5 blocked for 60s after 3 failed logins "
                  "(security.max_ip_failures)")
    # blocked: even the right password is refused, with a wrong password's answer
    for proto in PROTOCOLS:
        assert_refused(login(inst, proto, "alice@example.test", PASSWORD, src), WRONG[proto])
        inst.wait_log(f"{LOGNAME[proto]} login refused: user=<alice@example.test>, "
                      "rip=127.0.0.5, rule=blocked address (for another")
    # other addresses are not blocked (and alice's own count is below 5)
    assert login(inst, "imap", "alice@example.test", PASSWORD, "127.0.0.6") == "OK"

    r = ban(inst, "list")
    assert r.returncode == 0, r.stderr
    assert "127.0.0.5" in r.stdout and "3 failed logins" in r.stdout
    r = ban(inst, "--json", "list")
    assert r.returncode == 0 and '"key":"127.0.0.5"' in r.stdout, r.stdout
    r = ban(inst, "remove", "127.0.0.5")
    assert r.returncode == 0 and "127.0.0.5: block removed" in r.stdout, r.stderr
    for proto in PROTOCOLS:
        assert login(inst, proto, "alice@example.test", PASSWORD, src) == "OK", proto
    r = ban(inst, "remove", "127.0.0.5")
    assert r.returncode == 1 and "is not blocked" in r.stderr


def test_failures_count_across_daemons(bf_warren):
    inst = bf_warren
    src = "127.0.0.7"
    # one failure on each daemon: three in all, the address is blocked
    for proto in PROTOCOLS:
        assert_refused(login(inst, proto, "bob@example.test", "wrong", src), WRONG[proto])
    inst.wait_log("client 127.0.0.7 blocked for 60s after 3 failed logins")
    for proto in PROTOCOLS:
        assert_refused(login(inst, proto, "bob@example.test", PASSWORD, src), WRONG[proto])
    assert ban(inst, "remove", "127.0.0.7").returncode == 0


def test_fail_on_imap_blocked_on_pop3(bf_warren):
    inst = bf_warren
    src = "127.0.0.8"
    for _ in range(3):
        assert_refused(login(inst, "imap", "carol@example.org", "wrong", src), WRONG["imap"])
    assert_refused(login(inst, "pop3", "carol@example.org", PASSWORD, src), WRONG["pop3"])
    inst.wait_log("pop3 login refused: user=<carol@example.org>, rip=127.0.0.8, "
                  "rule=blocked address")
    assert ban(inst, "remove", "127.0.0.8").returncode == 0
    assert login(inst, "pop3", "carol@example.org", PASSWORD, src) == "OK"


def test_account_blocked_after_failures_from_many_addresses(bf_warren):
    inst = bf_warren
    # dave: one failure from each of five addresses (none reaches the per-address 3)
    user = "dave@example.test"
    for i in range(5):
        assert_refused(login(inst, "pop3", user, "wrong", f"127.0.1.{i + 1}"), WRONG["pop3"])
    inst.wait_log("pop3: logins of dave@example.test blocked for 60s after 5 failed logins")
    assert_refused(login(inst, "imap", user, PASSWORD, "127.0.1.20"), WRONG["imap"])
    inst.wait_log("imap login refused: user=<dave@example.test>, rip=127.0.1.20, "
                  "rule=blocked mailbox")
    r = ban(inst, "list")
    assert user in r.stdout, r.stdout
    assert ban(inst, "remove", user).returncode == 0
    assert login(inst, "imap", user, PASSWORD, "127.0.1.20") == "OK"


def test_ban_add_by_hand(bf_warren):
    inst = bf_warren
    r = ban(inst, "add", "127.0.0.9", "10m")
    assert r.returncode == 0 and "127.0.0.9: blocked for 600s" in r.stdout, r.stderr
    assert_refused(login(inst, "smtp", "carol@example.org", PASSWORD, "127.0.0.9"),
                   WRONG["smtp"])
    inst.wait_log("smtp login refused: user=<carol@example.org>, rip=127.0.0.9, "
                  "rule=blocked address (for another")
    assert ban(inst, "remove", "127.0.0.9").returncode == 0
    assert login(inst, "smtp", "carol@example.org", PASSWORD, "127.0.0.9") == "OK"
    # bad arguments
    assert ban(inst, "add", "not-an-address").returncode == 1
    assert ban(inst, "add", "127.0.0.9", "soon").returncode == 1
    assert ban(inst, "frobnicate").returncode == 2


def test_exempt_networks_are_never_blocked(bf_warren):
    inst = bf_warren
    for _ in range(4):
        assert_refused(login(inst, "imap", "bob@example.test", "wrong", "127.0.2.1"),
                       WRONG["imap"])
    assert login(inst, "imap", "bob@example.test", PASSWORD, "127.0.2.1") == "OK"
    assert "client 127.0.2.1 blocked" not in inst.log()
    r = ban(inst, "list")
    assert r.returncode == 0 and "127.0.2.1" not in r.stdout, r.stdout


def test_failure_delay_follows_the_shared_count(bf_warren):
    """imapd saw two failures from the address; pop3d's first failure from it is
    held back as the third (400 ms, the harness's cap), not as a first (100 ms)."""
    inst = bf_warren
    src = "127.0.3.1"
    pop3 = POP3(inst.port("pop3s"), src)   # connected before the failures: TLS
    pop3.user("erin@example.test")          # and USER stay out of the timing
    for _ in range(2):
        assert_refused(login(inst, "imap", "erin@example.test", "wrong", src), WRONG["imap"])
    start = time.monotonic()
    with pytest.raises(poplib.error_proto) as e:
        pop3.pass_("wrong")
    took = time.monotonic() - start
    assert b"-ERR [AUTH] Authentication failed" in e.value.args[0]
    assert took >= 0.38, took
    pop3.close()
    assert ban(inst, "remove", src).returncode == 0


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_hide_refusals_answers_as_a_wrong_password(bf_warren, proto):
    """security.hide_refusals: a right password from an address the rules refuse
    gets a wrong password's reply, after a failure's delay, and is counted."""
    inst = bf_warren
    src = {"imap": "127.0.4.1", "pop3": "127.0.4.2", "smtp": "127.0.4.3"}[proto]
    user = f"office{proto}@example.test"    # one each: max_user_failures stays away
    assert login(inst, proto, user, PASSWORD) == "OK"
    start = time.monotonic()
    assert_refused(login(inst, proto, user, PASSWORD, src), WRONG[proto])
    assert time.monotonic() - start >= 0.09
    inst.wait_log(f"{LOGNAME[proto]} login refused: user=<{user}>, rip={src}, "
                  f"rule=mailbox {user} allow_networks (answered as a wrong password)")
    for _ in range(2):
        assert_refused(login(inst, proto, user, PASSWORD, src), WRONG[proto])
    inst.wait_log(f"client {src} blocked for 60s after 3 failed logins")
    assert ban(inst, "remove", src).returncode == 0
