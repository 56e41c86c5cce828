"""CPU quotas for the benchmark's worker processes: one cgroup v1 `cpu` group per process.

A group is made under /sys/fs/cgroup/cpu (mkdir), given `cpu.cfs_period_us` and
`cpu.cfs_quota_us` (0.25 core is 25,000 µs of every 100,000), and the process's pid is
written into its `cgroup.procs`. The groups are removed when the scenario ends (their
processes moved back to the root group first, if any is still alive). Where the
controller is missing or not writable, `available()` says why and the scenario that needs
it is skipped: a quota that is not applied would measure the machine again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["CPU_ROOT", "QuotaGroups", "available", "cpu_seconds"]

CPU_ROOT = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000


def available(root: Path = CPU_ROOT) -> str | None:
    """None when groups can be made and limited under `root`; else why not."""
    if not (root / "cpu.cfs_quota_us").exists():
        return f"no cgroup v1 cpu controller at {root}"
    probe = root / f"statehook-bench-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError as exc:
        return f"cannot make a group under {root}: {exc.strerror}"
    try:
        (probe / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
        (probe / "cpu.cfs_quota_us").write_text(f"{PERIOD_US // 4}\n")
    except OSError as exc:
        return f"cannot set a quota under {root}: {exc.strerror}"
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class QuotaGroups:
    """Groups `statehook-bench-{pid}-{n}`, each holding one process at `cores` of a CPU."""

    def __init__(self, cores: float, root: Path = CPU_ROOT) -> None:
        self.cores, self.root = cores, root
        self.groups: list[Path] = []

    def hold(self, pid: int) -> Path:
        """A new group with the quota, `pid` moved into it."""
        group = self.root / f"statehook-bench-{os.getpid()}-{len(self.groups)}"
        group.mkdir()
        self.groups.append(group)
        (group / "cpu.cfs_period_us").write_text(f"{PERIOD_US}\n")
        (group / "cpu.cfs_quota_us").write_text(f"{round(PERIOD_US * self.cores)}\n")
        (group / "cgroup.procs").write_text(f"{pid}\n")
        return group

    def throttled(self) -> list[tuple[int, float]]:
        """(periods throttled, seconds throttled) of each group so far (`cpu.stat`)."""
        out = []
        for group in self.groups:
            stat = dict(line.split() for line in (group / "cpu.stat").read_text().splitlines() if line.strip())
            out.append((int(stat.get("nr_throttled", 0)), int(stat.get("throttled_time", 0)) / 1e9))
        return out

    def remove(self) -> None:
        for group in reversed(self.groups):
            with contextlib.suppress(OSError):
                for pid in (group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        (self.root / "cgroup.procs").write_text(f"{pid}\n")
            with contextlib.suppress(OSError):
                group.rmdir()
        self.groups.clear()

    @contextlib.contextmanager
    def scope(self) -> Iterator[QuotaGroups]:
        try:
            yield self
        finally:
            self.remove()
