"""Who is using a workspace: runs hold a shared lease on it, gc needs it to itself.

The lease is an advisory lock (`flock`) on `WORKSPACE/.lease`: every process
that runs episodes takes it shared for the time it runs them (the session
driver for a whole run; a server's nodes for each step), and `spiral gc` takes
it exclusively without waiting, so it deletes nothing while any run is going.
The kernel drops a killed process's lock, so a crashed run never blocks gc.
Where `flock` is missing (not POSIX) the lease is a no-op and gc relies on its
grace period alone (memory/gc.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..tools.errors import SpiralError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

LEASE_NAME = ".lease"


class WorkspaceBusy(SpiralError):
    """gc found runs using the workspace."""


class _Shared:
    """One shared lock per workspace per process, counted across the threads that hold it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: dict[Path, tuple[int, int]] = {}  # workspace -> (fd, holders)

    def acquire(self, workspace: Path) -> None:
        with self.lock:
            fd, holders = self.held.get(workspace, (-1, 0))
            if holders == 0:
                fd = os.open(workspace / LEASE_NAME, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(fd, fcntl.LOCK_SH)
            self.held[workspace] = (fd, holders + 1)

    def release(self, workspace: Path) -> None:
        with self.lock:
            fd, holders = self.held[workspace]
            if holders == 1:
                del self.held[workspace]
                os.close(fd)  # drops the lock
            else:
                self.held[workspace] = (fd, holders - 1)


_SHARED = _Shared()


@contextmanager
def run_lease(workspace: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the workspace's lease shared while runs write to it (re-entrant within a process)."""
    root = Path(workspace).resolve()
    if fcntl is None or not root.is_dir():
        yield
        return
    _SHARED.acquire(root)
    try:
        yield
    finally:
        _SHARED.release(root)


@contextmanager
def sole_lease(workspace: str | os.PathLike[str]) -> Iterator[None]:
    """The workspace to itself, or `WorkspaceBusy` at once when any run holds it."""
    root = Path(workspace).resolve()
    if fcntl is None:
        yield
        return
    fd = os.open(root / LEASE_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkspaceBusy(f"gc stopped, nothing removed: runs are using {root} (they hold its lease); run gc "
                                "again when they have finished") from None
        yield
    finally:
        os.close(fd)
