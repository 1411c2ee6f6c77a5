"""Tiny random-weight diffusers pipelines, built in code, for tests and offline runs.

Nothing is downloaded: the tokenizer is built with the `tokenizers` library
from a small word list, every model comes from a small config with random
weights. `save_tiny_wan(dir)` writes a pipeline with `save_pretrained`, so the
backbone loads it through the same `from_pretrained` path a user's real
weights take. The frames it makes are noise; it exists to exercise the code.
"""

from __future__ import annotations

from pathlib import Path

TINY_WORDS = ("put pick place move stack swap the a and in on into inside of to left right front back edge "
              "table red orange yellow green blue purple white black brown small medium large ball cube block "
              "bowl plate box it all way keep every other object still only moves up set down top just "
              "exchange their places lift each one carry then").split()


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in TINY_WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def _tiny_wan_parts(seed: int, in_channels: int, image_dim: int | None, vae_base_dim: int = 3) -> dict:
    """Tokenizer, UMT5 text encoder, Wan VAE, 2-layer transformer and scheduler shared by both Wan shapes."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanTransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                               num_heads=4, relative_attention_num_buckets=8, pad_token_id=0,
                                               eos_token_id=1, decoder_start_token_id=0))
    vae = AutoencoderKLWan(base_dim=vae_base_dim, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                        in_channels=in_channels, out_channels=16, text_dim=32, freq_dim=256,
                                        ffn_dim=32, num_layers=2, cross_attn_norm=True,
                                        qk_norm="rms_norm_across_heads", rope_max_seq_len=32, image_dim=image_dim)
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "vae": vae, "transformer": transformer,
            "scheduler": FlowMatchEulerDiscreteScheduler(shift=5.0)}


def tiny_wan_pipeline(seed: int = 0, vae_base_dim: int = 3):
    """A Wan2.2-TI2V-style `WanImageToVideoPipeline` (first frame as latent condition, no image
    encoder) with a 2-layer transformer and a 3-channel VAE base.

    At base 3 the random VAE maps every latent to nearly the same picture (brightness moves by 2e-5
    per unit of latent); training tests that reward pixels use `vae_base_dim=16`, whose pixels respond."""
    from diffusers import WanImageToVideoPipeline

    return WanImageToVideoPipeline(**_tiny_wan_parts(seed, in_channels=16, image_dim=None, vae_base_dim=vae_base_dim),
                                   expand_timesteps=True)


def tiny_wan21_pipeline(seed: int = 0):
    """A Wan2.1-I2V-style `WanImageToVideoPipeline`: CLIP image encoder, mask and condition channels."""
    from diffusers import WanImageToVideoPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    parts = _tiny_wan_parts(seed, in_channels=36, image_dim=4)
    image_encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=4, projection_dim=4, num_hidden_layers=2,
                                                     num_attention_heads=2, image_size=32, intermediate_size=16,
                                                     patch_size=1))
    return WanImageToVideoPipeline(**parts, image_encoder=image_encoder,
                                   image_processor=CLIPImageProcessor(crop_size=32, size=32))


def save_tiny_wan(directory: str | Path, seed: int = 0) -> Path:
    directory = Path(directory)
    tiny_wan_pipeline(seed).save_pretrained(directory)
    return directory


def _tiny_t5(tokenizer):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                   relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                                   decoder_start_token_id=0))


def tiny_cogvideox_pipeline(seed: int = 0):
    """A `CogVideoXImageToVideoPipeline` with a 1-layer transformer (rotary positions) and an 8-channel VAE."""
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )

    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    transformer = CogVideoXTransformer3DModel(num_attention_heads=2, attention_head_dim=16, in_channels=8,
                                              out_channels=4, time_embed_dim=2, text_embed_dim=32, num_layers=1,
                                              sample_width=8, sample_height=8, sample_frames=9, patch_size=2,
                                              temporal_compression_ratio=4, max_text_seq_length=16,
                                              use_rotary_positional_embeddings=True)
    vae = AutoencoderKLCogVideoX(in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
                                 up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8),
                                 latent_channels=4, layers_per_block=1, norm_num_groups=2,
                                 temporal_compression_ratio=4)
    return CogVideoXImageToVideoPipeline(tokenizer=tokenizer, text_encoder=_tiny_t5(tokenizer), vae=vae,
                                         transformer=transformer, scheduler=CogVideoXDDIMScheduler())


def tiny_ltx_pipeline(seed: int = 0):
    """An `LTXImageToVideoPipeline` with a 1-layer transformer and a tiny video VAE."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                             num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                             num_layers=1, caption_channels=32)
    vae = AutoencoderKLLTXVideo(in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
                                decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
                                decoder_layers_per_block=(1, 1, 1, 1, 1),
                                spatio_temporal_scaling=(True, True, False, False),
                                decoder_spatio_temporal_scaling=(True, True, False, False),
                                decoder_inject_noise=(False, False, False, False, False), upsample_residual=(False,) * 4,
                                upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1, patch_size_t=1,
                                encoder_causal=True, decoder_causal=False)
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return LTXImageToVideoPipeline(tokenizer=tokenizer, text_encoder=_tiny_t5(tokenizer), vae=vae,
                                   transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler())


TINY_BUILDERS = {"tiny-wan": tiny_wan_pipeline, "wan2.2-ti2v": tiny_wan_pipeline, "wan2.1-i2v": tiny_wan21_pipeline,
                 "cogvideox-i2v": tiny_cogvideox_pipeline, "ltx-i2v": tiny_ltx_pipeline}


def save_tiny(kind: str, directory: str | Path, seed: int = 0) -> Path:
    """Save a tiny pipeline shaped like backbone `kind` (see TINY_BUILDERS) with save_pretrained."""
    directory = Path(directory)
    TINY_BUILDERS[kind](seed).save_pretrained(directory)
    return directory
