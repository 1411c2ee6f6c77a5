"""The run context: one typed schema, shown by LangGraph Studio as a form and by `spiral` as flags.

Every setting is a field here, with its type, default, bounds and help text;
the CLI derives its options from these fields (shell/cli_options.py), so a new
setting appears in Studio, the server, Python and the command line at once.
A field may name a short flag (`json_schema_extra={"flag": "--frames"}`) and
whether it is a path the CLI resolves (`"path": True`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..tools.errors import InputError
from ..tools.video import backbone_info
from ..tools.video.base import MAX_FRAMES, MAX_SIDE, MIN_SIDE
from .environment import environment, spiral_home

_START_DIR = Path.cwd()
"""Where the process started: read once at import, so building a RunContext makes no system call
(the LangGraph server builds it on its event loop, where `langgraph dev` forbids blocking calls)."""


def default_workspace() -> str:
    """$SPIRAL_HOME, else .spiral in the folder the process started in."""
    return spiral_home() or str(_START_DIR / ".spiral")


class RunContext(BaseModel):
    """How an episode runs. Saved into the episode's state on its first step so a resume
    continues with the same settings. An unknown field or a non-finite number is refused, naming it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    backbone: str = Field("sim", description="Video generator: `sim` (simulated, CPU) or a registered backbone.")
    model: str = Field("", description="Diffusers backbones: local pipeline folder or hub id (default: the backbone's).")
    dtype: str = Field("auto", description="Diffusers backbones: auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16.")
    device: str = Field("auto", description="Diffusers backbones: auto, cpu, cuda, cuda:1, ...")
    cpu_offload: bool = Field(False, description="Diffusers backbones: enable_model_cpu_offload (less VRAM, slower).")
    vae_tiling: bool = Field(False, description="Diffusers backbones: decode the VAE in tiles (less VRAM).")
    num_inference_steps: int | None = Field(None, ge=1, le=1000, description="Denoising steps (default: the backbone's).",
                                            json_schema_extra={"flag": "--steps"})
    guidance_scale: float | None = Field(None, ge=0, description="Classifier-free guidance (default: the backbone's).",
                                         json_schema_extra={"flag": "--guidance"})
    trajectory: bool = Field(False, description="Record per-step latents and SDE log-probs of every segment for RL "
                             "(diffusers backbones; the sim has no latents).")
    sde_noise_level: float = Field(0.7, ge=0, le=2, description="SDE noise level when recording trajectories.")
    trajectory_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="How trajectory latents are stored (bfloat16 halves them; log-probs stay exact).")
    group_size: int = Field(1, ge=1, le=16, description="Segments sampled per try from the same frame and instruction "
                            "(a GRPO group): all are judged and recorded, the best passing one is kept (best-of-G).",
                            json_schema_extra={"flag": "--group"})
    lora: str = Field("", description="Diffusers backbones: a LoRA adapter folder written by `spiral train` "
                      "(refused when it was trained for another backbone).", json_schema_extra={"path": True})
    difficulty: str = Field("medium", description="Error-model preset of the `sim` backbone: easy, medium, hard.")
    seed: int = Field(0, ge=0, lt=2**63, description="Episode seed; every generator seed derives from it.")
    num_frames: int = Field(16, description="Frames per segment.", json_schema_extra={"flag": "--frames"})
    height: int = Field(128, description="Frame height in pixels.")
    width: int = Field(128, description="Frame width in pixels.")
    planner: Literal["rule", "llm"] = Field("rule", description="PlanAgent (and refiner): `rule` (offline grammar) or `llm`.")
    critic: Literal["perception", "llm", "ensemble", "none"] = Field(
        "perception", description="CriticAgent: `perception` (offline, from pixels), `llm` (a VLM judges a keyframe "
        "sheet), `ensemble` (the VLM also gets the perception measurements) or `none` (accept every segment; ablation).")
    critic_reading: Literal["auto", "sharp", "learned"] = Field(
        "auto", description="How the perception critic reads frames: `sharp` (the simulator's renderer), `learned` "
        "(a decoder's soft edges and shifted colours: outlines at half of each edge, tolerances chosen on the shipped "
        "tabletop-tiny's train-split segments) or `auto` (what the backbone registers).")
    refine: Literal["reword", "reseed"] = Field(
        "reword", description="How a failed try is redone: `reword` (the critique becomes a better instruction, with a "
        "new seed) or `reseed` (the same instruction with a new seed only; ablation).")
    llm_model: str = Field("openai/gpt-4o-mini", description="LLM/VLM as provider/model (or the name a server uses).")
    base_url: str = Field("", description="OpenAI-compatible server URL, e.g. http://localhost:8000/v1 (empty: OpenAI).")
    temperature: float = Field(0.0, ge=0, le=2, description="LLM sampling temperature.")
    llm_timeout_s: float = Field(60.0, gt=0, description="Seconds before an LLM call times out (then it is retried).",
                                 json_schema_extra={"flag": "--llm-timeout"})
    llm_retries: int = Field(2, ge=0, le=10, description="Retries of an LLM call on timeouts, 429 and 5xx (with backoff).")
    prompts_dir: str = Field("", description="Folder with planner.md / critic.md / refiner.md overriding the built-in prompts.",
                             json_schema_extra={"path": True})
    memory: Literal["episode", "reflective", "off"] = Field(
        "episode", description="`episode`: the critic judges against the episode's ledger (drift since the start) and "
        "refinements accumulate; `reflective`: also learn phrasing lessons across episodes in the store and start "
        "sub-actions with what fixed them before; `off`: judge only against the conditioning frame, refinements "
        "forget (ablation).")
    memory_write: bool = Field(True, description="With reflective memory: write this episode's lessons to the store.")
    write_video: bool = Field(True, description="Encode video.mp4 and video.gif at the end (frames.npy and "
                              "summary.json are always written); off for headless batch runs such as the benchmark.")
    fps: int = Field(8, ge=1, le=120, description="Frame rate of the written video.")
    review: bool = Field(False, description="Pause before accepting each segment so a person can approve it or "
                         "reject it with feedback (resume with Command(resume='approve') or "
                         "Command(resume={'decision': 'reject', 'feedback': '...'})).")
    max_tries_per_segment: int = Field(3, ge=1, le=20, description="Inner-loop budget per sub-action.",
                                       json_schema_extra={"flag": "--max-tries"})
    max_replans: int = Field(2, ge=0, le=10, description="Outer-loop budget per episode.")
    max_generator_calls: int = Field(40, ge=1, le=1000, description="Generator calls per episode.",
                                     json_schema_extra={"flag": "--max-calls"})
    workspace: str = Field(default_factory=default_workspace,
                           description="Folder for artifacts, checkpoints and traces ($SPIRAL_HOME, else ./.spiral).",
                           json_schema_extra={"path": True})
    out_dir: str = Field("", description="Where finalize writes the video and summary (default: workspace/runs/THREAD).",
                         json_schema_extra={"flag": "--out", "path": True})

    @classmethod
    def from_fields(cls, fields: dict, label: Callable[[str], str] = str) -> RunContext:
        """Settings from field values, with one line (naming the field through `label`) for a bad value."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else ""
            name = label(field) if field in cls.model_fields else field
            raise InputError(f"{name}: {error['msg']} (got {error.get('input')!r})") from None

    def generator_options(self) -> dict:
        """The run-context fields this backbone takes (its registry entry names them), and the operator's
        settings it takes from the environment (an engine's URL and key: never from a run's input)."""
        info = backbone_info(self.backbone)
        options = {name: getattr(self, name) for name in info.settings}
        if info.environment:
            options |= {name: environment().backbone_setting(name) for name in info.environment}
        return options

    def check_backbone(self) -> None:
        """The backbone's own checks of these settings (unknown name, sizes, options), before any work."""
        if self.lora and "lora" not in backbone_info(self.backbone).settings:
            raise InputError(f"--lora: backbone {self.backbone} takes no adapters (it has no weights to adapt)")
        backbone_info(self.backbone).check(num_frames=self.num_frames, height=self.height, width=self.width,
                                           **self.generator_options())

    @field_validator("num_frames")
    @classmethod
    def _frames(cls, n: int) -> int:
        if not 2 <= n <= MAX_FRAMES:
            raise InputError(f"--frames must be between 2 and {MAX_FRAMES}; got {n}")
        return n

    @field_validator("height", "width")
    @classmethod
    def _side(cls, n: int) -> int:
        if not MIN_SIDE <= n <= MAX_SIDE:
            raise InputError(f"--height/--width must be between {MIN_SIDE} and {MAX_SIDE} pixels; got {n}")
        return n
