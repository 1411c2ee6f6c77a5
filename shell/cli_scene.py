"""`spiral scene`: a start image for `spiral run`, from objects named in words, a seed, or an ActWM-Sim task.

Prints what the picture holds in the words the planner reads, and a command
that runs on it, so a first run needs no image from elsewhere.
"""

from __future__ import annotations

import argparse
import shlex

from ..tools.errors import InputError
from .console import console


def add_parser(sub) -> None:
    scene = sub.add_parser("scene", help="write a tabletop start image for `spiral run` (objects in words, a seeded "
                                         "random scene, or an ActWM-Sim task)",
                           description="Write a start image of the tabletop world. With no option: the demo's scene.")
    what = scene.add_mutually_exclusive_group()
    what.add_argument("--objects", default="", metavar="LIST",
                      help="comma-separated objects, each [size] [colour] shape: 'red ball, large blue cube, bowl'")
    what.add_argument("--random", type=int, default=None, metavar="N",
                      help="N random objects (distinct looks) and a bowl, laid out from --seed")
    what.add_argument("--task", default="", metavar="ID",
                      help="the start scene of an ActWM-Sim task, e.g. test-0004 (prints its action)")
    scene.add_argument("--seed", type=int, default=0, help="layout seed for --objects and --random (default: 0)")
    scene.add_argument("--size", type=int, default=128, help="image side in pixels (default: 128)")
    scene.add_argument("--out", default="start.png", help="where the PNG goes (default: start.png)")


def cmd_scene(args: argparse.Namespace) -> None:
    from ..bench.tasks import phrase
    from ..tools.media import save_png
    from ..tools.paths import writable_file
    from ..tools.world.render import render_scene

    if not 32 <= args.size <= 1024:
        raise InputError(f"--size {args.size}: choose 32 to 1024 pixels")
    target = writable_file(args.out, "--out")
    world, action = _scene(args)
    save_png(render_scene(world, args.size, args.size), target)
    names = ", ".join(phrase(obj, world) for obj in world.objects)
    console().print(f"{args.out}: {names} ({args.size}x{args.size})")  # as the user named it
    if action:
        console().print(f"try: spiral run --image {shlex.quote(str(args.out))} --action {shlex.quote(action)}")


def _scene(args: argparse.Namespace):
    """The scene asked for, and an action that runs on it ('' when none suggests itself)."""
    from ..bench.tasks import build_suite, phrase
    from ..tools.world.compose import scene_from_words
    from ..tools.world.demo import DEMO_ACTION, demo_scene
    from ..tools.world.scene import random_scene

    if args.task:
        split, _, number = args.task.partition("-")
        if not number.isdigit():
            raise InputError(f"--task {args.task!r}: a task id is SPLIT-NUMBER, e.g. test-0004")
        tasks = build_suite(split)
        if int(number) >= len(tasks):
            raise InputError(f"--task {args.task}: the {split} split has tasks {split}-0000 to {tasks[-1].id}")
        task = tasks[int(number)]
        return task.scene, task.action
    if args.random is not None:
        if not 1 <= args.random <= 8:
            raise InputError(f"--random {args.random}: choose 1 to 8 objects")
        try:
            world = random_scene(args.seed, num_objects=args.random)
        except ValueError as exc:
            raise InputError(f"--random {args.random}: {exc}") from None
    elif args.objects:
        world = scene_from_words(args.objects, args.seed)
    else:
        return demo_scene(), DEMO_ACTION
    movable, container = world.movables[:1], world.containers[:1]
    if movable and container:
        into = "on" if container[0].shape == "plate" else "in"
        return world, f"put the {phrase(movable[0], world)} {into} the {phrase(container[0], world)}"
    return world, ""
