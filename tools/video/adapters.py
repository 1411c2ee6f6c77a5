"""LoRA adapters for a backbone's transformer: diffusers' own LoRA files plus a card saying what they are for.

An adapter folder holds `pytorch_lora_weights.safetensors` (diffusers' format, so
plain diffusers loads it too with `pipe.load_lora_weights`) and
`spiral_adapter.json`, an `AdapterCard`: the backbone and base weights it was
trained on, its rank and targets, how it was trained. `spiral run --lora DIR`
refuses an adapter made for another backbone before any work.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..errors import InputError

CARD = "spiral_adapter.json"
WEIGHTS = "pytorch_lora_weights.safetensors"
ADAPTER_NAME = "spiral"


class AdapterCard(BaseModel):
    backbone: str
    base_model: str
    rank: int
    alpha: float
    targets: list[str]
    method: str = Field(description="grpo or dpo")
    optimizer_steps: int = 0
    notes: str = ""


def add_lora(transformer: Any, rank: int, alpha: float, targets: list[str], seed: int = 0) -> list:
    """A trainable LoRA (peft) on `transformer`, frozen base; returns its parameters, in float32."""
    import torch
    from peft import LoraConfig

    transformer.requires_grad_(False)
    torch.manual_seed(seed)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=True, target_modules=targets),
                            adapter_name=ADAPTER_NAME)
    params = [p for p in transformer.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    return params


def save_adapter(pipe: Any, transformer: Any, directory: str | Path, card: AdapterCard) -> Path:
    """Write the adapter's weights (diffusers' LoRA format) and its card into `directory`."""
    from peft.utils import get_peft_model_state_dict

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = get_peft_model_state_dict(transformer, adapter_name=ADAPTER_NAME)
    type(pipe).save_lora_weights(directory, transformer_lora_layers=state, weight_name=WEIGHTS)
    (directory / CARD).write_text(card.model_dump_json(indent=1))
    return directory


def load_adapter_weights(transformer: Any, directory: str | Path) -> None:
    """Start a new trainable adapter from a saved one's weights (a training loop's next round)."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = {k.removeprefix("transformer."): v for k, v in load_file(Path(directory) / WEIGHTS).items()}
    result = set_peft_model_state_dict(transformer, state, adapter_name=ADAPTER_NAME)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise InputError(f"the adapter in {directory} does not fit this LoRA ({len(unexpected)} unexpected weights, "
                         f"e.g. {unexpected[0]}): train it again with the same rank and targets")


def read_card(directory: str | Path) -> AdapterCard:
    directory = Path(directory)
    if not (directory / CARD).is_file() or not (directory / WEIGHTS).is_file():
        raise InputError(f"{directory} is not a SPIRAL adapter folder (it needs {WEIGHTS} and {CARD}; "
                         "spiral train grpo and spiral train dpo write them)")
    try:
        card = AdapterCard(**json.loads((directory / CARD).read_text()))
    except (ValueError, TypeError) as exc:
        raise InputError(f"{directory / CARD} is unreadable: {str(exc).splitlines()[0]}") from None
    _check_weights_file(directory / WEIGHTS)
    return card


def _check_weights_file(path: Path) -> None:
    """A safetensors file whose header reads and whose tensors fit in it (a cut or overwritten file does not)."""
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 0 < size <= 2**26:
                raise ValueError("its header length is not a safetensors header's")
            header = json.loads(fh.read(size))
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + size + end > path.stat().st_size:
            raise ValueError("it is shorter than its header says")
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise InputError(f"{path} is not a readable safetensors file ({exc}); train the adapter again or point "
                         "--lora at another") from None


def check_adapter(directory: str | Path, backbone: str) -> AdapterCard:
    """The card, when the adapter was made for `backbone`; one clear error otherwise."""
    card = read_card(directory)
    if card.backbone != backbone:
        raise InputError(f"the adapter in {directory} was trained for {card.backbone}; this run uses {backbone}")
    return card


def adapter_identity(directory: str | Path) -> str:
    """`path@sha256-prefix` of an adapter's weights: what a trajectory records as the policy that sampled it."""
    directory = Path(directory).resolve()
    return f"{directory}@{hashlib.sha256((directory / WEIGHTS).read_bytes()).hexdigest()[:12]}"


def load_adapter(pipe: Any, directory: str | Path, scale: float = 1.0) -> str:
    """Load the adapter into the pipeline's transformer; returns its identity `path@sha256-prefix`."""
    directory = Path(directory).resolve()
    pipe.load_lora_weights(str(directory), weight_name=WEIGHTS, adapter_name=ADAPTER_NAME)
    pipe.set_adapters([ADAPTER_NAME], adapter_weights=[scale])
    return adapter_identity(directory)
