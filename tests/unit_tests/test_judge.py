"""bench/judge.py: the independent judge of a learned model's frames, checked on frames whose truth is known."""

import numpy as np
import pytest

from spiral.bench.judge import (
    judge_frame,
    judge_segment,
    reference_after,
    scene_in_frame,
    step_of,
)
from spiral.bench.tasks import build_suite
from spiral.nodes.planner import RulePlanAgent
from spiral.tools.perception import perceive
from spiral.tools.world.execute import execute
from spiral.tools.world.render import render_scene

TASKS = build_suite("test", 42)


def test_the_true_end_state_passes_whatever_slot_the_executor_drew():
    for task in TASKS:
        reference = reference_after(task.scene, task.steps, seed=0)
        for seed in (5, 9):  # containers take objects in other slots with other seeds
            segments, _ = execute(task.scene, task.steps, seed=seed)
            verdict = judge_frame(reference, segments[-1][-1])
            assert verdict.success, (task.id, verdict)


def test_the_start_frame_and_a_half_done_task_fail():
    moved_last = 0
    for task in TASKS:
        reference = reference_after(task.scene, task.steps, seed=0)
        assert not judge_frame(reference, render_scene(task.scene)).success, task.id
        if len(task.steps) > 1:
            before_last = reference_after(task.scene, task.steps[:-1], seed=0)
            subject = before_last.get(task.steps[-1].subject)
            after = reference.get(task.steps[-1].subject)
            if np.hypot(after.x - subject.x, after.y - subject.y) > 10:  # the last step really moves something
                verdict = judge_frame(reference, render_scene(before_last))
                assert not verdict.success and (verdict.misplaced or verdict.missing or verdict.extra), task.id
                moved_last += 1
    assert moved_last >= 10


def test_a_vanished_object_is_missing_and_an_added_one_is_extra():
    task = TASKS[0]
    reference = reference_after(task.scene, task.steps, seed=0)
    bystander = next(o for o in reference.movables if o.id != task.steps[0].subject)
    fewer = reference.model_copy(update={"objects": [o for o in reference.objects if o.id != bystander.id]})
    verdict = judge_frame(reference, render_scene(fewer))
    assert verdict.missing == [bystander.id] and not verdict.success
    verdict = judge_frame(fewer, render_scene(reference))
    assert verdict.extra == 1 and not verdict.success
    assert verdict.psnr < 40 and verdict.pixel_mae > 0


def test_a_planned_sub_action_is_judged_from_where_its_segment_started():
    task = next(t for t in TASKS if t.category == "pick_place")
    start = render_scene(task.scene)
    seen = perceive(start)
    plan = RulePlanAgent().plan(task.action, seen)
    looks = {o.id: (o.shape, o.color, "" if o.is_container else o.size) for o in seen}
    sub = plan.sub_actions[0]
    step = step_of(sub, looks, task.scene)
    assert step is not None and step.subject == task.steps[0].subject and step.verb == task.steps[0].verb
    segments, _ = execute(task.scene, task.steps, seed=3)
    right = judge_segment(task.scene, sub, looks, start, segments[0][-1])
    wrong = judge_segment(task.scene, sub, looks, start, start)
    assert right is not None and right.success
    assert wrong is not None and not wrong.success


def test_the_start_of_a_later_segment_is_read_from_its_pixels():
    task = TASKS[0]
    moved = reference_after(task.scene, task.steps, seed=0)
    read = scene_in_frame(task.scene, render_scene(moved))
    for obj in moved.objects:
        got = read.get(obj.id)
        assert got.x == pytest.approx(obj.x, abs=3) and got.y == pytest.approx(obj.y, abs=3)


def test_held_out_segments_are_judged_right_on_their_own_truth_and_measure_the_move():
    from spiral.bench.heldout_segments import held_out, largest_move
    from spiral.bench.segments import train_segments

    examples = held_out(3, first=40)
    assert [ex.prompt for ex in examples] == [ex.prompt for ex in list(train_segments(43))[40:]]  # the same stream
    assert len(examples) == 3 and all(ex.frames.shape == (9, 128, 128, 3) for ex in examples)
    for ex in examples:
        assert judge_frame(ex.after, ex.frames[-1]).success  # the true last frame shows the reference
        assert largest_move(ex.frames[:1].repeat(2, axis=0)) == 0.0  # nothing moves in a still clip
    moved = [largest_move(ex.frames) for ex in examples]
    assert max(moved) > 10, moved  # the executor really moves something


def test_soft_frames_of_the_truth_pass_and_soft_frames_of_the_start_still_fail():
    """The judge reads outlines at half of each edge: a decoder's blur does not change sizes or shapes, and a
    blurred start frame is still the wrong end state (figures for 64 segments: bench/judge_robustness.py)."""
    from spiral.bench.heldout_segments import held_out
    from spiral.bench.judge_robustness import blur, halved
    from spiral.tools.perception import perceive

    examples = held_out(12)
    for sigma in (1.0, 1.25):
        now = [judge_frame(ex.after, blur(ex.frames[-1], sigma)).success for ex in examples]
        before = [judge_frame(ex.after, blur(ex.frames[-1], sigma), read=perceive).success for ex in examples]
        assert sum(now) >= 11 and sum(before) <= 8, (sigma, sum(now), sum(before))
        assert not any(judge_frame(ex.after, blur(ex.frames[0], sigma)).success for ex in examples)
    assert sum(judge_frame(ex.after, halved(ex.frames[-1])).success for ex in examples) >= 11


@pytest.mark.parametrize("change", ["colour", "shape", "size", "extra", "moved"])
@pytest.mark.parametrize("sigma", [0.0, 1.25])
def test_a_wrong_end_state_fails_sharp_or_soft(change, sigma):
    """Strict whatever the softness: another colour, shape or size, an object too many, or one 8 units off."""
    from spiral.bench.judge_robustness import blur
    from spiral.tools.world.scene import WorldObject

    cases = failures = 0
    for task in TASKS:
        reference = reference_after(task.scene, task.steps, seed=0)
        subject = next((o for o in reference.movables if o.shape in ("ball", "cube") and o.z == 0
                        and all(np.hypot(o.x - c.x, o.y - c.y) > 30 for c in reference.objects if c is not o)), None)
        if subject is None or cases == 8:
            continue
        cases += 1
        other = {"colour": {"color": "purple" if subject.color != "purple" else "green"},
                 "shape": {"shape": "cube" if subject.shape == "ball" else "ball"},
                 "size": {"size": "large" if subject.size != "large" else "small"},
                 "moved": {"x": subject.x + 8 if subject.x < 100 else subject.x - 8}}.get(change)
        if change == "extra":
            x, y = next((x, y) for y in range(24, 120, 8) for x in range(12, 120, 8)
                        if all(np.hypot(o.x - x, o.y - y) > 12 + max(o.half_extent) for o in reference.objects))
            wrong = reference.model_copy(update={"objects": [*reference.objects, WorldObject(
                id="intruder", shape="ball", color="red", size="medium", x=x, y=y)]})
        else:
            wrong = reference.replace(subject.model_copy(update=other))
        verdict = judge_frame(reference, blur(render_scene(wrong), sigma))
        failures += not verdict.success
    assert cases == 8 and failures == cases, (change, sigma, cases, failures)
