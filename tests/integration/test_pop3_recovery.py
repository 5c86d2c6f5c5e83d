"""pop3d: UIDLs stay the same across a store recovery (a daemon killed while
attached to the store makes the master recover it and restart every daemon), and
a message delivered afterwards gets a new one. Issue #8 item 4."""

import os
import signal
import time

from test_pop3 import message, pop3_instance, pop_login, storedeliver


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def try_login(inst, user):
    try:
        return pop_login(inst, user)
    except Exception:
        return None


def test_uidls_survive_store_recovery():
    inst = pop3_instance(log_level="info")
    try:
        for i in range(3):
            storedeliver(inst, ["vic"], message(f"before recovery {i}"))
        pop = pop_login(inst, "vic")
        first = pop.uidl()[1]
        assert len(first) == 3
        pop.quit()
        old = inst.children()["pop3d"]
        os.kill(old, signal.SIGKILL)
        inst.wait_log("store recovered; starting the daemons again")
        assert wait_for(lambda: inst.children().get("pop3d") not in (None, old))
        pop = wait_for(lambda: try_login(inst, "vic"))
        assert pop, inst.log()[-3000:]
        assert pop.uidl()[1] == first
        pop.quit()
        storedeliver(inst, ["vic"], message("after recovery"))
        pop = pop_login(inst, "vic")
        now = pop.uidl()[1]
        pop.quit()
        assert now[:3] == first
        assert now[3].split()[1] not in {u.split()[1] for u in first}
    finally:
        inst.cleanup()
