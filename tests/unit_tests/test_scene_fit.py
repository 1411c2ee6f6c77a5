"""Images outside the tabletop world are told apart from its renders, mildly degraded ones included."""

import pytest

from spiral.bench.scene_fit_cases import blur, jpeg, other_table, photo_like
from spiral.bench.scene_fit_cases import scaled as lit
from spiral.tools.scene_fit import MAX_DIFFERENCE, scene_fit
from spiral.tools.world.demo import demo_scene
from spiral.tools.world.render import render_scene
from spiral.tools.world.scene import random_scene

RENDERS = [render_scene(random_scene(seed, num_objects=n)) for seed, n in zip(range(8), (1, 3, 5, 7, 8, 2, 4, 6))]


@pytest.mark.parametrize("frame", [*RENDERS, render_scene(demo_scene(), 64, 64), render_scene(demo_scene(), 256, 256),
                                   jpeg(RENDERS[2], 90), blur(RENDERS[3], 1.0)],
                         ids=[*(f"render{i}" for i in range(8)), "demo64", "demo256", "jpeg90", "blur1"])
def test_the_world_and_mild_degradation_of_it_are_tabletop(frame):
    fit = scene_fit(frame)
    assert fit.is_tabletop and fit.reason() == "" and fit.difference <= MAX_DIFFERENCE


@pytest.mark.parametrize("frame,kind", [
    (photo_like(0), "photo"), (photo_like(1), "photo"),
    (other_table(RENDERS[4]), "another table"), (lit(RENDERS[4], 0.6), "dim light"), (lit(RENDERS[4], 1.3), "bright"),
    (jpeg(RENDERS[4], 15), "heavy jpeg"), (blur(RENDERS[1], 3.0), "heavy blur"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_other_images_are_not_tabletop_and_say_why(frame, kind):
    fit = scene_fit(frame)
    assert not fit.is_tabletop and fit.difference > MAX_DIFFERENCE
    assert fit.reason().startswith(f"drawn again from what perception read in it ({fit.objects} objects)")


def test_the_cases_benchmark_prints_one_row_per_kind(capsys):
    from spiral.bench.scene_fit_cases import cases, main

    main()
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [r.split(" | ")[0].lstrip("| ") for r in rows] == list(cases())
    assert rows[0].endswith("| 0 |") and rows[-1].endswith("| 20 |")  # renders kept, photographs refused


def test_a_frame_checked_again_is_not_rendered_again_and_its_fit_cannot_be_changed_by_a_caller(monkeypatch):
    """Preflight and the first plan both check the start image: the second check is remembered, by content."""
    from spiral.tools import scene_fit as module

    frame = render_scene(random_scene(41, num_objects=4))
    first = scene_fit(frame)
    first.containers["bowl"] = 7  # a caller changing its copy
    renders = []
    monkeypatch.setattr(module, "render_scene", lambda *a: renders.append(a) or render_scene(*a))
    again = scene_fit(frame.copy())  # same pixels, another array
    assert renders == [] and again.containers.get("bowl") != 7 and again == scene_fit(frame)
    other_frame = render_scene(random_scene(42, num_objects=4))
    other = scene_fit(other_frame)
    assert len(renders) == 1 and other == module._measure_fit(other_frame)  # another image is measured
