"""pam_wrapper + pam_matrix set-up for tests that authenticate through PAM.

pam_wrapper (Debian package libpam-wrapper) is an LD_PRELOAD library that makes
libpam read its service files from a directory of our choice; pam_matrix is its
test module that checks passwords against a plain "user:password:service" file.
Nothing on the system is touched, and the environment is meant for the process
under test only: pass the returned dict as ``env=`` to that one subprocess and
never put it into os.environ (the test runner itself must not be preloaded).

Typical use::

    env = pamwrap.setup(tmp_path, [("alice", "secret")])
    subprocess.run([daemon, ...], env=env)   # PAM service "warren-test"

Daemons' tests reuse this with their own service names and users.
"""

import os

PAM_WRAPPER_LIB = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so"
PAM_MATRIX = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so"
PAM_DENY = "/usr/lib/x86_64-linux-gnu/security/pam_deny.so"

DEFAULT_SERVICE = "warren-test"


def available():
    """True when pam_wrapper, pam_matrix and pam_deny are installed."""
    return all(os.path.exists(p) for p in (PAM_WRAPPER_LIB, PAM_MATRIX, PAM_DENY))


def _check_field(value, what):
    if not isinstance(value, str) or ":" in value or "\n" in value or "\r" in value:
        raise ValueError("pam_matrix %s may not contain ':' or a newline: %r" % (what, value))
    return value


def setup(directory, users, services=(DEFAULT_SERVICE,), base_env=None,
          passdb_name="passdb"):
    """Writes a pam_wrapper service directory and returns the environment to run
    the process under test with.

    directory  an existing directory (e.g. pytest's tmp_path); receives
               ``pam.d/<service>`` files, ``pam.d/other`` and the passdb file.
    users      iterable of (user, password) or (user, password, service); a user
               without a service may log in to every service in ``services``.
               A user listed for another service passes pam_matrix's auth step
               but fails its account step in ours.
    services   PAM service names that authenticate against the passdb; every
               other service name falls to ``other``, which is pam_deny.
    base_env   the environment to extend (default: a copy of os.environ).

    Returns a new dict: base_env plus LD_PRELOAD, PAM_WRAPPER=1,
    PAM_WRAPPER_SERVICE_DIR and the settings that let sanitizer builds run under
    pam_wrapper (see below). The passdb path is in the returned dict's
    ``"WARREN_TEST_PAM_PASSDB"`` entry, for tests that rewrite it.
    """
    directory = os.fspath(directory)
    service_dir = os.path.join(directory, "pam.d")
    os.makedirs(service_dir, exist_ok=True)
    passdb = os.path.join(directory, passdb_name)

    lines = []
    for entry in users:
        if len(entry) == 2:
            user, password = entry
            targets = services
        else:
            user, password, service = entry
            targets = (service,)
        for service in targets:
            lines.append("%s:%s:%s\n" % (_check_field(user, "user"),
                                         _check_field(password, "password"),
                                         _check_field(service, "service")))
    with open(passdb, "w") as f:
        f.writelines(lines)

    for service in services:
        _check_field(service, "service")
        if "/" in service or service == "other":
            raise ValueError("bad PAM service name: %r" % service)
        write_service(service_dir, service, [
            "auth     required %s passdb=%s" % (PAM_MATRIX, passdb),
            "account  required %s passdb=%s" % (PAM_MATRIX, passdb),
        ])
    write_service(service_dir, "other", [
        "auth     required %s" % PAM_DENY,
        "account  required %s" % PAM_DENY,
        "password required %s" % PAM_DENY,
        "session  required %s" % PAM_DENY,
    ])

    env = dict(os.environ if base_env is None else base_env)
    preload = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = PAM_WRAPPER_LIB + (":" + preload if preload else "")
    env["PAM_WRAPPER"] = "1"
    env["PAM_WRAPPER_SERVICE_DIR"] = service_dir
    # Sanitizer builds (WARREN_SANITIZE): ASan refuses a preload ahead of its
    # runtime and dlopen(RTLD_DEEPBIND), which pam_wrapper uses for libpam unless
    # told not to; Debian's pam_wrapper 1.1.4 reads the UID_WRAPPER_ spelling.
    # Harmless for ordinary builds.
    env["PAM_WRAPPER_DISABLE_DEEPBIND"] = "1"
    env["UID_WRAPPER_DISABLE_DEEPBIND"] = "1"
    asan = env.get("ASAN_OPTIONS", "")
    if "verify_asan_link_order" not in asan:
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "verify_asan_link_order=0"
    env["WARREN_TEST_PAM_PASSDB"] = passdb
    return env


def write_service(service_dir, service, lines):
    """Writes one PAM service file (a list of module lines) into service_dir."""
    with open(os.path.join(service_dir, service), "w") as f:
        f.write("\n".join(lines) + "\n")
