"""Artifacts, traces and media files."""

import base64
import io
import os

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from spiral.memory.artifacts import ArtifactStore
from spiral.tools.errors import InputError, SpiralError
from spiral.tools.media import (
    keyframe_sheet,
    load_image,
    save_png,
    write_gif,
    write_mp4,
)


def test_artifacts_are_content_addressed_and_deterministic(tmp_path):
    store = ArtifactStore(tmp_path / "a")
    frames = np.random.default_rng(0).integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    ref = store.put_frames(frames)
    assert ref.startswith("sha256:") and ref.endswith(".npy.zst")
    assert store.put_frames(frames.copy()) == ref  # same bytes, same name
    assert np.array_equal(store.get_frames(ref), frames)
    assert ArtifactStore(tmp_path / "b").put_frames(frames) == ref
    png = store.put_frame(frames[0])
    assert np.array_equal(store.get_frame(png), frames[0])
    assert not [p for p in (tmp_path / "a").rglob(".tmp-*")]
    assert ArtifactStore.ref_for(store.get_bytes(ref), "npy.zst") == ref


def test_segments_and_frames_written_before_zstd_still_load(tmp_path):
    import zlib

    frames = np.random.default_rng(2).integers(0, 255, (2, 4, 4, 3), dtype=np.uint8)
    buf = io.BytesIO()
    np.save(buf, frames)
    ref = ArtifactStore(tmp_path).put_bytes(zlib.compress(buf.getvalue(), 1), "npy.z")
    assert np.array_equal(ArtifactStore(tmp_path).get_frames(ref), frames)
    png = ArtifactStore(tmp_path).put_bytes(save_png(frames[0], tmp_path / "f.png").read_bytes(), "png")
    assert np.array_equal(ArtifactStore(tmp_path).get_frame(png), frames[0])


def test_artifact_reads_come_from_the_process_cache_and_cannot_be_changed(tmp_path):
    store = ArtifactStore(tmp_path / "a")
    frames = np.random.default_rng(0).integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    ref = store.put_frames(frames)
    store.path(ref).unlink()  # what was just written is read back without the disk
    cached = store.get_frames(ref)
    assert np.array_equal(cached, frames) and store.get_frames(ref) is cached
    with pytest.raises(ValueError, match="read-only"):
        cached[0, 0, 0, 0] = 1
    frames[0] = 0  # the caller's array is not the cached one
    assert not np.array_equal(store.get_frames(ref)[0], frames[0])
    with pytest.raises(SpiralError, match="missing"):  # another store's root does not share the cache
        ArtifactStore(tmp_path / "b").get_frames(ref)


def test_models_round_trip_as_json_artifacts(tmp_path):
    from spiral.vocabulary.state import Ledger, Outcome

    store = ArtifactStore(tmp_path)
    ledger = Ledger(outcomes=[Outcome(index=0, passed=True, tries=2, segment="s", score=0.9)], notes=["n"])
    ref = store.put_model(ledger)
    assert ref.endswith(".json") and store.put_model(ledger.model_copy()) == ref
    loaded = store.get_model(ref, Ledger)
    assert loaded == ledger
    loaded.notes.append("changed")  # a fresh object each time
    assert store.get_model(ref, Ledger).notes == ["n"]


def test_artifact_refs_cannot_escape_the_store(tmp_path):
    store = ArtifactStore(tmp_path)
    good = "sha256:" + "a" * 64
    for bad in ("../etc/passwd", "sha256:../../x", "/abs", good + ".png/../../x", good + "/..", "sha256:" + "A" * 64
                + ".png", good[:-1] + ".png", good + ".png\n", good, 3):
        with pytest.raises(InputError, match="not an artifact reference"):
            store.path(bad)  # type: ignore[arg-type]
    with pytest.raises(SpiralError, match="missing"):
        store.get_bytes("sha256:" + "0" * 64 + ".png")


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


@pytest.mark.parametrize("fps", [8, 12, 24])
def test_the_gif_plays_as_long_as_the_mp4_even_with_repeated_frames(tmp_path, fps):
    """GIF delays are centiseconds: 125 ms rounded down every frame drifted from the mp4's length, and
    the encoder merges equal consecutive frames (a segment that holds still)."""
    frames = np.zeros((16, 8, 8, 3), np.uint8)
    frames[5:9] = 255  # frames 0-4 and 9-15 repeat
    image = Image.open(write_gif(frames, tmp_path / "v.gif", fps=fps))
    total = 0
    for index in range(image.n_frames):
        image.seek(index)
        total += image.info["duration"]
    assert image.n_frames == 3 and total == round(16 * 1000 / fps, -1)


def test_start_image_paths_stay_inside_the_input_root(tmp_path, monkeypatch):
    from spiral.nodes.ingest import load_start_frame
    from spiral.vocabulary.config import RunContext

    inside = save_png(np.zeros((8, 8, 3), np.uint8), tmp_path / "inputs" / "a.png")
    outside = save_png(np.zeros((8, 8, 3), np.uint8), tmp_path / "elsewhere" / "b.png")
    root = str(tmp_path / "inputs")
    assert load_image(inside, root).shape == (8, 8, 3)
    for sneaky in (outside, tmp_path / "inputs" / ".." / "elsewhere" / "b.png"):
        with pytest.raises(InputError, match="must be inside"):
            load_image(sneaky, root)
    raw = base64.b64encode(outside.read_bytes()).decode()
    assert load_image(f"data:image/png;base64,{raw}", root).shape == (8, 8, 3)  # pixels are always welcome
    monkeypatch.setenv("SPIRAL_INPUT_ROOT", root)  # a run reads the root from the environment (vocabulary/environment.py)
    with pytest.raises(InputError, match="must be inside"):
        load_start_frame(str(outside), RunContext(height=32, width=32))


