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


def tiny_wan_pipeline(seed: int = 0):
    """A Wan2.2-TI2V-style `WanImageToVideoPipeline` (first frame as latent condition, no image
    encoder) with a 2-layer transformer and a 3-channel VAE base."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                               num_heads=4, relative_attention_num_buckets=8, pad_token_id=0,
                                               eos_token_id=1, decoder_start_token_id=0))
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                        in_channels=16, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
                                        num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                        rope_max_seq_len=32)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=5.0)
    return WanImageToVideoPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler,
                                   transformer=transformer, expand_timesteps=True)


def save_tiny_wan(directory: str | Path, seed: int = 0) -> Path:
    directory = Path(directory)
    tiny_wan_pipeline(seed).save_pretrained(directory)
    return directory
