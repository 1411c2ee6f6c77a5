"""The planner's goal for a goal-taking backbone (nodes/goal.py), its sketch (tools/video/goal_sketch.py),
and the request's checks: read from pixels only, it agrees with where the world's executor puts things."""

from __future__ import annotations

import numpy as np
import pytest

from spiral.bench.heldout_segments import held_out, planned_goal
from spiral.nodes.goal import goal_for
from spiral.nodes.ledger import ledger_from
from spiral.tools.errors import InputError
from spiral.tools.perception import perceive
from spiral.tools.video.base import GoalMove, SegmentRequest
from spiral.tools.video.goal_sketch import background_colour, goal_sketch
from spiral.tools.world.places import EDGE_GAP
from spiral.tools.world.render import render_scene
from spiral.tools.world.scene import Scene, WorldObject
from spiral.vocabulary.state import SubAction


def _scene() -> Scene:
    return Scene(objects=[WorldObject(id="bowl", shape="bowl", color="white", x=90, y=40),
                          WorldObject(id="red_ball", shape="ball", color="red", size="medium", x=40, y=90),
                          WorldObject(id="blue_cube", shape="cube", color="blue", size="small", x=70, y=100)])


def _sub(verb: str, **fields) -> SubAction:
    return SubAction(index=0, id="s0", verb=verb, subject_desc="", description="", prompt="", **fields)


def test_the_goal_puts_the_subject_where_each_verb_means_read_from_the_frame():
    frame = render_scene(_scene())
    seen = perceive(frame)
    ledger = ledger_from(seen, "")
    ball = next(o for o in seen if o.id == "red_ball")
    (into,) = goal_for(_sub("put_in", subject="red_ball", target="bowl"), frame, ledger)
    assert into.box == ball.bbox and np.hypot(into.to[0] - 90, into.to[1] - 40) <= 23 - 7 - 3
    (left,) = goal_for(_sub("move_to", subject="red_ball", target="left"), frame, ledger)
    assert left.to == (EDGE_GAP + 7, 90)  # the left edge, same row
    swap = goal_for(_sub("swap", subject="red_ball", partner="blue_cube"), frame, ledger)
    assert [m.to for m in swap] == [(70, 100), (40, 90)]
    assert goal_for(_sub("put_in", subject="red_ball", target="green_bowl"), frame, ledger) == []  # not in view


def test_the_planners_goal_agrees_with_the_executor_on_held_out_segments():
    """Outside containers the planner's point is the executor's to the pixel; into a container it is a free
    spot of the same container (the executor draws one at random)."""
    for ex in held_out(24):
        planned = planned_goal(ex)
        assert len(planned) == len(ex.goal), ex.prompt
        for got, want in zip(planned, ex.goal, strict=True):
            assert got.box == want.box
            if ex.step.verb != "put_in":
                assert got.to == pytest.approx(want.to, abs=0.5), ex.prompt
            else:
                container = ex.after.get(ex.step.target)
                assert np.hypot(got.to[0] - container.x, got.to[1] - container.y) < container.half_extent[0], ex.prompt


def test_the_sketch_shows_the_mover_where_it_ends_on_the_background_alone():
    frame = render_scene(_scene())
    ball = next(o for o in perceive(frame) if o.id == "red_ball")
    r0, c0, r1, c1 = ball.bbox
    sketch = goal_sketch(frame, [GoalMove(box=ball.bbox, to=(20.0, 30.0))])
    half_h, half_w = (r1 - r0) // 2, (c1 - c0) // 2
    pasted = sketch[30 - half_h:30 - half_h + r1 - r0 + 1, 20 - half_w:20 - half_w + c1 - c0 + 1]
    assert np.array_equal(pasted, frame[r0:r1 + 1, c0:c1 + 1])
    elsewhere = sketch.copy()
    elsewhere[30 - half_h:30 - half_h + r1 - r0 + 1, 20 - half_w:20 - half_w + c1 - c0 + 1] = 0
    assert set(map(tuple, elsewhere.reshape(-1, 3))) <= {(0, 0, 0), tuple(background_colour(frame).round().astype(int))}
    edge = goal_sketch(frame, [GoalMove(box=ball.bbox, to=(0.0, 127.0))])  # clipped at the corner, no error
    assert edge.shape == frame.shape


def test_a_goal_outside_the_image_or_inside_out_is_refused_in_one_line():
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    with pytest.raises(InputError, match="outside the 64x64"):
        SegmentRequest(image=image, prompt="x", goal=[GoalMove(box=(0, 0, 4, 4), to=(80.0, 10.0))])
    with pytest.raises(InputError, match="r0 <= r1"):
        GoalMove(box=(5, 0, 4, 4), to=(1.0, 1.0))
    with pytest.raises(InputError, match="finite"):
        GoalMove(box=(0, 0, 4, 4), to=(float("nan"), 1.0))
