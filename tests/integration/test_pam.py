"""PAM authentication through common/auth.c, under pam_wrapper + pam_matrix.

tests/tools/authcheck runs each check through auth_pam_verify() and through the
async auth pool, and fails with exit status 3 if the two disagree.
"""

import os
import subprocess
import time

import pytest

import pamwrap

BUILD = os.environ.get("WARREN_BUILD", "/work/main/build")
AUTHCHECK = os.path.join(BUILD, "tests", "authcheck")

pytestmark = [
    pytest.mark.skipif(not pamwrap.available(), reason="pam_wrapper is not installed"),
    pytest.mark.skipif(not os.path.exists(AUTHCHECK), reason="authcheck is not built"),
]

USERS = [
    ("alice", "Correct horse 1"),
    ("bob@example.test", "b0b pass"),
    ("carol", "carols-pw", "some-other-service"),
]


@pytest.fixture
def pam_env(tmp_path):
    return pamwrap.setup(tmp_path, USERS)


def authcheck(env, service, user, password, rhost=None):
    args = [AUTHCHECK, "pam", service, user] + ([rhost] if rhost else [])
    proc = subprocess.run(args, input=password + "\n", env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 3, "blocking and async paths disagree: %s %s" % (
        proc.stdout, proc.stderr)
    return proc.stdout.strip(), proc.returncode


def test_right_password(pam_env):
    assert authcheck(pam_env, "warren-test", "alice", "Correct horse 1") == ("OK", 0)
    assert authcheck(pam_env, "warren-test", "bob@example.test", "b0b pass") == ("OK", 0)


def test_right_password_with_rhost(pam_env):
    assert authcheck(pam_env, "warren-test", "alice", "Correct horse 1",
                     "192.0.2.10") == ("OK", 0)


def test_wrong_password(pam_env):
    assert authcheck(pam_env, "warren-test", "alice", "correct horse 1") == ("FAIL", 1)
    assert authcheck(pam_env, "warren-test", "alice", "Correct horse 1x") == ("FAIL", 1)


def test_empty_password(pam_env):
    assert authcheck(pam_env, "warren-test", "alice", "") == ("FAIL", 1)


def test_unknown_user(pam_env):
    assert authcheck(pam_env, "warren-test", "mallory", "Correct horse 1") == ("FAIL", 1)


def test_unknown_service_is_denied_by_other(pam_env):
    assert authcheck(pam_env, "no-such-service", "alice", "Correct horse 1") == ("FAIL", 1)


def test_account_step_refuses(pam_env):
    # carol's password is right, but pam_matrix's account step only lets her
    # into "some-other-service"
    assert authcheck(pam_env, "warren-test", "carol", "carols-pw") == ("FAIL", 1)


def test_backend_error_is_tempfail(pam_env, tmp_path):
    # pam_matrix without a readable passdb answers PAM_AUTHINFO_UNAVAIL
    pamwrap.write_service(pam_env["PAM_WRAPPER_SERVICE_DIR"], "warren-broken", [
        "auth     required %s passdb=%s" % (pamwrap.PAM_MATRIX, tmp_path / "missing"),
        "account  required %s passdb=%s" % (pamwrap.PAM_MATRIX, tmp_path / "missing"),
    ])
    assert authcheck(pam_env, "warren-broken", "alice", "Correct horse 1") == ("TEMPFAIL", 2)


def test_failure_is_not_held_back(pam_env):
    # our PAM_FAIL_DELAY function replaces PAM's own delay
    start = time.monotonic()
    assert authcheck(pam_env, "warren-test", "alice", "nope") == ("FAIL", 1)
    assert time.monotonic() - start < 1.5


def test_environment_stays_in_the_subprocess(pam_env):
    assert "PAM_WRAPPER" not in os.environ
    assert "libpam_wrapper" not in os.environ.get("LD_PRELOAD", "")
