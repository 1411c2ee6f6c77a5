"""Where artifact bytes live: a local folder (the default) or any fsspec URL (`s3://bucket/prefix`, `gs://`, ...).

The artifact store (memory/artifacts.py) names content and decodes it; a blob
location only keeps bytes under names. Both kinds keep the store's two
promises: a name never holds partial bytes (a local file is written under a
temporary name and renamed; an object store's PUT is atomic, and other fsspec
file systems are written to a temporary key and moved), and once `write`
returns with `durable` the bytes survive the writer's crash (fsync locally; an
object store has them when the PUT returns).

Credentials and endpoints for a URL come from fsspec's own configuration
(`FSSPEC_S3_ENDPOINT_URL`, the AWS variables, `~/.config/fsspec/`): SPIRAL sends
them nowhere else, and a client of a SPIRAL server cannot name a location.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from ..tools.errors import SpiralError
from .durable import WRITER, write_file


class StoredBlob(NamedTuple):
    """One name in a location, for gc: its bytes and when it was written (seconds since the epoch)."""

    name: str
    size: int
    modified: float


class BlobLocation(Protocol):
    """Bytes under names `ab/abcdef....ext` (the store picks the names)."""

    key: str
    """One string per location, the decoded-artifact cache's key."""

    def size(self, name: str) -> int | None:
        """The stored size, None when nothing is stored under `name`."""

    def write(self, name: str, data: bytes, durable: bool) -> None: ...

    def read(self, name: str) -> bytes | None:
        """The bytes, None when nothing is stored under `name`."""

    def list(self) -> Iterator[StoredBlob]:
        """Every complete blob (temporary names left out)."""

    def delete(self, name: str) -> None: ...

    def describe(self, name: str = "") -> str:
        """How to say where `name` (or the location) is in a message."""


def is_url(location: str | os.PathLike[str]) -> bool:
    """A URL with a scheme fsspec would open (`file://` counts as local folder)."""
    text = os.fspath(location)
    return "://" in text and not text.startswith("file://")


def open_location(location: str | os.PathLike[str]) -> BlobLocation:
    """A local folder, or a `scheme://` URL through fsspec."""
    if is_url(location):
        return FsspecLocation(os.fspath(location))
    text = os.fspath(location)
    return LocalFolder(Path(text.removeprefix("file://")))


class LocalFolder:
    """A folder on this machine (or a shared file system): atomic renames, fsync, the background writer."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()  # made by the first write: opening a store writes nothing
        self.key = str(self.root)
        self._folders: set[Path] = set()

    def path(self, name: str) -> Path:
        return self.root / name

    def size(self, name: str) -> int | None:
        try:
            return self.path(name).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, name: str, data: bytes, durable: bool) -> None:
        target = self.path(name)
        if target.parent not in self._folders:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(target.parent)
        if self.root in WRITER.deferred_roots:
            WRITER.submit(target, data, durable)
        else:
            write_file(target, data, durable)

    def read(self, name: str) -> bytes | None:
        path = self.path(name)
        on_its_way = WRITER.pending.get(path)
        if on_its_way is not None:
            return on_its_way
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            return b""  # not what its name says: the caller's hash check calls it damaged

    def list(self) -> Iterator[StoredBlob]:
        for path in self.root.glob("*/*"):
            if path.name.startswith(".tmp-"):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed meanwhile
                continue
            if path.is_file():
                yield StoredBlob(f"{path.parent.name}/{path.name}", stat.st_size, stat.st_mtime)

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def describe(self, name: str = "") -> str:
        return str(self.path(name)) if name else str(self.root)


class FsspecLocation:
    """Any fsspec file system; bytes are written once and never rewritten (content addressing)."""

    def __init__(self, url: str) -> None:
        import fsspec.config
        from fsspec.core import url_to_fs

        # fsspec reads its FSSPEC_* variables (an S3 endpoint, ...) once, when it is imported: read them again so
        # a location opened later (a server configured after start-up, a test) sees the environment as it is now
        fsspec.config.set_conf_env(fsspec.config.conf, os.environ)
        try:
            self.fs, base = url_to_fs(url)
        except (ImportError, ValueError) as exc:  # a scheme whose package is missing (s3fs, gcsfs, ...)
            raise SpiralError(f"artifact location {url}: {exc}") from None
        self.url, self.base, self.key = url.rstrip("/"), base.rstrip("/"), url.rstrip("/")
        self._atomic_put = _protocols(self.fs) & {"s3", "s3a", "gs", "gcs", "az", "abfs", "memory"} != set()

    def _at(self, name: str) -> str:
        return f"{self.base}/{name}"

    def size(self, name: str) -> int | None:
        target = self._at(name)
        self.fs.invalidate_cache(target)  # another machine may have written (or gc removed) it since we listed
        try:
            return int(self.fs.size(target))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SpiralError(f"artifact store {self.url}: cannot look up {name}: {exc}") from None

    def write(self, name: str, data: bytes, durable: bool) -> None:
        target = self._at(name)
        try:
            if self._atomic_put:
                self.fs.pipe_file(target, data)
            else:  # a file system where a reader could see a half-written file: write aside, then move
                folder, leaf = name.split("/")
                self.fs.makedirs(f"{self.base}/{folder}", exist_ok=True)
                temporary = f"{self.base}/{folder}/.tmp-{os.getpid()}-{threading.get_ident()}-{leaf}"
                self.fs.pipe_file(temporary, data)
                self.fs.mv(temporary, target)
        except OSError as exc:
            raise SpiralError(f"artifact store {self.url}: cannot write {name}: {exc}") from None

    def read(self, name: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(self._at(name)))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SpiralError(f"artifact store {self.url}: cannot read {name}: {exc}") from None

    def list(self) -> Iterator[StoredBlob]:
        self.fs.invalidate_cache(self.base)
        try:
            found: dict[str, Any] = self.fs.find(self.base, detail=True)
        except FileNotFoundError:
            return
        for path, info in found.items():
            name = path[len(self.base) + 1:] if path.startswith(self.base + "/") else path
            if info.get("type") == "directory" or name.count("/") != 1 or name.split("/")[1].startswith(".tmp-"):
                continue
            yield StoredBlob(name, int(info.get("size") or 0), _modified(info))

    def delete(self, name: str) -> None:
        try:
            self.fs.rm_file(self._at(name))
        except FileNotFoundError:
            pass

    def describe(self, name: str = "") -> str:
        return f"{self.url}/{name}" if name else self.url


def _protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return set(protocol) if isinstance(protocol, (tuple, list)) else {protocol}


def _modified(info: dict[str, Any]) -> float:
    """When an object was written, from the listing's details (S3's LastModified, a file's mtime); a store
    that says nothing counts as just written, so gc's grace keeps it."""
    for field in ("LastModified", "last_modified", "mtime", "created"):
        value = info.get(field)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return time.time()
