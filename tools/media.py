"""Frames in and out: images from paths or base64, mp4/gif/png writers, keyframe sheets."""

from __future__ import annotations

import base64
import binascii
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError
from .paths import write_atomic

INPUT_ROOT_ENV = "SPIRAL_INPUT_ROOT"
"""When set (a shared server sets it), start images given as paths must lie inside this folder."""
MAX_IMAGE_BYTES = 32 * 2**20
MAX_IMAGE_PIXELS = 40_000_000
"""Start images above this (an 8K frame is 33 MP) are refused from their header, before any decoding."""
URL_TIMEOUT_S = 30.0


def _allowed_path(text: str, root: str | None) -> Path:
    path = Path(text).expanduser()
    if root and not path.resolve().is_relative_to(Path(root).expanduser().resolve()):
        raise InputError(f"start image paths must be inside {root} on this server ({INPUT_ROOT_ENV}); "
                         "send the image as a base64 data URL instead")
    return path


def _download(url: str) -> bytes:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
            data = response.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot download the start image {url[:80]!r}: {exc}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise InputError(f"start image at {url[:80]!r} is over {MAX_IMAGE_BYTES // 2**20} MB")
    return data


def _check_pixels(image: Image.Image, text: str) -> None:
    """Refuse a huge image from its header: decoding a 10000x10000 PNG would take 1.7 GB first."""
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(f"the start image {text[:80]!r} is {width}x{height} pixels, over the "
                         f"{MAX_IMAGE_PIXELS // 1_000_000} MP SPIRAL reads; downscale it first (frames are at "
                         "most 2048 px a side)")


def load_image(source: str | os.PathLike[str], input_root: str | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3) from a file path, an http(s) URL, a `data:image/...;base64,` URL or raw base64. With
    `input_root` (a server's SPIRAL_INPUT_ROOT), a path must lie inside it."""
    text = str(source)
    try:
        with warnings.catch_warnings():  # Pillow warns of, then refuses, huge images: one message for both
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = _open_image(text, input_root)
            _check_pixels(image, text)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"the start image {text[:80]!r} is over the {MAX_IMAGE_PIXELS // 1_000_000} MP SPIRAL "
                         "reads; downscale it first (frames are at most 2048 px a side)") from None
    except (UnidentifiedImageError, binascii.Error, ValueError, OSError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot read the start image {text[:80]!r}: {exc.__class__.__name__}; "
                         "give a PNG or JPEG file") from None
    return np.asarray(image.convert("RGB"))


def _open_image(text: str, input_root: str | None) -> Image.Image:
    """The image, opened lazily (its header read, its pixels not yet decoded)."""
    if text.startswith(("http://", "https://")):
        return Image.open(io.BytesIO(_download(text)))
    if text.startswith("data:image"):
        header, comma, payload = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise InputError(f"cannot read the start image {text[:40]!r}...: a data URL is "
                             "'data:image/png;base64,<base64 bytes>'")
        return Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
    if len(text) > 512 and not os.path.exists(text):
        return Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
    path = _allowed_path(text, input_root)
    if not path.is_file():
        raise InputError(f"start image not found: {text[:200]!r} (give a PNG/JPEG path, an http(s) URL or a base64 "
                         "data URL)")
    return Image.open(path)


def save_png(frame: np.ndarray, path: str | os.PathLike[str]) -> Path:
    return write_atomic(path, png_bytes(frame, compress_level=1))


def save_npy(array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """An array as .npy, written with one Python write (numpy's own file writer reports a full disk as
    an OSError with no errno, which nobody can tell from a bug)."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return write_atomic(path, buf.getvalue())


def gif_bytes(frames: np.ndarray, fps: int = 8) -> bytes:
    """An animated, looping GIF of uint8 (T, H, W, 3) frames that plays exactly as long as the mp4.

    GIF delays are whole centiseconds, so each frame gets the delay that keeps the running total on
    the mp4's clock (8 fps: 120, 130, 120, 130 ms ...) instead of 125 ms rounded down every frame; the
    encoder merges equal consecutive frames and adds their delays, which keeps the total too."""
    images = [Image.fromarray(f) for f in frames]
    ticks = [round(i * 100 / fps) for i in range(len(images) + 1)]
    durations = [10 * (b - a) for a, b in zip(ticks, ticks[1:])]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return buf.getvalue()


def write_gif(frames: np.ndarray, path: str | os.PathLike[str], fps: int = 8) -> Path:
    return write_atomic(path, gif_bytes(frames, fps))


def _encode(frames: np.ndarray, path: Path, fps: int, codec: str, params: list[str],
            pix_fmt: str = "yuv420p") -> None:
    """Frames to a video file through imageio-ffmpeg's bundled ffmpeg (sides padded to even)."""
    import imageio_ffmpeg

    t, h, w, _ = frames.shape
    ph, pw = h + h % 2, w + w % 2
    if (ph, pw) != (h, w):
        frames = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    writer = imageio_ffmpeg.write_frames(str(path), (pw, ph), fps=fps, codec=codec, pix_fmt_out=pix_fmt,
                                         macro_block_size=1, quality=None, bitrate=None, output_params=params)
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def write_mp4(frames: np.ndarray, path: str | os.PathLike[str], fps: int = 8) -> Path:
    """H.264 mp4, encoded under a temporary name and then renamed (no partial file under `path`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial.mp4")
    try:
        _encode(frames, partial, fps, "libx264", ["-crf", "18", "-preset", "veryfast"])
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def webm_bytes(frames: np.ndarray, fps: int = 8) -> bytes:
    """VP9 WebM (every browser plays it; H.264 is missing from some Chromium builds); one thread and
    bit-exact flags, so the same frames give the same bytes."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "segment.webm"
        _encode(frames, path, fps, "libvpx-vp9", ["-crf", "36", "-b:v", "0", "-deadline", "realtime", "-cpu-used",
                                                  "8", "-threads", "1", "-flags", "+bitexact", "-fflags", "+bitexact",
                                                  "-map_metadata", "-1"])
        return path.read_bytes()


def lossless_mp4_bytes(frames: np.ndarray, fps: int = 8) -> bytes:
    """An mp4 that decodes to exactly these frames: H.264 in RGB at quantizer 0 (libx264rgb), so a video
    served over HTTP (`spiral serve-generator`) reaches the client bit for bit. Odd sides are padded."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "segment.mp4"
        _encode(frames, path, fps, "libx264rgb", ["-qp", "0", "-preset", "ultrafast", "-threads", "1"], "bgr24")
        return path.read_bytes()


def read_video_bytes(data: bytes, max_frames: int = 1024) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of an mp4 (or any container ffmpeg reads) held in memory."""
    import tempfile

    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "video.mp4"
        path.write_bytes(data)
        try:
            reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
            meta = next(reader)
            w, h = meta["size"]
            frames = []
            for raw in reader:
                if len(frames) == max_frames:
                    raise InputError(f"a video longer than {max_frames} frames")
                frames.append(np.frombuffer(raw, np.uint8).reshape(h, w, 3))
        except (RuntimeError, OSError, StopIteration) as exc:
            raise InputError(f"not a video ffmpeg can read ({str(exc).splitlines()[0] if str(exc) else 'empty'})") from exc
    if not frames:
        raise InputError("a video with no frames")
    return np.stack(frames)


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
