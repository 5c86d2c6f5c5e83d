"""smtpd's policy chain, DATA stage: content filter rules (filter NAME { }, PCRE2)
on a header field, the RFC 2047-decoded Subject, a decoded body part, an
attachment's file name and a part's content type, with each action — reject,
tag (header and subject prefix), discard, quarantine, redirect — sent with real
SMTP sessions and the result read back from the store (tests/tools/storedump)."""

import base64
import smtplib
import textwrap
import time

import pytest

from warren import SECRET_HASH, client_context
from protocols import start_instance, store_dump, warren_check
LISTENERS = {"smtp": ("smtp", "none"), "submission": ("submission", "starttls")}

FILTERS = textwrap.dedent("""\
    filter prize {
        on = subject
        match = "win (a )?prize"
        action = reject
        text = "Spam is not welcome here"
    }
    filter mailer {
        header = "X-Mailer"
        match = "^BulkMailer"
        action = discard
    }
    filter exe {
        on = filename
        match = "[.](exe|scr)$"
        action = reject
        text = "Executable attachments are refused"
    }
    filter pills {
        on = body
        match = "cheap[[:space:]]+pills"
        action = quarantine
    }
    filter download {
        on = type
        match = "^application/x-msdownload$"
        action = redirect
        redirect = "bob@example.test"
    }
    filter bulk {
        on = subject
        match = "newsletter"
        action = tag
        subject_prefix = "[BULK] "
        tag_header = "X-Warren-Tag: bulk"
    }
    """)

DOMAINS = {
    "example.test": textwrap.dedent(f"""\
        quarantine_mailbox = "quarantine"
        mailbox alice {{ password = "{SECRET_HASH}" }}
        mailbox bob {{ }}
        mailbox dave {{ }}
        mailbox quarantine {{ }}
        mailbox fwd {{
            forward = {{ "someone@elsewhere.test" }}
            forward_keep_copy = true
        }}
    """),
    "example.org": textwrap.dedent("""\
        mailbox carol { }
        filter orgonly {
            on = subject
            match = "orgsecret"
            action = reject
            text = "Not for example.org"
        }
    """),
}


@pytest.fixture(scope="module")
def inst():
    i = start_instance(listeners=LISTENERS, domains=DOMAINS, extra=FILTERS,
                       log_level="info")
    yield i
    i.cleanup()


def dump(inst, user):
    """[(env_to, body bytes)] of user's messages."""
    return [(m[3], m[4]) for m in store_dump(inst, user)]


def send(inst, rcpts, msg, sender="someone@outside.test"):
    """Sends msg; returns (code, text) of the end of data (250 or the refusal)."""
    with smtplib.SMTP("127.0.0.1", inst.port("smtp"), timeout=20) as c:
        c.ehlo("client.test")
        c.mail(sender)
        for r in rcpts:
            code, text = c.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = c.data(msg.encode() if isinstance(msg, str) else msg)
        return code, text.decode()


def message(subject="hello", body="plain text\r\n", headers=""):
    return (f"From: <someone@outside.test>\r\nTo: <alice@example.test>\r\n"
            f"Subject: {subject}\r\n{headers}\r\n{body}")


def multipart(parts):
    """parts: [(headers, body)] into a multipart/mixed message."""
    out = ("From: <someone@outside.test>\r\nTo: <alice@example.test>\r\nSubject: files\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BND\"\r\n\r\n"
           "preamble\r\n")
    for headers, body in parts:
        out += f"--BND\r\n{headers}\r\n{body}\r\n"
    return out + "--BND--\r\n"


def count(inst, user):
    return len(dump(inst, user))


def test_clean_message_is_delivered_unchanged(inst):
    before = count(inst, "alice@example.test")
    code, _ = send(inst, ["alice@example.test"], message("lunch?", "see you at noon\r\n"))
    assert code == 250
    msgs = dump(inst, "alice@example.test")
    assert len(msgs) == before + 1
    assert b"Subject: lunch?\r\n" in msgs[-1][1] and b"X-Warren" not in msgs[-1][1]


def test_decoded_subject_reject(inst):
    before = count(inst, "alice@example.test")
    enc = base64.b64encode("You WIN a prize \u2713".encode()).decode()
    code, text = send(inst, ["alice@example.test"], message(f"=?utf-8?B?{enc}?="))
    assert code == 550 and text.startswith("5.7.1 Spam is not welcome here"), text
    assert count(inst, "alice@example.test") == before
    log = inst.wait_log("policy=content_filter")
    assert "reject: END-OF-MESSAGE from unknown[127.0.0.1]: 550 5.7.1" in log
    assert "header Subject: You WIN a prize" in log


def test_header_discard_once_per_message(inst):
    before = {u: count(inst, u) for u in ("alice@example.test", "bob@example.test")}
    code, text = send(inst, ["alice@example.test", "bob@example.test", "dave@example.test"],
                      message("hi", headers="X-Mailer: BulkMailer 2.0\r\n"))
    assert code == 250 and "queued as" in text, text
    for u, n in before.items():
        assert count(inst, u) == n, u
    log = inst.wait_log("discard: header X-Mailer: BulkMailer 2.0")
    # the rules ran once for the three recipients
    assert log.count("discard: header X-Mailer: BulkMailer") == 1
    assert "rule=mailer" in log


