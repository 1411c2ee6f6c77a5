"""The tabletop-tiny bench's bookkeeping, with the model and the loop replaced by stand-ins."""

import numpy as np

from spiral.bench import learned
from spiral.tools.video.base import Segment


class _Still:
    """A generator whose segments repeat the conditioning frame."""

    def generate(self, request):
        frames = np.repeat(request.conditioning_frame()[None], request.num_frames, axis=0)
        return Segment(frames=frames, fps=8, seed=request.seed, backbone="still")


def test_compute_matched_best_of_n_is_recorded_as_best_of_n_when_spiral_used_one_call(tmp_path, monkeypatch):
    """SPIRAL done in one call makes best-of-n draw one video; the row was labelled open-loop, so the task had
    two open-loop rows and no best-of-n row (found in the 30-task run), and a rerun drew it again."""
    def one_call_loop(task, seed, method, ctx, scratch, keep=None):
        return learned.LearnedResult(task_id=task.id, category=task.category, horizon=task.horizon, seed=seed,
                                     method=method, model="shipped", success=False, pixel_mae=0.0, psnr=0.0,
                                     generator_calls=1, wall_s=0.0)

    monkeypatch.setattr(learned, "run_loop", one_call_loop)
    monkeypatch.setattr(learned, "load_generator", lambda *args, **kwargs: _Still())
    out = tmp_path / "results.jsonl"
    rows = learned.run_learned(out, size=1, seeds=1, methods=("open-loop", "best-of-n", "spiral"), progress=False)
    assert sorted(r.method for r in rows) == ["best-of-n", "open-loop", "spiral"]
    assert [r.generator_calls for r in rows if r.method == "best-of-n"] == [1]
    again = learned.run_learned(out, size=1, seeds=1, methods=("open-loop", "best-of-n", "spiral"), progress=False)
    assert len(again) == 3 and len(out.read_text().splitlines()) == 3  # nothing drawn twice
