"""How the simulated model reads prompts, and the planner's grammar."""

import pytest

from spiral.nodes.grammar import parse_action
from spiral.tools.errors import ActionParseError
from spiral.tools.video.sim.language import read_prompt


def test_sim_reads_clauses_targets_and_manner():
    r = read_prompt("Pick up the small red ball and place it all the way inside the white bowl. "
                    "Keep every other object still.")
    assert len(r.intents) == 1 and r.keep_still
    i = r.intents[0]
    assert i.verb == "put_in" and i.completion
    assert (i.subject.size, i.subject.color, i.subject.shape, i.subject.group) == ("small", "red", "ball", False)
    assert i.other.shape == "bowl"


@pytest.mark.parametrize("prompt,verbs", [
    ("put all red objects in the bowl", ["put_in"]),
    ("stack the blue cube on the green cube", ["stack"]),
    ("swap the ball and the cube", ["swap"]),
    ("line the cubes up from left to right by size", ["lineup"]),
    ("move the yellow ball to the left edge", ["move_to"]),
    ("put the ball left of the cube", ["move_to"]),
    ("put the red ball in the bowl, then stack the blue cube on the green cube", ["put_in", "stack"]),
])
def test_sim_verbs(prompt, verbs):
    assert [i.verb for i in read_prompt(prompt).intents] == verbs


@pytest.mark.parametrize("action,kinds", [
    ("put all red objects in the bowl", ["put_in"]),
    ("Put every ball in the bowl.", ["put_in"]),
    ("stack the blue cube on the green cube", ["stack"]),
    ("put the red cube on the blue cube", ["stack"]),
    ("put the red ball on the plate", ["put_in"]),
    ("swap the ball and the cube", ["swap"]),
    ("line the cubes up from left to right by size", ["lineup"]),
    ("move the yellow ball to the left edge", ["place"]),
    ("push the cube to the center", ["place"]),
    ("put the ball left of the cube", ["relative"]),
    ("put the red ball in the bowl then swap the ball and the cube and stack the blue cube on the green cube",
     ["put_in", "swap", "stack"]),
])
def test_planner_grammar(action, kinds):
    assert [c.kind for c in parse_action(action)] == kinds


@pytest.mark.parametrize("action", ["dance a jig", "", "put the ball", "make a sandwich"])
def test_unparsable_actions_say_what_is_understood(action):
    with pytest.raises(ActionParseError, match="I understand"):
        parse_action(action)
