"""Crash test of the store (issue #3): under the master, a writer delivering in a
loop and a reader reading in a loop are killed with SIGKILL at random moments;
after each round every delivery the writer reported as committed is in the
mailbox exactly once, nothing hangs, and the store verifies clean."""

import os
import random
import signal
import subprocess
import time

import pytest

from warren import BUILD, WarrenInstance

STORELOAD = os.path.join(BUILD, "tests", "storeload")
USER = "crash@example.test"
ROUNDS = 24
EXIT_RECOVER = 75


def run_tool(state, *args, timeout=30):
    """Runs storeload, retrying while the store waits for the master's recovery."""
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run([STORELOAD, state, *args], capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != EXIT_RECOVER or time.monotonic() > deadline:
            return proc
        time.sleep(0.2)


@pytest.fixture
def suite():
    inst = WarrenInstance(log_level="info")
    inst.start()
    yield inst
    inst.cleanup()


def test_kill_writer_and_reader_at_random(suite, tmp_path):
    state = os.path.join(suite.dir, "state")
    committed = tmp_path / "committed.log"
    rng = random.Random(int(os.environ.get("WARREN_CRASH_SEED", "20261122")))
    recoveries_before = suite.log().count("store recovered")
    for rnd in range(ROUNDS):
        with open(committed, "a") as out:
            writer = subprocess.Popen([STORELOAD, state, "writer", USER, "100000"],
                                      stdout=out, stderr=subprocess.DEVNULL)
        reader = subprocess.Popen([STORELOAD, state, "reader", USER],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.6))
        victim = [writer, reader, writer][rnd % 3]   # mostly the writer
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        other = reader if victim is writer else writer
        other.send_signal(signal.SIGTERM)
        try:
            other.wait(timeout=10)
        except subprocess.TimeoutExpired:
            other.kill()
            pytest.fail(f"round {rnd}: a store process hung after its peer was killed")
        result = run_tool(state, "check", USER, str(committed))
        assert result.returncode == 0, \
            f"round {rnd}:\n{result.stdout}{result.stderr}\nmaster log:\n{suite.log()[-4000:]}"
        # the daemons must still be there (or be back after a recovery)
        assert len(suite.children()) == 3 or suite.wait_log("starting the daemons again")
    lines = committed.read_text().count("committed ")
    assert lines > ROUNDS, "the writer committed almost nothing"
    verify = run_tool(state, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # the suite still answers after all this
    assert suite.log().count("store recovered") >= recoveries_before
