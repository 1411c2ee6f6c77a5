"""Artifact garbage collection: remove what no checkpoint, trace or trajectory references.

References are found by scanning the raw bytes of every checkpoint and pending
write (all threads), every text cell of the trace database, and the metadata of
referenced safetensors trajectories (which point at prompt-embedding
artifacts). Anything referenced is kept, whatever its age.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..tools.errors import SpiralError
from .artifacts import REF_PATTERN, ArtifactStore
from .sqlite import connect
from .workspace import is_writable, prepare_for_writing

REF = re.compile(REF_PATTERN.pattern.encode())
"""The store's own reference pattern, over bytes: gc keeps exactly what the store can resolve."""


def _refs_in_row(values) -> set[str]:
    """References in a row's cells, text or bytes (msgpack blobs included)."""
    refs: set[str] = set()
    for value in values:
        raw = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode() if value is not None else b""
        refs.update(m.decode() for m in REF.findall(raw))
    return refs


def _refs_in_sqlite(path: Path) -> set[str]:
    refs: set[str] = set()
    if not path.exists():
        return refs
    conn = connect(path, read_only=not is_writable(path.parent))
    try:
        for (table,) in conn.execute("select name from sqlite_master where type='table'").fetchall():
            for row in conn.execute(f'select * from "{table}"'):
                refs |= _refs_in_row(row)
    finally:
        conn.close()
    return refs


def _refs_in_postgres(uri: str) -> set[str]:
    """Every reference in every table of the database's public schema (checkpoints, blobs, writes, store)."""
    from psycopg import sql

    from .checkpoints import postgres_connection

    refs: set[str] = set()
    with postgres_connection(uri) as conn:
        tables = [r["tablename"] for r in conn.execute("select tablename from pg_tables where schemaname = 'public'")]
        for table in tables:
            for row in conn.execute(sql.SQL("select * from {}").format(sql.Identifier(table))):
                refs |= _refs_in_row(row.values())
    return refs


def referenced(workspace: str | Path) -> set[str]:
    from .checkpoints import database_uri

    ws = Path(workspace)
    refs = _refs_in_sqlite(ws / "checkpoints.sqlite") | _refs_in_sqlite(ws / "traces.sqlite")
    if database_uri():  # checkpoints there reference artifacts here too
        refs |= _refs_in_postgres(database_uri())
    store = ArtifactStore(ws / "artifacts")
    for ref in [r for r in refs if r.endswith(".safetensors")]:
        refs |= _refs_in_trajectory(store, ref)
    return refs


def _refs_in_trajectory(store: ArtifactStore, ref: str) -> set[str]:
    """What a trajectory's safetensors header points at (its prompt embeddings). A missing trajectory
    points at nothing; one that cannot be read stops gc, since what it references is unknown."""
    path = store.path(ref)
    if not path.exists():
        return set()
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            header = fh.read(min(size, 2**24))
    except OSError as exc:
        raise SpiralError(f"gc stopped, nothing removed: cannot read trajectory {ref} ({exc})") from None
    if len(header) != size:
        raise SpiralError(f"gc stopped, nothing removed: trajectory {ref} is truncated; restore or delete it first")
    return {m.decode() for m in REF.findall(header)}


def collect_garbage(workspace: str | Path, dry_run: bool = False) -> tuple[list[Path], int]:
    """Unreferenced artifact files (removed unless `dry_run`) and the bytes they held."""
    ws = Path(workspace)
    if not dry_run:
        prepare_for_writing(ws)
    keep = referenced(ws)
    root = ws / "artifacts"
    doomed = [p for p in root.glob("*/*") if p.is_file() and f"sha256:{p.name}" not in keep]
    size = sum(p.stat().st_size for p in doomed)
    if not dry_run:
        for p in doomed:
            p.unlink()
    return doomed, size