def test_attachment_filename_reject(inst):
    msg = multipart([
        ("Content-Type: text/plain\r\n", "see attached"),
        ("Content-Type: application/octet-stream; name=\"invoice.exe\"\r\n"
         "Content-Disposition: attachment; filename=\"invoice.exe\"\r\n"
         "Content-Transfer-Encoding: base64\r\n", base64.b64encode(b"MZ\x90\x00").decode()),
    ])
    code, text = send(inst, ["alice@example.test"], msg)
    assert code == 550 and "Executable attachments are refused" in text, text
    assert "attachment invoice.exe" in inst.wait_log("rule=exe")


def test_rfc2231_filename_is_decoded(inst):
    msg = multipart([
        ("Content-Type: application/octet-stream\r\n"
         "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.scr\r\n",
         "xx"),
    ])
    code, text = send(inst, ["alice@example.test"], msg)
    assert code == 550 and "5.7.1" in text, text


def test_body_part_quarantine(inst):
    before_alice = count(inst, "alice@example.test")
    before_carol = count(inst, "carol@example.org")
    before_q = count(inst, "quarantine@example.test")
    body = base64.b64encode(b"Buy CHEAP\tpills now, best prices\r\n").decode()
    msg = multipart([
        ("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
         body),
    ])
    # the plain text of the message does not say it: only the decoded part does
    assert "pills" not in msg
    code, text = send(inst, ["alice@example.test", "carol@example.org"], msg)
    assert code == 250, text
    assert count(inst, "alice@example.test") == before_alice
    assert count(inst, "carol@example.org") == before_carol
    q = dump(inst, "quarantine@example.test")
    assert len(q) == before_q + 1
    env_to, data = q[-1]
    assert env_to == "alice@example.test"
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"Return-Path: <someone@outside.test>\r\n"
                           b"Delivered-To: quarantine@example.test\r\n"), head
    assert b"X-Warren-Filter: pills (quarantine)" in head
    assert b"Content-Transfer-Encoding: base64" in data
    log = inst.wait_log("quarantine: body Buy CHEAP")
    assert "1 recipient without one dropped" in log


def test_quarantine_without_a_quarantine_mailbox_is_refused(inst):
    code, text = send(inst, ["carol@example.org"], message("x", "cheap pills\r\n"))
    assert code == 550 and "5.7.1" in text, text
    assert "no quarantine_mailbox" in inst.wait_log("no quarantine_mailbox")


def test_content_type_redirect(inst):
    before_alice = count(inst, "alice@example.test")
    before_bob = count(inst, "bob@example.test")
    msg = multipart([
        ("Content-Type: text/plain\r\n", "the tool"),
        ("Content-Type: application/x-msdownload\r\n"
         "Content-Disposition: attachment; filename=\"setup.bin\"\r\n", "binary"),
    ])
    code, text = send(inst, ["alice@example.test"], msg)
    assert code == 250, text
    assert count(inst, "alice@example.test") == before_alice
    bob = dump(inst, "bob@example.test")
    assert len(bob) == before_bob + 1
    env_to, data = bob[-1]
    assert env_to == "bob@example.test"
    assert data.startswith(b"Return-Path: <someone@outside.test>\r\n"
                           b"Delivered-To: bob@example.test\r\n")
    assert b"X-Warren-Filter: download (redirect)" in data
    assert "redirect: content-type application/x-msdownload" in inst.wait_log(
        "rule=download")


def test_tag_adds_header_and_subject_prefix_once(inst):
    before = count(inst, "alice@example.test")
    for subject in ("Monthly newsletter", "[BULK] Monthly newsletter"):
        code, text = send(inst, ["alice@example.test", "bob@example.test"], message(subject))
        assert code == 250, text
    msgs = dump(inst, "alice@example.test")[before:]
    assert len(msgs) == 2
    for _, data in msgs:
        head, body = data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"Return-Path: <someone@outside.test>\r\n"
                               b"X-Warren-Tag: bulk\r\n"), head
        assert head.endswith(b"\r\nSubject: [BULK] Monthly newsletter"), head
        assert head.count(b"Subject:") == 1
        assert body == b"plain text\r\n"
    # the message for two recipients has no Delivered-To, as before the rewrite
    assert b"Delivered-To:" not in msgs[0][1]


def test_domain_rule_applies_to_its_recipients_only(inst):
    before = count(inst, "alice@example.test")
    assert send(inst, ["alice@example.test"], message("the orgsecret plan"))[0] == 250
    assert count(inst, "alice@example.test") == before + 1
    code, text = send(inst, ["carol@example.org"], message("the orgsecret plan"))
    assert code == 550 and "Not for example.org" in text, text


def test_authenticated_clients_skip_the_filters(inst):
    before = count(inst, "bob@example.test")
    with smtplib.SMTP("127.0.0.1", inst.port("submission"), timeout=20) as c:
        c.ehlo("client.test")
        c.starttls(context=client_context())
        c.ehlo("client.test")
        c.login("alice@example.test", "secret")
        c.sendmail("alice@example.test", ["bob@example.test"],
                   message("you win a prize").replace("someone@outside.test",
                                                      "alice@example.test"))
    assert count(inst, "bob@example.test") == before + 1


