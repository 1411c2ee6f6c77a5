"""How artifacts reach the disk and how their decoded pixels stay in memory (memory/artifacts.py's machinery).

Writes go through one background writer per process: a file is written under
a temporary name and renamed (a crash never leaves a partial file under a
valid name), fsynced when it is durable, and `wait_for_disk()` returns when
everything submitted before it is on disk, which checkpoint savers call before
they commit (memory/checkpoints.py). Decoded frames and segments are kept in a
bounded cache, so a loop reading the same frame as a segment's last frame, the
next conditioning frame and a critique's input decodes it once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

CACHE_BYTES = 256 * 2**20
"""What the in-process cache of decoded artifacts may hold (least recently used dropped first)."""


class DecodedCache:
    """Decoded artifacts by (store key, ref), bounded by their size in bytes; values are read-only."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.size = max_bytes, 0
        self.items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> Any | None:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: tuple[str, str], value: Any) -> Any:
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
        nbytes = value.nbytes if isinstance(value, np.ndarray) else len(value)
        with self.lock:
            if key not in self.items and nbytes <= self.max_bytes:
                self.items[key] = value
                self.size += nbytes
            while self.size > self.max_bytes:
                _, old = self.items.popitem(last=False)
                self.size -= old.nbytes if isinstance(old, np.ndarray) else len(old)
        return value

    def drop_root(self, root: str) -> None:
        with self.lock:
            for key in [k for k in self.items if k[0] == root]:
                value = self.items.pop(key)
                self.size -= value.nbytes if isinstance(value, np.ndarray) else len(value)


DECODED = DecodedCache(CACHE_BYTES)


def release_free_memory() -> None:
    """Return freed heap pages to the OS (glibc's malloc_trim; nothing elsewhere). glibc keeps what a
    finished episode freed for reuse, so a long-lived worker's RSS would show the largest episode so far
    rather than what it holds; a few milliseconds once per episode."""
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):
        pass


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


class Writer:
    """Artifact files of deferred stores, written durably in order on one background thread; what is
    still on its way can be read back from `pending`."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spiral-artifact-writer")
        self.futures: list[Future] = []
        self.pending: dict[Path, bytes] = {}
        self.lock = threading.Lock()
        self.deferred_roots: set[Path] = set()

    def submit(self, target: Path, data: bytes, durable: bool) -> None:
        with self.lock:
            if target in self.pending:
                return
            self.pending[target] = data
            self.futures.append(self.pool.submit(self._write, target, data, durable))

    def _write(self, target: Path, data: bytes, durable: bool) -> None:
        try:
            write_file(target, data, durable)
        finally:
            with self.lock:
                self.pending.pop(target, None)

    def wait(self) -> None:
        """Every write submitted before this call is on disk (or its error is raised here), whoever else is
        waiting too: LangGraph commits a step's writes and its checkpoint from different threads, and a
        waiter that took the others' futures away would let them commit before the files are there."""
        with self.lock:
            futures = list(self.futures)
        try:
            for future in futures:
                future.result()
        finally:
            with self.lock:  # forget what is done; a failed write is raised once, then the step is redone
                self.futures = [f for f in self.futures if not f.done()]


WRITER = Writer()


def write_file(target: Path, data: bytes, durable: bool) -> None:
    """Write to a name only this thread uses, (fsync,) rename, (fsync the folder): a valid name never
    holds a partial file, and a durable one survives a power cut."""
    tmp = target.parent / f".tmp-{os.getpid()}-{threading.get_ident()}-{target.name}"
    try:
        fh = open(tmp, "wb")
    except FileNotFoundError:  # the folder went since the store made it: a workspace deleted and made again
        target.parent.mkdir(parents=True, exist_ok=True)
        fh = open(tmp, "wb")
    try:
        with fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def wait_for_disk() -> None:
    """Return once every artifact put so far, in deferred stores too, is on disk (SPIRAL's savers call
    this before committing a checkpoint or a step's writes)."""
    WRITER.wait()


@contextmanager
def deferred_durability(root: str | os.PathLike[str]) -> Iterator[None]:
    """Writes to the store at `root` happen on a background thread; whoever commits a checkpoint that
    points at them calls `wait_for_disk` first (SPIRAL's savers do). Waits for the disk on exit."""
    folder = Path(root).expanduser().resolve()
    WRITER.deferred_roots.add(folder)
    try:
        yield
    finally:
        WRITER.deferred_roots.discard(folder)
        WRITER.wait()
