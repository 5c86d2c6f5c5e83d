"""Command limits of issue #9 item 5 that test_limits.py and test_limits2.py do not
cover: commands before AUTH on SMTP submission listeners (limits.max_unauth_commands),
arguments per command (limits.max_command_args), the header size of a message
(limits.max_header_size) and the MIME nesting BODYSTRUCTURE shows
(limits.max_mime_depth). Small configured limits keep the tests fast."""

import imaplib

import pytest

from protocols import (LineConn, imap_cmd, imap_open, pop3_cmd, pop3_open, sasl_plain,
                       smtp_cmd, smtp_open, smtp_reply, start_instance)

LISTENERS = {
    "smtp": ("smtp", "none"),
    "submission": ("submission", "none"),
    "imap": ("imap", "none"),
    "pop3": ("pop3", "none"),
}
UNAUTH = 6
ARGS = 10
DEPTH = 3
LIMITS = (f"limits {{ max_unauth_commands = {UNAUTH}  max_command_args = {ARGS}\n"
          f"         max_header_size = 2k  max_mime_depth = {DEPTH} }}\n")


@pytest.fixture(scope="module")
def inst():
    inst = start_instance(listeners=LISTENERS, extra=LIMITS,
                          listener_extra={n: "auth_plaintext = true\n" for n in LISTENERS})
    yield inst
    inst.cleanup()


# ---- commands before AUTH on submission ----------------------------------------------

def test_submission_unauth_commands_limited(inst):
    c = smtp_open(inst, "submission")          # EHLO is the first command
    for _ in range(UNAUTH - 1):
        assert smtp_cmd(c, "NOOP")[0] == 250
    code, text = smtp_cmd(c, "NOOP")
    assert code == 421 and text[-1] == "4.7.0 Too many commands before authentication", text
    assert c.closed_within(3), "the session stays open after the 421"
    inst.wait_log("too many commands before authentication from [127.0.0.1]")


def test_submission_authenticated_not_limited(inst):
    c = smtp_open(inst, "submission")
    code, text = smtp_cmd(c, "AUTH PLAIN " + sasl_plain("alice@example.test", "secret"))
    assert code == 235, text
    for _ in range(UNAUTH * 3):
        assert smtp_cmd(c, "NOOP")[0] == 250
    assert smtp_cmd(c, "QUIT")[0] == 221


def test_mx_listener_not_limited(inst):
    c = smtp_open(inst, "smtp")
    for _ in range(UNAUTH * 3):
        assert smtp_cmd(c, "NOOP")[0] == 250
    assert smtp_cmd(c, "QUIT")[0] == 221


# ---- arguments per command --------------------------------------------------------

def imap_logged_in(inst):
    c = imap_open(inst, "imap")
    assert imap_cmd(c, "l", "LOGIN alice@example.test secret")[1].startswith("l OK")
    assert imap_cmd(c, "s", "SELECT INBOX")[1].startswith("s OK")
    return c


def test_imap_too_many_arguments(inst):
    c = imap_logged_in(inst)
    # FETCH, 3 ranges, FLAGS: 5
    assert imap_cmd(c, "a", "UID FETCH 1,3,5:9 (FLAGS)")[1].startswith("a OK")
    # FETCH, 11 ranges, FLAGS
    ranges = ",".join(str(2 * i + 1) for i in range(ARGS + 1))
    assert imap_cmd(c, "b", f"UID FETCH {ranges} (FLAGS)")[1] == \
        "b BAD Too many arguments in command"
    assert imap_cmd(c, "c", "SEARCH " + " ".join(["ALL"] * (ARGS + 1)))[1] == \
        "c BAD Too many arguments in command"
    flags = " ".join(f"$k{i}" for i in range(ARGS))
    assert imap_cmd(c, "d", f"STORE 1 +FLAGS ({flags})")[1] == \
        "d BAD Too many arguments in command"
    assert imap_cmd(c, "e", "NOOP")[1].startswith("e OK")
    inst.wait_log(f"command with {2 + ARGS + 1} arguments (limit {ARGS}) from [127.0.0.1]")
    # they count as errors: max_errors (20) of them close the session
    c.send(b"".join(b"x%d SEARCH %s\r\n" % (i, b" ".join([b"ALL"] * (ARGS + 1)))
                    for i in range(20)))
    lines = c.lines_until_close(timeout=5)
    assert lines[-1].startswith("* BYE"), lines[-3:]


