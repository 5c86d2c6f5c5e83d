"""Configuration checking: `warren -t -c FILE` and `warrenctl check -c FILE` report
each error as file:line (the exact line) and exit 1; the example configuration
is valid; `warrenctl passwd` and `warrenctl config-reference`."""

import json
import os
import shutil
import textwrap

import pytest

from warren import SECRET_HASH, SOURCE, WarrenInstance, make_cert
from protocols import imap_cmd, imap_open, pop3_cmd, pop3_open, warren_check, warrenctl


def run_check(tool, path):
    if tool == "warren -t":
        return warren_check(path)
    return warrenctl("check", "-c", path)


TOOLS = ["warren -t", "warrenctl check"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    a = make_cert(str(d), "a", ["a.example.test"])
    b = make_cert(str(d), "b", ["b.example.test"])
    return {"a": a, "b": b}


def write_files(directory, files):
    """Writes {relative name: text}; returns the absolute path of the first."""
    first = None
    for name, text in files.items():
        path = os.path.join(str(directory), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        first = first or path
    return first


def line_of(path, needle, nth=1):
    """1-based number of the nth line of path containing needle."""
    seen = 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if needle in line:
                seen += 1
                if seen == nth:
                    return n
    raise AssertionError(f"{needle!r} (#{nth}) not in {path}")


def assert_error_at(result, path, line, *words):
    """Exit 1 and an error line "path:line: ..." containing every word."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    prefix = f"{path}:{line}: "
    lines = [l for l in result.stderr.splitlines() if l.startswith(prefix)]
    assert lines, f"no error at {prefix!r} in:\n{result.stderr}"
    text = "\n".join(lines)
    for w in words:
        assert w in text, f"{w!r} not in {text!r}"
    return text


def base_config(cert=None, key=None, listeners="", extra=""):
    tls = f'tls {{ cert = "{cert}"  key = "{key}" }}\n' if cert else ""
    return (f'hostname = "mail.example.test"\nstate_dir = "state"\n{tls}{extra}'
            f'{listeners}include("domains/*.conf")\n')


def domain_file(name, body):
    return f'domain "{name}" {{\n{textwrap.indent(textwrap.dedent(body), "    ")}}}\n'


GOOD_MAILBOX = f'mailbox alice {{\n    password = "{SECRET_HASH}"\n}}\n'


# ---- a valid config ----------------------------------------------------------------

@pytest.mark.parametrize("tool", TOOLS)
def test_valid_config_passes(tmp_path, certs, tool):
    cert, key = certs["a"]
    main = write_files(tmp_path, {
        "warren.conf": base_config(cert, key, listeners=textwrap.dedent("""\
            listener imaps {
                address = "127.0.0.1"
                port = 10993
                service = imap
                tls = implicit
            }
            """)),
        "domains/example.test.conf": domain_file("example.test", GOOD_MAILBOX),
    })
    result = run_check(tool, main)
    assert result.returncode == 0, result.stderr
    assert main in result.stdout and "ok" in result.stdout
    assert result.stderr == ""


def test_warrenctl_check_json(tmp_path, certs):
    main = write_files(tmp_path, {
        "warren.conf": base_config(),
        "domains/example.test.conf": domain_file("example.test", GOOD_MAILBOX +
                                                 'alias info { to = { "alice" } }\n'),
    })
    result = warrenctl("--json", "check", "-c", main)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["valid"] is True
    assert (data["domains"], data["mailboxes"], data["aliases"]) == (1, 1, 1)


# ---- errors and their lines --------------------------------------------------------

@pytest.mark.parametrize("tool", TOOLS)
def test_unknown_top_level_key(tmp_path, tool):
    main = write_files(tmp_path, {"warren.conf": base_config(extra="colour = blue\n")})
    assert_error_at(run_check(tool, main), main, line_of(main, "colour"), "colour")


@pytest.mark.parametrize("tool", TOOLS)
def test_unknown_key_in_mailbox_of_included_domain_file(tmp_path, tool):
    main = write_files(tmp_path, {
        "warren.conf": base_config(),
        "domains/a.test.conf": domain_file("a.test", GOOD_MAILBOX),
        "domains/b.test.conf": domain_file("b.test", f"""\
            mailbox bob {{
                password = "{SECRET_HASH}"
                shoe_size = 44
            }}
            """),
    })
    inc = os.path.join(str(tmp_path), "domains", "b.test.conf")
    result = run_check(tool, main)
    assert_error_at(result, inc, line_of(inc, "shoe_size"), "shoe_size")


@pytest.mark.parametrize("tool", TOOLS)
def test_unknown_key_after_an_include(tmp_path, tool):
    """The line count of the including file goes on correctly after an include."""
    main = write_files(tmp_path, {
        "warren.conf": base_config() + "\ncolour = blue\n",
        "domains/a.test.conf": domain_file("a.test", GOOD_MAILBOX),
    })
    assert_error_at(run_check(tool, main), main, line_of(main, "colour"), "colour")


@pytest.mark.parametrize("tool", TOOLS)
def test_line_numbers_count_comment_lines(tmp_path, tool):
    """Comments are lines too: an error after comments is reported at its own line
    (the example configuration is full of comments)."""
    main = write_files(tmp_path, {
        "warren.conf": "# Warren\n# two comment lines\nhostname = \"x\"  # trailing\n"
                       "state_dir = \"state\"\n\ncolour = blue\n",
    })
    assert_error_at(run_check(tool, main), main, line_of(main, "colour"), "colour")


@pytest.mark.parametrize("tool", TOOLS)
def test_line_numbers_count_comment_lines_in_included_file(tmp_path, tool):
    main = write_files(tmp_path, {
        "warren.conf": base_config(),
        "domains/b.test.conf": "# b.test\n# for bob\n" + domain_file("b.test", f"""\
            # bob's mailbox
            mailbox bob {{
                password = "{SECRET_HASH}"   # secret
                shoe_size = 44
            }}
            """),
    })
    inc = os.path.join(str(tmp_path), "domains", "b.test.conf")
    assert_error_at(run_check(tool, main), inc, line_of(inc, "shoe_size"), "shoe_size")


@pytest.mark.parametrize("tool", TOOLS)
def test_port_not_a_number(tmp_path, tool):
    main = write_files(tmp_path, {"warren.conf": base_config(listeners=textwrap.dedent("""\
        listener imap {
            address = "127.0.0.1"
            port = "abc"
            service = imap
        }
        """))})
    assert_error_at(run_check(tool, main), main, line_of(main, '"abc"'), "port")


@pytest.mark.parametrize("port", ["0", "65536", "-1", "100000"])
@pytest.mark.parametrize("tool", TOOLS)
def test_port_out_of_range(tmp_path, tool, port):
    main = write_files(tmp_path, {"warren.conf": base_config(listeners=textwrap.dedent(f"""\
        listener imap {{
            address = "127.0.0.1"
            service = imap
            port = {port}
        }}
        """))})
    assert_error_at(run_check(tool, main), main, line_of(main, "port ="), "port")


@pytest.mark.parametrize("tool", TOOLS)
def test_duplicate_mailbox_names_both_definitions(tmp_path, tool):
    main = write_files(tmp_path, {
        "warren.conf": base_config(),
        "domains/a.test.conf": domain_file("a.test", f"""\
            mailbox alice {{
                password = "{SECRET_HASH}"
            }}
            mailbox bob {{ password = "{SECRET_HASH}" }}
            mailbox alice {{ password = "{SECRET_HASH}" }}
            """),
    })
    inc = os.path.join(str(tmp_path), "domains", "a.test.conf")
    first, second = line_of(inc, "mailbox alice", 1), line_of(inc, "mailbox alice", 2)
    text = assert_error_at(run_check(tool, main), inc, second, "alice")
    # the admin is told where the other definition is
    assert f"{inc}:{first}" in text, text


@pytest.mark.parametrize("tool", TOOLS)
def test_duplicate_listener(tmp_path, tool):
    main = write_files(tmp_path, {"warren.conf": base_config(listeners=textwrap.dedent("""\
        listener imap {
            address = "127.0.0.1"
            port = 10143
            service = imap
        }
        listener imap {
            address = "127.0.0.1"
            port = 10144
            service = imap
        }
        """))})
    assert_error_at(run_check(tool, main), main, line_of(main, "listener imap", 2), "imap")


@pytest.mark.parametrize("tool", TOOLS)
def test_two_listeners_on_one_port(tmp_path, tool):
    main = write_files(tmp_path, {"warren.conf": base_config(listeners=textwrap.dedent("""\
        listener imap {
            address = "127.0.0.1"
            port = 10143
            service = imap
        }
        listener pop3 {
            address = "127.0.0.1"
            port = 10143
            service = pop3
        }
        """))})
    text = assert_error_at(run_check(tool, main), main, line_of(main, "listener pop3"),
                           "10143", "imap")
    assert f"{main}:{line_of(main, 'listener imap')}" in text


@pytest.mark.parametrize("tool", TOOLS)
def test_alias_to_unknown_local_part(tmp_path, tool):
    main = write_files(tmp_path, {
        "warren.conf": base_config(),
        "domains/a.test.conf": domain_file("a.test", GOOD_MAILBOX + textwrap.dedent("""\
            alias info {
                to = { "alice", "zed" }
            }
            """)),
    })
    inc = os.path.join(str(tmp_path), "domains", "a.test.conf")
    result = run_check(tool, main)
    assert result.returncode == 1
    lines = (line_of(inc, "alias info"), line_of(inc, '"zed"'))
    assert any(l.startswith(f"{inc}:{n}: ") and "zed" in l
               for l in result.stderr.splitlines() for n in lines), result.stderr


@pytest.mark.parametrize("tool", TOOLS)
def test_alias_to_outside_address_is_fine(tmp_path, tool):
    main = write_files(tmp_path, {
        "warren.conf": base_config(),
        "domains/a.test.conf": domain_file("a.test", GOOD_MAILBOX +
                                           'alias ext { to = { "someone@elsewhere.example" } }\n'),
    })
    result = run_check(tool, main)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("tool", TOOLS)
def test_alias_loop(tmp_path, tool):
    main = write_files(tmp_path, {
        "warren.conf": base_config(),
        "domains/a.test.conf": domain_file("a.test", GOOD_MAILBOX + textwrap.dedent("""\
            alias one {
                to = { "two" }
            }
            alias two {
                to = { "alice", "three" }
            }
            alias three {
                to = { "one" }
            }
            """)),
    })
    inc = os.path.join(str(tmp_path), "domains", "a.test.conf")
    result = run_check(tool, main)
    assert_error_at(result, inc, line_of(inc, "alias one"), "one", "loop")


@pytest.mark.parametrize("tool", TOOLS)
def test_alias_loop_across_domains(tmp_path, tool):
    main = write_files(tmp_path, {
        "warren.conf": base_config(),
        "domains/a.test.conf": domain_file("a.test", GOOD_MAILBOX +
                                           'alias x {\n    to = { "y@b.test" }\n}\n'),
        "domains/b.test.conf": domain_file("b.test",
                                           'alias y {\n    to = { "x@a.test" }\n}\n'),
    })
    inc = os.path.join(str(tmp_path), "domains", "a.test.conf")
    assert_error_at(run_check(tool, main), inc, line_of(inc, "alias x"), "loop")


@pytest.mark.parametrize("password", ["$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", "secret",
                                      "$y$broken", ""])
@pytest.mark.parametrize("tool", TOOLS)
def test_invalid_password_hash(tmp_path, tool, password):
    main = write_files(tmp_path, {
        "warren.conf": base_config(),
        "domains/a.test.conf": domain_file("a.test", f"""\
            mailbox alice {{
                quota = 1G
                password = "{password}"
            }}
            """),
    })
    inc = os.path.join(str(tmp_path), "domains", "a.test.conf")
    assert_error_at(run_check(tool, main), inc, line_of(inc, "password ="), "password")


@pytest.mark.parametrize("tool", TOOLS)
def test_missing_certificate_file(tmp_path, certs, tool):
    _, key = certs["a"]
    main = write_files(tmp_path, {"warren.conf": textwrap.dedent(f"""\
        hostname = "mail.example.test"
        state_dir = "state"
        tls {{
            key = "{key}"
            cert = "missing.pem"
        }}
        """)})
    text = assert_error_at(run_check(tool, main), main, line_of(main, "missing.pem"),
                           "missing.pem")
    # a relative name is taken relative to the file's folder
    assert os.path.join(str(tmp_path), "missing.pem") in text


@pytest.mark.parametrize("tool", TOOLS)
def test_missing_domain_certificate_in_included_file(tmp_path, certs, tool):
    main = write_files(tmp_path, {
        "warren.conf": base_config(*certs["a"]),
        "domains/a.test.conf": domain_file("a.test", textwrap.dedent(f"""\
            hostnames = {{ "mail.a.test" }}
            tls {{
                cert = "certs/a.test.pem"
                key = "{certs['a'][1]}"
            }}
            """) + GOOD_MAILBOX),
    })
    inc = os.path.join(str(tmp_path), "domains", "a.test.conf")
    text = assert_error_at(run_check(tool, main), inc, line_of(inc, "certs/a.test.pem"),
                           "a.test.pem")
    assert os.path.join(str(tmp_path), "domains", "certs", "a.test.pem") in text


@pytest.mark.parametrize("tool", TOOLS)
def test_certificate_and_key_mismatch(tmp_path, certs, tool):
    cert, _ = certs["a"]
    _, other_key = certs["b"]
    main = write_files(tmp_path, {"warren.conf": textwrap.dedent(f"""\
        hostname = "mail.example.test"
        state_dir = "state"
        tls {{
            cert = "{cert}"
            key = "{other_key}"
        }}
        listener imaps {{
            address = "127.0.0.1"
            port = 10993
            service = imap
            tls = implicit
        }}
        """)})
    result = run_check(tool, main)
    assert result.returncode == 1
    # the error points into the tls block, at the cert or the key line
    lines = {line_of(main, "cert ="), line_of(main, "key =")}
    errors = [l for l in result.stderr.splitlines()
              if any(l.startswith(f"{main}:{n}: ") for n in lines)]
    assert errors and "match" in errors[0], result.stderr


@pytest.mark.parametrize("tool", TOOLS)
def test_domain_certificate_and_key_mismatch(tmp_path, certs, tool):
    main = write_files(tmp_path, {
        "warren.conf": base_config(*certs["a"], listeners=textwrap.dedent("""\
            listener imaps {
                address = "127.0.0.1"
                port = 10993
                service = imap
                tls = implicit
            }
            """)),
        "domains/a.test.conf": domain_file("a.test", textwrap.dedent(f"""\
            tls {{
                cert = "{certs['a'][0]}"
                key = "{certs['b'][1]}"
            }}
            """)),
    })
    inc = os.path.join(str(tmp_path), "domains", "a.test.conf")
    result = run_check(tool, main)
    assert result.returncode == 1
    lines = {line_of(inc, "cert ="), line_of(inc, "key =")}
    assert any(l.startswith(f"{inc}:{n}: ") and "a.test" in l
               for l in result.stderr.splitlines() for n in lines), result.stderr


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
@pytest.mark.parametrize("tool", TOOLS)
def test_tls_listener_without_certificate(tmp_path, tool, mode):
    main = write_files(tmp_path, {"warren.conf": base_config(listeners=textwrap.dedent(f"""\
        listener plain {{
            address = "127.0.0.1"
            port = 10110
            service = pop3
        }}
        listener secure {{
            address = "127.0.0.1"
            port = 10995
            service = pop3
            tls = {mode}
        }}
        """))})
    text = assert_error_at(run_check(tool, main), main, line_of(main, "listener secure"),
                           "secure")
    assert "cert" in text


@pytest.mark.parametrize("tool", TOOLS)
def test_include_of_missing_file(tmp_path, tool):
    main = write_files(tmp_path, {"warren.conf": base_config() +
                                  'include("more/settings.conf")\n'})
    assert_error_at(run_check(tool, main), main, line_of(main, "more/settings.conf"),
                    "settings.conf")


@pytest.mark.parametrize("target", ["/dev/zero", "subdir"])
@pytest.mark.parametrize("tool", TOOLS)
def test_include_of_device_or_folder_is_refused(tmp_path, tool, target):
    """A device (which would never end) or a folder is not a configuration file:
    an error at the include's line, not a hang (found by fuzz-conf)."""
    os.mkdir(os.path.join(str(tmp_path), "subdir"))
    main = write_files(tmp_path, {"warren.conf": base_config() +
                                  f'include("{target}")\n'})
    result = run_check(tool, main)
    assert result.returncode == 1
    assert f"{main}:{line_of(main, target)}: " in result.stderr, result.stderr
    assert "not a regular file" in result.stderr


@pytest.mark.parametrize("tool", TOOLS)
def test_include_pattern_without_matches_is_fine(tmp_path, tool):
    main = write_files(tmp_path, {"warren.conf": base_config()})   # domains/*.conf: none
    assert run_check(tool, main).returncode == 0


@pytest.mark.parametrize("tool", TOOLS)
def test_unknown_service(tmp_path, tool):
    main = write_files(tmp_path, {"warren.conf": base_config(listeners=textwrap.dedent("""\
        listener imap {
            address = "127.0.0.1"
            port = 10143
            service = imap4
        }
        """))})
    assert_error_at(run_check(tool, main), main, line_of(main, "imap4"), "imap4")


@pytest.mark.parametrize("tool", TOOLS)
def test_missing_config_file(tmp_path, tool):
    result = run_check(tool, os.path.join(str(tmp_path), "nothere.conf"))
    assert result.returncode == 1
    assert "nothere.conf" in result.stderr


# ---- the example configuration -----------------------------------------------------

def test_example_config_is_valid(tmp_path):
    """conf/example, copied anywhere, is valid once ../../run/tls/cert.pem exists
    next to it: relative names are relative to the file that holds them."""
    example = os.path.join(SOURCE, "conf", "example")
    if not os.path.isdir(example):
        pytest.skip("no conf/example")
    conf_dir = tmp_path / "a" / "b"
    shutil.copytree(example, conf_dir)
    tls_dir = tmp_path / "run" / "tls"
    tls_dir.mkdir(parents=True)
    cert, key = make_cert(str(tls_dir), "cert", ["mail.example.test"])
    os.rename(key, str(tls_dir / "key.pem"))
    config = str(conf_dir / "warren.conf")
    # run from another folder: the cwd must not matter
    result = warrenctl("check", "-c", config)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    result = warren_check(config)
    assert result.returncode == 0, result.stderr


def test_example_config_without_certificate_names_the_path(tmp_path):
    example = os.path.join(SOURCE, "conf", "example")
    if not os.path.isdir(example):
        pytest.skip("no conf/example")
    conf_dir = tmp_path / "a" / "b"
    shutil.copytree(example, conf_dir)
    result = warrenctl("check", "-c", str(conf_dir / "warren.conf"))
    assert result.returncode == 1
    assert "run/tls/cert.pem" in result.stderr


# ---- warrenctl passwd ----------------------------------------------------------------

NEW_PASSWORD = "correct horse battery staple"


def test_passwd_prints_a_yescrypt_hash():
    first = warrenctl("passwd", stdin=NEW_PASSWORD + "\n")
    second = warrenctl("passwd", stdin=NEW_PASSWORD + "\n")
    assert first.returncode == 0, first.stderr
    hash1, hash2 = first.stdout.strip(), second.stdout.strip()
    assert hash1.startswith("$y$") and len(first.stdout.splitlines()) == 1
    assert hash1 != hash2, "the salt must differ between hashes"
    assert NEW_PASSWORD not in first.stdout + first.stderr


def test_passwd_refuses_empty_password():
    result = warrenctl("passwd", stdin="\n")
    assert result.returncode == 1
    assert "$y$" not in result.stdout
    assert warrenctl("passwd", stdin="").returncode == 1


def test_passwd_hash_logs_in():
    result = warrenctl("passwd", stdin=NEW_PASSWORD + "\n")
    assert result.returncode == 0
    new_hash = result.stdout.strip()
    inst = WarrenInstance(domains={
        "example.test": f'mailbox erin {{ password = "{new_hash}" }}\n'})
    try:
        inst.start()
        conn = imap_open(inst, "imaps")
        _, tagged = imap_cmd(conn, "a", f'LOGIN erin@example.test "{NEW_PASSWORD}"')
        assert tagged.startswith("a OK"), tagged
        conn.close()
        conn = pop3_open(inst, "pop3s")
        assert pop3_cmd(conn, "USER erin@example.test") == "+OK"
        assert pop3_cmd(conn, "PASS correct horse battery stapler").startswith("-ERR [AUTH]")
        conn.close()
    finally:
        inst.cleanup()


# ---- warrenctl config-reference ---------------------------------------------------------

def test_config_reference_matches_docs():
    docs = os.path.join(SOURCE, "docs", "config-reference.md")
    if not os.path.exists(docs):
        pytest.skip("docs/config-reference.md is not checked in")
    result = warrenctl("config-reference")
    assert result.returncode == 0, result.stderr
    with open(docs) as f:
        assert result.stdout == f.read(), \
            "docs/config-reference.md is stale: regenerate it with `warrenctl config-reference`"


def test_config_reference_documents_every_listener_key():
    out = warrenctl("config-reference").stdout
    for key in ("max_connections_per_ip", "idle_timeout", "max_line_length", "tls_required",
                "auth_plaintext", "failure_delay", "pam_service", "hostnames"):
        assert key in out, key
