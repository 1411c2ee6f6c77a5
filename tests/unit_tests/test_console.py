"""What `spiral` prints as an episode runs."""

from __future__ import annotations

import pytest

from spiral.shell.console import ProgressPrinter
from spiral.vocabulary.events import AttemptJudged, EpisodeStarted
from spiral.vocabulary.state import Attempt, Critique, CritiqueScores

SCORES = CritiqueScores(action_completion=0.2, object_fidelity=1, temporal_consistency=1, physical_plausibility=1,
                        visual_quality=1)


def judged(failure: str | None) -> AttemptJudged:
    critique = Critique(scores=SCORES, passed=False, failure=failure, feedback="not in the bowl")
    return AttemptJudged(attempt=Attempt(sub_action_index=0, try_index=1, plan_version=0, prompt="p", seed=1,
                                         segment="s", last_frame="f", critique=critique))


@pytest.mark.parametrize("failure,shown", [(None, "step 1 try 2: fail  not in the bowl"),
                                           ("incomplete", "step 1 try 2: fail (incomplete)  not in the bowl")])
def test_a_failed_critique_names_its_failure_only_when_it_has_one(capsys, failure, shown):
    ProgressPrinter()(judged(failure))
    out = capsys.readouterr().out
    assert shown in out and "None" not in out


def test_the_thread_line_comes_once_the_run_has_started(capsys):
    ProgressPrinter()(EpisodeStarted(thread_id="t1", workspace="/w"))
    assert capsys.readouterr().out.strip() == "thread t1  (resume with: spiral resume t1 --workspace /w)"


def test_the_status_line_follows_sub_action_try_denoising_step_and_verdict(capsys):
    from spiral.vocabulary.events import GeneratorProgress, PlanMade, SegmentReady
    from spiral.vocabulary.state import Plan, SubAction

    steps = [SubAction(id=f"s{i}", index=i, verb="put_in", subject="red_ball", subject_desc="red ball",
                       description=f"step {i}", prompt="p", postconditions=["inside(red_ball, bowl)"])
             for i in range(3)]
    printer = ProgressPrinter(live=False)
    assert printer.status_text() == "planning"
    printer(PlanMade(plan=Plan(goal="g", sub_actions=steps), cursor=0))
    printer(GeneratorProgress(sub_action=1, try_index=1, step=7, steps=30, backbone="wan2.2-ti2v"))
    assert printer.status_text() == "sub-action 2 of 3 · try 2 · denoising 7/30"
    printer(SegmentReady(sub_action=1, try_index=1, segment="s", thumbnail="", prompt="p", seed=1))
    printer(judged("incomplete"))
    assert printer.status_text() == "sub-action 2 of 3 · try 2 · judging · last: fail (incomplete)"
    out = capsys.readouterr().out
    assert "denoising" not in out  # off a terminal: plain lines only, no per-step chatter


def test_a_live_status_line_is_cleared_when_the_run_ends(capsys):
    with ProgressPrinter(live=True) as printer:
        assert printer._status is not None
        printer(EpisodeStarted(thread_id="t1", workspace="/w"))
    assert printer._status is None and "thread t1" in capsys.readouterr().out
