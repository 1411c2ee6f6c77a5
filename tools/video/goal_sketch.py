"""A goal sketch: what a goal-taking backbone is shown of where the moving objects should end.

`GoalMove`s say, for each moving object, its box in the conditioning image and
the point its box's centre should reach. The sketch is an empty canvas of the
image's own background colour with each object's box cut from the image and
pasted, centred, where it should end: what goes where, and nothing else. The
rest of the end state (the objects that stay, the place the object leaves) is
the model's to draw. `tabletop-tiny` takes it as the pipeline's `last_image`,
the frame slot first-last-frame Wan models condition on; it learned from
sketches made by this function from its training segments' own ends
(training/pretrain_data.py).
"""

from __future__ import annotations

import numpy as np

from .base import GoalMove


def background_colour(image: np.ndarray) -> np.ndarray:
    """The image's commonest colour, from its border: the table, in the tabletop world (float32 RGB)."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float32)
    return np.median(border, axis=0)


def goal_sketch(image: np.ndarray, goal: list[GoalMove]) -> np.ndarray:
    """uint8 (H, W, 3): the background colour, with each move's box from `image` pasted centred on its `to`
    (clipped at the image's edges; later moves drawn over earlier ones)."""
    height, width = image.shape[:2]
    sketch = np.empty_like(image)
    sketch[:] = background_colour(image).round().astype(np.uint8)
    for move in goal:
        r0, c0, r1, c1 = move.box
        patch = image[r0:r1 + 1, c0:c1 + 1]
        top = int(round(move.to[1] - (r1 - r0) / 2))
        left = int(round(move.to[0] - (c1 - c0) / 2))
        rows = slice(max(top, 0), min(top + patch.shape[0], height))
        cols = slice(max(left, 0), min(left + patch.shape[1], width))
        sketch[rows, cols] = patch[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]
    return sketch
