"""The measure itself can fail: a child that allocates past the budget is caught, whether it
lives through the watch or dies before it ends."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.rss import MiB, watch

GROW = "import time; time.sleep(0.3); b = bytearray({mb} << 20); b[::4096] = b'x' * len(b[::4096]); time.sleep({hold})"


@pytest.mark.parametrize("hold", [1.0, 0.1], ids=["lives", "dies-early"])
def test_a_child_growing_past_the_budget_is_caught(hold):
    parent = subprocess.Popen(["sh", "-c", f'{sys.executable} -c "{GROW.format(mb=450, hold=hold)}"; sleep 1'])
    try:
        with watch(parent.pid) as growth:
            parent.wait(timeout=30)
    finally:
        parent.kill()
    assert 440 * MiB < growth.largest < 600 * MiB, growth.report()
    with pytest.raises(AssertionError, match="grew past"):
        growth.assert_within()


def test_a_quiet_tree_is_within_the_budget():
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"])
    try:
        with watch(parent.pid) as growth:
            parent.wait(timeout=30)
    finally:
        parent.kill()
    assert growth.largest < 20 * MiB, growth.report()
    growth.assert_within()
