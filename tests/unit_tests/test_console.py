"""What `spiral` prints as an episode runs."""

from __future__ import annotations

import pytest

from spiral.graph.console import ProgressPrinter
from spiral.graph.session import AttemptJudged, EpisodeStarted
from spiral.graph.state import Attempt, Critique, CritiqueScores

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
