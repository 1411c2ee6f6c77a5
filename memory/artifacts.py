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

import hashlib
import io
import os
import re
import threading
import zlib
from pathlib import Path
from typing import TypeVar

import numpy as np
import zstandard
from PIL import Image
from pydantic import BaseModel

from ..tools.errors import DamagedDataError, InputError, SpiralError
from .blobs import LocalFolder, open_location
from .durable import DECODED, release_free_memory

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
REF_PATTERN = re.compile(r"sha256:[0-9a-f]{64}\.[a-z0-9]{1,16}(?:\.[a-z0-9]{1,8})?")
"""An artifact reference: the content's sha256 and an extension (npy.zst, png, json, ...); nothing in
it can climb out of the store's folder."""


class ArtifactStore:
    """Content named by the sha256 of its bytes, `ab/abcdef....ext` under a local folder or a URL
    (memory/blobs.py: `s3://bucket/prefix` or any fsspec URL)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.location = open_location(root)
        self.root: Path | str = self.location.root if isinstance(self.location, LocalFolder) else self.location.key
        self.cache_key = self.location.key
        """This store's part of the in-process cache of decoded artifacts."""

    @property
    def is_local(self) -> bool:
        """A folder on this machine (its writes can go through the background writer)."""
        return isinstance(self.location, LocalFolder)

    @staticmethod
    def name(ref: str) -> str:
        """`ab/abcdef....ext` for a well-formed ref; nothing else resolves, so nothing climbs out of the store."""
        if not isinstance(ref, str) or not REF_PATTERN.fullmatch(ref):
            raise InputError(f"not an artifact reference: {str(ref)[:80]!r} (expected sha256:<64 hex>.<ext>)")
        name = ref.removeprefix("sha256:")
        return f"{name[:2]}/{name}"

    def path(self, ref: str) -> Path:
        """Where `ref`'s file is in a local store."""
        if not isinstance(self.location, LocalFolder):
            raise SpiralError(f"artifact store {self.root} is not a local folder; {ref} has no path")
        return self.location.path(self.name(ref))

    def where(self, ref: str) -> str:
        """`ref`'s place as a message says it (a path or a URL)."""
        return self.location.describe(self.name(ref))

    @staticmethod
    def ref_for(data: bytes, ext: str) -> str:
        """The ref `data` gets when stored (nothing is written)."""
        return f"sha256:{hashlib.sha256(data).hexdigest()}.{ext}"

    def put_bytes(self, data: bytes, ext: str, durable: bool = True) -> str:
        """Store `data` under its content's name. `durable` gets it to the disk before a checkpoint can
        point at it (see the module's note); derived artifacts that can be made again (thumbnails) skip
        that. Either way a process crash never leaves a partial file under a valid name."""
        ref = self.ref_for(data, ext)
        name = self.name(ref)
        if self.location.size(name) != len(data):  # not there yet (a power cut could leave a local file empty)
            self.location.write(name, data, durable)
        return ref

    def drop_cache(self) -> None:
        """Forget this store's decoded artifacts (an episode that finished will not read them again; a
        long-lived process would otherwise hold up to CACHE_BYTES of them) and hand the freed memory back
        to the OS. Reads go to the disk after."""
        DECODED.drop_root(self.cache_key)
        release_free_memory()

    def get_bytes(self, ref: str) -> bytes:
        """The artifact's bytes, checked against its name: a file whose bytes changed on disk is refused
        rather than decoded into garbage."""
        data = self.location.read(self.name(ref))
        if data is None:
            raise SpiralError(f"artifact {ref} is missing from {self.root}; was the workspace moved or "
                              "cleaned?")
        if hashlib.sha256(data).hexdigest() != ref.removeprefix("sha256:")[:64]:
            raise DamagedDataError(f"artifact {self.where(ref)} is damaged (its bytes no longer match its name): "
                                   "restore it from a backup, or delete it and run the step that made it again "
                                   "(`spiral fork` from before that step)")
        return data

    def put_frame(self, frame: np.ndarray) -> str:
        """One RGB frame (H, W, 3), stored as a segment is (the server renders it as PNG)."""
        return self.put_frames(frame)

    def get_frame(self, ref: str) -> np.ndarray:
        """The frame (read-only: copy it to change it); PNG frames of older workspaces load too."""
        if ref.endswith(".png"):
            cached = DECODED.get((self.cache_key, ref))
            if cached is None:
                image = Image.open(io.BytesIO(self.get_bytes(ref))).convert("RGB")
                cached = DECODED.put((self.cache_key, ref), np.asarray(image))
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
        DECODED.put((self.cache_key, ref), np.array(decoded, copy=True))
        return ref

    def put_model(self, model: BaseModel) -> str:
        """A pydantic model (a plan, a ledger) as JSON."""
        data = model.model_dump_json().encode()
        ref = self.put_bytes(data, "json")
        DECODED.put((self.cache_key, ref), data)
        return ref

    def get_model(self, ref: str, cls: type[M]) -> M:
        """A fresh `cls` instance from a JSON artifact (callers may change it)."""
        data = DECODED.get((self.cache_key, ref))
        if data is None:
            data = DECODED.put((self.cache_key, ref), self.get_bytes(ref))
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
        cached = DECODED.get((self.cache_key, ref))
        if cached is not None:
            return cached
        raw = self.get_bytes(ref)
        data = zlib.decompress(raw) if ref.endswith(".npy.z") else zstandard.ZstdDecompressor().decompress(raw)
        return DECODED.put((self.cache_key, ref), np.load(io.BytesIO(data), allow_pickle=False))

