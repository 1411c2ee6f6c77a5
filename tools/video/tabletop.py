"""`tabletop-tiny`: a small learned text+image-to-video model of the tabletop world.

It is a Wan-I2V-shaped diffusers pipeline (`WanImageToVideoPipeline` with the
condition concatenated on channels: a mask, then the latents of the first
frame and of a last frame, as Wan2.1's first-last-frame models take it; no
CLIP image encoder, as Wan2.2-I2V), with a patchified residual Wan VAE, a
small `WanTransformer3DModel`, a UMT5 text encoder and a flow-matching
scheduler, only small: so trajectories, LoRA, groups and `spiral train` work
on it through the same code as on Wan, with nothing special-cased. The last
frame it is given is the planner's goal sketch (tools/video/goal_sketch.py:
each moving object cut from the first frame and pasted where it should end);
without one it renders from the prompt alone. Its weights are learned
(`spiral train pretrain`, training/pretrain.py) from the world's error-free
segments, and the trained pipeline ships inside the package (`WEIGHTS_DIR`),
so it runs on a fresh machine with no download. Its failures are whatever an
hour of training on two CPU cores leaves, designed by nobody.
"""

from __future__ import annotations

from pathlib import Path

NATIVE_FRAMES, NATIVE_SIDE = 9, 128
"""What the model was trained on and makes: 9 frames of 128x128 (9 latent frames of 32x32)."""
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights" / "tabletop-tiny"
"""The shipped pipeline folder (save_pretrained output plus MODEL_CARD.md)."""
MAX_PROMPT_TOKENS = 32
LATENT_CHANNELS = 16
"""Per 4x4 pixel patch of one frame (3x fewer numbers than pixels)."""
VAE_SCALE = 4
"""Pixels per latent cell, each way. At 8x (32 channels) the decoder rounded small cubes into balls and bled
colours across outlines: 42 of 64 true held-out end frames survived its round trip after 3,600 steps; at 4x
(trained on crops around objects) 30 after 600 (docs/tabletop-tiny.md)."""

WORLD_WORDS = (
    "put pick place move stack swap the a and in on into inside of to left right front back edge table center "
    "red orange yellow green blue purple white black brown gray small medium large ball cube block bowl plate box "
    "it all way keep every other object still only moves up set down top just exchange their places lift each one "
    "carry then . : ,").split()
"""Every word the planner's and refiner's instructions use (nodes/prompts/generator.py), lower case."""


def world_tokenizer():
    """A word-level tokenizer over `WORLD_WORDS`, lower-casing and splitting off punctuation; unknown
    words map to <unk> (the model cannot have learned them anyway)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in WORLD_WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=MAX_PROMPT_TOKENS)


def tabletop_tiny_pipeline(seed: int = 0, width: int = 160, layers: int = 6, vae=None):
    """The untrained pipeline (random weights from these configs): what `spiral train pretrain` starts from.

    VAE: Wan2.2's patchified residual design (2x2 pixel patches, then one downsampling: 4x in space, none
    in time, 16 latent channels). A tiny VAE that also compressed 4 frames into one smeared moving objects
    across frames and blurred cubes into balls, which perception then misread. Transformer: `layers` blocks
    of width `width` over 4x4 latent patches of the noisy latents with the condition's channels after them
    (1 mask + 16 latent). Text: a frozen 2-layer UMT5 over the world's words; the transformer learns to read it.

    `vae`: an autoencoder to build around instead (`--vae-from`, e.g. the shipped 8x, 32-channel one): the
    transformer's channels follow its latent channels, and its patches keep a token at 16x16 pixels.
    """
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    tokenizer = world_tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=64, d_kv=16, d_ff=128, num_layers=2,
                                               num_heads=4, relative_attention_num_buckets=8, pad_token_id=0,
                                               eos_token_id=1, decoder_start_token_id=0))
    if vae is None:
        vae = AutoencoderKLWan(base_dim=16, z_dim=LATENT_CHANNELS, dim_mult=[2, 2], num_res_blocks=1,
                               temperal_downsample=[False], is_residual=True, in_channels=12, out_channels=12,
                               patch_size=2, scale_factor_spatial=VAE_SCALE, scale_factor_temporal=1,
                               latents_mean=[0.0] * LATENT_CHANNELS, latents_std=[1.0] * LATENT_CHANNELS)
    channels, token_patch = vae.config.z_dim, max(16 // vae.config.scale_factor_spatial, 1)
    heads = max(width // 32, 1)
    transformer = WanTransformer3DModel(patch_size=(1, token_patch, token_patch), num_attention_heads=heads,
                                        attention_head_dim=width // heads,
                                        in_channels=2 * channels + 1, out_channels=channels, text_dim=64,
                                        freq_dim=256, ffn_dim=3 * width,
                                        num_layers=layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                        rope_max_seq_len=64)
    return WanImageToVideoPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                                   scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))


def shipped_weights() -> Path | None:
    """The trained pipeline in the package, or None when this checkout has none."""
    return WEIGHTS_DIR if (WEIGHTS_DIR / "model_index.json").exists() else None
