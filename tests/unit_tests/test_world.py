import numpy as np
import pytest

from spiral.tools.world.motion import Move, animate, render_segment
from spiral.tools.world.render import render_scene, table_texture
from spiral.tools.world.scene import Scene, footprints_clear, random_scene


def test_render_is_a_shaded_image_not_a_grid(simple_scene):
    frame = render_scene(simple_scene)
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    # shading, highlights, wood grain and shadows: many distinct colours
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 300
    # a shadow darkens the table beside (down-right of) the blue cube
    table = table_texture(128, 128)
    assert frame[90 + 9, 40 + 9].mean() < 0.85 * table[90 + 9, 40 + 9].mean()


def test_render_other_sizes(simple_scene):
    assert render_scene(simple_scene, 64, 96).shape == (64, 96, 3)


def test_random_scene_is_seeded_and_uncluttered():
    a, b = random_scene(11, num_objects=5), random_scene(11, num_objects=5)
    assert a == b
    assert random_scene(12, num_objects=5) != a
    objs = a.objects
    assert all(footprints_clear(p, q, gap=3.9) for i, p in enumerate(objs) for q in objs[i + 1:])
    looks = [(o.shape, o.color, o.size) for o in a.movables]
    assert len(looks) == len(set(looks))


def test_random_scene_too_full_is_a_clear_error():
    with pytest.raises(ValueError, match="no room|distinct"):
        random_scene(0, num_objects=40)


def test_pick_and_place_lifts_along_an_arc_and_lands(simple_scene):
    scenes = animate(simple_scene, [Move(object_id="red_ball", x=90, y=50)], 16)
    zs = [s.get("red_ball").z for s in scenes]
    assert zs[0] == 0 and zs[-1] == 0 and max(zs) > 10
    assert scenes[-1].get("red_ball").x == 90 and scenes[-1].get("red_ball").y == 50
    xs = [s.get("red_ball").x for s in scenes]
    steps = np.diff(xs)
    assert np.all(steps >= -1e-6) and steps.max() < 12  # monotone, no jumps
    assert steps[0] == 0 and steps[-1] == 0  # held first and last frames


def test_slide_stays_on_the_table(simple_scene):
    scenes = animate(simple_scene, [Move(object_id="blue_cube", x=60, y=90, style="slide")], 12)
    assert all(s.get("blue_cube").z == 0 for s in scenes)


def test_partial_progress_sets_the_object_down_part_way(simple_scene):
    end = animate(simple_scene, [Move(object_id="red_ball", x=90, y=40, progress=0.5)], 8)[-1]
    ball = end.get("red_ball")
    assert ball.z == 0 and ball.x == 60


def test_segment_render_shape(simple_scene):
    frames = render_segment(animate(simple_scene, [Move(object_id="red_ball", x=90, y=50)], 6), 128, 128)
    assert frames.shape == (6, 128, 128, 3)
    assert not np.array_equal(frames[0], frames[-1])


def test_empty_scene_renders_the_table():
    assert render_scene(Scene()).std() > 1
