"""Render a tabletop scene to an RGB frame.

A top-down camera with a touch of obliqueness: an object at height z is drawn
`ELEVATION * z` units higher up the image, and its shadow (light from the top
left) falls further away the higher it is. Objects have hard edges (no
anti-aliasing) so that a resting object at integer coordinates reads back
exactly from pixels; shading, specular highlights, bevels and soft shadows make
it a real image rather than a grid of colours.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .scene import TABLE_COLOR, TABLE_SIZE, Scene, WorldObject

ELEVATION = 0.5
"""How far up the image one unit of height moves an object."""
SHADOW_STRENGTH = 0.36
_LIGHT = np.array([-0.5, -0.6, 0.62], dtype=np.float32) / np.linalg.norm([-0.5, -0.6, 0.62])
_HALF_VEC = (_LIGHT + np.array([0, 0, 1], dtype=np.float32))
_HALF_VEC /= np.linalg.norm(_HALF_VEC)


@lru_cache(maxsize=8)
def table_texture(height: int, width: int) -> np.ndarray:
    """The empty table (float32 HxWx3): light wood with grain and a soft vignette.

    It is the same for every scene: the table is the world's fixed backdrop.
    """
    ys = (np.arange(height, dtype=np.float32) + 0.5) * (TABLE_SIZE / height)
    xs = (np.arange(width, dtype=np.float32) + 0.5) * (TABLE_SIZE / width)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    grain = 0.035 * np.sin(yy * 0.42 + 2.5 * np.sin(xx * 0.045)) + 0.015 * np.sin(yy * 1.7 + xx * 0.11)
    cx = (xx - TABLE_SIZE / 2) / TABLE_SIZE
    cy = (yy - TABLE_SIZE / 2) / TABLE_SIZE
    vignette = 1.0 - 0.18 * (cx**2 + cy**2)
    shade = (1.0 + grain) * vignette
    return np.asarray(TABLE_COLOR, dtype=np.float32)[None, None, :] * shade[..., None]


def _grid(obj_cx: float, obj_cy: float, half_x: float, half_y: float, sx: float, sy: float,
          height: int, width: int, pad: float = 2.0):
    """Pixel window around a footprint and the offsets of its pixel centres (table units)."""
    c0 = max(int(np.floor((obj_cx - half_x - pad) * sx)), 0)
    c1 = min(int(np.ceil((obj_cx + half_x + pad) * sx)) + 1, width)
    r0 = max(int(np.floor((obj_cy - half_y - pad) * sy)), 0)
    r1 = min(int(np.ceil((obj_cy + half_y + pad) * sy)) + 1, height)
    if c0 >= c1 or r0 >= r1:
        return None
    dx = np.arange(c0, c1, dtype=np.float32) / sx - obj_cx
    dy = np.arange(r0, r1, dtype=np.float32) / sy - obj_cy
    ddy, ddx = np.meshgrid(dy, dx, indexing="ij")
    return (slice(r0, r1), slice(c0, c1)), ddx, ddy


def _footprint(obj: WorldObject, ddx: np.ndarray, ddy: np.ndarray) -> np.ndarray:
    hx, hy = obj.half_extent
    if obj.shape in ("ball", "bowl", "plate"):
        return ddx**2 + ddy**2 <= (hx + 0.4) ** 2
    return (np.abs(ddx) <= hx + 1e-3) & (np.abs(ddy) <= hy + 1e-3)


def _soft_shadow(obj: WorldObject, ddx: np.ndarray, ddy: np.ndarray) -> np.ndarray:
    hx, hy = obj.half_extent
    if obj.shape in ("ball", "bowl", "plate"):
        dist = np.sqrt(ddx**2 + ddy**2) - hx
    else:
        dist = np.maximum(np.abs(ddx) - hx, np.abs(ddy) - hy)
    blur = 1.5 + 0.12 * obj.z
    fade = 1.0 / (1.0 + 0.03 * obj.z)
    return np.clip(0.5 - dist / (2 * blur), 0.0, 1.0) * fade


def _shading(obj: WorldObject, ddx: np.ndarray, ddy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel brightness factor and white-highlight weight for one object."""
    hx, hy = obj.half_extent
    if obj.shape == "ball":
        r = float(hx)
        nx, ny = ddx / r, ddy / r
        nz = np.sqrt(np.clip(1.0 - nx**2 - ny**2, 0.0, 1.0))
        lambert = np.clip(nx * _LIGHT[0] + ny * _LIGHT[1] + nz * _LIGHT[2], 0.0, 1.0)
        spec = np.clip(nx * _HALF_VEC[0] + ny * _HALF_VEC[1] + nz * _HALF_VEC[2], 0.0, 1.0) ** 24
        return 0.58 + 0.42 * lambert, 0.3 * spec
    if obj.shape in ("cube", "block"):
        shade = np.full(ddx.shape, 0.93, dtype=np.float32)
        shade[(ddx < -hx + 1.6) | (ddy < -hy + 1.6)] = 1.03
        shade[(ddx > hx - 1.6) | (ddy > hy - 1.6)] = 0.74
        return shade, np.zeros_like(shade)
    if obj.shape == "bowl":
        rho = np.sqrt(ddx**2 + ddy**2) / hx
        inner = 0.8 + 0.16 * (ddx + ddy) / hx - 0.1 * (1 - rho)
        shade = np.where(rho > 0.84, 1.0 - 0.08 * (ddx + ddy) / hx, inner)
        return shade.astype(np.float32), np.zeros_like(shade, dtype=np.float32)
    if obj.shape == "plate":
        rho = np.sqrt(ddx**2 + ddy**2) / hx
        shade = np.where(rho > 0.86, 1.16, 0.96 + 0.04 * (1 - rho))
        return shade.astype(np.float32), np.zeros_like(shade, dtype=np.float32)
    # box: light walls, shadowed floor
    wall = (np.abs(ddx) > hx - 3.0) | (np.abs(ddy) > hy - 3.0)
    shade = np.where(wall, 1.08, 0.8 + 0.05 * (ddx + ddy) / hx)
    return shade.astype(np.float32), np.zeros_like(shade, dtype=np.float32)


