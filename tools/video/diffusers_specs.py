"""What each diffusers TI2V backbone is and which inputs it accepts, without importing torch.

The registry lists these backbones (and `spiral backbones` describes them) on a
base install; torch and diffusers are imported only when one is validated
against a device or loaded (`diffusers_backbone.py`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

OPTIONS = ("model", "dtype", "device", "cpu_offload", "vae_tiling", "lora")
"""Run-context fields every diffusers backbone takes."""


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone needs: its pipeline class, default weights and the model's rules."""

    pipeline: str
    default_model: str
    """A hub id; empty when the weights are built in code (`build`)."""
    frame_multiple: int
    """num_frames must be `frame_multiple * k + 1`."""
    size_multiple: int
    steps: int
    guidance: float
    max_sequence_length: int
    fps: int
    embeds: str
    """How `encode_prompt` returns: `pair` (embeds, negative) or `masked` (LTX: with attention masks)."""
    notes: str
    build: Callable[[Path], Path] | None = None
    """Writes random-weight pipeline folders with `save_pretrained` (test backbones: no download)."""
    needs_gpu: bool = True
    native: tuple[int, int, int] | None = None
    """(frames, height, width) of a model trained at one size only; other sizes are refused."""
    takes_goal: bool = False
    """Shown a request's goal (its sketch as the pipeline's `last_image`): a model trained on goal sketches."""

    def rules(self) -> str:
        shape = (f"exactly {self.native[0]} frames of {self.native[1]}x{self.native[2]}" if self.native else
                 f"frames {self.frame_multiple}k+1, sides multiple of {self.size_multiple}")
        return (f"{shape}, {self.steps} steps, guidance {self.guidance}; "
                "options: --model --dtype --device --cpu-offload --vae-tiling --lora")


def _build_tiny_wan(directory: Path) -> Path:
    from .tiny import save_tiny_wan

    return save_tiny_wan(directory)


def _tabletop_tiny() -> BackboneSpec:
    from .tabletop import NATIVE_FRAMES, NATIVE_SIDE, WEIGHTS_DIR

    return BackboneSpec("WanImageToVideoPipeline", str(WEIGHTS_DIR), 4, 16, 12, 1.0, 32, 8, "pair",
                        "LEARNED model of the tabletop world (Wan-shaped, a few MB, trained on CPU: "
                        "docs/tabletop-tiny.md); CPU; shown the planner's goal sketch", needs_gpu=False,
                        native=(NATIVE_FRAMES, NATIVE_SIDE, NATIVE_SIDE), takes_goal=True)


SPECS: dict[str, BackboneSpec] = {
    "wan2.1-i2v": BackboneSpec("WanImageToVideoPipeline", "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", 4, 16, 40, 5.0,
                               512, 16, "pair", "14B image-to-video (CLIP image encoder); large: use --cpu-offload on <80 GB"),
    "wan2.2-ti2v": BackboneSpec("WanImageToVideoPipeline", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", 4, 32, 50, 5.0,
                                512, 24, "pair", "5B text+image-to-video; 704x1280 native"),
    "cogvideox-i2v": BackboneSpec("CogVideoXImageToVideoPipeline", "THUDM/CogVideoX-5b-I2V", 4, 16, 50, 6.0,
                                  226, 8, "pair", "5B; 480x720, 49 frames native; VAE tiling helps"),
    "ltx-i2v": BackboneSpec("LTXImageToVideoPipeline", "Lightricks/LTX-Video", 8, 32, 50, 3.0, 128, 24, "masked",
                            "2B; fast; 512x768 native"),
    "tiny-wan": BackboneSpec("WanImageToVideoPipeline", "", 4, 16, 2, 1.0, 16, 8, "pair",
                             "random weights built in code; CPU; for tests and wiring checks",
                             build=_build_tiny_wan, needs_gpu=False),
    "tabletop-tiny": _tabletop_tiny(),
}


