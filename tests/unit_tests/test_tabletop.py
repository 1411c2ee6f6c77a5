"""tabletop-tiny without its weights: the vocabulary, the training data, the size rule, the registry."""

import numpy as np
import pytest

from spiral.bench.segments import FLAG_SETS, instruction_for, train_segments
from spiral.bench.tasks import build_suite
from spiral.nodes.planner import PLACE_WORDS
from spiral.nodes.prompts.generator import EXPLICIT, PLAIN, write_instruction
from spiral.tools.errors import InputError
from spiral.tools.video import backbone_info
from spiral.tools.video.diffusers_specs import check_sizes
from spiral.tools.video.tabletop import NATIVE_FRAMES, NATIVE_SIDE, world_tokenizer


def test_every_word_the_planner_and_refiner_write_is_in_the_vocabulary():
    tokenizer = world_tokenizer()
    unk = tokenizer.unk_token_id
    tasks = build_suite("train", 40)
    names = {f"{size} {color} {shape}" for t in tasks for o in t.scene.objects
             for size, color, shape in [(o.size, o.color, o.shape)]}
    texts = [write_instruction(key, name, target, name, flags)
             for key in PLAIN for name in names for target in ("white bowl", *PLACE_WORDS.values())
             for flags in FLAG_SETS]
    assert len(texts) > 1000 and set(PLAIN) == set(EXPLICIT)
    for text in texts:
        assert unk not in tokenizer(text).input_ids, text


def test_training_segments_come_from_the_train_split_with_the_planners_wording():
    examples = list(train_segments(12, num_frames=5, side=64))
    assert len(examples) == 12 and all(e.task_id.startswith("train-") for e in examples)
    assert examples[0].frames.shape == (5, 64, 64, 3) and examples[0].frames.dtype == np.uint8
    task = build_suite("train", 1)[0]
    assert examples[0].prompt == instruction_for(task.scene, task.steps[0], ())  # the first draw: plain words
    assert not np.array_equal(examples[0].frames[0], examples[0].frames[-1])  # something moved


def test_the_model_is_refused_at_sizes_it_was_not_trained_on():
    check_sizes("tabletop-tiny", NATIVE_FRAMES, NATIVE_SIDE, NATIVE_SIDE)
    with pytest.raises(InputError, match=r"pass --frames 9 --height 128 --width 128 \(got 16 frames of 128x128\)"):
        check_sizes("tabletop-tiny", 16, 128, 128)


def test_it_is_registered_like_any_diffusers_backbone():
    info = backbone_info("tabletop-tiny")
    assert not info.needs_gpu and "model" in info.settings and "lora" in info.settings
    assert "exactly 9 frames of 128x128" in info.rules
