"""Reflective memory: lessons from traces, a persistent store, recall by similarity."""

import numpy as np

from spiral.memory.store import (
    LESSONS,
    Lesson,
    lessons_from_attempts,
    lexical_embed,
    recall_flags,
    sqlite_store,
    write_lessons,
)
from spiral.memory.traces import AttemptRecord


def _row(sub, try_index, prompt, passed, failure=None, flags=(), verb="put_in", mover="red_ball"):
    ref = "sha256:" + "0" * 64 + ".png"
    return AttemptRecord(thread_id="t", plan_version=0, sub_action_index=sub, sub_action_id=f"s{sub}",
                         try_index=try_index, prompt=prompt, judged=True, critic="perception", passed=passed,
                         failure=failure, flags=list(flags), verb=verb, movers=[mover], postconditions=[], seed=0,
                         backbone="sim", conditioning_frame=ref, segment=ref, last_frame=ref, thumbnail=ref)


def test_lexical_embedding_is_normalised_overlap():
    a, b, c = np.asarray(lexical_embed(["put_in ball", "put_in ball incomplete", "stack cube"]))
    assert abs(np.linalg.norm(a) - 1) < 1e-9
    assert a @ b > a @ c


def test_a_failed_then_fixed_sub_action_becomes_a_lesson():
    rows = [_row(0, 0, "Put the red ball in the bowl.", False, "incomplete"),
            _row(0, 1, "Pick up the red ball and place it all the way inside the bowl.", True,
                 flags=("explicit", "complete")),
            _row(1, 0, "Stack the cube.", True, verb="stack", mover="blue_cube")]
    lessons = lessons_from_attempts(rows, {"red_ball": "ball", "blue_cube": "cube"})
    assert len(lessons) == 1
    lesson = lessons[0]
    assert (lesson.verb, lesson.shape, lesson.failure) == ("put_in", "ball", "incomplete")
    assert lesson.fixed_flags == ["explicit", "complete"] and "all the way" in lesson.text


def test_lessons_persist_and_are_recalled_for_the_same_kind(tmp_path):
    lesson = Lesson(verb="put_in", shape="ball", failure="incomplete", failed_prompt="a", fixed_prompt="b",
                    fixed_flags=["explicit", "complete"], text="put_in ball: 'a' failed (incomplete); 'b' worked")
    other = lesson.model_copy(update={"verb": "stack", "shape": "cube", "fixed_flags": ["identity"],
                                      "text": "stack cube: 'c' failed (wrong_object); 'd' worked"})
    with sqlite_store(tmp_path) as store:
        write_lessons(store, [lesson, other, lesson])  # idempotent by content
    with sqlite_store(tmp_path) as store:  # a new process would see the same file
        assert len(store.search(LESSONS, limit=100)) == 2
        assert recall_flags(store, "put_in", "ball") == ["explicit", "complete"]
        assert recall_flags(store, "stack", "cube") == ["identity"]
        assert recall_flags(store, "swap", "ball") == []
