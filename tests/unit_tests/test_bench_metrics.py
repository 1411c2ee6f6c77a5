"""ActWM-Sim tasks and metric formulas on hand-made cases."""

import numpy as np
import pytest

from spiral.bench import metrics
from spiral.bench.tasks import CATEGORIES, SPLIT_SIZES, build_suite
from spiral.nodes.finalize import stitch
from spiral.tools.errors import InputError
from spiral.tools.world.execute import execute
from spiral.tools.world.motion import Move, animate, render_segment
from spiral.tools.world.render import render_scene


def test_suite_is_deterministic_versioned_and_covers_the_categories():
    a, b = build_suite("test"), build_suite("test")
    assert a == b and len(a) >= 100 and len(a) == SPLIT_SIZES["test"]
    assert {t.category for t in a} == set(CATEGORIES)
    assert max(t.horizon for t in a) >= 4
    train = build_suite("train", 20)
    assert {t.action for t in train[:20]} != {t.action for t in a[:20]}
    with pytest.raises(InputError):
        build_suite("validation")


def test_ground_truth_plans_reach_their_goals():
    """Executing each task's ground-truth steps in the world satisfies every goal predicate."""
    for task in build_suite("test", 35):
        _, end = execute(task.scene, task.steps, num_frames=3)
        assert metrics.goal_completion(task.goal, task.scene, end) == 1.0, task.action
        assert metrics.object_fidelity(task.goal, task.scene, end) == 1.0, task.action


def test_perfect_video_scores_one_and_static_video_scores_zero():
    task = next(t for t in build_suite("test", 14) if t.category == "gather")
    segments, end = execute(task.scene, task.steps, num_frames=16)
    video = stitch(segments, render_scene(task.scene))
    assert metrics.goal_completion(task.goal, task.scene, end) == 1.0
    assert metrics.goal_completion(task.goal, task.scene, task.scene) == 0.0
    static = np.repeat(render_scene(task.scene)[None], 8, axis=0)
    for score in (metrics.temporal_consistency, metrics.subject_consistency, metrics.background_consistency,
                  metrics.motion_smoothness, metrics.flicker):
        assert score(static) == 1.0
        assert 0.5 < score(video) <= 1.0


def test_fidelity_counts_bystanders(simple_scene):
    goal = ["inside(red_ball, bowl)"]
    moved = simple_scene.replace(simple_scene.get("blue_cube").model_copy(update={"x": 60.0}))
    assert metrics.object_fidelity(goal, simple_scene, moved) == 0.5  # blue moved, green kept
    tinted = simple_scene.replace(simple_scene.get("green_cube").model_copy(update={"tint": (1.2, 0.8, 1.0)}))
    assert metrics.object_fidelity(goal, simple_scene, tinted) == 0.5


def test_a_teleport_is_caught(simple_scene):
    smooth = render_segment(animate(simple_scene, [Move(object_id="red_ball", x=90, y=50)], 16), 128, 128)
    jumpy = smooth.copy()
    jumpy[8:] = jumpy[-1]  # half way, everything jumps to the end
    assert metrics.temporal_consistency(jumpy) < metrics.temporal_consistency(smooth) == 1.0
    shaky = np.stack([np.roll(f, int(3 * (-1) ** i), axis=1) for i, f in enumerate(smooth)])
    assert metrics.motion_smoothness(shaky) < 0.3 < 0.6 < metrics.motion_smoothness(smooth)


def test_precision_recall():
    """Asymmetric counts (3 true passes, 1 false pass, 2 misses), so a swapped formula or swapped pair order
    gives other figures: precision 3/4, recall 3/5."""
    pairs = [(True, True)] * 3 + [(True, False)] + [(False, True)] * 2 + [(False, False)] * 5
    p, r = metrics.precision_recall(pairs)
    assert p == 0.75 and r == 0.6
    assert metrics.precision_recall([(truth, critic) for critic, truth in pairs]) == (0.6, 0.75)
    assert metrics.precision_recall_counts(3, 1, 2) == (0.75, 0.6)


def test_interpenetration_is_not_success(simple_scene):
    from spiral.tools.world.scene import interpenetrating

    assert metrics.physically_plausible(simple_scene)
    inside_cube = simple_scene.replace(simple_scene.get("red_ball").model_copy(update={"x": 42.0, "y": 90.0}))
    assert interpenetrating(inside_cube) == [("red_ball", "blue_cube")]
    stacked = simple_scene.replace(simple_scene.get("blue_cube").model_copy(update={"x": 95.0, "y": 100.0, "z": 18.0}))
    assert metrics.physically_plausible(stacked)
