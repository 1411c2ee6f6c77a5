"""Frames in and out: images from paths or base64, mp4/gif/png writers, keyframe sheets."""

from __future__ import annotations

import base64
import binascii
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError


INPUT_ROOT_ENV = "SPIRAL_INPUT_ROOT"
"""When set (a shared server sets it), start images given as paths must lie inside this folder."""
MAX_IMAGE_BYTES = 32 * 2**20
URL_TIMEOUT_S = 30.0


def _allowed_path(text: str) -> Path:
    path = Path(text).expanduser()
    root = os.environ.get(INPUT_ROOT_ENV)
    if root and not path.resolve().is_relative_to(Path(root).expanduser().resolve()):
        raise InputError(f"start image paths must be inside {root} on this server ({INPUT_ROOT_ENV}); "
                         "send the image as a base64 data URL instead")
    return path


def _download(url: str) -> bytes:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:  # noqa: S310 (http(s) only)
            data = response.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot download the start image {url[:80]!r}: {exc}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise InputError(f"start image at {url[:80]!r} is over {MAX_IMAGE_BYTES // 2**20} MB")
    return data


def load_image(source: str | os.PathLike[str]) -> np.ndarray:
    """RGB uint8 (H, W, 3) from a file path, an http(s) URL, a `data:image/...;base64,` URL or raw base64."""
    text = str(source)
    try:
        if text.startswith(("http://", "https://")):
            image = Image.open(io.BytesIO(_download(text)))
        elif text.startswith("data:image"):
            raw = base64.b64decode(text.split(",", 1)[1], validate=True)
            image = Image.open(io.BytesIO(raw))
        elif len(text) > 512 and not os.path.exists(text):
            image = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
        else:
            path = _allowed_path(text)
            if not path.is_file():
                raise InputError(f"start image not found: {text} (give a PNG/JPEG path, an http(s) URL or a base64 data URL)")
            image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, binascii.Error, ValueError, OSError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot read the start image {text[:80]!r}: {exc.__class__.__name__}; "
                         "give a PNG or JPEG file") from None
    return np.asarray(image.convert("RGB"))


def save_png(frame: np.ndarray, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(frame, compress_level=1))
    return path


def gif_bytes(frames: np.ndarray, fps: int = 8) -> bytes:
    """An animated, looping GIF of uint8 (T, H, W, 3) frames."""
    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return buf.getvalue()


def write_gif(frames: np.ndarray, path: str | os.PathLike[str], fps: int = 8) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gif_bytes(frames, fps))
    return path


def write_mp4(frames: np.ndarray, path: str | os.PathLike[str], fps: int = 8) -> Path:
    """H.264 mp4 through imageio-ffmpeg's bundled ffmpeg (sides padded to even)."""
    import imageio_ffmpeg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t, h, w, _ = frames.shape
    ph, pw = h + h % 2, w + w % 2
    if (ph, pw) != (h, w):
        frames = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    writer = imageio_ffmpeg.write_frames(str(path), (pw, ph), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=1, quality=None, bitrate=None,
                                         output_params=["-crf", "18", "-preset", "veryfast"])
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


def keyframe_sheet(frames: list[np.ndarray], labels: list[str] | None = None, scale: int = 2) -> np.ndarray:
    """Frames side by side (nearest-neighbour upscaled) with a thin gap: one image to show a VLM."""
    gap = 4
    tiles = [np.kron(f, np.ones((scale, scale, 1), dtype=np.uint8)) for f in frames]
    h = max(t.shape[0] for t in tiles)
    sheet = np.full((h, sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1), 3), 255, dtype=np.uint8)
    x = 0
    for tile in tiles:
        sheet[: tile.shape[0], x : x + tile.shape[1]] = tile
        x += tile.shape[1] + gap
    return sheet


def thumbnail_jpeg(frame: np.ndarray, max_side: int = 64, quality: int = 80) -> bytes:
    """A small JPEG of `frame` (about 1 kB at 64 px): stream events and reviews show segments with it."""
    image = Image.fromarray(frame)
    image.thumbnail((max_side, max_side), Image.BOX)  # an average of each block: sharp enough at 64 px, 2x faster
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png_bytes(frame: np.ndarray, compress_level: int = 6) -> bytes:
    """A frame as PNG (lossless), byte-deterministic for the same pixels and level."""
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG", optimize=False, compress_level=compress_level)
    return buf.getvalue()


def data_url(data: bytes, mime: str) -> str:
    """`data:<mime>;base64,...`: an image a browser, Studio or a VLM reads inline."""
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def stitch(segments: list[np.ndarray], start: np.ndarray) -> np.ndarray:
    """Accepted segments end to end; each later segment's first frame repeats the previous last
    frame, so it is dropped. No segments: the start frame alone."""
    if not segments:
        return start[None]
    return np.concatenate([segments[0], *[s[1:] for s in segments[1:]]])
