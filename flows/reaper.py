"""Stop what a build started when the build dies, however it dies (SIGKILL included).

A build run from the command line starts a temporary Prefect server (uvicorn) and a local Ray
(gcs, raylet, workers) as its descendants. A killed process cannot clean up, and those children
would be re-parented and keep running (a Prefect server still listening minutes later). So
`watch()` starts this file as a tiny separate process (own session, standard library only) that
remembers the build's descendants while it runs and, once the build is gone, stops the ones
still alive: SIGTERM, then SIGKILL after a grace period. Processes are told apart from reused
pids by their start time. It also runs after a normal exit, where it finds nothing left to do.

    python flows/reaper.py <pid> <start time of pid>
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.2
GRACE_S = 5.0


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) from /proc/<pid>/stat, or None when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[0], int(fields[19])  # fields after the name: state ppid ... starttime


def start_time(pid: int) -> int | None:
    st = _stat(pid)
    return None if st is None else st[2]


def _alive(pid: int, started: int) -> bool:
    st = _stat(pid)
    return st is not None and st[1] not in ("Z", "X") and st[2] == started


def _table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, start time) of every live process."""
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] not in ("Z", "X"):
                out[int(entry.name)] = (st[0], st[2])
    return out


def _descendants(roots: set[int], table: dict[int, tuple[int, int]]) -> dict[int, int]:
    """pid -> start time of every live descendant of `roots` (by parent links)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = table[child][1]
                todo.append(child)
    return found


def reap(pid: int, started: int) -> list[int]:
    """Wait for `pid` to end, then stop its (remembered and current) descendants. Returns the
    pids signalled."""
    me = os.getpid()
    known: dict[int, int] = {}
    while _alive(pid, started):
        known.update(_descendants({pid}, _table()))
        known.pop(me, None)
        time.sleep(POLL_S)
    # orphans were re-parented: take the ones remembered plus anything they started since
    table = _table()
    live = {p: t for p, t in known.items() if table.get(p, (0, -1))[1] == t}
    live.update(_descendants(set(live), table))
    live.pop(me, None)
    for sig, wait in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, 2.0)):
        for p, t in live.items():
            if _alive(p, t):
                try:
                    os.kill(p, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(p, t) for p, t in live.items()):
            time.sleep(0.1)
    return sorted(live)


def watch(pid: int | None = None) -> subprocess.Popen | None:
    """Start the reaper for `pid` (default: this process). Linux only (it reads /proc)."""
    pid = pid or os.getpid()
    started = start_time(pid)
    if started is None:
        return None
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(pid), str(started)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the build must not stop the watch
    reap(int(sys.argv[1]), int(sys.argv[2]))
