"""Every parameter of the simulator's error model, in one place.

The `sim` backbone is a SIMULATOR OF A VIDEO MODEL, not a video model. It
fails the way open-loop text+image-to-video models are reported to fail, at
rates set here:

* **incomplete action** — the object is set down part way to its goal;
* **wrong object** — a confusable object (same colour or same shape) does the
  action instead; likelier when the prompt does not name colour and shape;
* **drift** — objects nobody asked to move creep a few pixels, or an
  object's colour shifts;
* **dropped action** — in a prompt that packs several actions, later ones are
  skipped altogether.

Each probability is multiplied by `1 + compound * (K - 1)` for a prompt that
asks for K object motions, so one-shot prompts for long actions fail much more
often than one-action prompts. Explicit wording helps, as it does with real
models: completion words ("all the way", "fully") scale the incomplete rate by
`completion_relief`; naming an object by colour and shape scales the
wrong-object rate by `specific_relief`; asking to keep everything else still
scales the drift rate by `still_relief`. The seed and the prompt text both
seed the draws, so a new seed or a rewritten prompt is a new sample.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class SimConfig(BaseModel):
    """Error-model parameters of the `sim` backbone (probabilities per action)."""

    p_incomplete: float = Field(0.22, ge=0, le=1, description="Action stops part way.")
    p_wrong_object: float = Field(0.2, ge=0, le=1, description="A confusable object moves instead (vague prompt).")
    p_drift: float = Field(0.15, ge=0, le=1, description="Per segment: bystanders creep or change colour.")
    p_drop: float = Field(0.18, ge=0, le=1, description="Per extra action in one prompt: skipped entirely.")
    compound: float = Field(0.35, ge=0, description="Growth of every rate per extra action in the prompt.")
    completion_relief: float = Field(0.45, ge=0, le=1, description="Incomplete-rate factor with completion words.")
    specific_relief: float = Field(0.25, ge=0, le=1, description="Wrong-object factor when colour and shape are named.")
    still_relief: float = Field(0.4, ge=0, le=1, description="Drift-rate factor when told to keep the rest still.")
    incomplete_progress: tuple[float, float] = (0.25, 0.65)
    drift_pixels: tuple[float, float] = (3.0, 7.0)
    drift_tint: tuple[float, float] = (0.12, 0.25)
    max_probability: float = 0.95
    fps: int = 8


PRESETS: dict[str, SimConfig] = {
    "easy": SimConfig(p_incomplete=0.1, p_wrong_object=0.1, p_drift=0.06, p_drop=0.1, compound=0.2),
    "medium": SimConfig(),
    "hard": SimConfig(p_incomplete=0.35, p_wrong_object=0.32, p_drift=0.25, p_drop=0.3, compound=0.5),
}


def preset(difficulty: str) -> SimConfig:
    from ...errors import InputError

    if difficulty not in PRESETS:
        raise InputError(f"unknown difficulty {difficulty!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[difficulty].model_copy()
