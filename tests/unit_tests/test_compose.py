"""`spiral scene --objects`: scenes from words, the same words and seed giving the same picture."""

import pytest

from spiral.tools.errors import InputError
from spiral.tools.perception import perceive
from spiral.tools.world.compose import scene_from_words
from spiral.tools.world.render import render_scene


def test_the_listed_objects_are_what_perception_reads_back():
    scene = scene_from_words("red ball, large blue cube, yellow block, bowl, plate", seed=2)
    looks = sorted((o.shape, o.color, o.size) for o in scene.objects)
    assert looks == [("ball", "red", "medium"), ("block", "yellow", "medium"), ("bowl", "white", "medium"),
                     ("cube", "blue", "large"), ("plate", "black", "medium")]
    read = sorted((o.shape, o.color, o.size) for o in perceive(render_scene(scene)))
    assert read == looks


def test_the_same_words_and_seed_give_the_same_layout_and_another_seed_another():
    a, b = scene_from_words("red ball, bowl", seed=5), scene_from_words("red ball, bowl", seed=5)
    assert a == b and scene_from_words("red ball, bowl", seed=6) != a


@pytest.mark.parametrize("text,message", [
    ("red ballz", "'ballz' in 'red ballz' is not understood"),
    ("red ball, red ball", "two medium red balls would look the same"),
    ("purple bowl", "a bowl is always white"),
    ("blue", "'blue' names no shape"),
    ("ball", "'ball' needs a colour"),
    ("large red block", "blocks come in one size"),
    ("", "list at least one object"),
    (", ".join(f"{s} {c} {k}" for s in ("small", "large") for c in ("red", "blue", "green", "yellow", "orange",
                                                                       "purple") for k in ("ball", "cube", "block")
               if not (k == "block" and s != "medium")) + ", bowl, plate, box", "no room on the table"),
])
def test_bad_lists_are_refused_naming_the_problem(text, message):
    with pytest.raises(InputError, match=message):
        scene_from_words(text)
