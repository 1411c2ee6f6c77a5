"""Workspace folders: checked once, up front, so a bad one fails with one line before any work.

A workspace holds artifacts, checkpoints, traces and runs/<thread>/. Writing
commands need a writable folder (created if missing); reading ones (`traces`,
`history`) open a read-only folder read-only. Thread ids name folders under
runs/, so they are plain names that cannot climb out of it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..tools.errors import InputError, WorkspaceError, read_only_error, storage_error

THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters
(UUIDs, as a LangGraph server makes them, and `run-1a2b3c4d` qualify)."""


def check_thread_id(thread_id: str) -> str:
    if not THREAD_ID.fullmatch(thread_id):
        raise InputError(f"thread id {thread_id[:80]!r} is not a plain name: use letters, digits, '.', '_' "
                         "and '-' (at most 128, starting with a letter or digit)")
    return thread_id


def run_folder(workspace: str | Path, thread_id: str) -> Path:
    """workspace/runs/<thread>: where a finished episode's video and summary go by default."""
    return Path(workspace) / "runs" / check_thread_id(thread_id)


def refuse_file(workspace: Path) -> None:
    """One line for a workspace that is a file, or a path that cannot be followed (a symlink loop)."""
    try:
        workspace.resolve(strict=False)
        is_file = workspace.exists() and not workspace.is_dir()
    except (OSError, RuntimeError) as exc:
        raise InputError(f"--workspace {workspace}: {getattr(exc, 'strerror', None) or exc}") from None
    if is_file:
        raise WorkspaceError(f"--workspace {workspace} is a file, not a folder")


def is_writable(workspace: Path) -> bool:
    """Whether this process may write there (an existing folder, or one it could create)."""
    folder = workspace
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK)


def prepare_for_writing(workspace: Path) -> None:
    """Create the folder if needed; one line when it is a file, read-only, or cannot be made."""
    refuse_file(workspace)
    if not is_writable(workspace):
        raise read_only_error(f"the workspace {workspace}")
    try:
        workspace.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, str(workspace)) or WorkspaceError(
            f"cannot create the workspace {workspace}: {exc.strerror or exc}") from None
