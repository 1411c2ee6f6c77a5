"""The simulated TI2V backbone: pixels in, pixels out, failures at the configured rates."""

import math

import numpy as np
import pytest

from spiral.tools.errors import InputError, UnknownBackboneError
from spiral.tools.video import SegmentRequest, load_generator
from spiral.tools.video.sim import SimConfig, SimVideoGenerator, preset
from spiral.tools.world.render import render_scene


def _request(frame, prompt, seed=0, **kw):
    return SegmentRequest(image=frame, prompt=prompt, seed=seed, **kw)


def test_first_frame_continues_the_conditioning_frame(simple_scene):
    frame = render_scene(simple_scene)
    seg = SimVideoGenerator().generate(_request(frame, "Put the red ball in the white bowl."))
    assert seg.frames.shape == (16, 128, 128, 3)
    assert np.array_equal(seg.frames[0], frame)


def test_same_seed_same_frames_new_seed_new_sample(simple_scene):
    frame = render_scene(simple_scene)
    gen = SimVideoGenerator("hard")
    a = gen.generate(_request(frame, "Put the red ball in the bowl.", seed=5)).frames
    b = gen.generate(_request(frame, "Put the red ball in the bowl.", seed=5)).frames
    assert np.array_equal(a, b)
    others = [gen.generate(_request(frame, "Put the red ball in the bowl.", seed=s)).frames for s in range(6, 16)]
    assert any(not np.array_equal(a[-1], o[-1]) for o in others)


def test_sizes_are_honoured(simple_scene):
    frame = render_scene(simple_scene)
    seg = SimVideoGenerator().generate(_request(frame, "Put the red ball in the bowl.", num_frames=9,
                                                height=96, width=160))
    assert seg.frames.shape == (9, 96, 160, 3)


@pytest.mark.parametrize("bad", [dict(num_frames=1), dict(num_frames=10_000), dict(height=-4), dict(width=9999)])
def test_bad_sizes_are_clear_errors(simple_scene, bad):
    with pytest.raises(InputError):
        _request(render_scene(simple_scene), "x", **bad)


def test_registry_loads_once_and_rejects_unknown_names():
    assert load_generator("sim", difficulty="hard") is load_generator("sim", difficulty="hard")
    assert load_generator("sim", difficulty="easy") is not load_generator("sim", difficulty="hard")
    with pytest.raises(UnknownBackboneError, match="choose one of"):
        load_generator("no-such-model")


def _rate(outcomes, n):
    return sum(outcomes) / n


def _tolerance(p, n):
    return 4 * math.sqrt(p * (1 - p) / n) + 0.01


N = 300


def test_error_rates_match_the_configuration(simple_scene):
    """Empirical error rates of a one-action prompt are within sampling error of the config."""
    cfg = SimConfig(p_incomplete=0.3, p_wrong_object=0.4, p_drift=0.25, p_drop=0.2, compound=0.35)
    gen = SimVideoGenerator(config=cfg)
    frame = render_scene(simple_scene)
    incomplete, wrong, drift = [], [], []
    for seed in range(N):
        _, truth = gen.generate_with_truth(_request(frame, "Put the ball in the bowl.", seed=seed, num_frames=3))
        errors = truth.actions[0].errors
        incomplete.append("incomplete" in errors)
        wrong.append("wrong_object" in errors)
        drift.append(bool(truth.drift))
    assert abs(_rate(incomplete, N) - 0.3) < _tolerance(0.3, N)
    assert abs(_rate(wrong, N) - 0.4) < _tolerance(0.4, N)  # "the ball": colour not named
    assert abs(_rate(drift, N) - 0.25) < _tolerance(0.25, N)


def test_explicit_wording_lowers_the_rates(simple_scene):
    gen = SimVideoGenerator(config=SimConfig(p_incomplete=0.4, p_wrong_object=0.4, p_drift=0.4))
    frame = render_scene(simple_scene)
    plain, explicit = [], []
    for seed in range(N):
        _, t1 = gen.generate_with_truth(_request(frame, "Put the ball in the bowl.", seed=seed, num_frames=3))
        _, t2 = gen.generate_with_truth(_request(
            frame, "Pick up the small red ball and place it all the way inside the white bowl. "
                   "Keep every other object still.", seed=seed, num_frames=3))
        plain.append(bool(t1.actions[0].errors) or bool(t1.drift))
        explicit.append(bool(t2.actions[0].errors) or bool(t2.drift))
    assert t2.actions[0].p_incomplete == pytest.approx(0.4 * 0.45)
    assert t2.actions[0].p_wrong_object == pytest.approx(0.4 * 0.25)
    assert _rate(explicit, N) < _rate(plain, N) - 0.2


def test_packing_actions_into_one_prompt_fails_more(simple_scene):
    gen = SimVideoGenerator("medium")
    frame = render_scene(simple_scene)
    one, many = [], []
    for seed in range(N // 2):
        _, t1 = gen.generate_with_truth(_request(frame, "Put the red ball in the white bowl.", seed=seed, num_frames=3))
        _, t3 = gen.generate_with_truth(_request(
            frame, "Put the red ball in the white bowl, then put the blue cube in the white bowl, "
                   "then put the green cube in the white bowl.", seed=seed, num_frames=3))
        one.append(not t1.actions[0].errors)
        many.append(len(t3.actions) == 3 and not any(a.errors for a in t3.actions))
        assert t3.actions[0].p_incomplete == pytest.approx(t1.actions[0].p_incomplete * 1.7)
    assert _rate(many, len(many)) < _rate(one, len(one)) - 0.3
    drops = [a.p_drop for a in t3.actions]
    assert drops[0] == 0 and drops[1] < drops[2]


def test_the_sim_performs_the_asked_motion(simple_scene):
    gen = SimVideoGenerator(config=SimConfig(p_incomplete=0, p_wrong_object=0, p_drift=0, p_drop=0))
    _, truth = gen.generate_with_truth(_request(render_scene(simple_scene), "stack the blue cube on the green cube"))
    blue, green = truth.end.get("blue_cube"), truth.end.get("green_cube")
    assert (blue.x, blue.y, blue.z) == (green.x, green.y, green.height)


def test_presets():
    assert preset("easy").p_incomplete < preset("medium").p_incomplete < preset("hard").p_incomplete
    with pytest.raises(InputError):
        preset("nightmare")
