"""A workspace: one folder, resolved once, and the stores that live in it.

Everything an episode keeps on disk is here: the content-addressed artifacts,
the trace database, the SQLite checkpoints (PostgreSQL with
`SPIRAL_DATABASE_URI`), the reflective-memory store, `runs/<thread>/` for
finished videos, and the lease runs hold while they write. Every room that
needs one of them asks the `Workspace` instead of joining paths itself, so the
folder is resolved, and its problems (a file in its place, a symlink loop) are
said, in one place. `Workspace.of(path)` returns the process's one object per
folder, which shares the artifact store's caches and the trace database's
connection between every caller.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar

from ..tools.errors import InputError
from ..vocabulary.config import default_workspace
from ..vocabulary.environment import environment
from .artifacts import ArtifactStore
from .checkpoints import checkpoint_path, database_uri, open_checkpointer, open_store
from .folders import is_writable, prepare_for_writing, refuse_file, run_folder
from .lease import run_lease
from .traces import TraceDB


class Workspace:
    """A workspace folder and its stores (see the module docstring)."""

    _known: ClassVar[dict[Path, Workspace]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stores: dict[str, ArtifactStore] = {}

    @classmethod
    def of(cls, folder: str | Path | None = None) -> Workspace:
        """The workspace at `folder` ($SPIRAL_HOME, else ./.spiral, when None): one object per folder and
        process. A file where the folder should be, or a path that cannot be followed, is one line."""
        try:
            root = Path(folder or default_workspace()).expanduser().resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
            raise InputError(f"--workspace {folder}: {getattr(exc, 'strerror', None) or exc}") from None
        refuse_file(root)
        with cls._lock:
            if root not in cls._known:
                cls._known[root] = cls(root)
            return cls._known[root]

    def __str__(self) -> str:
        return str(self.root)

    # -- where things are -------------------------------------------------------------------------------
    @property
    def traces_path(self) -> Path:
        return self.root / "traces.sqlite"

    @property
    def checkpoints_path(self) -> Path:
        return checkpoint_path(self.root)

    def run_folder(self, thread_id: str) -> Path:
        """runs/<thread>: where a finished episode's video and summary go by default."""
        return run_folder(self.root, thread_id)

    @property
    def writable(self) -> bool:
        return is_writable(self.root)

    def prepare_for_writing(self) -> None:
        """The folder made if missing; one line when it is read-only or cannot be made."""
        prepare_for_writing(self.root)

    # -- its stores ---------------------------------------------------------------------------------------
    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store: `SPIRAL_ARTIFACTS_URL` when set (an object store every machine shares), else the
        workspace's `artifacts/` folder. One object per location, so callers share its caches."""
        url = environment().artifacts_url
        with self._lock:
            if url not in self._stores:
                self._stores[url] = ArtifactStore(url or self.root / "artifacts")
            return self._stores[url]

    def traces(self) -> TraceDB:
        """The trace database (one connection per database and process, shared by its callers): PostgreSQL when
        `SPIRAL_DATABASE_URI` is set (every machine's runs into one), else the workspace's SQLite file."""
        uri = database_uri()
        return TraceDB.open_postgres(uri) if uri else TraceDB.open(self.traces_path)

    def reading_traces(self) -> AbstractContextManager[TraceDB]:
        """The trace database opened to read (a read-only folder works), closed on exit."""
        uri = database_uri()
        return TraceDB.postgres(uri) if uri else TraceDB.for_reading(self.traces_path)

    def hold_traces(self) -> None:
        """Keep this process's trace connection open until `release_traces` (sessions in threads end in any order;
        a PostgreSQL connection stays open for the process)."""
        if not database_uri():
            TraceDB.hold(self.traces_path)

    def release_traces(self) -> None:
        if not database_uri():
            TraceDB.release(self.traces_path)

    @property
    def has_traces(self) -> bool:
        return bool(database_uri()) or self.traces_path.exists()

    def checkpointer(self, serde: Any = None, read_only: bool = False) -> AbstractContextManager[Any]:
        return open_checkpointer(self.root, serde, read_only)

    def lessons(self, folder: str | Path | None = None) -> AbstractContextManager[Any]:
        """The reflective-memory store (in `folder` when lessons are kept elsewhere)."""
        return open_store(folder or self.root)

    @contextmanager
    def lease(self) -> Iterator[None]:
        """Held while runs write here: gc removes nothing meanwhile (memory/lease.py)."""
        with run_lease(self.root):
            yield
