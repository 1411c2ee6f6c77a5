"""Paraphrases of what the grammar means parse to the same plan; what it cannot mean is refused by name."""

import pytest

from spiral.nodes.plan import RulePlanAgent
from spiral.tools.errors import ActionParseError
from spiral.tools.perception import perceive
from spiral.tools.world.render import render_scene
from spiral.tools.world.scene import Scene, WorldObject


def _obj(oid, shape, color, x, y, size="medium"):
    return WorldObject(id=oid, shape=shape, color=color, size=size, x=x, y=y)


@pytest.fixture(scope="module")
def table():
    """A bowl holding a red ball, a plate, three red objects in all, two blocks, balls of three sizes."""
    return Scene(objects=[
        _obj("bowl", "bowl", "white", 30, 40), _obj("plate", "plate", "black", 96, 40),
        _obj("red_ball", "ball", "red", 30, 40, "small"),
        _obj("red_cube", "cube", "red", 20, 100, "small"), _obj("red_block", "block", "red", 60, 116),
        _obj("green_block", "block", "green", 100, 96), _obj("blue_block", "block", "blue", 64, 76),
        _obj("yellow_ball", "ball", "yellow", 100, 118, "large"),
    ])


def _steps(table, action):
    plan = RulePlanAgent().plan(action, perceive(render_scene(table)))
    return [(s.verb, s.postconditions) for s in plan.sub_actions]


@pytest.mark.parametrize("action,steps", [
    ("stack the green block onto the blue one", [("stack", ["on(green_block, blue_block)"])]),
    ("stack the green block on top of the blue block", [("stack", ["on(green_block, blue_block)"])]),
    ("put the red cube into the bowl", [("put_in", ["inside(red_cube, bowl)"])]),
    ("take the red ball out of the bowl and put it on the plate", [("put_in", ["inside(red_ball, plate)"])]),
    ("put the red cube in the bowl, then move it to the left edge",
     [("put_in", ["inside(red_cube, bowl)"]), ("move_to", ["at_edge(red_cube, left)"])]),
    ("clear the table: put everything in the plate",
     [("put_in", [f"inside({o}, plate)"]) for o in ("red_cube", "red_ball", "red_block", "blue_block",
                                                     "green_block", "yellow_ball")]),
    ("put all three red things in the plate",
     [("put_in", [f"inside({o}, plate)"]) for o in ("red_cube", "red_ball", "red_block")]),
    ("put the largest ball in the plate", [("put_in", ["inside(yellow_ball, plate)"])]),
    ("put the smallest ball on the plate", [("put_in", ["inside(red_ball, plate)"])]),
    ("put the leftmost block in the bowl", [("put_in", ["inside(red_block, bowl)"])]),
    ("put the block that is closest to the bowl on the plate", [("put_in", ["inside(blue_block, plate)"])]),
    ("put the block farthest from the bowl in the bowl", [("put_in", ["inside(green_block, bowl)"])]),
])
def test_a_paraphrase_gives_the_plan_its_meaning_calls_for(table, action, steps):
    assert _steps(table, action) == steps


@pytest.mark.parametrize("action,message", [
    ("juggle the red ball", "'juggle' is not a verb I know"),
    ("put the shiny ball in the bowl", "'shiny' is not a word I know"),
    ("put the ball beside the bowl", "'beside' is not a word I know"),
    ("put both red things in the bowl", "speaks of 2 red objects but the start image has 3"),
    ("take the red cube out of the bowl and put it on the plate", "the red cube is not in the white bowl in the start image"),
    ("take the red ball out of the bowl", "needs to say where it goes next"),
    ("take the red ball out of the bowl and swap it with the red cube", "needs to say where it goes next"),
    ("put it in the bowl", "'it' refers to nothing before it"),
    ("clear the table", "say where things go"),
])
def test_what_the_grammar_cannot_mean_is_refused_naming_the_part(table, action, message):
    with pytest.raises(ActionParseError, match=message) as info:
        RulePlanAgent().plan(action, perceive(render_scene(table)))
    assert "\n" not in str(info.value)


def test_look_alikes_are_never_offered_as_a_choice():
    twins = Scene(objects=[_obj("bowl", "bowl", "white", 30, 40), _obj("red_ball", "ball", "red", 80, 90, "small"),
                           _obj("red_ball_2", "ball", "red", 100, 110, "small")])
    with pytest.raises(ActionParseError, match=r"'red ball' matches 2 objects and some look the same "
                                               r"\(2x small red ball\): no words can pick one"):
        RulePlanAgent().plan("put the red ball in the bowl", perceive(render_scene(twins)))
