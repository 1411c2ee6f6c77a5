import pytest

from spiral.tools.predicates import Predicate, distance_to_goal, evaluate


def test_parse_and_print_roundtrip():
    p = Predicate.parse("at(red_ball, 40, 60)")
    assert p.name == "at" and p.args == ["red_ball", "40", "60"] and str(p) == "at(red_ball, 40, 60)"
    assert p.subjects == ["red_ball"]
    with pytest.raises(ValueError):
        Predicate.parse("not a predicate")


@pytest.mark.parametrize("text,expected", [
    ("inside(red_ball, bowl)", True),
    ("inside(blue_cube, bowl)", False),
    ("on(blue_cube, green_cube)", True),
    ("on(red_ball, green_cube)", False),
    ("at_edge(yellow_ball, left)", True),
    ("at_edge(red_ball, left)", False),
    ("left_of(yellow_ball, far_cube)", True),
    ("right_of(far_cube, yellow_ball)", True),
    ("left_of(far_cube, yellow_ball)", False),
    ("at(red_ball, 92, 52)", True),
    ("at(red_ball, 60, 52)", False),
    ("inside(missing, bowl)", False),
])
def test_predicates(text, expected, make_obj):
    obj = make_obj
    objects = {o.id: o for o in [
        obj("bowl", "bowl", "white", 90, 50),
        obj("red_ball", "ball", "red", 92, 52, "small"),
        obj("green_cube", "cube", "green", 40, 90, "large"),
        obj("blue_cube", "cube", "blue", 40, 90, "medium", z=18),
        obj("yellow_ball", "ball", "yellow", 12, 110, "small"),
        obj("far_cube", "cube", "red", 80, 112, "small"),
    ]}
    assert evaluate(Predicate.parse(text), objects) is expected


def test_distance_to_goal(make_obj):
    obj = make_obj
    objects = {"a": obj("a", "ball", "red", 0, 0), "bowl": obj("bowl", "bowl", "white", 30, 40)}
    assert distance_to_goal(Predicate.parse("inside(a, bowl)"), objects) == 50
