"""How much of an image the tabletop perception explains: analysis by synthesis.

Perception reads objects from pixels; rendering what it read gives the
picture it believes it saw. Where the two differ by more than a mild
compression or blur, the image holds something perception did not explain:
another background, other lighting, heavy blur or compression, a photograph.
The offline agents and the simulated backbone read only the tabletop world,
so such an image is refused before any work rather than read as phantom
objects or run until the budget is spent.

The difference is the critic's own continuity measure (mean absolute
difference over 4x4 blocks). `python -m spiral.bench.scene_fit_cases` measures
it per kind of image (min / median / max): renders of the world 0 / 0 / 1.4,
JPEG quality 90 up to 1.8, noise of 10 levels up to 2.5, a 1-pixel blur up to
3.1 (1 of 20 refused); JPEG quality 15 4.5-7.8 and a 2.5-pixel blur 2.7-6.5
(every sim episode tried on such images spent its budget on "does not
continue smoothly" and drift); 0.9x lighting 16-17, another table colour
56-67, photograph-like images 42-51.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from .perception import FrameCache, frame_digest, perceive
from .pixels import coarse_difference
from .world.render import render_scene
from .world.scene import Scene, WorldObject

MAX_DIFFERENCE = 3.0
"""Largest mean difference (levels of 255, over 4x4 blocks) between an image and the render of what was read
from it, for the image to count as the tabletop world."""
PIXEL_TOLERANCE = 40.0
"""Mean absolute RGB difference (0-255) above which a pixel counts as unexplained (reported, not judged)."""


class SceneFit(BaseModel):
    """What perception made of an image, and how much of it that explains."""

    difference: float
    """Mean absolute difference over 4x4 blocks between the image and the render of what was read."""
    unexplained: float
    """Share of pixels the re-rendered reading does not match."""
    objects: int
    containers: dict[str, int]
    """Containers read per kind (the world has at most one of each)."""

    @property
    def is_tabletop(self) -> bool:
        return self.difference <= MAX_DIFFERENCE and all(n <= 1 for n in self.containers.values())

    def reason(self) -> str:
        """Why the image is not the tabletop world, in words (empty when it is)."""
        if self.difference > MAX_DIFFERENCE:
            return (f"drawn again from what perception read in it ({self.objects} objects), it differs by "
                    f"{self.difference:.1f} levels on average (the world's own renders: under 1.5; accepted: up to "
                    f"{MAX_DIFFERENCE:g}) and {self.unexplained:.0%} of its pixels are not explained")
        twins = [f"{n} {kind}es" if kind == "box" else f"{n} {kind}s" for kind, n in self.containers.items() if n > 1]
        return f"it shows {', '.join(twins)}, where the tabletop world has one of each" if twins else ""


FITTED_FRAMES = 64
"""Start images whose fit is remembered: a run checks its start image before it starts (preflight) and
again when it plans from it; each check renders the scene anew."""
_fitted: FrameCache[SceneFit] = FrameCache(FITTED_FRAMES)


def scene_fit(frame: np.ndarray) -> SceneFit:
    """Perceive the frame, render what was perceived, and compare (remembered by the frame's content)."""
    key = frame_digest(frame)
    fit = _fitted.get(key)
    if fit is None:
        fit = _measure_fit(frame)
        _fitted.put(key, fit)
    return fit.model_copy(deep=True)  # a caller may change its copy, never the remembered one


def _measure_fit(frame: np.ndarray) -> SceneFit:
    height, width = frame.shape[:2]
    seen = perceive(frame)
    scene = Scene(objects=[WorldObject(id=f"o{i}", shape=o.shape, color=o.color, size=o.size, x=o.x, y=o.y,  # type: ignore[arg-type]
                                       z=o.z) for i, o in enumerate(seen)])
    rendered = render_scene(scene, height, width).astype(np.float32)
    difference = np.abs(rendered - frame.astype(np.float32)).mean(axis=-1)
    coarse = coarse_difference(rendered, frame)
    containers: dict[str, int] = {}
    for o in seen:
        if o.is_container:
            containers[o.shape] = containers.get(o.shape, 0) + 1
    return SceneFit(difference=round(coarse, 2), unexplained=round(float((difference > PIXEL_TOLERANCE).mean()), 4), objects=len(seen),
                    containers=containers)

