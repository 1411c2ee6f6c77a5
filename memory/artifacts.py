"""Content-addressed artifacts: frames, segments, plans and ledgers live here, state holds their refs.

A ref is `sha256:<hex>.<ext>`; the file is written once, atomically (temp file,
then rename), so a crash never leaves a half-written artifact under a valid
name, and writing the same content twice is free. Because a ref names its
content, what a process has read or written is kept in a small in-process cache
(decoded frames and segments, JSON bytes): the loop reads the frame it just
wrote without touching the disk again.

Durability: an artifact a checkpoint will point at must reach the disk (fsync
of the file and its folder) before that checkpoint is committed, or a power cut
could leave a checkpoint pointing at nothing. By default each write waits for
the disk. A store whose checkpoints are written by SPIRAL's own savers
(`memory/checkpoints.py`, as the session driver uses them) hands its files to a
background writer, and the saver waits for the writer before committing: the
same guarantee, without the loop waiting for files at every write (what is
still being written is read back from memory).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import io
import os
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import zstandard
from PIL import Image
from pydantic import BaseModel

from ..tools.errors import DamagedDataError, InputError, SpiralError

M = TypeVar("M", bound=BaseModel)
ARRAY_EXT = "npy.zst"
"""Frames and segments: zstd-compressed .npy (older workspaces hold `.npy.z` segments and `.png` frames, still read)."""
_ZSTD = threading.local()
"""One compressor per thread: a ZstdCompressor must not be used by two threads at once (the server and a
rollout collector run episodes in threads; sharing one crashed the process)."""


def _compressor() -> zstandard.ZstdCompressor:
    if not hasattr(_ZSTD, "compressor"):
        _ZSTD.compressor = zstandard.ZstdCompressor(level=3)
    return _ZSTD.compressor
CACHE_BYTES = 256 * 2**20
"""What the in-process cache of decoded artifacts may hold (least recently used dropped first)."""


class _DecodedCache:
    """Decoded artifacts by (store root, ref), bounded by their size in bytes; values are read-only."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.size = max_bytes, 0
        self.items: OrderedDict[tuple[Path, str], Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[Path, str]) -> Any | None:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: tuple[Path, str], value: Any) -> Any:
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

    def drop_root(self, root: Path) -> None:
        with self.lock:
            for key in [k for k in self.items if k[0] == root]:
                value = self.items.pop(key)
                self.size -= value.nbytes if isinstance(value, np.ndarray) else len(value)


_CACHE = _DecodedCache(CACHE_BYTES)


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


class _Writer:
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
            _write_file(target, data, durable)
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


_WRITER = _Writer()


def _write_file(target: Path, data: bytes, durable: bool) -> None:
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
    _WRITER.wait()


@contextmanager
def deferred_durability(root: str | os.PathLike[str]) -> Iterator[None]:
    """Writes to the store at `root` happen on a background thread; whoever commits a checkpoint that
    points at them calls `wait_for_disk` first (SPIRAL's savers do). Waits for the disk on exit."""
    folder = Path(root).expanduser().resolve()
    _WRITER.deferred_roots.add(folder)
    try:
        yield
    finally:
        _WRITER.deferred_roots.discard(folder)
        _WRITER.wait()


REF_PATTERN = re.compile(r"sha256:[0-9a-f]{64}\.[a-z0-9]{1,16}(?:\.[a-z0-9]{1,8})?")
"""An artifact reference: the content's sha256 and an extension (npy.zst, png, json, ...); nothing in
it can climb out of the store's folder."""


