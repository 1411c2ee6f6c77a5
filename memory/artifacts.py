"""Content-addressed artifacts: frames and segments live here, state holds their refs.

A ref is `sha256:<hex>.<ext>`; the file is written once, atomically (temp file
then rename), so a crash never leaves a half-written artifact under a valid
name and writing the same content twice is free.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from ..tools.errors import InputError, SpiralError

REF_PATTERN = re.compile(r"sha256:[0-9a-f]{64}\.[a-z0-9]{1,16}(?:\.[a-z0-9]{1,8})?")
"""An artifact reference: the content's sha256 and an extension (npy.z, png, json, ...); nothing in
it can climb out of the store's folder."""


class ArtifactStore:
    """Files named by the sha256 of their bytes under `root/ab/abcdef....ext`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, ref: str) -> Path:
        """Where `ref` lives; only well-formed refs resolve, and only inside the store's root."""
        if not isinstance(ref, str) or not REF_PATTERN.fullmatch(ref):
            raise InputError(f"not an artifact reference: {str(ref)[:80]!r} (expected sha256:<64 hex>.<ext>)")
        name = ref.removeprefix("sha256:")
        return self.root / name[:2] / name

    def put_bytes(self, data: bytes, ext: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        ref = f"sha256:{digest}.{ext}"
        target = self.path(ref)
        if target.exists():
            return ref
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return ref

    def get_bytes(self, ref: str) -> bytes:
        path = self.path(ref)
        if not path.exists():
            raise SpiralError(f"artifact {ref} is missing from {self.root}; was the workspace moved or cleaned?")
        return path.read_bytes()

    def put_frame(self, frame: np.ndarray) -> str:
        """One RGB frame as PNG (lossless, viewable)."""
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="PNG", optimize=False, compress_level=6)
        return self.put_bytes(buf.getvalue(), "png")

    def get_frame(self, ref: str) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(self.get_bytes(ref))).convert("RGB"))

    def put_frames(self, frames: np.ndarray) -> str:
        """A segment (T, H, W, 3) as zlib-compressed .npy: lossless and byte-deterministic
        (npz would stamp zip times into the bytes and break content addressing)."""
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(frames), allow_pickle=False)
        return self.put_bytes(zlib.compress(buf.getvalue(), 1), "npy.z")

    def put_tensors(self, tensors: dict, metadata: dict[str, str] | None = None) -> str:
        """torch tensors as safetensors (the RL trajectories and prompt embeddings)."""
        from safetensors.torch import save

        return self.put_bytes(save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata), "safetensors")

    def get_tensors(self, ref: str) -> tuple[dict, dict[str, str]]:
        """Tensors and metadata of a safetensors artifact."""
        import json
        import struct

        from safetensors.torch import load

        raw = self.get_bytes(ref)
        header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
        return load(raw), header.get("__metadata__", {})

    def get_frames(self, ref: str) -> np.ndarray:
        return np.load(io.BytesIO(zlib.decompress(self.get_bytes(ref))), allow_pickle=False)