def test_bad_pattern_is_refused_with_file_and_line(inst, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text(textwrap.dedent(f"""\
        hostname = "mail.warren.test"
        state_dir = "{tmp_path}/state"
        filter broken {{
            on = body
            match = "(unclosed"
            action = reject
        }}
        filter notag {{
            on = body
            match = "x"
            action = tag
        }}
        """))
    res = warren_check(str(conf))
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert f"{conf}:3: filter broken: match:" in out, out
    assert "filter notag: action = tag needs tag_header or subject_prefix" in out, out


# ---- recipients outside: the queue gets the rewritten spool ----

@pytest.fixture(scope="module")
def remote():
    """The outside world (elsewhere.test), reached through the queue's relayhost."""
    i = start_instance(domains={"elsewhere.test": "mailbox someone { }\nmailbox sec { }\n"},
                       listeners={"smtp": ("smtp", "none")}, log_level="info")
    yield i
    i.cleanup()


@pytest.fixture(scope="module")
def relay(remote):
    extra = textwrap.dedent(f"""\
        queue {{
            relayhost = "[127.0.0.1]:{remote.port('smtp')}"
            relayhost_tls_required = false
            scan_interval = 1s  retry_min = 1s  retry_max = 2s
        }}
        filter bulk {{
            on = subject
            match = "newsletter"
            action = tag
            subject_prefix = "[BULK] "
            tag_header = "X-Warren-Tag: bulk"
        }}
        filter outside {{
            header = "X-Route"
            match = "away"
            action = redirect
            redirect = "sec@elsewhere.test"
        }}
        """)
    i = start_instance(listeners={"smtp": ("smtp", "none")}, domains=DOMAINS, extra=extra,
                       log_level="info")
    yield i
    i.cleanup()


def wait_dump(inst, user, n, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        msgs = dump(inst, user)
        if len(msgs) >= n or time.monotonic() > deadline:
            return msgs
        time.sleep(0.2)


def test_tag_of_a_message_for_two_domains(relay, remote):
    # two local copies (no Delivered-To) of one rewritten spool
    msg = message("Weekly newsletter")
    with smtplib.SMTP("127.0.0.1", relay.port("smtp"), timeout=20) as c:
        c.ehlo("client.test")
        c.mail("someone@outside.test")
        assert c.rcpt("alice@example.test")[0] == 250
        assert c.rcpt("carol@example.org")[0] == 250
        code, _ = c.data(msg.encode())
    assert code == 250
    alice = dump(relay, "alice@example.test")[-1][1]
    carol = dump(relay, "carol@example.org")[-1][1]
    for data in (alice, carol):
        head = data.split(b"\r\n\r\n", 1)[0]
        assert head.startswith(b"Return-Path: <someone@outside.test>\r\nX-Warren-Tag: bulk\r\n")
        assert head.endswith(b"\r\nSubject: [BULK] Weekly newsletter")


def test_redirect_to_an_outside_address_goes_through_the_queue(relay, remote):
    before_alice = count(relay, "alice@example.test")
    before = count(remote, "sec@elsewhere.test")
    code, text = send(relay, ["alice@example.test"],
                      message("hi", headers="X-Route: far away\r\n"))
    assert code == 250, text
    msgs = wait_dump(remote, "sec@elsewhere.test", before + 1)
    assert len(msgs) == before + 1, relay.log()[-3000:]
    env_to, data = msgs[-1]
    assert env_to == "sec@elsewhere.test"
    # the queued copy has no local trace headers of the first hop
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.count(b"Return-Path:") == 1 and b"Delivered-To: alice" not in head
    assert b"X-Warren-Filter: outside (redirect)" in head
    assert count(relay, "alice@example.test") == before_alice


def test_tag_of_a_mixed_message_reaches_the_local_and_the_queued_copy(relay, remote):
    before = count(remote, "someone@elsewhere.test")
    before_fwd = count(relay, "fwd@example.test")
    # fwd keeps a copy and forwards one outside: one spool, a local copy and a
    # queued copy without the local Return-Path/Delivered-To
    code, text = send(relay, ["fwd@example.test"], message("Big newsletter"))
    assert code == 250, text
    local = dump(relay, "fwd@example.test")
    assert len(local) == before_fwd + 1
    head = local[-1][1].split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"Return-Path: <someone@outside.test>\r\n"
                           b"Delivered-To: fwd@example.test\r\nX-Warren-Tag: bulk\r\n"), head
    msgs = wait_dump(remote, "someone@elsewhere.test", before + 1)
    assert len(msgs) == before + 1, relay.log()[-3000:]
    head = msgs[-1][1].split(b"\r\n\r\n", 1)[0]
    assert b"Delivered-To: fwd@example.test" not in head
    assert head.count(b"X-Warren-Tag: bulk") == 1
    assert b"Subject: [BULK] Big newsletter" in head