def test_pop3_too_many_arguments(inst):
    c = pop3_open(inst, "pop3")
    reply = pop3_cmd(c, "USER " + " ".join(["alice@example.test"] * (ARGS + 1)))
    assert reply == "-ERR Too many arguments.", reply
    assert pop3_cmd(c, "USER alice@example.test").startswith("+OK")
    assert pop3_cmd(c, "PASS secret").startswith("+OK")


def test_smtp_too_many_arguments(inst):
    c = smtp_open(inst, "smtp")
    params = " ".join(f"X{i}=1" for i in range(ARGS))
    code, text = smtp_cmd(c, f"MAIL FROM:<x@example.org> {params}")
    assert (code, text[-1]) == (501, "5.5.4 Error: too many arguments"), text
    assert smtp_cmd(c, "MAIL FROM:<x@example.org> BODY=8BITMIME")[0] == 250
    assert smtp_cmd(c, "RCPT TO:<bob@example.test>")[0] == 250


def test_default_lets_long_uid_sets_through():
    """At the default (200000) a Thunderbird-style UID FETCH of thousands of sparse
    UIDs works with imaplib; a set with more ranges than the default is refused."""
    d = start_instance(listeners={"imap": ("imap", "none")},
                       listener_extra={"imap": "auth_plaintext = true\n"})
    try:
        m = imaplib.IMAP4(d.address, d.port("imap"), timeout=10)
        m.login("alice@example.test", "secret")
        m.select("INBOX")
        typ, _ = m.uid("FETCH", ",".join(str(2 * i + 1) for i in range(5000)), "(FLAGS)")
        assert typ == "OK"
        with pytest.raises(imaplib.IMAP4.error, match="Too many arguments"):
            m.uid("FETCH", ",".join(str(2 * i + 1) for i in range(200000)), "(FLAGS)")
        m.logout()
    finally:
        d.cleanup()


# ---- header size and MIME depth ------------------------------------------------------

def send_message(inst, rcpt, message):
    c = smtp_open(inst, "smtp")
    assert smtp_cmd(c, "MAIL FROM:<x@example.org>")[0] == 250
    assert smtp_cmd(c, f"RCPT TO:<{rcpt}>")[0] == 250
    assert smtp_cmd(c, "DATA")[0] == 354
    c.send(message.replace("\n", "\r\n").encode() + b"\r\n.\r\n")
    reply = smtp_reply(c)
    smtp_cmd(c, "QUIT")
    return reply


def test_header_size_limit(inst):
    filler = "".join(f"X-Filler-{i}: {'y' * 60}\n" for i in range(40))   # ~3 KB
    code, text = send_message(inst, "bob@example.test",
                              f"Subject: big header\n{filler}\nbody\n")
    assert (code, text[-1]) == (552, "5.3.4 Message header too large"), text
    inst.wait_log("552 5.3.4 Message header too large (over 2048 bytes)")
    # a header under the limit with a body far over it is fine
    code, text = send_message(inst, "bob@example.test",
                              f"Subject: small header\n\n{filler}{filler}")
    assert code == 250, text


def nested(levels):
    """A message of `levels` multipart/mixed parts nested in each other."""
    text = "innermost\n"
    for level in reversed(range(levels)):
        b = f"b{level}"
        text = (f"Content-Type: multipart/mixed; boundary={b}\n\n"
                f"--{b}\n{text}--{b}--\n")
    return "Subject: deep\nMIME-Version: 1.0\n" + text


def test_mime_depth_limit(inst):
    code, text = send_message(inst, "carol@example.org", nested(8))
    assert code == 250, text          # not refused
    c = imap_open(inst, "imap")
    assert imap_cmd(c, "l", "LOGIN carol@example.org secret")[1].startswith("l OK")
    assert imap_cmd(c, "s", "SELECT INBOX")[1].startswith("s OK")
    untagged, tagged = imap_cmd(c, "f", "FETCH 1 BODYSTRUCTURE")
    assert tagged.startswith("f OK"), tagged
    body = " ".join(untagged).upper()
    # levels 0..DEPTH-1 are multiparts; the part at DEPTH is a leaf (text/plain)
    assert body.count('"MIXED"') == DEPTH, body
    assert '"TEXT" "PLAIN"' in body, body
