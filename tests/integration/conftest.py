"""Fixtures shared by the integration tests (see warren.py for the harness)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from warren import WarrenInstance  # noqa: E402


@pytest.fixture
def warren():
    """A running suite on the standard test config (all listeners, two domains)."""
    inst = WarrenInstance()
    try:
        inst.start()
        yield inst
    except Exception:
        print(inst.log()[-20000:])
        raise
    finally:
        if os.environ.get("WARREN_KEEP_LOGS"):
            print(inst.log())
        inst.cleanup()


@pytest.fixture
def make_warren():
    """Factory for suites with their own settings; all are stopped at the end."""
    made = []

    def make(**kwargs):
        inst = WarrenInstance(**kwargs)
        made.append(inst)
        return inst

    yield make
    for inst in made:
        inst.cleanup()


def pytest_collection_modifyitems(config, items):
    """WARREN_SHARD=K/N runs every Nth test of the file, from the Kth: ctest runs
    the longest files as N entries of their own, side by side (tests/CMakeLists.txt)."""
    shard = os.environ.get("WARREN_SHARD")
    if not shard:
        return
    k, n = (int(x) for x in shard.split("/"))
    keep = [item for i, item in enumerate(items) if i % n == k - 1]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep
