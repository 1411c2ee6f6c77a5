"""Launched by tests (alone, or under `accelerate launch --num_processes 2 --cpu`): one FlowGRPO pass over
eight fixed samples of tiny-wan, then the LoRA's weights saved to argv[1] (the main process)."""

import sys
import tempfile

import numpy as np
from safetensors.torch import save_file

from spiral.tools.video.base import SegmentRequest
from spiral.tools.video.diffusers_backbone import DiffusersBackbone
from spiral.tools.video.tiny import tiny_wan_pipeline
from spiral.training.config import GRPOConfig, config_for
from spiral.training.flow_grpo import FlowGRPO, ReplaySample


def main(out: str, accumulation: int) -> None:
    from peft.utils import get_peft_model_state_dict

    pipe = tiny_wan_pipeline(vae_base_dim=16)
    generator = DiffusersBackbone.from_pipeline("tiny-wan", pipe, device="cpu")
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[8:16, 8:16] = (210, 40, 40)
    request = SegmentRequest(image=image, prompt="put the red ball in the bowl", num_frames=5, height=32, width=32,
                             num_inference_steps=3, guidance_scale=3.0, trajectory=True)
    advantages = [1.0, -1.0, 0.5, -0.5, 1.5, -1.5, 0.25, -0.25]
    samples = [ReplaySample.from_trajectory(generator.generate(request.model_copy(update={"seed": k})).trajectory, a)
               for k, a in enumerate(advantages)]
    config = config_for(GRPOConfig, "tiny-cpu", gradient_accumulation=accumulation, save_every=10**6)
    trainer = FlowGRPO(pipe, "tiny-wan", "tiny", config, tempfile.mkdtemp())
    trainer.train(samples)
    if trainer.accelerator.is_main_process:
        state = get_peft_model_state_dict(trainer.unwrapped, adapter_name="spiral")
        save_file({k: v.contiguous() for k, v in state.items()}, out, metadata={"steps": str(trainer.steps)})
    trainer.accelerator.wait_for_everyone()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