def test_start_image_from_an_http_url(tmp_path):
    import functools
    import http.server
    import threading

    save_png(np.full((6, 9, 3), 200, np.uint8), tmp_path / "s.png")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert load_image(f"{base}/s.png").shape == (6, 9, 3)
        with pytest.raises(InputError, match="cannot download"):
            load_image(f"{base}/missing.png")
    finally:
        server.shutdown()


def test_cli_flags_are_the_run_context_fields():
    """Every RunContext field is a flag with its help text; only given flags reach RunContext; a bad
    value is one line naming the flag."""
    from spiral.shell.cli import parser
    from spiral.shell.cli_options import context_from_args, flags_of
    from spiral.vocabulary.config import RunContext

    run = parser()
    episode = ["run", "--image", "start.png", "--action", "put the red ball in the bowl"]
    parsed = run.parse_known_args(episode)[0]  # parses with every option present
    for name in RunContext.model_fields:
        assert hasattr(parsed, name), name
    args = run.parse_args([*episode, "--frames", "9", "--steps", "4", "--no-write-video", "--critic", "none"])
    context = context_from_args(args)
    assert (context.num_frames, context.num_inference_steps, context.write_video, context.critic) == (9, 4, False, "none")
    assert context.max_tries_per_segment == RunContext().max_tries_per_segment  # the field's own default
    assert flags_of("max_tries_per_segment") == ["--max-tries", "--max-tries-per-segment"]
    with pytest.raises(InputError, match=r"^--max-tries: Input should be greater than or equal to 1 \(got 0\)$"):
        context_from_args(run.parse_args(["demo", "--max-tries", "0"]))  # the demo's own short list
    with pytest.raises(InputError, match=r"^--seed: Input should be less than 9223372036854775808"):
        context_from_args(run.parse_args([*episode, "--seed", str(2**64)]))


def test_a_second_waiter_also_waits_for_writes_the_first_waiter_took(tmp_path, monkeypatch):
    """LangGraph commits a step's writes and its checkpoint from two threads, and both wait for the
    artifacts first; the second waiter once returned at once while the first still waited, so a
    checkpoint pointing at an unwritten file was committed (the fault suite found it)."""
    import threading

    from spiral.memory import durable

    release, started = threading.Event(), threading.Event()
    real_write = durable.write_file

    def slow_write(target, data, durable):
        started.set()
        release.wait(5)
        real_write(target, data, durable)

    monkeypatch.setattr(durable, "write_file", slow_write)
    with durable.deferred_durability(tmp_path / "a"):
        store = ArtifactStore(tmp_path / "a")
        ref = store.put_bytes(b"segment", "bin")
        started.wait(5)
        first = threading.Thread(target=durable.wait_for_disk)
        first.start()
        second_done = threading.Event()
        threading.Thread(target=lambda: (durable.wait_for_disk(), second_done.set())).start()
        assert not second_done.wait(0.3)  # the write is not on disk yet: the second waiter must still wait
        release.set()
        assert second_done.wait(5) and store.path(ref).read_bytes() == b"segment"
        first.join(5)


def test_a_failed_artifact_write_is_raised_once_to_the_waiter(tmp_path, monkeypatch):
    import errno

    from spiral.memory import durable

    def full(target, data, durable):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(durable, "write_file", full)
    with durable.deferred_durability(tmp_path / "a"):
        ArtifactStore(tmp_path / "a").put_bytes(b"x", "bin")
        with pytest.raises(OSError, match="No space"):
            durable.wait_for_disk()
        durable.wait_for_disk()  # raised once; the step that wrote it is redone on resume


def test_a_finished_episode_leaves_no_decoded_artifacts_in_memory(tmp_path):
    from spiral.memory import durable

    store = ArtifactStore(tmp_path / "a")
    other = ArtifactStore(tmp_path / "b")
    ref = store.put_frames(np.zeros((4, 8, 8, 3), np.uint8))
    kept = other.put_frames(np.ones((4, 8, 8, 3), np.uint8))
    store.drop_cache()
    assert durable.DECODED.get((store.cache_key, ref)) is None and durable.DECODED.get((other.cache_key, kept)) is not None
    assert store.get_frames(ref).shape == (4, 8, 8, 3)  # read back from the disk


def test_threads_compress_segments_at_the_same_time(tmp_path):
    """A shared zstd compressor crashed the process (segfault) when episodes ran in threads."""
    import threading

    store = ArtifactStore(tmp_path / "a")
    rng = np.random.default_rng(0)
    segments = [rng.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8) for _ in range(8)]
    refs: dict[int, list[str]] = {}

    def work(i: int) -> None:
        refs[i] = [store.put_frames(segments[i] + np.uint8(k)) for k in range(40)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.drop_cache()
    for i in range(8):
        assert np.array_equal(store.get_frames(refs[i][7]), segments[i] + np.uint8(7))


def test_a_store_writes_again_after_its_folder_was_deleted_and_made_again(tmp_path):
    """One store object per workspace and process (nodes/context.py): deleting the workspace and running
    again at the same path must not fail on a folder the store remembers making."""
    import shutil

    store = ArtifactStore(tmp_path / "artifacts")
    ref = store.put_bytes(b"frame", "bin")
    shutil.rmtree(tmp_path / "artifacts")
    (tmp_path / "artifacts").mkdir()
    assert store.put_bytes(b"frame", "bin") == ref and store.path(ref).read_bytes() == b"frame"