def draw_order(scene: Scene) -> list[WorldObject]:
    """Painter's order: containers, then by height, then back to front."""
    return sorted(scene.objects, key=lambda o: (not o.is_container, o.z, o.y))


def render_scene(scene: Scene, height: int = 128, width: int = 128) -> np.ndarray:
    """Render `scene` as uint8 (height, width, 3)."""
    sx, sy = width / TABLE_SIZE, height / TABLE_SIZE
    image = table_texture(height, width).copy()
    darkness = np.zeros((height, width), dtype=np.float32)
    for obj in scene.objects:
        offset = 2.0 + 0.45 * obj.z + (0.0 if obj.is_container else 0.15 * obj.height)
        hx, hy = obj.half_extent
        win = _grid(obj.x + offset, obj.y + offset, hx, hy, sx, sy, height, width, pad=4 + 0.2 * obj.z)
        if win is None:
            continue
        sl, ddx, ddy = win
        strength = SHADOW_STRENGTH * (0.5 if obj.is_container else 1.0)
        darkness[sl] = np.maximum(darkness[sl], strength * _soft_shadow(obj, ddx, ddy))
    image *= (1.0 - darkness)[..., None]
    for obj in draw_order(scene):
        hx, hy = obj.half_extent
        win = _grid(obj.x, obj.y - ELEVATION * obj.z, hx, hy, sx, sy, height, width, pad=1)
        if win is None:
            continue
        sl, ddx, ddy = win
        mask = _footprint(obj, ddx, ddy)
        shade, highlight = _shading(obj, ddx, ddy)
        color = obj.base_rgb[None, None, :] * shade[..., None]
        color = color + (255.0 - color) * highlight[..., None]
        region = image[sl]
        region[mask] = color[mask]
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)
