"""Self-contained HTML pages: jinja2 templates shipped in a package, and media as data URIs.

A page SPIRAL writes makes no request (a CSP forbids any): segments are VP9
WebM and images PNG, embedded as data URIs, so a page can be mailed, archived
or opened from disk.
"""

from __future__ import annotations

import base64
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=4)
def page_template(package: str, name: str):
    """A package's jinja2 template (its `templates/` folder), autoescaped and strict (an unknown name is an
    error, not a blank)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader(package, "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    return env.get_template(name)


def data_uri(kind: str, data: bytes) -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def webm_uri(frames: np.ndarray, fps: int = 8) -> str:
    from .media import webm_bytes

    return data_uri("video/webm", webm_bytes(frames, fps))


def png_uri(image: np.ndarray) -> str:
    from .media import png_bytes

    return data_uri("image/png", png_bytes(image))


def keyframe_strip(frames: np.ndarray, count: int) -> np.ndarray:
    """`count` frames spread over a segment (first and last included), side by side."""
    picks = np.unique(np.linspace(0, len(frames) - 1, count).round().astype(int))
    return np.concatenate([frames[i] for i in picks], axis=1)
