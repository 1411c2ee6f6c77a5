"""The figures behind tools/scene_fit.py's threshold: how far each kind of image is from its re-rendered reading.

    python -m spiral.bench.scene_fit_cases

Renders of the world (random scenes, the ActWM-Sim test split, the demo at three sizes), the same renders
degraded (JPEG, blur, noise, lighting, another table colour), and photograph-like images (smooth colour
fields with texture); per kind, the min / median / max of `SceneFit.difference` and how many would be refused.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from ..tools.pixels import TABLE, classify_pixels
from ..tools.scene_fit import MAX_DIFFERENCE, scene_fit
from ..tools.world.demo import demo_scene
from ..tools.world.render import render_scene
from ..tools.world.scene import random_scene
from .tasks import build_suite


def jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def blur(frame: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(radius)))


def scaled(frame: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(frame.astype(np.float64) * gain, 0, 255).astype(np.uint8)


def noisy(frame: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def other_table(frame: np.ndarray) -> np.ndarray:
    out = frame.copy()
    out[classify_pixels(frame) == TABLE] = (60, 90, 140)
    return out


def photo_like(seed: int, size: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    return np.clip(np.asarray(base, dtype=np.float64) + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)


def cases() -> dict[str, list[np.ndarray]]:
    renders = [render_scene(random_scene(seed, num_objects=1 + seed % 8)) for seed in range(30)]
    renders += [render_scene(task.scene) for task in build_suite("test")[:30]]
    renders += [render_scene(demo_scene(), side, side) for side in (64, 128, 256)]
    base, rng = renders[:20], np.random.default_rng(0)
    return {"renders of the world": renders,
            "JPEG quality 90": [jpeg(f, 90) for f in base], "JPEG quality 15": [jpeg(f, 15) for f in base],
            "blur 1 px": [blur(f, 1.0) for f in base], "blur 2.5 px": [blur(f, 2.5) for f in base],
            "noise 10 levels": [noisy(f, 10, rng) for f in base],
            "lighting 0.9x": [scaled(f, 0.9) for f in base], "lighting 1.3x": [scaled(f, 1.3) for f in base],
            "another table colour": [other_table(f) for f in base],
            "photograph-like": [photo_like(seed) for seed in range(20)]}


def main() -> None:
    print(f"| images | n | difference min / median / max | refused (> {MAX_DIFFERENCE:g}) |\n| --- | --- | --- | --- |")
    for name, frames in cases().items():
        diffs = [scene_fit(f).difference for f in frames]
        refused = sum(not scene_fit(f).is_tabletop for f in frames)
        print(f"| {name} | {len(diffs)} | {min(diffs):.1f} / {float(np.median(diffs)):.1f} / {max(diffs):.1f} "
              f"| {refused} |")


if __name__ == "__main__":
    main()
