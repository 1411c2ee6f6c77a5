"""ActWM-Dataset export: start images, actions, ground-truth plans and error-free videos.

Layout of `OUT/` (loadable with the `datasets` library, see docs/dataset.md):

    metadata.jsonl     one row per task (below)
    images/ID.png      start image
    videos/ID.mp4      ground-truth video, one segment per step, rendered by the world with no errors
    frames/ID.npy      the same video as uint8 (T, H, W, 3)
    README.md          this layout and the suite version

Row fields: file_name (the start image, for `imagefolder`), video, frames, task_id, split,
suite, category, horizon, action, goal (predicates), plan (steps: verb, subject, target,
place), segment_starts (first frame of each step in the video), scene (objects).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..tools.media import save_png, stitch, write_mp4
from ..tools.world.execute import execute
from ..tools.world.render import render_scene
from .tasks import SUITE_VERSION, build_suite


def export_dataset(split: str, out: str | Path, *, size: int | None = None, num_frames: int = 16,
                   height: int = 128, width: int = 128, progress: bool = True) -> Path:
    out = Path(out)
    for sub in ("images", "videos", "frames"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    tasks = build_suite(split, size)
    rows = []
    for task in tqdm(tasks, desc=f"export {split}", disable=not progress, unit="task"):
        start = render_scene(task.scene, height, width)
        segments, _ = execute(task.scene, task.steps, num_frames=num_frames, height=height, width=width,
                              seed=int(task.id.split("-")[-1]))
        video = stitch(segments, start)
        save_png(start, out / "images" / f"{task.id}.png")
        write_mp4(video, out / "videos" / f"{task.id}.mp4")
        np.save(out / "frames" / f"{task.id}.npy", video)
        starts = [0] + [int(i) for i in np.cumsum([len(s) - 1 for s in segments])[:-1] + 0] if segments else [0]
        rows.append({
            "file_name": f"images/{task.id}.png", "video": f"videos/{task.id}.mp4",
            "frames": f"frames/{task.id}.npy", "task_id": task.id, "split": split, "suite": SUITE_VERSION,
            "category": task.category, "horizon": task.horizon, "action": task.action, "goal": task.goal,
            "plan": [s.model_dump() for s in task.steps], "segment_starts": starts,
            "scene": json.loads(task.scene.model_dump_json())["objects"],
        })
    with open(out / "metadata.jsonl", "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    (out / "README.md").write_text(
        f"# ActWM-Dataset ({SUITE_VERSION}, split `{split}`)\n\n{len(rows)} tasks exported by "
        f"`spiral dataset export --split {split}`.\n\n```python\nfrom datasets import load_dataset\n"
        f"ds = load_dataset('json', data_files='metadata.jsonl', split='train')\n"
        f"# or, with start images decoded: load_dataset('imagefolder', data_dir='.')\n```\n\n"
        + (__doc__ or "").split("\n\n", 1)[1])
    return out
