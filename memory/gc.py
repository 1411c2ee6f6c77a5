"""Artifact garbage collection: remove what no checkpoint, trace or trajectory references.

References are found by scanning the raw bytes of every checkpoint and pending
write (all threads), every text cell of the trace database, and the metadata of
referenced safetensors trajectories (which point at prompt-embedding
artifacts). Anything referenced is kept, whatever its age.

gc never deletes what a live or resumable thread can still reach:
- it needs the workspace's lease to itself (memory/lease.py): while any run
  holds it shared, gc removes nothing and says so;
- it leaves alone what is being written (temporary files) and anything younger
  than the grace period (a step's artifacts are written before the checkpoint
  that names them commits);
- when a reference source cannot be read (a damaged or emptied checkpoint or
  trace database, a truncated trajectory), it removes nothing and names it.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from pathlib import Path

from ..tools.errors import SpiralError, damaged_database
from .artifacts import REF_PATTERN, ArtifactStore
from .lease import sole_lease
from .sqlite import connect
from .sqlite_saver import decompressed
from .workspace import Workspace

REF = re.compile(REF_PATTERN.pattern.encode())
"""The store's own reference pattern, over bytes: gc keeps exactly what the store can resolve."""


def _refs_in_row(values) -> set[str]:
    """References in a row's cells, text or bytes (msgpack blobs included)."""
    refs: set[str] = set()
    for value in values:
        raw = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode() if value is not None else b""
        raw = decompressed(raw)  # checkpoint rows and blobs over a few hundred bytes are zstd frames
        refs.update(m.decode() for m in REF.findall(raw))
    return refs


def _refs_in_sqlite(path: Path) -> set[str]:
    """Every reference in every table; a file that is there but holds no tables (emptied, or never finished)
    cannot say what it referenced, so gc stops."""
    refs: set[str] = set()
    if not path.exists():
        return refs
    conn = connect(path, read_only=True)  # gc reads: it must not even write a header into an emptied file
    try:
        tables = [t for (t,) in conn.execute("select name from sqlite_master where type='table'").fetchall()]
        if not tables:
            raise SpiralError(f"gc stopped, nothing removed: {path} holds no tables (emptied or damaged), so what it "
                              "referenced is unknown; restore it, or move it aside if its threads are gone for good")
        for table in tables:
            for row in conn.execute(f'select * from "{table}"'):
                refs |= _refs_in_row(row)
    except sqlite3.DatabaseError as exc:
        raise damaged_database(path, exc) from None
    finally:
        conn.close()
    return refs


def _refs_in_postgres(uri: str) -> set[str]:
    """Every reference in every table of the database's own schemas (checkpoints, blobs, writes, store, traces)."""
    from psycopg import sql

    from .checkpoints import postgres_connection

    refs: set[str] = set()
    with postgres_connection(uri) as conn:
        tables = [(r["schemaname"], r["tablename"]) for r in conn.execute(
            "select schemaname, tablename from pg_tables where schemaname not in ('pg_catalog', 'information_schema')")]
        for schema, table in tables:
            for row in conn.execute(sql.SQL("select * from {}.{}").format(sql.Identifier(schema), sql.Identifier(table))):
                refs |= _refs_in_row(row.values())
    return refs


def referenced(workspace: str | Path) -> set[str]:
    from .checkpoints import database_uri

    space = Workspace.of(workspace)
    refs = _refs_in_sqlite(space.checkpoints_path) | _refs_in_sqlite(space.traces_path)
    if database_uri():  # checkpoints and traces there reference artifacts here too
        refs |= _refs_in_postgres(database_uri())
    store = space.artifacts
    for ref in [r for r in refs if r.endswith(".safetensors")]:
        refs |= _refs_in_trajectory(store, ref)
    return refs


def _refs_in_trajectory(store: ArtifactStore, ref: str) -> set[str]:
    """What a trajectory's safetensors header points at (its prompt embeddings). A missing trajectory
    points at nothing; one that cannot be read stops gc, since what it references is unknown."""
    try:
        if store.is_local:  # the header only
            path = store.path(ref)
            if not path.exists():
                return set()
            with open(path, "rb") as fh:
                head = fh.read(8)
                header = fh.read(min(int.from_bytes(head, "little"), 2**24)) if len(head) == 8 else b""
        else:
            data = store.location.read(store.name(ref))
            if data is None:
                return set()
            head, header = data[:8], data[8:8 + min(int.from_bytes(data[:8], "little"), 2**24)]
    except (OSError, SpiralError) as exc:
        raise SpiralError(f"gc stopped, nothing removed: cannot read trajectory {ref} ({exc})") from None
    if len(head) != 8 or len(header) != int.from_bytes(head, "little"):
        raise SpiralError(f"gc stopped, nothing removed: trajectory {ref} is truncated; restore or delete it first")
    return {m.decode() for m in REF.findall(header)}


GRACE_SECONDS = 3600.0
"""Artifacts younger than this are kept even when nothing references them yet: a running step writes its
artifacts before the checkpoint that names them commits."""


def collect_garbage(workspace: str | Path, dry_run: bool = False,
                    grace_s: float = GRACE_SECONDS) -> tuple[list[str], int]:
    """Unreferenced artifacts older than `grace_s` (removed unless `dry_run`), as paths or URLs, and the bytes
    they held. Runs hold the workspace's lease: gc removes nothing while one does. Artifacts in an object
    store shared by several machines rely on the grace period (a lease is one machine's)."""
    space = Workspace.of(workspace)
    if not dry_run:
        space.prepare_for_writing()
    with sole_lease(space.root) if not dry_run else contextlib.nullcontext():
        keep = referenced(space.root)
        cutoff = time.time() - grace_s
        store = space.artifacts
        doomed = [blob for blob in store.location.list()
                  if REF_PATTERN.fullmatch(f"sha256:{blob.name.split('/')[-1]}")
                  and f"sha256:{blob.name.split('/')[-1]}" not in keep and blob.modified <= cutoff]
        if not dry_run:
            for blob in doomed:
                store.location.delete(blob.name)
    return [store.location.describe(blob.name) for blob in doomed], sum(blob.size for blob in doomed)