class ArtifactStore:
    """Files named by the sha256 of their bytes under `root/ab/abcdef....ext`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._folders: set[Path] = set()

    def path(self, ref: str) -> Path:
        """Where `ref` lives; only well-formed refs resolve, and only inside the store's root."""
        if not isinstance(ref, str) or not REF_PATTERN.fullmatch(ref):
            raise InputError(f"not an artifact reference: {str(ref)[:80]!r} (expected sha256:<64 hex>.<ext>)")
        name = ref.removeprefix("sha256:")
        return self.root / name[:2] / name

    @staticmethod
    def ref_for(data: bytes, ext: str) -> str:
        """The ref `data` gets when stored (nothing is written)."""
        return f"sha256:{hashlib.sha256(data).hexdigest()}.{ext}"

    def put_bytes(self, data: bytes, ext: str, durable: bool = True) -> str:
        """Store `data` under its content's name. `durable` gets it to the disk before a checkpoint can
        point at it (see the module's note); derived artifacts that can be made again (thumbnails) skip
        that. Either way a process crash never leaves a partial file under a valid name."""
        ref = self.ref_for(data, ext)
        target = self.path(ref)
        try:
            if target.stat().st_size == len(data):  # already there (a power cut could leave it empty)
                return ref
        except FileNotFoundError:
            pass
        if target.parent not in self._folders:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(target.parent)
        if self.root in _WRITER.deferred_roots:
            _WRITER.submit(target, data, durable)
        else:
            _write_file(target, data, durable)
        return ref

    def drop_cache(self) -> None:
        """Forget this store's decoded artifacts (an episode that finished will not read them again; a
        long-lived process would otherwise hold up to CACHE_BYTES of them) and hand the freed memory back
        to the OS. Reads go to the disk after."""
        _CACHE.drop_root(self.root)
        release_free_memory()

    def get_bytes(self, ref: str) -> bytes:
        """The artifact's bytes, checked against its name: a file whose bytes changed on disk is refused
        rather than decoded into garbage."""
        path = self.path(ref)
        on_its_way = _WRITER.pending.get(path)
        if on_its_way is not None:
            return on_its_way
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SpiralError(f"artifact {ref} is missing from {self.root}; was the workspace moved or "
                              "cleaned?") from None
        except IsADirectoryError:
            data = None
        if data is None or hashlib.sha256(data).hexdigest() != ref.removeprefix("sha256:")[:64]:
            raise DamagedDataError(f"artifact {path} is damaged (its bytes no longer match its name): restore it "
                                   "from a backup, or delete it and run the step that made it again "
                                   "(`spiral fork` from before that step)")
        return data

    def put_frame(self, frame: np.ndarray) -> str:
        """One RGB frame (H, W, 3), stored as a segment is (the server renders it as PNG)."""
        return self.put_frames(frame)

    def get_frame(self, ref: str) -> np.ndarray:
        """The frame (read-only: copy it to change it); PNG frames of older workspaces load too."""
        if ref.endswith(".png"):
            cached = _CACHE.get((self.root, ref))
            if cached is None:
                image = Image.open(io.BytesIO(self.get_bytes(ref))).convert("RGB")
                cached = _CACHE.put((self.root, ref), np.asarray(image))
            return cached
        return self.get_frames(ref)

    def put_frames(self, frames: np.ndarray) -> str:
        """A segment (T, H, W, 3), or a frame, as zstd-compressed .npy: lossless and byte-deterministic
        (npz would stamp zip times into the bytes and break content addressing); zstd level 3 is 13x
        faster than zlib level 1 on video frames and compresses them 6x better, and 6x faster than PNG."""
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(frames), allow_pickle=False)
        return self._put_decoded(_compressor().compress(buf.getvalue()), ARRAY_EXT, frames)

    @staticmethod
    def holds_pixels(ref: str) -> bool:
        """A frame or a segment (the server renders them as PNG or GIF)."""
        return ref.endswith((".npy.zst", ".npy.z", ".png"))

    def _put_decoded(self, data: bytes, ext: str, decoded: np.ndarray) -> str:
        ref = self.put_bytes(data, ext)
        _CACHE.put((self.root, ref), np.array(decoded, copy=True))
        return ref

    def put_model(self, model: BaseModel) -> str:
        """A pydantic model (a plan, a ledger) as JSON."""
        data = model.model_dump_json().encode()
        ref = self.put_bytes(data, "json")
        _CACHE.put((self.root, ref), data)
        return ref

    def get_model(self, ref: str, cls: type[M]) -> M:
        """A fresh `cls` instance from a JSON artifact (callers may change it)."""
        data = _CACHE.get((self.root, ref))
        if data is None:
            data = _CACHE.put((self.root, ref), self.get_bytes(ref))
        return cls.model_validate_json(data)

    def put_tensors(self, tensors: dict, metadata: dict[str, str] | None = None) -> str:
        """torch tensors as safetensors (the RL trajectories and prompt embeddings), byte-identical for the
        same tensors and metadata: safetensors writes its header's keys in hash order, which changes from one
        process to the next, so the header is written again with its keys sorted (content addressing needs
        the same bytes for the same content)."""
        import json
        import struct

        from safetensors.torch import save

        raw = save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)
        size = struct.unpack("<Q", raw[:8])[0]
        header = json.dumps(json.loads(raw[8:8 + size]), sort_keys=True, separators=(",", ":")).encode()
        header += b" " * (-len(header) % 8)  # the data starts 8-byte aligned, as safetensors pads it
        return self.put_bytes(struct.pack("<Q", len(header)) + header + raw[8 + size:], "safetensors")

    def get_tensors(self, ref: str) -> tuple[dict, dict[str, str]]:
        """Tensors and metadata of a safetensors artifact."""
        import json
        import struct

        from safetensors.torch import load

        raw = self.get_bytes(ref)
        header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
        return load(raw), header.get("__metadata__", {})

    def get_frames(self, ref: str) -> np.ndarray:
        """The segment, or frame, as stored (read-only: copy it to change it)."""
        cached = _CACHE.get((self.root, ref))
        if cached is not None:
            return cached
        raw = self.get_bytes(ref)
        data = zlib.decompress(raw) if ref.endswith(".npy.z") else zstandard.ZstdDecompressor().decompress(raw)
        return _CACHE.put((self.root, ref), np.load(io.BytesIO(data), allow_pickle=False))

