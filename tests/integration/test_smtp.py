"""smtpd mail transactions with real clients (smtplib, swaks, raw sockets): MAIL,
RCPT, DATA, BDAT, pipelining, the extensions, every mailbox type (arrival checked in
the store with tests/tools/storedump), recipient and relay checks, size and quota
limits, SMTP smuggling, submission sender checks, XCLIENT, a 50 MB message and 50
concurrent sessions."""

import os
import re
import shutil
import smtplib
import socket
import subprocess
import textwrap
import threading
import time

import pytest

from warren import SECRET_HASH, client_context
from protocols import (LineConn, b64, sasl_plain, smtp_cmd, smtp_open, smtp_reply,
                       start_instance, store_dump)

HOST = "127.0.0.1"
TIMEOUT = 20
SWAKS = shutil.which("swaks")

DOMAINS = {
    "example.test": textwrap.dedent(f"""\
        mailbox alice {{ password = "{SECRET_HASH}" }}
        mailbox bob {{ password = "{SECRET_HASH}" }}
        mailbox load {{ }}
        mailbox big {{ }}
        mailbox small {{ quota = 4k }}
        mailbox tiny {{ max_message_size = 2k }}
        mailbox fwd {{ forward = {{ "someone@elsewhere.test" }} }}
        mailbox fwdcopy {{
            forward = {{ "someone@elsewhere.test" }}
            forward_keep_copy = true
        }}
        alias info {{ to = {{ "alice", "bob" }} }}
        alias team {{ to = {{ "info", "carol@example.org", "alice" }} }}
        alias outside {{ to = {{ "alice", "someone@elsewhere.test" }} }}
    """),
    "example.org": textwrap.dedent(f"""\
        mailbox carol {{ password = "{SECRET_HASH}" }}
    """),
    "catchall.test": textwrap.dedent("""\
        catch_all = "catcher"
        mailbox catcher { }
        mailbox named { }
    """),
    "drop.test": textwrap.dedent("""\
        multidrop = "dropbox"
        mailbox dropbox { }
    """),
}

EXTRA = textwrap.dedent("""\
    max_message_size = 60M
    smtp {
        trusted_networks = { "192.0.2.0/24" }
        xclient_networks = { "127.0.0.2" }
        max_recipients = 100
    }
    """)

LISTENER_EXTRA = {"smtp": "max_connections_per_ip = 200\n",
                  "submission": "max_connections_per_ip = 200\n"}


@pytest.fixture(scope="module")
def remote():
    """Another suite: the outside world (elsewhere.test) mail is relayed or forwarded to."""
    i = start_instance(domains={"elsewhere.test": "mailbox someone { }\n"}, log_level="info",
                       listeners={"smtp": ("smtp", "starttls")})
    try:
        yield i
    finally:
        i.cleanup()


@pytest.fixture(scope="module")
def inst(remote):
    queue = textwrap.dedent(f"""\
        queue {{
            relayhost = "[127.0.0.1]:{remote.port('smtp')}"
            relayhost_tls_required = false
            scan_interval = 1s  retry_min = 1s  retry_max = 2s
            srs_secret = "test secret"  srs_domain = "example.test"
        }}
        """)
    i = start_instance(domains=DOMAINS, extra=EXTRA + queue, listener_extra=LISTENER_EXTRA,
                       log_level="info")
    try:
        yield i
    finally:
        i.cleanup()


def dump(inst, user, bodies=True):
    """[(mailbox, uid, env_from, env_to, body bytes or size)] of user's messages."""
    return store_dump(inst, user, bodies)


def wait_count(inst, user, n, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        msgs = dump(inst, user, bodies=False)
        if len(msgs) >= n or time.monotonic() > deadline:
            return msgs
        time.sleep(0.1)


def smtp25(inst):
    s = smtplib.SMTP(HOST, inst.port("smtp"), timeout=TIMEOUT)
    s.ehlo("client.test")
    return s


def submission(inst, user="alice@example.test"):
    s = smtplib.SMTP(HOST, inst.port("submission"), timeout=TIMEOUT)
    s.ehlo("client.test")
    s.starttls(context=client_context())
    s.ehlo("client.test")
    s.login(user, "secret")
    return s


def queue_id(text):
    m = re.search(r"queued as ([0-9A-F]+)", text)
    assert m, text
    return m.group(1)


# ---- EHLO and the basic transaction ----------------------------------------------------

def test_ehlo_advertises_extensions(inst):
    s = smtp25(inst)
    for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "dsn", "smtputf8",
                "chunking", "binarymime", "starttls"):
        assert s.has_extn(ext), ext
    assert s.esmtp_features["size"] == str(60 * 1024 * 1024)
    assert not s.has_extn("auth")          # no AUTH on the MX port
    assert not s.has_extn("xclient")       # 127.0.0.1 is not in xclient_networks
    s.quit()


def test_smtplib_delivers_with_headers_and_logs(inst):
    s = smtp25(inst)
    body = b"From: x@remote.test\r\nSubject: hello\r\n\r\nline one\r\n.leading dot\r\n"
    s.mail("x@remote.test")
    s.rcpt("bob@example.test")
    code, text = s.data(body)
    s.quit()
    assert code == 250 and text.startswith(b"2.0.0 Ok: queued as "), text
    qid = queue_id(text.decode())
    msgs = [m for m in dump(inst, "bob@example.test") if qid.encode() in m[4]]
    assert len(msgs) == 1
    box, uid, env_from, env_to, stored = msgs[0]
    assert (box, env_from, env_to) == ("INBOX", "x@remote.test", "bob@example.test")
    head, _, rest = stored.partition(b"From: x@remote.test")
    assert head.startswith(b"Return-Path: <x@remote.test>\r\nDelivered-To: bob@example.test\r\n"
                           b"Received: from client.test (unknown [127.0.0.1])\r\n")
    assert b"by mail.warren.test (Warren) with ESMTP id " + qid.encode() in head
    assert b"for <bob@example.test>;" in head
    assert rest.endswith(b"\r\nSubject: hello\r\n\r\nline one\r\n.leading dot\r\n")
    log = inst.wait_log(f"{qid}: removed")
    assert f"{qid}: client=unknown[127.0.0.1]" in log
    assert re.search(rf"{qid}: from=<x@remote.test>, size=\d+, nrcpt=1", log)
    assert re.search(rf"{qid}: to=<bob@example.test>, relay=local, delay=[0-9.]+, "
                     r"dsn=2\.0\.0, status=sent \(delivered to mailbox\)", log)
    assert re.search(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 "
                     r"data=1 quit=1 commands=5/5", log)