def check_sizes(name: str, num_frames: int, height: int, width: int) -> None:
    """Raise InputError when a request would break the model's frame or size rules."""
    spec = SPECS[name]
    if spec.native is not None and (num_frames, height, width) != spec.native:
        frames, h, w = spec.native
        raise InputError(f"{name} was trained on {frames} frames of {w}x{h} only: pass --frames {frames} "
                         f"--height {h} --width {w} (got {num_frames} frames of {width}x{height})")
    if (num_frames - 1) % spec.frame_multiple:
        k = max(round((num_frames - 1) / spec.frame_multiple), 1)
        raise InputError(f"{name} needs num_frames = {spec.frame_multiple}k+1 (e.g. {spec.frame_multiple * k + 1}); "
                         f"got {num_frames}")
    for side, value in (("height", height), ("width", width)):
        if value % spec.size_multiple:
            raise InputError(f"{name} needs {side} divisible by {spec.size_multiple}; got {value}")


def quiet_transformers() -> None:
    """transformers' import-time notices (e.g. that torchvision is missing, which no video pipeline here
    needs) off: each would be a second line on stderr. Call before the first diffusers import."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return
    transformers_logging.set_verbosity_error()


def require_torch(name: str) -> None:
    """One clear line when the diffusers extra is missing."""
    quiet_transformers()
    try:
        import diffusers  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise InputError(f"backbone {name} needs torch and diffusers: pip install 'spiral-actwm[diffusers]' "
                         "(bash setup.sh installs the right torch build first)") from None


def resolve_model(name: str, model: str) -> str:
    """A local pipeline folder or a hub id; backbones with weights built in code build them once."""
    spec = SPECS[name]
    if not model and spec.build is not None:
        return str(built_weights(name))
    if not model and Path(spec.default_model).is_absolute() and not Path(spec.default_model).exists():
        raise InputError(f"{name}'s weights are not in this install ({spec.default_model}); make them with "
                         "`spiral train pretrain` and pass --model RUN/pipeline")
    model = model or spec.default_model
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "model_index.json").exists():
            raise InputError(f"{model} has no model_index.json: give a diffusers pipeline folder "
                             "(save_pretrained output) or a hub id")
        return str(path)
    if model.startswith((".", "/", "~")) or model.count("/") != 1:
        example = spec.default_model or "a folder written by save_pretrained"
        raise InputError(f"model weights not found: {model} (give a local diffusers folder or a hub id like "
                         f"{example})")
    return model


def built_weights(name: str) -> Path:
    """The folder of a backbone whose weights are built in code: written once per machine, atomically,
    under the system's temporary folder (the weights are a pure function of the code)."""
    spec = SPECS[name]
    assert spec.build is not None
    target = Path(tempfile.gettempdir()) / f"spiral-{name}-weights"
    if (target / "model_index.json").exists():
        return target
    scratch = Path(tempfile.mkdtemp(prefix=f".spiral-{name}-", dir=target.parent))
    spec.build(scratch / "pipeline")
    try:
        os.replace(scratch / "pipeline", target)
    except OSError:  # another process got there first; its folder is the same pipeline
        pass
    shutil.rmtree(scratch, ignore_errors=True)
    return target


def validate(name: str, *, num_frames: int, height: int, width: int, model: str = "", dtype: str = "auto",
             device: str = "auto", cpu_offload: bool = False, vae_tiling: bool = False, lora: str = "") -> None:
    """Every check that needs no weights: run before any work so bad input leaves nothing behind."""
    check_sizes(name, num_frames, height, width)
    if lora:
        from .adapters import check_adapter

        check_adapter(lora, name)
    require_torch(name)
    resolve_dtype(dtype, resolve_device(device))
    if model or SPECS[name].build is None:
        resolve_model(name, model)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("CUDA was requested but torch sees no CUDA device; use --device cpu, or install the "
                         "CUDA build of torch (bash setup.sh on a machine where nvidia-smi works)")
    return device


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise InputError(f"unknown dtype {dtype!r}; choose auto, float32, bfloat16 or float16") from None
