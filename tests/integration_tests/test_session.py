"""The session driver as Python callers use it: start, pause for review, resume, fork."""

from __future__ import annotations

import pytest

from spiral.graph.session import Session
from spiral.memory.traces import TraceDB
from spiral.tools.errors import InputError, ResumeError
from spiral.vocabulary.config import RunContext
from spiral.vocabulary.events import AttemptJudged, EpisodeFinished, PlanMade, ReviewDecision

ACTION = "put the red ball in the bowl then stack the blue cube on the green cube"


def test_start_streams_typed_events_and_refuses_a_thread_that_exists(tmp_path, scene_png):
    events = []
    with Session(tmp_path / "ws") as session:
        run = session.start(ACTION, str(scene_png), RunContext(difficulty="easy"), "t1", observer=events.append)
        assert run.finished and run.status == "done" and run.state.cursor == 2
        kinds = [type(e).__name__ for e in events]
        assert kinds[:2] == ["EpisodeStarted", "PlanMade"] and kinds[-1] == "EpisodeFinished"
        assert events[0].thread_id == "t1" and events[0].workspace == str(tmp_path / "ws")
        assert sum(isinstance(e, AttemptJudged) for e in events) == run.state.generator_calls
        assert isinstance(events[1], PlanMade) and len(events[1].plan.sub_actions) == 2
        assert isinstance(events[-1], EpisodeFinished) and events[-1].status == "done"
        with pytest.raises(InputError, match="already exists"):
            session.start(ACTION, str(scene_png), RunContext(), "t1")
        with pytest.raises(ResumeError, match="no thread"):
            session.resume("nope")


def test_a_review_pauses_the_run_and_resume_answers_it(tmp_path, scene_png):
    with Session(tmp_path / "ws") as session:
        run = session.start(ACTION, str(scene_png), RunContext(difficulty="easy", review=True), "r")
        assert run.status == "paused" and run.waiting.sub_action == 0 and not run.finished
        run = session.resume("r", ReviewDecision(decision="reject", feedback="not in the bowl"))
        assert run.waiting.sub_action == 0 and run.waiting.try_index == 1  # generated again
        answers = 0
        while run.waiting is not None:
            run = session.resume("r", ReviewDecision(decision="approve"))
            answers += 1
        assert run.status == "done" and answers == 2
        with pytest.raises(InputError, match="not waiting for a review"):
            session.resume("r", ReviewDecision(decision="approve"))


def test_a_fork_at_a_judgement_carries_the_attempt_records_it_judges(tmp_path, scene_png):
    with Session(tmp_path / "ws") as session:
        session.start(ACTION, str(scene_png), RunContext(difficulty="easy"), "src")
        at_critique = next(c for c in session.history("src") if c.next == "critique")
        run = session.fork("src", at_critique.checkpoint_id, "forked")
        assert run.finished and run.state.status == "done"
    traces = TraceDB(tmp_path / "ws" / "traces.sqlite")
    judged = [a for a in traces.attempts("forked") if a.judged]
    assert judged and judged[0].critic == "perception" and judged[0].segment.startswith("sha256:")
