"""Artifacts, traces and media files."""

import base64
import io
import os

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from spiral.memory.artifacts import ArtifactStore
from spiral.memory.traces import TraceDB
from spiral.tools.errors import InputError, SpiralError
from spiral.tools.media import keyframe_sheet, load_image, save_png, write_gif, write_mp4


def test_artifacts_are_content_addressed_and_deterministic(tmp_path):
    store = ArtifactStore(tmp_path / "a")
    frames = np.random.default_rng(0).integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    ref = store.put_frames(frames)
    assert ref.startswith("sha256:") and ref.endswith(".npy.z")
    assert store.put_frames(frames.copy()) == ref  # same bytes, same name
    assert np.array_equal(store.get_frames(ref), frames)
    assert ArtifactStore(tmp_path / "b").put_frames(frames) == ref
    png = store.put_frame(frames[0])
    assert np.array_equal(store.get_frame(png), frames[0])
    assert not [p for p in (tmp_path / "a").rglob(".tmp-*")]


def test_artifact_refs_cannot_escape_the_store(tmp_path):
    store = ArtifactStore(tmp_path)
    for bad in ("../etc/passwd", "sha256:../../x", "/abs"):
        with pytest.raises(SpiralError):
            store.path(bad)
    with pytest.raises(SpiralError, match="missing"):
        store.get_bytes("sha256:" + "0" * 64 + ".png")


def test_trace_rows_are_idempotent(tmp_path):
    db = TraceDB(tmp_path / "t.sqlite")
    row = {"plan_version": 0, "sub_action_index": 1, "try_index": 0, "prompt": "p", "scores": {"a": 1.0}}
    db.record_attempt("th", row)
    db.record_attempt("th", {**row, "prompt": "q"})
    rows = db.attempts("th")
    assert len(rows) == 1 and rows[0]["prompt"] == "q" and rows[0]["scores"] == {"a": 1.0}
    assert db.attempts("other") == []


def test_load_image_from_path_and_base64(tmp_path):
    frame = np.full((20, 30, 3), 100, dtype=np.uint8)
    path = save_png(frame, tmp_path / "x.png")
    assert np.array_equal(load_image(path), frame)
    raw = base64.b64encode(path.read_bytes()).decode()
    assert np.array_equal(load_image(f"data:image/png;base64,{raw}"), frame)
    buf = io.BytesIO()
    Image.fromarray(frame).convert("L").save(buf, format="JPEG")
    assert load_image(f"data:image/jpeg;base64,{base64.b64encode(buf.getvalue()).decode()}").shape == (20, 30, 3)


def test_load_image_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot read"):
        load_image(bad)
    with pytest.raises(InputError):
        load_image("data:image/png;base64,@@@")


def test_video_writers(tmp_path):
    frames = np.random.default_rng(1).integers(0, 255, (5, 33, 47, 3), dtype=np.uint8)
    mp4 = write_mp4(frames, tmp_path / "v.mp4", fps=8)
    assert os.path.getsize(mp4) > 0
    assert imageio_ffmpeg.count_frames_and_secs(str(mp4))[0] == 5
    gif = write_gif(frames, tmp_path / "v.gif")
    assert Image.open(gif).n_frames == 5
    sheet = keyframe_sheet([frames[0], frames[-1]])
    assert sheet.shape == (66, 47 * 2 * 2 + 4, 3)
