"""Images outside the tabletop world are told apart from its renders, mildly degraded ones included."""

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from spiral.tools.pixels import TABLE, classify_pixels
from spiral.tools.scene_fit import MAX_DIFFERENCE, scene_fit
from spiral.tools.world.demo import demo_scene
from spiral.tools.world.render import render_scene
from spiral.tools.world.scene import random_scene


def photo_like(seed: int, size: int = 96) -> np.ndarray:
    """A small stand-in for a photograph: smooth colour fields, texture, no flat palette."""
    rng = np.random.default_rng(seed)
    base = Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    return np.clip(np.asarray(base, dtype=np.float64) + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)


def jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def blur(frame: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(radius)))


def other_table(frame: np.ndarray, rgb=(60, 90, 140)) -> np.ndarray:
    out = frame.copy()
    out[classify_pixels(frame) == TABLE] = rgb
    return out


def lit(frame: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(frame.astype(np.float64) * gain, 0, 255).astype(np.uint8)


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