@pytest.mark.skipif(SWAKS is None, reason="swaks not installed")
def test_swaks_delivers_to_alice_inbox(inst):
    before = len(dump(inst, "alice@example.test", bodies=False))
    r = subprocess.run([SWAKS, "--to", "alice@example.test", "--server",
                        f"127.0.0.1:{inst.port('smtp')}", "--header", "Subject: swaks test"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 Ok: queued as" in r.stdout
    msgs = dump(inst, "alice@example.test")
    assert len(msgs) == before + 1
    assert b"Subject: swaks test" in msgs[-1][4]
    assert msgs[-1][3] == "alice@example.test"


@pytest.mark.skipif(SWAKS is None, reason="swaks not installed")
def test_swaks_pipelining(inst):
    r = subprocess.run([SWAKS, "--pipeline", "--to", "alice@example.test,bob@example.test",
                        "--server", f"127.0.0.1:{inst.port('smtp')}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 Ok: queued as" in r.stdout


@pytest.mark.skipif(SWAKS is None, reason="swaks not installed")
@pytest.mark.parametrize("listener,tls", [("submission", "--tls"),
                                          ("submissions", "--tls-on-connect")])
def test_swaks_submission_tls_auth(inst, listener, tls):
    r = subprocess.run([SWAKS, tls, "--auth", "PLAIN", "--auth-user", "alice@example.test",
                        "--auth-password", "secret", "--from", "alice@example.test",
                        "--to", "carol@example.org", "--server",
                        f"127.0.0.1:{inst.port(listener)}", "--header", "Subject: via " + listener],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    qid = queue_id(r.stdout)
    msgs = [m for m in dump(inst, "carol@example.org") if qid.encode() in m[4]]
    assert len(msgs) == 1
    body = msgs[0][4]
    assert b" with ESMTPSA id " + qid.encode() in body
    assert re.search(rb"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+\)", body), body[:600]


def test_pipelined_session_replies_in_order(inst):
    conn = smtp_open(inst, "smtp", ehlo=None)
    conn.send(b"EHLO client.test\r\nMAIL FROM:<p@remote.test>\r\n"
              b"RCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\n"
              b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert smtp_reply(conn)[0] == 250   # EHLO
    assert smtp_reply(conn) == (250, ["2.1.0 Ok"])
    assert smtp_reply(conn) == (250, ["2.1.5 Ok"])
    code, text = smtp_reply(conn)
    assert code == 550 and text[0].startswith("5.1.1 <nobody@example.test>"), text
    assert smtp_reply(conn) == (250, ["2.1.5 Ok"])
    assert smtp_reply(conn)[0] == 354
    conn.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nMAIL FROM:<q@remote.test>\r\n"
              b"RCPT TO:<alice@example.test>\r\nRSET\r\nQUIT\r\n")
    code, text = smtp_reply(conn)
    assert code == 250 and "queued as" in text[0]
    assert smtp_reply(conn)[0] == 250
    assert smtp_reply(conn)[0] == 250
    assert smtp_reply(conn) == (250, ["2.0.0 Ok"])
    assert smtp_reply(conn)[0] == 221
    conn.close()


# ---- command order and syntax --------------------------------------------------------------

def test_command_order_and_syntax_errors(inst):
    conn = smtp_open(inst, "smtp")
    assert smtp_cmd(conn, "RCPT TO:<alice@example.test>") == (503, ["5.5.1 Error: need MAIL command"])
    assert smtp_cmd(conn, "DATA") == (503, ["5.5.1 Error: need RCPT command"])
    assert smtp_cmd(conn, "MAIL FROM:alice@example.test")[0] == 501
    assert smtp_cmd(conn, "MAIL FROM:<a@b.test> FOO=bar") == (555, ["5.5.4 Unsupported option"])
    assert smtp_cmd(conn, "MAIL FROM:<a..b@b.test>") == (501, ["5.1.7 Bad sender address syntax"])
    assert smtp_cmd(conn, "MAIL FROM:<a@b.test>")[0] == 250
    assert smtp_cmd(conn, "MAIL FROM:<a@b.test>") == (503, ["5.5.1 Error: nested MAIL command"])
    assert smtp_cmd(conn, "RCPT TO:<bad address@example.test>")[0] == 501
    assert smtp_cmd(conn, "RCPT TO:<nobody@example.test>")[0] == 550
    assert smtp_cmd(conn, "DATA") == (554, ["5.5.1 Error: no valid recipients"])
    assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
    assert smtp_cmd(conn, "DATA now")[0] == 501
    assert smtp_cmd(conn, "RSET") == (250, ["2.0.0 Ok"])
    assert smtp_cmd(conn, "DATA")[0] == 503      # RSET ended the transaction
    assert smtp_cmd(conn, "MAIL FROM:<>")[0] == 250  # the null sender
    # <postmaster> without a domain: the first local domain's (catchall.test: accepted)
    assert smtp_cmd(conn, "RCPT TO:<Postmaster>")[0] == 250
    assert smtp_cmd(conn, "HELP")[0] == 214
    assert smtp_cmd(conn, "VRFY alice@example.test")[0] == 252   # smtp.vrfy is off
    assert smtp_cmd(conn, "QUIT")[0] == 221
    conn.close()


def test_mail_before_helo_refused(inst):
    conn = LineConn.open(inst, "smtp")
    smtp_reply(conn)
    assert smtp_cmd(conn, "MAIL FROM:<a@b.test>") == (503, ["5.5.1 Error: send HELO/EHLO first"])
    conn.close()


def test_too_many_recipients(inst):
    conn = smtp_open(inst, "smtp")
    assert smtp_cmd(conn, "MAIL FROM:<many@remote.test>")[0] == 250
    for i in range(100):
        conn.send_line(f"RCPT TO:<user{i}@drop.test>")
    for i in range(100):
        assert smtp_reply(conn)[0] == 250, i
    assert smtp_cmd(conn, "RCPT TO:<user100@drop.test>") == (452, ["4.5.3 Error: too many recipients"])
    assert smtp_cmd(conn, "RSET")[0] == 250
    conn.close()


def test_dsn_parameters_accepted_and_logged(inst):
    conn = smtp_open(inst, "smtp")
    assert smtp_cmd(conn, "MAIL FROM:<d@remote.test> RET=HDRS ENVID=QQ+2Bid42")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE "
                          "ORCPT=rfc822;alice+2Bx@example.test")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<bob@example.test> NOTIFY=NEVER,SUCCESS")[0] == 555
    assert smtp_cmd(conn, "RCPT TO:<bob@example.test> NOTIFY=DELAY")[0] == 250
    assert smtp_cmd(conn, "DATA")[0] == 354
    conn.send(b"Subject: dsn\r\n\r\nx\r\n.\r\n")
    code, text = smtp_reply(conn)
    assert code == 250
    qid = queue_id(text[0])
    log = inst.wait_log(f"{qid}: removed")
    assert re.search(rf"{qid}: from=<d@remote.test>, size=\d+, nrcpt=2, envid=QQ\+id42, ret=HDRS", log)
    assert smtp_cmd(conn, "MAIL FROM:<d@remote.test> RET=SOME")[0] == 555
    conn.close()


# ---- recipients: unknown, relay, every mailbox type ----------------------------------------

def test_unknown_recipient_and_relay_refused(inst):
    s = smtp25(inst)
    s.mail("x@remote.test")
    code, text = s.rcpt("nobody@example.test")
    assert code == 550 and text.startswith(b"5.1.1 <nobody@example.test>: Recipient address "
                                           b"rejected: User unknown"), text
    code, text = s.rcpt("someone@elsewhere.test")
    assert (code, text) == (554, b"5.7.1 <someone@elsewhere.test>: Relay access denied")
    s.quit()
    log = inst.wait_log("Relay access denied; from=<x@remote.test> to=<someone@elsewhere.test>")
    assert ("NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 <nobody@example.test>: "
            "Recipient address rejected: User unknown in local recipient table; "
            "from=<x@remote.test> to=<nobody@example.test> proto=ESMTP helo=<client.test>") in log


def deliver(inst, rcpts, subject, sender="t@remote.test"):
    s = smtp25(inst)
    refused = s.sendmail(sender, rcpts, f"Subject: {subject}\r\n\r\nbody\r\n".encode())
    s.quit()
    assert refused == {}
    return subject.encode()


def copies(inst, user, marker):
    return [m for m in dump(inst, user) if marker in m[4]]


def test_alias_distribution_list(inst):
    m = deliver(inst, ["info@example.test"], "to the list")
    for user in ("alice@example.test", "bob@example.test"):
        got = copies(inst, user, m)
        assert len(got) == 1 and got[0][3] == "info@example.test", got


def test_nested_alias_across_domains_one_copy_each(inst):
    # team -> info (alice, bob), carol@example.org, alice again: one copy each
    m = deliver(inst, ["team@example.test", "alice@example.test"], "nested alias")
    assert len(copies(inst, "alice@example.test", m)) == 1
    assert len(copies(inst, "bob@example.test", m)) == 1
    assert len(copies(inst, "carol@example.org", m)) == 1


def test_catch_all(inst):
    m = deliver(inst, ["whoever@catchall.test", "named@catchall.test"], "catch all")
    got = copies(inst, "catcher@catchall.test", m)
    assert [g[3] for g in got] == ["whoever@catchall.test"]
    assert [g[3] for g in copies(inst, "named@catchall.test", m)] == ["named@catchall.test"]
    # a local part longer than 64 bytes (accepted from the wire) meets the catch-all;
    # in a domain without one it is an unknown user
    long_local = "x" * 100
    m = deliver(inst, [f"{long_local}@catchall.test"], "long local part")
    assert [g[3] for g in copies(inst, "catcher@catchall.test", m)] == [f"{long_local}@catchall.test"]
    s = smtp25(inst)
    s.mail("x@remote.test")
    assert s.rcpt(f"{long_local}@example.test")[0] == 550
    s.quit()


def test_multidrop_keeps_each_envelope_recipient(inst):
    m = deliver(inst, ["one@drop.test", "Two@drop.test", "one@drop.test"], "multidrop")
    got = copies(inst, "dropbox@drop.test", m)
    assert sorted(g[3] for g in got) == ["Two@drop.test", "one@drop.test"]
    # one body stored for both copies; no Delivered-To (it differs per copy)
    assert got[0][4] == got[1][4]
    assert b"Delivered-To:" not in got[0][4]


def wait_copies(inst, user, marker, n=1, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        got = copies(inst, user, marker)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@pytest.mark.parametrize("rcpt,local", [("fwd@example.test", None),
                                        ("fwdcopy@example.test", "fwdcopy@example.test"),
                                        ("outside@example.test", "alice@example.test")])
def test_forward_and_outside_targets_go_through_the_queue(inst, remote, rcpt, local):
    m = deliver(inst, [rcpt], "outside part of " + rcpt)
    got = wait_copies(remote, "someone@elsewhere.test", m)
    assert len(got) == 1, inst.log()[-3000:]
    box, uid, env_from, env_to, body = got[0]
    assert env_to == "someone@elsewhere.test"
    # the local headers stay local: one Return-Path, set by the receiving side
    assert body.count(b"Return-Path:") == 1
    assert b"Delivered-To: fwd" not in body and b"Delivered-To: alice" not in body
    assert b"by mail.warren.test (Warren) with ESMTP id " in body
    if local is not None:
        mine = copies(inst, local, m)
        assert len(mine) == 1 and mine[0][3] == rcpt
    assert copies(inst, "fwd@example.test", m) == []


def test_bounce_to_srs_address_goes_back_to_the_original_sender(inst, remote):
    # forwarded mail leaves with an SRS0 sender of ours ...
    m = deliver(inst, ["fwd@example.test"], "srs forward", sender="someone@elsewhere.test")
    got = wait_copies(remote, "someone@elsewhere.test", m)
    assert len(got) == 1
    srs = got[0][2]
    assert srs.upper().startswith("SRS0") and srs.endswith("@example.test"), srs
    # ... and a bounce to that address is accepted and sent to the original sender
    s = smtp25(inst)
    s.sendmail("", [srs], b"Subject: bounce to srs\r\n\r\nyour mail failed\r\n")
    s.quit()
    got = wait_copies(remote, "someone@elsewhere.test", b"Subject: bounce to srs")
    assert len(got) == 1 and got[0][2] == ""
    # a forged one is an unknown user
    s = smtp25(inst)
    s.mail("")
    code, _ = s.rcpt("SRS0=xxxx=AB=elsewhere.test=someone@example.test")
    s.quit()
    assert code == 550


def test_trusted_network_relays_through_the_queue(inst, remote):
    conn = smtp_open(inst, "smtp", ehlo=None, source="127.0.0.2")
    assert smtp_cmd(conn, "XCLIENT ADDR=192.0.2.5 NAME=relay.test")[0] == 220
    assert smtp_cmd(conn, "EHLO proxy.test")[0] == 250
    assert smtp_cmd(conn, "MAIL FROM:<x@remote.test>")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<someone@elsewhere.test>")[0] == 250
    assert smtp_cmd(conn, "DATA")[0] == 354
    conn.send(b"Subject: relayed for a trusted network\r\n\r\nx\r\n.\r\n")
    code, text = smtp_reply(conn)
    assert code == 250 and "queued as" in text[0], text
    conn.close()
    got = wait_copies(remote, "someone@elsewhere.test", b"Subject: relayed for a trusted network")
    assert len(got) == 1
    assert got[0][2] == "x@remote.test"


def test_submission_relays_to_other_domains(inst, remote):
    s = submission(inst)
    s.sendmail("alice@example.test", ["someone@elsewhere.test", "bob@example.test"],
               b"From: alice@example.test\r\nSubject: submitted outside\r\n\r\nhi\r\n")
    s.quit()
    got = wait_copies(remote, "someone@elsewhere.test", b"Subject: submitted outside")
    assert len(got) == 1 and got[0][2] == "alice@example.test"
    assert b" with ESMTPSA id " in got[0][4] and b"Message-ID: <" in got[0][4]
    assert len(copies(inst, "bob@example.test", b"Subject: submitted outside")) == 1


# ---- extensions: 8BITMIME, SMTPUTF8, BDAT ---------------------------------------------------

def test_8bit_body_stored_as_sent(inst):
    body = "Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" \
           "Grüße aus Köln — ½ €\r\n".encode()
    s = smtp25(inst)
    s.mail("x@remote.test", options=["BODY=8BITMIME"])
    s.rcpt("alice@example.test")
    code, text = s.data(body)
    s.quit()
    assert code == 250
    got = copies(inst, "alice@example.test", b"Subject: 8bit")
    assert got and got[-1][4].endswith(body)


def test_smtputf8_addresses(inst):
    s = smtp25(inst)
    s.mail("jörg@bücher.test", options=["SMTPUTF8", "BODY=8BITMIME"])
    s.rcpt("alice@example.test")
    code, text = s.data("Subject: utf8 test\r\nFrom: jörg@bücher.test\r\n\r\nhallo\r\n".encode())
    s.quit()
    assert code == 250
    got = copies(inst, "alice@example.test", b"Subject: utf8 test")
    assert got[-1][2] == "jörg@bücher.test"
    assert b" with UTF8SMTP id " in got[-1][4]
    # without SMTPUTF8 a non-ASCII address is refused
    conn = smtp_open(inst, "smtp")
    code, text = smtp_cmd(conn, "MAIL FROM:<jörg@bücher.test>")
    assert code == 553 and text[0].startswith("5.6.7"), text
    assert smtp_cmd(conn, "MAIL FROM:<a@remote.test>")[0] == 250
    code, text = smtp_cmd(conn, "RCPT TO:<jörg@example.test>")
    assert code == 553 and text[0].startswith("5.6.7"), text
    conn.close()


def bdat_session(inst, chunks):
    """MAIL/RCPT then the BDAT chunks (bytes, last flag); returns the replies."""
    conn = smtp_open(inst, "smtp")
    assert smtp_cmd(conn, "MAIL FROM:<chunk@remote.test> BODY=BINARYMIME")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<bob@example.test>")[0] == 250
    replies = []
    for data, last in chunks:
        conn.send(f"BDAT {len(data)}{' LAST' if last else ''}\r\n".encode() + data)
        replies.append(smtp_reply(conn))
    assert smtp_cmd(conn, "NOOP")[0] == 250
    conn.close()
    return replies


def test_bdat_chunks_stored_exactly(inst):
    part1 = b"Subject: bdat test\r\n\r\n.a dot stays\r\nbinary \x00\xff"
    part2 = b" bare\nLF and\rCR kept\r\n.\r\n"
    replies = bdat_session(inst, [(part1, False), (b"", False), (part2, True)])
    assert replies[0] == (250, [f"2.0.0 Ok: {len(part1)} octets received"])
    assert replies[1][0] == 250
    assert replies[2][0] == 250 and "queued as" in replies[2][1][0]
    got = copies(inst, "bob@example.test", b"Subject: bdat test")
    assert got[-1][4].endswith(part1 + part2)


def test_bdat_pipelined_with_commands(inst):
    conn = smtp_open(inst, "smtp")
    data = b"Subject: bdat pipelined\r\n\r\nhello\r\n"
    conn.send(b"MAIL FROM:<p@remote.test>\r\nRCPT TO:<alice@example.test>\r\n" +
              f"BDAT {len(data)} LAST\r\n".encode() + data + b"NOOP\r\nQUIT\r\n")
    assert smtp_reply(conn)[0] == 250
    assert smtp_reply(conn)[0] == 250
    code, text = smtp_reply(conn)
    assert code == 250 and "queued as" in text[0]
    assert smtp_reply(conn)[0] == 250
    assert smtp_reply(conn)[0] == 221
    conn.close()


def test_bdat_without_transaction_is_read_and_refused(inst):
    conn = smtp_open(inst, "smtp")
    conn.send(b"BDAT 12 LAST\r\nRSET\r\nQUIT\r\n")  # 12 bytes: the two commands are data
    assert smtp_reply(conn) == (503, ["5.5.1 Error: need RCPT command"])
    assert smtp_cmd(conn, "NOOP")[0] == 250
    conn.close()


def test_binarymime_needs_bdat(inst):
    conn = smtp_open(inst, "smtp")
    assert smtp_cmd(conn, "MAIL FROM:<p@remote.test> BODY=BINARYMIME")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
    code, text = smtp_cmd(conn, "DATA")
    assert code == 503 and text[0].startswith("5.5.1"), text
    conn.close()


def test_data_after_bdat_refused(inst):
    conn = smtp_open(inst, "smtp")
    assert smtp_cmd(conn, "MAIL FROM:<p@remote.test>")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
    conn.send(b"BDAT 3\r\nabc")
    assert smtp_reply(conn)[0] == 250
    assert smtp_cmd(conn, "DATA")[0] == 503
    conn.close()


# ---- limits: size, line length, quota ---------------------------------------------------------

def test_size_parameter_refused_up_front(inst):
    conn = smtp_open(inst, "smtp")
    code, text = smtp_cmd(conn, f"MAIL FROM:<a@remote.test> SIZE={61 * 1024 * 1024}")
    assert code == 552 and text[0].startswith("5.3.4"), text
    assert smtp_cmd(conn, "MAIL FROM:<a@remote.test> SIZE=5000")[0] == 250
    code, text = smtp_cmd(conn, "RCPT TO:<tiny@example.test>")   # max_message_size 2k
    assert code == 552 and text[0].startswith("5.3.4"), text
    assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
    conn.close()


def test_message_growing_past_limit_in_data(inst):
    conn = smtp_open(inst, "smtp")
    assert smtp_cmd(conn, "MAIL FROM:<a@remote.test>")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<tiny@example.test>")[0] == 250
    assert smtp_cmd(conn, "DATA")[0] == 354
    conn.send(b"Subject: too big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 100 + b".\r\n")
    code, text = smtp_reply(conn)
    assert code == 552 and text[0].startswith("5.3.4"), text
    assert smtp_cmd(conn, "NOOP")[0] == 250      # the session goes on
    # the same through BDAT
    assert smtp_cmd(conn, "MAIL FROM:<a@remote.test>")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<tiny@example.test>")[0] == 250
    conn.send(b"BDAT 3000 LAST\r\n" + b"y" * 3000)
    code, text = smtp_reply(conn)
    assert code == 552 and text[0].startswith("5.3.4"), text
    conn.close()
    assert dump(inst, "tiny@example.test") == []


def test_mail_loop_refused_by_hop_count(inst):
    hops = b"".join(b"Received: from h%d.test by h%d.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                    % (i, i + 1) for i in range(101))
    s = smtp25(inst)
    s.mail("x@remote.test")
    s.rcpt("alice@example.test")
    code, text = s.data(hops + b"Subject: looping\r\n\r\nx\r\n")
    assert code == 554 and text.startswith(b"5.4.6"), text
    # 100 are still fine
    s.mail("x@remote.test")
    s.rcpt("alice@example.test")
    code, text = s.data(hops[hops.index(b"Received: from h1.test"):] + b"Subject: far\r\n\r\nx\r\n")
    assert code == 250, text
    s.quit()
    assert copies(inst, "alice@example.test", b"Subject: looping") == []


def test_long_lines_accepted_and_stored_as_received(inst):
    line = b"L" * 20000
    s = smtp25(inst)
    s.mail("x@remote.test")
    s.rcpt("alice@example.test")
    code, _ = s.data(b"Subject: long line\r\n\r\n" + line + b"\r\nend\r\n")
    s.quit()
    assert code == 250
    got = copies(inst, "alice@example.test", b"Subject: long line")
    assert got[-1][4].endswith(b"\r\n\r\n" + line + b"\r\nend\r\n")


def test_quota_checked_at_rcpt_and_data(inst):
    s = smtp25(inst)
    s.mail("x@remote.test")
    s.rcpt("small@example.test")
    code, _ = s.data(b"Subject: fits\r\n\r\n" + b"a" * 2000 + b"\r\n")
    assert code == 250
    # announced size over what is left: refused at RCPT
    s.mail("x@remote.test", options=["SIZE=3000"])
    code, text = s.rcpt("small@example.test")
    assert code == 452 and text.startswith(b"4.2.2"), text
    s.rset()
    # no SIZE: accepted at RCPT, refused at the end of DATA when it does not fit
    s.mail("x@remote.test")
    assert s.rcpt("small@example.test")[0] == 250
    code, text = s.data(b"Subject: too much\r\n\r\n" + b"b" * 3000 + b"\r\n")
    assert code == 452 and text.startswith(b"4.2.2"), text
    s.quit()
    assert len(dump(inst, "small@example.test")) == 1


def test_vrfy_when_configured(make_warren):
    w = make_warren(extra="smtp { vrfy = true }\n", log_level="info",
                    listeners={"smtp": ("smtp", "starttls")})
    w.start()
    conn = smtp_open(w, "smtp")
    assert smtp_cmd(conn, "VRFY <alice@example.test>") == (250, ["2.0.0 <alice@example.test>"])
    assert smtp_cmd(conn, "VRFY info@example.test")[0] == 250
    code, text = smtp_cmd(conn, "VRFY nobody@example.test")
    assert code == 550 and text[0].startswith("5.1.1"), text
    assert smtp_cmd(conn, "VRFY someone@elsewhere.test")[0] == 252
    assert smtp_cmd(conn, "VRFY alice")[0] == 252
    conn.close()


def test_quota_permanent_when_configured(make_warren):
    w = make_warren(extra="smtp { quota_permanent = true }\n", log_level="info",
                    domains={"example.test": "mailbox full { quota = 1k }\n"})
    w.start()
    s = smtp25(w)
    s.mail("x@remote.test", options=["SIZE=5000"])
    code, text = s.rcpt("full@example.test")
    assert code == 552 and text.startswith(b"5.2.2"), text
    s.rset()
    s.mail("x@remote.test")
    assert s.rcpt("full@example.test")[0] == 250
    code, text = s.data(b"Subject: x\r\n\r\n" + b"z" * 3000 + b"\r\n")
    assert code == 552 and text.startswith(b"5.2.2"), text
    s.quit()
    assert dump(w, "full@example.test") == []


# ---- SMTP smuggling ---------------------------------------------------------------------------

SMUGGLE = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\n", b"\r\n.\r"]


@pytest.mark.parametrize("seq", SMUGGLE, ids=["LF.LF", "LF.CRLF", "CR.CR", "CRLF.LF", "CRLF.CR"])
def test_smuggling_refused(inst, seq):
    marker = b"smuggled-" + seq.hex().encode()
    conn = smtp_open(inst, "smtp")
    assert smtp_cmd(conn, "MAIL FROM:<a@remote.test>")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
    assert smtp_cmd(conn, "DATA")[0] == 354
    conn.send(b"Subject: outer\r\n\r\nouter" + seq +
              b"MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
              b"Subject: " + marker + b"\r\n\r\ninner\r\n.\r\n")
    code, text = smtp_reply(conn)
    assert code == 550 and text[0].startswith("5.5.2"), text
    # exactly one reply: nothing of the message ran as commands
    assert conn.nothing_within(0.5)
    assert smtp_cmd(conn, "NOOP")[0] == 250
    conn.close()
    assert copies(inst, "bob@example.test", marker) == []
    assert copies(inst, "alice@example.test", marker) == []


def test_smuggling_normalized_when_configured(make_warren):
    w = make_warren(extra="smtp { bare_lf = normalize }\n", log_level="info")
    w.start()
    conn = smtp_open(w, "smtp")
    assert smtp_cmd(conn, "MAIL FROM:<a@remote.test>")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
    assert smtp_cmd(conn, "DATA")[0] == 354
    conn.send(b"Subject: outer\r\n\r\nouter\n.\nMAIL FROM:<evil@remote.test>\r\n"
              b"RCPT TO:<bob@example.test>\r\nDATA\r\ninner\r\n.\r\n")
    code, text = smtp_reply(conn)
    assert code == 250, text
    assert conn.nothing_within(0.5)
    conn.close()
    alice = dump(w, "alice@example.test")
    assert len(alice) == 1
    assert alice[0][4].endswith(b"outer\r\n.\r\nMAIL FROM:<evil@remote.test>\r\n"
                                b"RCPT TO:<bob@example.test>\r\nDATA\r\ninner\r\n")
    assert dump(w, "bob@example.test") == []


# ---- submission ----------------------------------------------------------------------------

def test_submission_requires_auth(inst):
    conn = smtp_open(inst, "submission", tls="starttls")
    assert smtp_cmd(conn, "MAIL FROM:<alice@example.test>") == (530, ["5.7.0 Authentication required"])
    conn.close()


def test_submission_sender_must_be_owned(inst):
    s = submission(inst)
    code, text = s.mail("bob@example.test")
    assert code == 553 and text.startswith(b"5.7.1 <bob@example.test>: Sender address rejected"), text
    assert s.mail("info@example.test")[0] == 250     # an alias that leads to alice
    s.rset()
    assert s.mail("Alice@Example.Test")[0] == 250
    s.rset()
    s.quit()
    inst.wait_log("NOQUEUE: reject: MAIL from unknown[127.0.0.1]: 553 5.7.1 <bob@example.test>")


def test_submission_adds_message_id_and_date(inst):
    s = submission(inst)
    s.mail("alice@example.test")
    s.rcpt("bob@example.test")
    code, text = s.data(b"From: alice@example.test\r\nSubject: no id\r\n\r\nbody\r\n")
    s.quit()
    assert code == 250
    got = copies(inst, "bob@example.test", b"Subject: no id")[-1][4]
    head = got.split(b"\r\n\r\n", 1)[0]
    assert re.search(rb"\r\nMessage-ID: <[^>]+@mail\.warren\.test>\r\n", head + b"\r\n"), head
    assert re.search(rb"\r\nDate: \w{3}, \d\d \w{3} \d{4} ", head), head
    assert got.endswith(b"\r\n\r\nbody\r\n")
    # with its own Message-ID and Date nothing is added; port 25 never adds them
    s = submission(inst)
    s.sendmail("alice@example.test", ["bob@example.test"],
               b"Message-ID: <mine@x.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
               b"Subject: with id\r\n\r\nbody\r\n")
    s.quit()
    got = copies(inst, "bob@example.test", b"Subject: with id")[-1][4]
    assert got.count(b"Message-ID:") == 1 and got.count(b"\nDate:") == 1
    deliver(inst, ["bob@example.test"], "mx no id")
    got = copies(inst, "bob@example.test", b"Subject: mx no id")[-1][4]
    assert b"Message-ID:" not in got


def test_folded_message_id_is_seen(inst):
    s = submission(inst)
    s.mail("alice@example.test")
    s.rcpt("bob@example.test")
    code, text = s.data(b"message-id:\r\n <folded.1@client.test>\r\nDATE: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                        b"Subject: folded id\r\n\r\nMessage-ID: <in-body@x>\r\n")
    s.quit()
    assert code == 250
    qid = queue_id(text.decode())
    got = copies(inst, "bob@example.test", b"Subject: folded id")[-1][4]
    assert got.lower().count(b"message-id:") == 2 and got.lower().count(b"\ndate:") == 1
    inst.wait_log(f"{qid}: message-id=<folded.1@client.test>")


def test_thunderbird_like_submission(inst):
    """CLIENTS.md: EHLO [127.0.0.1], MAIL ... BODY=8BITMIME SIZE=N, RCPT, DATA, QUIT."""
    body = "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n" \
           "Subject: from thunderbird\r\nContent-Type: text/plain; charset=UTF-8\r\n" \
           "Content-Transfer-Encoding: 8bit\r\n\r\nSchöne Grüße\r\n".encode()
    conn = smtp_open(inst, "submission", ehlo="[127.0.0.1]", tls="starttls")
    assert smtp_cmd(conn, "AUTH PLAIN " + sasl_plain("alice@example.test", "secret"))[0] == 235
    assert smtp_cmd(conn, f"MAIL FROM:<alice@example.test> BODY=8BITMIME SIZE={len(body)}")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<bob@example.test>")[0] == 250
    assert smtp_cmd(conn, "DATA")[0] == 354
    conn.send(body + b".\r\n")
    code, text = smtp_reply(conn)
    assert code == 250, text
    assert smtp_cmd(conn, "QUIT")[0] == 221
    conn.close()
    got = copies(inst, "bob@example.test", b"Subject: from thunderbird")[-1][4]
    assert b"Received: from [127.0.0.1] (unknown [127.0.0.1])" in got
    assert got.endswith("Schöne Grüße\r\n".encode())


def test_auth_plain_with_two_spaces(inst):
    conn = smtp_open(inst, "submission", tls="starttls")
    code, text = smtp_cmd(conn, "AUTH PLAIN  " + sasl_plain("alice@example.test", "secret"))
    assert code == 235, text
    assert smtp_cmd(conn, "MAIL FROM:<alice@example.test>")[0] == 250
    conn.close()


# ---- XCLIENT ---------------------------------------------------------------------------------

def test_xclient_refused_outside_configured_networks(inst):
    conn = smtp_open(inst, "smtp")
    code, text = smtp_cmd(conn, "XCLIENT ADDR=192.0.2.5")
    assert code == 550 and text[0].startswith("5.7.0"), text
    conn.close()


def test_xclient_presents_the_real_client(inst):
    conn = smtp_open(inst, "smtp", ehlo=None, source="127.0.0.2")
    code, text = smtp_cmd(conn, "EHLO proxy.test")
    assert "XCLIENT ADDR NAME HELO PROTO LOGIN" in text
    assert smtp_cmd(conn, "XCLIENT ADDR=198.51.100.7 NAME=spam.example")[0] == 220
    assert smtp_cmd(conn, "EHLO real.client")[0] == 250
    assert smtp_cmd(conn, "MAIL FROM:<x@remote.test>")[0] == 250
    code, text = smtp_cmd(conn, "RCPT TO:<someone@elsewhere.test>")
    assert code == 554, text
    assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
    assert smtp_cmd(conn, "DATA")[0] == 354
    conn.send(b"Subject: via xclient\r\n\r\nx\r\n.\r\n")
    assert smtp_reply(conn)[0] == 250
    assert smtp_cmd(conn, "XCLIENT NAME=x")[0] == 220   # again, outside a transaction
    conn.close()
    got = copies(inst, "alice@example.test", b"Subject: via xclient")[-1][4]
    assert b"Received: from real.client (spam.example [198.51.100.7])" in got
    inst.wait_log("reject: RCPT from spam.example[198.51.100.7]: 554 5.7.1")


def test_xclient_values_cannot_inject_headers(inst):
    conn = smtp_open(inst, "smtp", ehlo=None, source="127.0.0.2")
    code, text = smtp_cmd(conn, "XCLIENT NAME=evil+0D+0AX-Injected:+20yes")
    assert code == 501 and text[0].startswith("5.5.4"), text
    code, text = smtp_cmd(conn, "XCLIENT HELO=a+0Ab")
    assert code == 501, text
    code, text = smtp_cmd(conn, "XCLIENT ADDR=not-an-address")
    assert code == 501, text
    code, text = smtp_cmd(conn, "XCLIENT FOO=bar")
    assert code == 501, text
    assert smtp_cmd(conn, "XCLIENT NAME=[UNAVAILABLE] ADDR=[UNAVAILABLE]")[0] == 220
    conn.close()


def test_xclient_login_on_submission(inst):
    conn = smtp_open(inst, "submission", ehlo=None, source="127.0.0.2")
    assert smtp_cmd(conn, "XCLIENT LOGIN=alice@example.test ADDR=192.0.2.9")[0] == 220
    assert smtp_cmd(conn, "EHLO client.test")[0] == 250
    assert smtp_cmd(conn, "MAIL FROM:<bob@example.test>")[0] == 553
    assert smtp_cmd(conn, "MAIL FROM:<alice@example.test>")[0] == 250
    assert smtp_cmd(conn, "XCLIENT NAME=x")[0] == 503
    conn.close()


# ---- big and many ----------------------------------------------------------------------------

def test_50mb_message(inst):
    chunk = (b"0123456789" * 7 + b"\r\n") * 1000
    body = b"Subject: fifty megabytes\r\n\r\n" + chunk * (50 * 1024 * 1024 // len(chunk))
    s = smtplib.SMTP(HOST, inst.port("smtp"), timeout=120)
    s.ehlo("client.test")
    s.mail("big@remote.test", options=[f"SIZE={len(body)}"])
    s.rcpt("big@example.test")
    code, text = s.data(body)
    s.quit()
    assert code == 250, text
    got = dump(inst, "big@example.test", bodies=False)
    assert len(got) == 1 and got[0][4] > len(body)


def test_50_concurrent_sessions(inst):
    results = []
    lock = threading.Lock()

    def one(i):
        try:
            s = smtplib.SMTP(HOST, inst.port("smtp"), timeout=60)
            s.ehlo(f"c{i}.test")
            s.mail(f"c{i}@remote.test")
            s.rcpt("load@example.test")
            code, _ = s.data(f"Subject: load {i}\r\n\r\nmessage {i}\r\n".encode())
            s.quit()
        except Exception as e:      # noqa: BLE001 - reported below
            code = repr(e)
        with lock:
            results.append(code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [250] * 50, results
    got = dump(inst, "load@example.test", bodies=False)
    assert len(got) == 50
    assert sorted(g[2] for g in got) == sorted(f"c{i}@remote.test" for i in range(50))


# ---- the example configuration (the README's first command) ------------------------------

from warren import SOURCE, WarrenInstance, wait_port  # noqa: E402

EXAMPLE_PORTS = {"smtp": 2525, "submission": 2587, "submissions": 2465}


class ExampleInstance(WarrenInstance):
    """conf/example/warren.conf as shipped, with state_dir, the certificate and the
    user moved into the test's folder and only the SMTP listeners (the others' ports
    may be taken by a `make run` on this machine)."""

    def write_config(self):
        self.ports = dict(EXAMPLE_PORTS)
        src = os.path.join(SOURCE, "conf", "example")
        shutil.copytree(os.path.join(src, "domains"), os.path.join(self.dir, "domains"))
        with open(os.path.join(src, "warren.conf")) as f:
            text = f.read()
        text = re.sub(r'(?ms)^listener (imaps?|pop3s?|http) \{.*?^\}\n', '', text)
        assert "listener smtp" in text and "listener imap" not in text
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
        return 1


def example_ports_free():
    for port in EXAMPLE_PORTS.values():
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


@pytest.mark.skipif(SWAKS is None, reason="swaks not installed")
def test_swaks_on_the_example_config():
    if not example_ports_free():
        pytest.skip("the example's ports (2525...) are in use")
    inst = ExampleInstance(listeners={"smtp": ("smtp", "starttls"),
                                      "submission": ("submission", "starttls"),
                                      "submissions": ("submission", "implicit")})
    try:
        inst.start()
        r = subprocess.run([SWAKS, "--to", "alice@example.test", "--server", "127.0.0.1:2525"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        qid = queue_id(r.stdout)
        r = subprocess.run([SWAKS, "--to", "bob@example.test", "--from", "alice@example.test",
                            "--server", "127.0.0.1:2587", "--tls", "--auth", "PLAIN",
                            "--auth-user", "alice@example.test", "--auth-password", "secret",
                            "--pipeline"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        got = dump(inst, "alice@example.test")
        assert len(got) == 1 and got[0][0] == "INBOX" and qid.encode() in got[0][4]
        assert len(dump(inst, "bob@example.test")) == 1
    finally:
        inst.cleanup()


def test_arrival_seen_through_imap(inst):
    import imaplib
    m = deliver(inst, ["carol@example.org"], "seen through imap")
    imap = imaplib.IMAP4(HOST, inst.port("imap"), timeout=TIMEOUT)
    try:
        imap.starttls(ssl_context=client_context())
        imap.login("carol@example.org", "secret")
        typ, data = imap.select("INBOX", readonly=True)
        if typ != "OK":
            pytest.skip("imapd cannot SELECT yet")
        typ, data = imap.uid("SEARCH", None, "SUBJECT", '"seen through imap"')
        assert typ == "OK" and data[0], data
        uid = data[0].split()[-1]
        typ, data = imap.uid("FETCH", uid, "(BODY.PEEK[])")
        assert typ == "OK"
        body = data[0][1]
        assert body.startswith(b"Return-Path: <t@remote.test>\r\nDelivered-To: carol@example.org\r\n")
        assert m in body
    finally:
        try:
            imap.logout()
        except Exception:     # noqa: BLE001
            pass


def test_lost_connection_in_data_leaves_nothing(inst):
    conn = smtp_open(inst, "smtp")
    assert smtp_cmd(conn, "MAIL FROM:<lost@remote.test>")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<bob@example.test>")[0] == 250
    assert smtp_cmd(conn, "DATA")[0] == 354
    conn.send(b"Subject: never finished\r\n\r\n" + b"x" * 100000)
    time.sleep(0.3)
    conn.close()
    inst.wait_log("lost connection after DATA")
    assert copies(inst, "bob@example.test", b"Subject: never finished") == []
    spool = os.path.join(inst.dir, "state", "spool")
    deadline = time.monotonic() + 5
    while os.listdir(spool) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert os.listdir(spool) == []
