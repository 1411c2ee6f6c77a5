"""Artifacts at an fsspec URL: the same content addressing, damage checks and gc as in a local folder.

`memory://` stands for an object store (an atomic PUT); `local://` is fsspec's own local file system, which
takes the write-aside-then-move path that file systems without an atomic PUT need. The S3 end-to-end run
against a local S3-compatible server is in tests/integration_tests/test_fleet.py.
"""

from __future__ import annotations

import sqlite3
import uuid

import fsspec
import numpy as np
import pytest

from spiral.memory.artifacts import ArtifactStore
from spiral.memory.blobs import FsspecLocation, LocalFolder, is_url, open_location
from spiral.tools.errors import DamagedDataError, SpiralError


@pytest.fixture
def memory_url():
    url = f"memory://spiral-test-{uuid.uuid4().hex[:8]}/artifacts"
    yield url
    fsspec.filesystem("memory").rm(url.removeprefix("memory://").split("/")[0], recursive=True)


def test_urls_open_through_fsspec_and_paths_stay_local(tmp_path):
    assert isinstance(open_location(tmp_path / "a"), LocalFolder)
    assert isinstance(open_location(f"file://{tmp_path}/b"), LocalFolder)
    assert isinstance(open_location("memory://bucket/x"), FsspecLocation)
    assert is_url("s3://bucket/prefix") and not is_url("/data/s3:/odd")


def test_an_object_store_keeps_content_addressed_artifacts(memory_url):
    store = ArtifactStore(memory_url)
    frames = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    ref = store.put_frames(frames)
    store.drop_cache()  # read back from the store, not the in-process cache
    assert np.array_equal(store.get_frames(ref), frames)
    name = ref.removeprefix("sha256:")
    fs = fsspec.filesystem("memory")
    assert fs.exists(f"{memory_url.removeprefix('memory://')}/{name[:2]}/{name}")
    assert store.put_frames(frames) == ref and len(list(store.location.list())) == 1  # written once
    with pytest.raises(SpiralError, match="has no path"):
        store.path(ref)


def test_changed_bytes_in_an_object_store_are_refused(memory_url):
    store = ArtifactStore(memory_url)
    ref = store.put_bytes(b"segment bytes", "bin")
    name = ref.removeprefix("sha256:")
    fsspec.filesystem("memory").pipe_file(f"{memory_url.removeprefix('memory://')}/{name[:2]}/{name}", b"other")
    with pytest.raises(DamagedDataError, match="no longer match its name"):
        store.get_bytes(ref)
    with pytest.raises(SpiralError, match="is missing from"):
        store.get_bytes(ArtifactStore.ref_for(b"never written", "bin"))


def test_a_file_system_without_atomic_put_writes_aside_then_moves(tmp_path):
    store = ArtifactStore(f"local://{tmp_path}/arts")
    assert isinstance(store.location, FsspecLocation) and not store.location._atomic_put
    ref = store.put_bytes(b"x" * 1000, "bin")
    files = sorted(p.relative_to(tmp_path / "arts").as_posix() for p in (tmp_path / "arts").rglob("*") if p.is_file())
    assert files == [ArtifactStore.name(ref)]  # no temporary name left behind
    assert store.get_bytes(ref) == b"x" * 1000


def test_gc_removes_unreferenced_objects_from_an_object_store(tmp_path, memory_url, monkeypatch):
    from spiral.memory.gc import collect_garbage
    from spiral.memory.workspace import Workspace

    monkeypatch.setenv("SPIRAL_ARTIFACTS_URL", memory_url)
    workspace = Workspace.of(tmp_path / "ws")
    store = workspace.artifacts
    assert store.root == memory_url
    kept = store.put_bytes(b"referenced", "bin")
    stray = store.put_bytes(b"stray", "bin")
    workspace.prepare_for_writing()
    with sqlite3.connect(workspace.traces_path) as conn:  # a row in the workspace's databases references `kept`
        conn.execute("CREATE TABLE pins (ref TEXT)")
        conn.execute("INSERT INTO pins VALUES (?)", [kept])
    conn.close()
    assert collect_garbage(tmp_path / "ws", grace_s=3600)[0] == []  # both young
    removed, size = collect_garbage(tmp_path / "ws", grace_s=0)
    assert removed == [store.where(stray)] and size == len(b"stray")
    assert store.get_bytes(kept) == b"referenced"
    with pytest.raises(SpiralError, match="is missing"):
        store.get_bytes(stray)


def test_an_s3_endpoint_set_after_fsspec_was_imported_is_used(monkeypatch):
    """fsspec reads FSSPEC_* once at import; a location opened later must see the environment as it is then
    (in CI the fleet test found real AWS instead of the local S3 after an earlier test imported fsspec)."""
    import fsspec  # noqa: F401 - imported before the variable is set, as in a long-lived process

    from spiral.memory.blobs import FsspecLocation

    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    location = FsspecLocation("s3://bucket/prefix")
    assert location.fs.storage_options.get("endpoint_url") == "http://127.0.0.1:1"
