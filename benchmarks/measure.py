"""Run one measured thing in a child process and record its time, memory and CPU (stdlib only).

Memory, two ways:

- ``maxrss``: ``ru_maxrss`` from ``os.wait4`` on the child: the peak resident set of the
  largest single process among the child and every descendant it waited for (dbt, gzip, ...).
  Exact, but the largest process only, not a sum of processes running at the same time.
- ``tree_peak``: the child's whole process tree sampled every ``interval`` seconds from
  ``/proc``: the sum of each process's PSS (``smaps_rollup``; shared pages split between the
  processes that share them, so a sum does not count them twice). Catches concurrent
  processes, may miss a spike shorter than the interval.

``server_peak`` samples other process trees the same way (the PostgreSQL server the
benchmark started: it is not a child of the measured process), and ``combined_peak`` is the
peak of client + server at the same instant.

CPU: the child's own CPU seconds (``ru_utime + ru_stime``), the server's, and the whole
machine's busy time from ``/proc/stat``; what is left is other work on the machine (the
benchmark may share the machine), reported as ``other_cores`` (average cores busy elsewhere).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class ChildRun:
    wall_seconds: float
    returncode: int
    maxrss_bytes: int
    tree_peak_bytes: int
    server_peak_bytes: int
    combined_peak_bytes: int
    cpu_seconds: float  # the child and its waited-for descendants
    server_cpu_seconds: float
    other_cores: float | None  # average cores busy with work that is not ours during the run
    samples: int

    def as_dict(self) -> dict:
        return asdict(self)


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # Fields after "(comm)": state, ppid, ... (comm may hold spaces and parentheses).
    return data.rsplit(b")", 1)[1].split()


def children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                children[int(fields[1])].append(int(entry.name))
    return children


def descendants(roots, children: dict[int, list[int]]) -> list[int]:
    seen, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo.extend(children.get(pid, ()))
    return seen


def pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * PAGE
    except OSError:
        return 0


def tree_cpu_seconds(root: int) -> float:
    """CPU of a process tree: the root with its reaped children, plus the live descendants."""
    fields = _stat_fields(root)
    if not fields:
        return 0.0
    # utime, stime, cutime, cstime are fields 14-17 of stat; index 11-14 after "(comm)".
    total = sum(int(f) for f in fields[11:15])
    for pid in descendants([root], children_map())[1:]:
        f = _stat_fields(pid)
        if f:
            total += int(f[11]) + int(f[12])
    return total / TICK


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores)."""
    with open("/proc/stat") as handle:
        parts = handle.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in parts[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


class _Sampler(threading.Thread):
    def __init__(self, pid: int, server_roots: list[int], interval: float):
        super().__init__(daemon=True)
        self.pid, self.server_roots, self.interval = pid, server_roots, interval
        self.tree_peak = self.server_peak = self.combined_peak = self.samples = 0
        self._halt = threading.Event()

    def sample(self) -> None:
        children = children_map()
        client = sum(pss_bytes(p) for p in descendants([self.pid], children))
        server = (sum(pss_bytes(p) for p in descendants(self.server_roots, children))
                  if self.server_roots else 0)
        self.tree_peak = max(self.tree_peak, client)
        self.server_peak = max(self.server_peak, server)
        self.combined_peak = max(self.combined_peak, client + server)
        self.samples += 1

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_child(argv: list[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
              log: Path | None = None, stdout=None, server_roots: list[int] | None = None,
              interval: float = 0.2) -> ChildRun:
    """Start ``argv``, sample its memory until it ends, reap it with ``wait4``."""
    server_roots = server_roots or []
    with open(log, "ab") if log else contextlib.nullcontext(subprocess.DEVNULL) as out:
        busy0 = machine_busy_seconds()
        server0 = sum(tree_cpu_seconds(p) for p in server_roots)
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=stdout if stdout is not None else out,
                                stderr=out, stdin=subprocess.DEVNULL)
        sampler = _Sampler(proc.pid, server_roots, interval)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait
        busy = machine_busy_seconds() - busy0
        server_cpu = sum(tree_cpu_seconds(p) for p in server_roots) - server0
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(
        wall_seconds=wall, returncode=proc.returncode, maxrss_bytes=usage.ru_maxrss * 1024,
        tree_peak_bytes=sampler.tree_peak, server_peak_bytes=sampler.server_peak,
        combined_peak_bytes=sampler.combined_peak, cpu_seconds=cpu, server_cpu_seconds=server_cpu,
        other_cores=max(0.0, (busy - cpu - server_cpu) / wall) if wall > 0 else None,
        samples=sampler.samples)


def find_postmaster(port: int) -> int | None:
    """The pid of the PostgreSQL server listening on ``port`` (started with ``-p <port>``)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            args = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"postgres") and b"-p" in args:
            i = args.index(b"-p")
            if i + 1 < len(args) and args[i + 1] == str(port).encode():
                return int(entry.name)
    return None
