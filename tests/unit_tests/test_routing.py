"""Every edge of the graph's conditional routing."""

import pytest

from spiral.graph.routing import after_advance, after_critique, after_plan, after_review
from spiral.vocabulary.config import RunContext
from spiral.vocabulary.state import (
    Attempt,
    Critique,
    CritiqueScores,
    EpisodeState,
    SubAction,
)

SCORES = CritiqueScores(action_completion=0, object_fidelity=1, temporal_consistency=1, physical_plausibility=1,
                        visual_quality=1)


def _state(n_steps=2, cursor=0, tries=(), replans=0, calls=0, **settings):
    steps = [SubAction(index=i, verb="put_in", subject=f"o{i}", target="bowl", subject_desc="x", description="d",
                       prompt="p") for i in range(n_steps)]
    attempts = [Attempt(sub_action_index=cursor, try_index=i, plan_version=0, prompt="p", seed=i, segment="s",
                        last_frame="f", critique=Critique(scores=SCORES, passed=passed, feedback="",
                                                          failure=None if passed else failure,
                                                          replan=failure == "missing_object"))
                for i, (passed, failure) in enumerate(tries)]
    return EpisodeState(action="a", image="i", settings=RunContext(**settings), plan_ref="sha256:x.json",
                        plan_size=len(steps), sub_action=steps[cursor] if cursor < len(steps) else None,
                        cursor=cursor, attempts=attempts, replans=replans, generator_calls=calls)


def test_after_plan():
    assert after_plan(_state()) == "generate"
    assert after_plan(_state(n_steps=0)) == "finalize"
    assert after_plan(_state(n_steps=2, cursor=2)) == "finalize"


@pytest.mark.parametrize("tries,replans,calls,expected", [
    ([(True, None)], 0, 1, "advance"),                                          # pass
    ([(False, "incomplete")], 0, 1, "refine"),                                   # inner loop
    ([(False, "incomplete")] * 3, 0, 3, "plan"),                                 # tries spent → replan
    ([(False, "incomplete")] * 3, 2, 3, "advance"),                              # replans spent → best effort
    ([(False, "missing_object")], 0, 1, "plan"),                                 # plan judged wrong
    ([(False, "missing_object")], 2, 1, "refine"),                               # ... but no replans left
    ([(False, "incomplete")], 0, 40, "advance"),                                 # episode budget spent
])
def test_after_critique(tries, replans, calls, expected):
    assert after_critique(_state(tries=tries, replans=replans, calls=calls)) == expected


def test_after_advance():
    assert after_advance(_state(cursor=1)) == "generate"
    assert after_advance(_state(cursor=2)) == "finalize"
    assert after_advance(_state(cursor=1, calls=40)) == "finalize"


@pytest.mark.parametrize("tries,calls,expected", [
    ([(True, None)], 1, "review"),                      # about to accept: a person looks first
    ([(False, "incomplete")] * 3, 3, "plan"),           # still replans before any acceptance
    ([(False, "incomplete")], 1, "refine"),             # the critic's own failures never reach review
    ([(False, "incomplete")], 40, "review"),            # best effort at the budget is reviewed too
])
def test_after_critique_with_review(tries, calls, expected):
    assert after_critique(_state(tries=tries, calls=calls, review=True)) == expected


@pytest.mark.parametrize("review,calls,expected", [
    ("approved", 1, "advance"), ("rejected", 1, "refine"), ("rejected", 40, "advance")])
def test_after_review(review, calls, expected):
    state = _state(tries=[(True, None)], calls=calls, review=True)
    state.attempts[-1].review = review
    assert after_review(state) == expected
