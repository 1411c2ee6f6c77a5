"""Where SPIRAL may write, checked before any work: one line for a path that cannot take the output.

A file output must not be an existing folder and its folder must take a new
file; a folder output must be (or become) a folder that takes new files.
"Takes a new file" is tried, not guessed from permission bits: `/proc/self`,
a read-only mount and a full disk all look writable to `os.access` as root.
Nothing is left behind by the try.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import InputError


def _resolved(path: str | os.PathLike[str], flag: str) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop, a path too long
        raise InputError(f"{flag} {path}: {exc}") from None


def _takes_files(folder: Path, flag: str, shown: str | os.PathLike[str]) -> None:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".spiral-probe-"):
            pass
    except OSError as exc:
        raise InputError(f"{flag} {shown}: cannot write in {folder} ({exc.strerror or exc})") from None


def writable_file(path: str | os.PathLike[str], flag: str) -> Path:
    """`path`, resolved, once it is clear a file can be written there (its folder is made if missing)."""
    target = _resolved(path, flag)
    if target.is_dir():
        raise InputError(f"{flag} {path} is a folder; give the name of a file to write")
    writable_folder(target.parent, flag, shown=path)
    return target


def writable_folder(path: str | os.PathLike[str], flag: str, shown: str | os.PathLike[str] | None = None,
                    make: bool = True) -> Path:
    """`path`, resolved, once it is clear new files can be written in it: made if missing, or with
    `make=False` left as it is, its nearest existing folder tried instead (a check that writes nothing)."""
    shown = path if shown is None else shown
    folder = _resolved(path, flag)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{flag} {shown}: {folder} is a file, not a folder")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{flag} {shown}: {existing} is a file, not a folder")
    if make:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{flag} {shown}: cannot make the folder {folder} ({exc.strerror or exc})") from None
        existing = folder
    _takes_files(existing, flag, shown)
    return folder


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """`data` into `path` under a temporary name, then renamed: a crash or a full disk never leaves a partial
    file under `path` (its folder is made if missing)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
