"""The built-in demo scene: three red objects, a bowl, and company."""

from __future__ import annotations

from .scene import Scene, WorldObject

DEMO_ACTION = "put all red objects in the bowl, then stack the yellow cube on the blue block"


def demo_scene() -> Scene:
    objects = [
        WorldObject(id="bowl", shape="bowl", color="white", x=92, y=46),
        WorldObject(id="red_ball", shape="ball", color="red", size="small", x=24, y=40),
        WorldObject(id="red_cube", shape="cube", color="red", size="small", x=50, y=76),
        WorldObject(id="red_ball_2", shape="ball", color="red", size="medium", x=26, y=106),
        WorldObject(id="blue_block", shape="block", color="blue", x=94, y=106),
        WorldObject(id="yellow_cube", shape="cube", color="yellow", size="small", x=104, y=82),
        WorldObject(id="green_ball", shape="ball", color="green", size="large", x=56, y=30),
    ]
    return Scene(objects=objects)
