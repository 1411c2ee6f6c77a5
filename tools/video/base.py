"""The generator interface every backbone implements.

Argument names mirror diffusers pipelines (`prompt`, `negative_prompt`,
`height`, `width`, `num_frames`, `num_inference_steps`, `guidance_scale`) so a
user of diffusers reads a request without a glossary. Nothing here knows about
LangGraph: a backbone can be used on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import InputError

MIN_SIDE, MAX_SIDE = 32, 2048
MAX_FRAMES = 257


class GoalMove(BaseModel):
    """Where one moving object should end, as a drag in the conditioning image: the object's box now and the
    point its box's centre should reach. The planner's reading of a sub-action; a backbone that takes goals
    (`BackboneSpec.takes_goal`) is shown it, the others render from the prompt alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    box: tuple[int, int, int, int] = Field(description="Rows and columns (r0, c0, r1, c1), inclusive, in pixels of "
                                           "the request's image.")
    to: tuple[float, float] = Field(description="(x, y) in pixels of the request's image: where the box's centre ends.")

    @model_validator(mode="after")
    def _ordered(self) -> GoalMove:
        r0, c0, r1, c1 = self.box
        if not (0 <= r0 <= r1 and 0 <= c0 <= c1):
            raise InputError(f"a goal's box must be (r0, c0, r1, c1) with 0 <= r0 <= r1 and 0 <= c0 <= c1; got {self.box}")
        if not all(math.isfinite(v) for v in self.to):
            raise InputError(f"a goal's point must be finite; got {self.to}")
        return self


class SegmentRequest(BaseModel):
    """One text+image-to-video call: render `prompt` starting from `image`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    image: np.ndarray = Field(description="Conditioning frame, uint8 (H, W, 3).")
    prompt: str
    negative_prompt: str = ""
    num_frames: int = 16
    height: int = 128
    width: int = 128
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    seed: int = 0
    trajectory: bool = False
    """Sample with SDE steps and record per-step latents and log-probs (diffusers backbones)."""
    sde_noise_level: float = 0.7
    trajectory_dtype: Literal["float32", "bfloat16"] = "float32"
    """How trajectory latents are stored (bfloat16 halves them; the log-probs stay exact for what is stored)."""
    goal: list[GoalMove] = Field(default_factory=list)
    """Where the moving objects should end (empty: the prompt alone says it)."""

    @field_validator("image")
    @classmethod
    def _rgb_uint8(cls, image: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"conditioning image must be uint8 (H, W, 3); got {image.dtype} {image.shape}")
        return image

    @field_validator("height", "width")
    @classmethod
    def _side(cls, side: int) -> int:
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise InputError(f"height/width must be between {MIN_SIDE} and {MAX_SIDE} pixels; got {side}")
        return side

    @field_validator("num_frames")
    @classmethod
    def _frames(cls, n: int) -> int:
        if not 2 <= n <= MAX_FRAMES:
            raise InputError(f"num_frames must be between 2 and {MAX_FRAMES}; got {n}")
        return n

    @model_validator(mode="after")
    def _goal_in_image(self) -> SegmentRequest:
        height, width = self.image.shape[:2]
        for move in self.goal:
            r0, c0, r1, c1 = move.box
            if r1 >= height or c1 >= width or not (0 <= move.to[0] < width and 0 <= move.to[1] < height):
                raise InputError(f"a goal lies outside the {width}x{height} conditioning image: {move.box} -> {move.to}")
        return self

    def conditioning_frame(self) -> np.ndarray:
        """The image at the requested size (resized with Lanczos when it differs)."""
        if self.image.shape[:2] == (self.height, self.width):
            return self.image
        resized = Image.fromarray(self.image).resize((self.width, self.height), Image.LANCZOS)
        return np.asarray(resized)


@dataclass
class Segment:
    """Output of one call. `frames[0]` continues from the conditioning image."""

    frames: np.ndarray
    """uint8 (T, H, W, 3)."""
    fps: int
    seed: int
    backbone: str
    timings: dict[str, float] = field(default_factory=dict)
    trajectory: Any | None = None


ProgressFn = Callable[[int, int], None]
"""`progress(step, steps)`: denoising step `step` (1-based) of `steps` is done."""


@runtime_checkable
class VideoGenerator(Protocol):
    """A TI2V backbone used as a tool: load once, call many times."""

    name: str

    def generate(self, request: SegmentRequest, progress: ProgressFn | None = None) -> Segment:
        """Render one segment; call `progress(step, steps)` after each denoising step."""
        ...


def generate_group(generator: VideoGenerator, request: SegmentRequest, seeds: list[int],
                   progress: ProgressFn | None = None) -> list[Segment]:
    """One segment per seed: in one batched call where the generator has `generate_group` (diffusers
    backbones), else one after another."""
    batched = getattr(generator, "generate_group", None)
    if batched is not None and len(seeds) > 1:
        return batched(request, seeds, progress)
    return [generator.generate(request.model_copy(update={"seed": seed}), progress=progress) for seed in seeds]
