"""smtpd's policy chain, connect stage: a listener's allow_networks and
deny_networks (IPv4 and IPv6), with reject (554 greeting, then close) and drop
(closed without a word), each checked from a real client address on loopback."""

import socket

import pytest

from protocols import LineConn, smtp_cmd, smtp_reply, start_instance

LISTENERS = {"smtp": ("smtp", "none"), "mx2": ("smtp", "none"), "mx3": ("smtp", "none"),
             "mx6": ("smtp", "none")}


@pytest.fixture(scope="module")
def inst():
    i = start_instance(listeners=LISTENERS, listener_extra={
        # a blocked host
        "smtp": 'deny_networks = { "127.0.0.2", "2001:db8::/32" }\n',
        # an allow-list: only 127.0.0.3 and 127.0.0.4/31's first host
        "mx2": 'allow_networks = { "127.0.0.3/32" }\n',
        # everything refused but one network, and refused clients are dropped
        "mx3": ('deny_networks = { "0.0.0.0/0", "::/0" }\n'
                'allow_networks = { "127.0.0.0/30" }\n'
                'deny_action = drop\n'),
        # IPv6 forms in the lists are accepted by the config check
        "mx6": 'deny_networks = { "::1/128", "127.0.0.5" }\n',
    })
    yield i
    i.cleanup()


def greeting(inst, listener, source):
    conn = LineConn.open(inst, listener, source=source, timeout=10)
    try:
        code, lines = smtp_reply(conn)
        return (code, " ".join(lines)), conn
    except Exception:
        conn.sock.close()
        raise


def test_denied_client_gets_554_and_is_closed(inst):
    (code, text), conn = greeting(inst, "smtp", "127.0.0.2")
    assert code == 554 and "5.7.1" in text and "127.0.0.2" in text, text
    # the server closed: nothing more is read
    conn.sock.settimeout(5)
    assert conn.sock.recv(100) == b""
    conn.sock.close()
    inst.wait_log("reject: CONNECT from unknown[127.0.0.2]: 554 5.7.1")
    assert "policy=listener_access" in inst.log()


def test_other_clients_are_greeted_and_can_send(inst):
    (code, text), conn = greeting(inst, "smtp", "127.0.0.1")
    assert code == 220, text
    assert smtp_cmd(conn, "EHLO client.test")[0] == 250
    assert smtp_cmd(conn, "MAIL FROM:<x@remote.test>")[0] == 250
    assert smtp_cmd(conn, "RCPT TO:<alice@example.test>")[0] == 250
    smtp_cmd(conn, "QUIT")
    conn.sock.close()


def test_allow_list_alone_refuses_everyone_else(inst):
    (code, _), conn = greeting(inst, "mx2", "127.0.0.3")
    assert code == 220
    conn.sock.close()
    for src in ("127.0.0.1", "127.0.0.4"):
        (code, text), conn = greeting(inst, "mx2", src)
        assert code == 554 and "5.7.1" in text, (src, text)
        conn.sock.close()


def test_drop_closes_without_a_word_and_allow_wins_over_deny(inst):
    conn = LineConn.open(inst, "mx3", source="127.0.0.9", timeout=10)
    conn.sock.settimeout(5)
    try:
        data = conn.sock.recv(100)
    except ConnectionResetError:
        data = b""
    assert data == b"", data
    conn.sock.close()
    inst.wait_log("reject: CONNECT from unknown[127.0.0.9]")
    # 127.0.0.1 is in the allowed /30 although 0.0.0.0/0 is denied
    (code, _), conn = greeting(inst, "mx3", "127.0.0.1")
    assert code == 220
    conn.sock.close()


def test_single_address_in_list(inst):
    (code, _), conn = greeting(inst, "mx6", "127.0.0.5")
    assert code == 554
    conn.sock.close()
    (code, _), conn = greeting(inst, "mx6", "127.0.0.6")
    assert code == 220
    conn.sock.close()


def test_bad_network_is_a_config_error(tmp_path):
    from warren import WarrenInstance
    i = WarrenInstance(listeners={"smtp": ("smtp", "none")},
                       listener_extra={"smtp": 'deny_networks = { "300.1.2.3/8" }\n'})
    try:
        from protocols import warren_check
        r = warren_check(i.config_path)
        assert r.returncode != 0
        assert 'deny_networks: "300.1.2.3/8" is not an address or network' in r.stdout + r.stderr
    finally:
        i.cleanup()
