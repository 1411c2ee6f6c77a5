"""Full-size diffusers backbones built from their published configs, with random weights.

No weights reach our machines, so a real-size measurement (time, VRAM) builds
each pipeline from the configs the weights ship with: the transformer and VAE
configs of diffusers' `scripts/convert_wan_to_diffusers.py`, UMT5-XXL's and
CLIP ViT-H/14's model configs. Shapes and compute are the real models'; the
frames are noise. The VAE's latent normalisation constants are 0 and 1 (they
scale numbers, not work), and the tokenizer is a small word-level one built
with `tokenizers` (the text encoder still runs over the full 512 tokens).

`scale="tiny"` builds the same pipelines with tiny configs, so the code that
builds and measures them is tested on the CPU.
"""

from __future__ import annotations

from typing import Any

UMT5_XXL = dict(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                relative_attention_num_buckets=32, relative_attention_max_distance=128,
                feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, tie_word_embeddings=False)
WAN22_TI2V_5B = dict(patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128, in_channels=48,
                     out_channels=48, text_dim=4096, freq_dim=256, ffn_dim=14336, num_layers=30, cross_attn_norm=True,
                     qk_norm="rms_norm_across_heads", eps=1e-6)
WAN22_VAE = dict(base_dim=160, decoder_base_dim=256, z_dim=48, is_residual=True, in_channels=12, out_channels=12,
                 patch_size=2, scale_factor_temporal=4, scale_factor_spatial=16)
WAN21_I2V_14B = dict(patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=36,
                     out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True,
                     qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=1280, added_kv_proj_dim=5120)
CLIP_VIT_H14 = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
                    patch_size=14, image_size=224, projection_dim=1024, hidden_act="gelu", layer_norm_eps=1e-5)

TINY = {
    "umt5": dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, relative_attention_num_buckets=8),
    "transformer": dict(num_attention_heads=2, attention_head_dim=12, ffn_dim=32, num_layers=2, rope_max_seq_len=32,
                        text_dim=32),
    "wan22_vae": dict(base_dim=8, decoder_base_dim=8, dim_mult=[1, 1, 1, 1], num_res_blocks=1),
    "wan21_vae": dict(base_dim=3, dim_mult=[1, 1, 1, 1], num_res_blocks=1),
    "clip": dict(hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, patch_size=14,
                 projection_dim=8),
}
"""What `scale="tiny"` overrides; every other value is the published one."""

FULL_SIZE = ("wan2.2-ti2v", "wan2.1-i2v")
"""The backbones this module can build at full size."""


def _text_parts(scale: str) -> dict[str, Any]:
    from transformers import UMT5Config, UMT5EncoderModel

    from ..tools.video.tiny import tiny_tokenizer

    config = dict(UMT5_XXL, **(TINY["umt5"] if scale == "tiny" else {}))
    config.update(pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    return {"tokenizer": tiny_tokenizer(), "text_encoder": UMT5EncoderModel(UMT5Config(**config))}


def _wan22_ti2v(scale: str) -> Any:
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )

    tiny = scale == "tiny"
    transformer = WanTransformer3DModel(**dict(WAN22_TI2V_5B, **(TINY["transformer"] if tiny else {})))
    vae = AutoencoderKLWan(**dict(WAN22_VAE, **(TINY["wan22_vae"] if tiny else {})),
                           latents_mean=[0.0] * 48, latents_std=[1.0] * 48)
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                        num_train_timesteps=1000, flow_shift=5.0)
    return WanImageToVideoPipeline(**_text_parts(scale), transformer=transformer, vae=vae, scheduler=scheduler,
                                   expand_timesteps=True)


def _wan21_i2v(scale: str) -> Any:
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    tiny = scale == "tiny"
    transformer = WanTransformer3DModel(**dict(WAN21_I2V_14B, **(TINY["transformer"] if tiny else {}),
                                               **({"image_dim": 8, "added_kv_proj_dim": 24} if tiny else {})))
    vae = AutoencoderKLWan(**(TINY["wan21_vae"] if tiny else {}))
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**dict(CLIP_VIT_H14, **(TINY["clip"] if tiny else {}))))
    processor = CLIPImageProcessor(crop_size=224, size={"shortest_edge": 224},
                                   image_mean=[0.48145466, 0.4578275, 0.40821073],
                                   image_std=[0.26862954, 0.26130258, 0.27577711])
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                        num_train_timesteps=1000, flow_shift=3.0)
    return WanImageToVideoPipeline(**_text_parts(scale), transformer=transformer, vae=vae, scheduler=scheduler,
                                   image_encoder=clip, image_processor=processor)


BUILDERS = {"wan2.2-ti2v": _wan22_ti2v, "wan2.1-i2v": _wan21_i2v}


def build_full_size(name: str, device: str, dtype: Any, scale: str = "full") -> Any:
    """The backbone's pipeline with random weights, created directly on `device` in `dtype`."""
    import torch

    if name not in BUILDERS:
        raise ValueError(f"no full-size config for {name}; known: {', '.join(BUILDERS)}")
    previous = torch.get_default_dtype()
    torch.manual_seed(0)
    try:
        torch.set_default_dtype(dtype)
        with torch.device(device):
            pipe = BUILDERS[name](scale)
    finally:
        torch.set_default_dtype(previous)
    _keep_fp32_modules(pipe)
    return pipe


def _keep_fp32_modules(pipe: Any) -> None:
    """Put back in float32 what `from_pretrained(dtype=...)` keeps there (norms, time embedding, rope)."""
    for module in pipe.components.values():
        keep = getattr(module, "_keep_in_fp32_modules", None) or []
        if not keep or not hasattr(module, "named_modules"):
            continue
        for name, sub in module.named_modules():
            if any(part in keep for part in name.split(".")):
                sub.float()


def parameter_counts(pipe: Any) -> dict[str, float]:
    """Billions of parameters per model component."""
    counts = {}
    for name, module in pipe.components.items():
        if hasattr(module, "parameters"):
            counts[name] = sum(p.numel() for p in module.parameters()) / 1e9
    return counts
