"""SPIRAL's SQLite checkpointer: each channel value stored once per version, rows compressed.

LangGraph's SqliteSaver copies every channel's value into every checkpoint row, so a value that
does not change (the action, the settings, the image reference) is stored again at every step,
and a long action makes every checkpoint of a long episode bigger: 11–12 kB per generator call,
growing with the horizon. This saver keeps what the PostgreSQL saver keeps: the checkpoint row
holds the bookkeeping (channel versions, seen-versions, ids), and `checkpoint_blobs` holds each
channel's value once per (thread, namespace, channel, version). Serialized values over a few
hundred bytes are zstd-compressed (type tag `zstd+<inner>`); `spiral gc` decompresses them
before it looks for artifact references.

Versions must then name one value in a thread even across branches (a fork from an old
checkpoint must not reuse a version the other branch wrote), so new threads get versions like
the PostgreSQL saver's, a counter and a random part (`000012.8f3a1c`); the counter keeps them
ordered. Threads written before this saver keep their integer versions and their inline rows,
and read back as before.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import zstandard
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.sqlite import SqliteSaver

from .durable import wait_for_disk

COMPRESSED = "zstd+"
COMPRESS_FROM = 256
"""Bytes below which a value is stored as it is (zstd's frame costs more than it saves on small values)."""
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
VERSION_DIGITS = 6
"""Versions are `000012.8f3a1c`: compared as strings, the counter's fixed width keeps them in order."""


class CompressingSerde:
    """The graph's serializer, with zstd on large values (type tag `zstd+msgpack`, ...)."""

    def __init__(self, inner: SerializerProtocol) -> None:
        self.inner = inner
        self._local = threading.local()  # a zstd (de)compressor must not be used by two threads at once

    def _codecs(self) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
        codecs = getattr(self._local, "codecs", None)
        if codecs is None:
            codecs = self._local.codecs = (zstandard.ZstdCompressor(level=3), zstandard.ZstdDecompressor())
        return codecs

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        kind, data = self.inner.dumps_typed(obj)
        if len(data) >= COMPRESS_FROM:
            return COMPRESSED + kind, self._codecs()[0].compress(data)
        return kind, data

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        kind, raw = data
        if kind.startswith(COMPRESSED):
            return self.inner.loads_typed((kind[len(COMPRESSED):], self._codecs()[1].decompress(raw)))
        return self.inner.loads_typed(data)


def decompressed(raw: bytes) -> bytes:
    """A cell's bytes as written before compression (gc scans them for references)."""
    return zstandard.ZstdDecompressor().decompress(raw) if raw.startswith(ZSTD_MAGIC) else raw


class SpiralSqliteSaver(SqliteSaver):
    """Channel values once per version in `checkpoint_blobs`; every commit waits for its artifacts on disk."""

    def __init__(self, conn: Any, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(conn, serde=serde)
        self.serde = CompressingSerde(self.serde)

    def setup(self) -> None:
        if self.is_setup:
            return
        super().setup()
        self.conn.execute("""CREATE TABLE IF NOT EXISTS checkpoint_blobs (
            thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '', channel TEXT NOT NULL,
            version TEXT NOT NULL, type TEXT NOT NULL, blob BLOB,
            PRIMARY KEY (thread_id, checkpoint_ns, channel, version))""")
        self.conn.commit()

    def get_next_version(self, current: Any, channel: None = None) -> Any:
        if isinstance(current, int):  # a thread from before this saver goes on with integers
            return current + 1
        if isinstance(current, str) and len(current.split(".")[0]) != VERSION_DIGITS:
            return super().get_next_version(current, channel)  # a thread of LangGraph's SqliteSaver: its format
        number = 0 if current is None else int(str(current).split(".")[0])
        return f"{number + 1:0{VERSION_DIGITS}d}.{random.getrandbits(24):06x}"

    # -- writing ------------------------------------------------------------------------------
    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        wait_for_disk()
        if any(isinstance(version, int) for version in checkpoint["channel_versions"].values()):
            return super().put(config, checkpoint, metadata, new_versions)  # a thread from before: rows stay inline
        thread_id, namespace = str(config["configurable"]["thread_id"]), config["configurable"]["checkpoint_ns"]
        values = checkpoint["channel_values"]
        blobs = [(thread_id, namespace, channel, str(version), *self.serde.dumps_typed(values[channel]))
                 for channel, version in new_versions.items() if channel in values]
        kind, row = self.serde.dumps_typed({**checkpoint, "channel_values": {}})
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False).encode("utf-8", "ignore")
        with self.cursor() as cur:  # one transaction: a kill leaves the checkpoint with its values, or neither
            cur.executemany("INSERT OR IGNORE INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, "
                            "blob) VALUES (?, ?, ?, ?, ?, ?)", blobs)
            cur.execute("INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
                        "parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (thread_id, namespace, checkpoint["id"], config["configurable"].get("checkpoint_id"), kind,
                         row, meta))
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": namespace, "checkpoint_id": checkpoint["id"]}}

    def put_writes(self, *args: Any, **kwargs: Any) -> None:
        wait_for_disk()
        super().put_writes(*args, **kwargs)

    def delete_thread(self, thread_id: str) -> None:
        super().delete_thread(thread_id)
        with self.cursor() as cur:
            cur.execute("DELETE FROM checkpoint_blobs WHERE thread_id = ?", (str(thread_id),))

    # -- reading ------------------------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        found = super().get_tuple(config)
        return None if found is None else self._with_values(found)

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        found = list(super().list(config, filter=filter, before=before, limit=limit))  # it holds the lock
        for one in found:
            yield self._with_values(one)

    get_delta_channel_history = BaseCheckpointSaver.get_delta_channel_history
    """The generic walk over get_tuple/list: SqliteSaver's fast path reads values from inline rows."""

    def _with_values(self, found: CheckpointTuple) -> CheckpointTuple:
        """The checkpoint with its channel values from `checkpoint_blobs` (rows written inline keep theirs)."""
        checkpoint = found.checkpoint
        values = dict(checkpoint["channel_values"])
        wanted = [(channel, str(version)) for channel, version in checkpoint["channel_versions"].items()
                  if channel not in values]
        if wanted:
            conf = found.config["configurable"]
            for channel, kind, blob in self._blobs(conf["thread_id"], conf.get("checkpoint_ns", ""), wanted):
                values[channel] = self.serde.loads_typed((kind, blob))
        return found._replace(checkpoint={**checkpoint, "channel_values": values})

    def _blobs(self, thread_id: str, namespace: str, wanted: Sequence[tuple[str, str]]) -> list[tuple]:
        rows: list[tuple] = []
        with self.cursor(transaction=False) as cur:
            for start in range(0, len(wanted), 200):  # SQLite's bound-parameter limit
                chunk = wanted[start:start + 200]
                pairs = ", ".join("(?, ?)" for _ in chunk)
                try:
                    cur.execute(f"SELECT channel, type, blob FROM checkpoint_blobs WHERE thread_id = ? AND "
                                f"checkpoint_ns = ? AND (channel, version) IN (VALUES {pairs})",
                                (str(thread_id), namespace, *[v for pair in chunk for v in pair]))
                except sqlite3.OperationalError as exc:  # a read-only database from before this saver
                    if "no such table" in str(exc):
                        return []
                    raise
                rows += cur.fetchall()
        return rows
