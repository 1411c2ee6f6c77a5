"""The trace database: typed records, idempotent writes, who judged, schema version and migration."""

import sqlite3

import pytest

from spiral.memory.traces import (
    SCHEMA_VERSION,
    AttemptKey,
    AttemptRecord,
    EpisodeRecord,
    Judgement,
    TraceDB,
)
from spiral.tools.errors import InputError

REF = "sha256:" + "a" * 64 + ".png"


def _attempt(try_index=0, prompt="Put the red ball in the bowl.", **kw) -> AttemptRecord:
    return AttemptRecord(thread_id="th", plan_version=0, sub_action_index=1, try_index=try_index, sub_action_id="s1",
                         verb="put_in", movers=["red_ball"], postconditions=["inside(red_ball, bowl)"], prompt=prompt,
                         flags=["explicit"], seed=7, backbone="sim", conditioning_frame=REF, segment=REF,
                         last_frame=REF, thumbnail=REF, **kw)


def test_attempts_round_trip_typed_and_rewrites_do_not_duplicate(tmp_path):
    db = TraceDB(tmp_path / "t.sqlite")
    db.record_attempt(_attempt())
    db.record_attempt(_attempt(prompt="Pick up the red ball."))  # a node that re-runs after a resume
    [row] = db.attempts("th")
    assert row == _attempt(prompt="Pick up the red ball.")
    assert row.movers == ["red_ball"] and row.passed is None and row.judged is False
    assert db.attempts("other") == []


def test_a_judgement_says_who_judged_and_none_is_not_a_pass(tmp_path):
    db = TraceDB(tmp_path / "t.sqlite")
    db.record_attempt(_attempt(0))
    db.record_attempt(_attempt(1))
    db.record_judgement(AttemptKey("th", 0, 1, 0), Judgement(
        critic="perception", judged=True, passed=False, failure="incomplete", scores={"action_completion": 0.5},
        feedback="stopped short", evidence={"goal_distance": 12.5, "shift:red_ball": 9.0, "shift:cube": "missing"}))
    db.record_judgement(AttemptKey("th", 0, 1, 1), Judgement(critic="none", judged=False, passed=None))
    first, second = db.attempts("th")
    assert (first.critic, first.judged, first.passed, first.failure) == ("perception", True, False, "incomplete")
    assert first.evidence == {"goal_distance": 12.5, "shift:red_ball": 9.0, "shift:cube": "missing"}
    assert (second.critic, second.judged, second.passed) == ("none", False, None)
    with pytest.raises(InputError, match="no attempts row"):
        db.record_judgement(AttemptKey("th", 0, 9, 0), Judgement(critic="none", judged=False, passed=None))


def test_a_review_relabels_the_attempt_and_keeps_the_critics_verdict(tmp_path):
    db = TraceDB(tmp_path / "t.sqlite")
    db.record_attempt(_attempt())
    key = AttemptKey("th", 0, 1, 0)
    db.record_judgement(key, Judgement(critic="perception", judged=True, passed=True, feedback="done"))
    db.record_review(key, "reject", "on the rim", Judgement(critic="person", judged=True, passed=False,
                                                            failure="rejected", feedback="reviewer: on the rim"))
    [row] = db.attempts("th")
    assert (row.critic, row.passed, row.critic_passed, row.review, row.review_feedback) == \
        ("person", False, True, "reject", "on the rim")
    db.add_usage(key, {"refiner_tries": 1.0})
    db.add_usage(key, {"critic_tries": 2.0})
    assert db.attempt(key).usage == {"refiner_tries": 1.0, "critic_tries": 2.0}


def test_schema_version_is_kept_and_an_untyped_database_is_migrated(tmp_path):
    path = tmp_path / "t.sqlite"
    with sqlite3.connect(path) as conn:  # what SPIRAL wrote before the records were typed
        conn.execute("create table attempts (id text primary key, thread_id text, prompt text, passed integer)")
        conn.execute("insert into attempts values ('x:0:0:0', 'x', 'old prompt', 1)")
        conn.execute("create table episodes (thread_id text primary key, status text)")
    db = TraceDB(path)
    db.record_episode(EpisodeRecord(thread_id="new", action="put the ball in the bowl"))
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        assert {"attempts_v1", "episodes_v1", "attempts", "episodes", "meta"} <= tables
        assert conn.execute("select prompt from attempts_v1").fetchall() == [("old prompt",)]  # kept, browsable
        assert conn.execute("select value from meta").fetchall() == [(str(SCHEMA_VERSION),)]
    assert db.attempts() == [] and [e.thread_id for e in TraceDB(path).episodes()] == ["new"]
    with sqlite3.connect(path) as conn:
        conn.execute("update meta set value = '99'")
    with pytest.raises(InputError, match="newer than this SPIRAL"):
        TraceDB(path)


def test_one_connection_per_database_per_process(tmp_path):
    a = TraceDB.open(tmp_path / "t.sqlite")
    assert TraceDB.open(tmp_path / "." / "t.sqlite") is a
    TraceDB.release(tmp_path / "t.sqlite")
    assert TraceDB.open(tmp_path / "t.sqlite") is not a


def test_schema_2_attempts_gain_a_sample_key_and_keep_every_row(tmp_path):
    """A trace DB from before group rollouts (attempts keyed by try) migrates: rows kept, sample 0, chosen."""
    path = tmp_path / "t.sqlite"
    old_columns = {k: v for k, v in AttemptRecord.columns().items() if k not in ("sample", "group_size", "chosen")}
    with sqlite3.connect(path) as conn:
        cols = ", ".join(f'"{k}" {"INTEGER" if t is int else "REAL" if t is float else "TEXT"}'
                         for k, t in old_columns.items())
        conn.execute(f"create table attempts ({cols}, primary key (thread_id, plan_version, sub_action_index, try_index))")
        row = {k: v for k, v in _attempt(try_index=2).row().items() if k in old_columns}
        conn.execute(f"insert into attempts ({', '.join(row)}) values ({', '.join('?' * len(row))})", list(row.values()))
        conn.execute("create table meta (key text primary key, value text)")
        conn.execute("insert into meta values ('schema_version', '2')")
    db = TraceDB(path)
    [migrated] = db.attempts("th")
    assert (migrated.try_index, migrated.sample, migrated.group_size, migrated.chosen) == (2, 0, 1, True)
    assert migrated.prompt == "Put the red ball in the bowl."
    db.record_attempt(_attempt(try_index=2).model_copy(update={"sample": 1, "group_size": 2, "chosen": False}))
    db.record_choice(AttemptKey("th", 0, 1, 2, 1))
    assert [(a.sample, a.chosen) for a in TraceDB(path).attempts("th")] == [(0, False), (1, True)]
