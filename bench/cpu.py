"""Where the CPU goes: the CPU time each part of the stack spends while a load runs, per message.

With every process on the same cores, a send rate is bounded by the CPU one message costs across all
of them: `cores / cost`. This meter reads that cost, so that a rate below a goal says which part of
the stack stands between the two.
"""

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil

from zaphub_devstack.testing import Stack


def component(name: str) -> str:
    """`dispatcher-2` → `dispatcher`: replicas of one service count together."""
    return re.sub(r"-\d+$", "", name)


def _tree_cpu(pid: int) -> float:
    """User + system seconds of a process and its live descendants (PostgreSQL backends, granian
    workers); a process gone since is counted as 0, which only ever lowers the figure."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
    return total


@dataclass
class CpuMeter:
    """CPU seconds by component between `start()` and `stop()`, the stack's processes read from the
    system; `stop` takes the seconds of processes gone by then (the load generators report their own)."""

    stack: Stack
    before: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)

    def _read(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        for name, pid in self.stack.pids().items():
            seconds[component(name)] = seconds.get(component(name), 0.0) + _tree_cpu(pid)
        return seconds

    def start(self) -> None:
        self.before = self._read()

    def stop(self, gone: Mapping[str, float]) -> None:
        after = self._read()
        self.spent = {name: after[name] - self.before.get(name, 0.0) for name in after} | dict(gone)

    def ms_per_message(self, messages: int) -> dict[str, float]:
        """`cpu_ms_per_msg_<component>` for each component, and `cpu_ms_per_msg` for all of the stack
        (the load generators apart, under `cpu_ms_per_msg_load`)."""
        if messages <= 0:
            return {}
        figures = {f"cpu_ms_per_msg_{name}": 1000 * s / messages for name, s in sorted(self.spent.items())}
        stack = sum(s for name, s in self.spent.items() if name != "load")
        figures["cpu_ms_per_msg"] = 1000 * stack / messages
        # The send rate this cost allows when the stack has every core to itself.
        figures["cpu_bound_msgs_per_s"] = (os.cpu_count() or 1) * messages / stack if stack > 0 else 0.0
        return figures
