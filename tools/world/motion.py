"""Smooth, physically plausible motions of tabletop objects.

A segment is a list of per-object changes applied over `num_frames` frames:
the first and last frames are at rest, motion follows a smoothstep ease, and a
picked object follows a lift arc (up, across, down) while a pushed one slides.
`progress < 1` stops a motion part way (the object is set down early), which
is how an incomplete action looks.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel

from .render import render_scene
from .scene import Scene


class Move(BaseModel):
    """Carry one object to (x, y, z): lifted along an arc, or slid on the table."""

    object_id: str
    x: float
    y: float
    z: float = 0.0
    style: Literal["lift", "slide"] = "lift"
    lift_height: float = 16.0
    progress: float = 1.0
    start: float = 0.0
    """Fraction of the segment that passes before this motion starts."""
    end: float = 1.0
    """Fraction of the segment by which it has finished."""


class Recolor(BaseModel):
    """Shift an object's colour gradually (a generator's colour drift)."""

    object_id: str
    tint: tuple[float, float, float]


Change = Move | Recolor


def ease(t: np.ndarray | float) -> np.ndarray | float:
    """Smoothstep: zero velocity at both ends."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _phase(frame: int, num_frames: int, start: float, end: float) -> float:
    """0 on the first frame, 1 on the last, with a held frame at each end."""
    if num_frames <= 2:
        return float(frame >= num_frames - 1)
    u = (frame - 1) / max(num_frames - 3, 1)
    u = (u - start) / max(end - start, 1e-6)
    return float(ease(u))


def scene_at(scene: Scene, changes: list[Change], s_by_change: list[float]) -> Scene:
    """The scene with each change applied up to its own phase in [0, 1]."""
    out = scene
    for change, s in zip(changes, s_by_change, strict=True):
        obj = out.get(change.object_id)
        if isinstance(change, Recolor):
            tint = tuple(a + (b - a) * s for a, b in zip(obj.tint, change.tint, strict=True))
            out = out.replace(obj.model_copy(update={"tint": tint}))
            continue
        start = scene.get(change.object_id)
        q = s * change.progress
        x = start.x + (change.x - start.x) * q
        y = start.y + (change.y - start.y) * q
        z_end = change.z if change.progress >= 1.0 else 0.0
        z = start.z + (z_end - start.z) * s
        if change.style == "lift":
            z += change.lift_height * 4.0 * s * (1.0 - s)
        if s >= 1.0:  # at rest: snap to the integer grid the world keeps
            x, y = float(round(x)), float(round(y))
        out = out.replace(obj.model_copy(update={"x": x, "y": y, "z": max(z, 0.0)}))
    return out


def animate(scene: Scene, changes: list[Change], num_frames: int) -> list[Scene]:
    """The scene at every frame of a segment."""
    frames = []
    for f in range(num_frames):
        phases = [
            _phase(f, num_frames, c.start, c.end) if isinstance(c, Move) else _phase(f, num_frames, 0.0, 1.0)
            for c in changes
        ]
        frames.append(scene_at(scene, changes, phases))
    return frames


def render_segment(scenes: list[Scene], height: int, width: int) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of a list of scenes."""
    return np.stack([render_scene(s, height, width) for s in scenes])
