"""Named rewards and group-relative advantages (training/rewards.py)."""

import pytest
from pydantic import ValidationError

from spiral.training.config import GRPOConfig, config_for
from spiral.training.rewards import (
    RewardInputs,
    RewardWeights,
    group_advantages,
    reward,
)


def test_a_weighted_sum_of_named_terms():
    weights = RewardWeights(weights={"success": 1.0, "score:action_completion": 0.5, "evidence:max_jump": -0.1})
    inputs = RewardInputs(judged=True, passed=True, scores={"action_completion": 0.8}, evidence={"max_jump": 20.0})
    assert reward(inputs, weights) == pytest.approx(1.0 + 0.4 - 2.0)
    failed = inputs.model_copy(update={"passed": False})
    assert reward(failed, weights) == pytest.approx(0.4 - 2.0)


def test_an_unjudged_sample_has_no_reward_rather_than_a_pass():
    weights = RewardWeights(weights={"success": 1.0})
    assert reward(RewardInputs(judged=False, passed=None), weights) is None
    pixels_only = RewardWeights(weights={"brightness": 1.0})
    assert reward(RewardInputs(judged=False, last_frame_mean=0.25), pixels_only) == 0.25


def test_a_missing_or_non_numeric_term_leaves_the_sample_unscored():
    weights = RewardWeights(weights={"evidence:shift:bowl": 1.0})
    assert reward(RewardInputs(judged=True, passed=True, evidence={"shift:bowl": "missing"}), weights) is None
    assert reward(RewardInputs(judged=True, passed=True), RewardWeights(weights={"score:object_fidelity": 1})) is None


def test_a_missing_term_takes_the_value_given_for_it_so_a_vanished_subject_still_teaches():
    weights = RewardWeights(weights={"success": 1.0, "evidence:goal_distance": -0.01},
                            missing={"evidence:goal_distance": 100.0})
    vanished = RewardInputs(judged=True, passed=False, evidence={"shift:red_ball": "missing"})
    assert reward(vanished, weights) == pytest.approx(-1.0)
    near = RewardInputs(judged=True, passed=False, evidence={"goal_distance": 20.0})
    assert reward(near, weights) == pytest.approx(-0.2)  # a measured distance is used as it is
    assert reward(RewardInputs(judged=False), weights) is None  # nobody judged it: still no reward


@pytest.mark.parametrize("missing,message", [({"evidence:max_jump": 1.0}, "no weight for it"),
                                             ({"success": 0.0}, "never missing")])
def test_a_value_for_a_missing_term_needs_a_weighted_term_it_can_stand_for(missing, message):
    with pytest.raises(ValidationError, match=message):
        RewardWeights(weights={"success": 1.0}, missing=missing)


@pytest.mark.parametrize("weights,message", [({"beauty": 1.0}, "unknown reward 'beauty'"),
                                             ({"score:speed": 1.0}, "unknown reward 'score:speed'"),
                                             ({}, "no reward terms")])
def test_unknown_terms_are_refused(weights, message):
    with pytest.raises(ValidationError, match=message):
        RewardWeights(weights=weights)


def test_advantages_are_normalised_per_group_and_flat_or_single_groups_skipped():
    result = group_advantages([[1.0, 0.0, 1.0, 0.0], [0.5, 0.5, 0.5], [0.3], [2.0, 4.0]])
    assert result.kept == [0, 3] and result.skipped_equal == 1 and result.skipped_small == 1
    assert result.values[0] == pytest.approx([1.0, -1.0, 1.0, -1.0], abs=1e-3)
    assert result.values[1] == pytest.approx([-1.0, 1.0], abs=1e-3)
    assert sum(result.values[0]) == pytest.approx(0.0)


def test_recipes_set_defaults_and_refuse_unknown_names():
    tiny = config_for(GRPOConfig, "tiny-cpu", learning_rate=0.0)
    assert tiny.learning_rate == 0.0 and tiny.lora.rank == 4 and tiny.clip_range == 0.2
    assert "proj_out" in tiny.lora.targets and GRPOConfig().lora.targets == ["to_q", "to_k", "to_v", "to_out.0"]
    with pytest.raises(ValueError, match="unknown recipe 'huge'; known: tiny-cpu, wan-1gpu"):
        config_for(GRPOConfig, "huge")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        GRPOConfig(learning_rte=1e-3)


def test_grpo_refuses_rollouts_drawn_with_another_policy():
    """Trajectories record the adapter that drew them; training a fresh LoRA against an adapter's log-probs would
    be off-policy from the first step, so the run must start from that adapter (and from one only)."""
    import pytest

    from spiral.tools.errors import InputError
    from spiral.training.fit import check_policy
    from spiral.training.replay import ReplayStats

    check_policy(ReplayStats(backbone="tiny-wan", adapters=[""]), "ws", None)  # base rollouts, fresh adapter: fine
    with pytest.raises(InputError, match=r"drawn with adapter /runs/a/adapter@0123456789ab but this run starts from "
                                         r"a fresh adapter .* pass --init-adapter /runs/a/adapter"):
        check_policy(ReplayStats(backbone="tiny-wan", adapters=["/runs/a/adapter@0123456789ab"]), "ws", None)
    with pytest.raises(InputError, match="2 different adapters"):
        check_policy(ReplayStats(backbone="tiny-wan", adapters=["", "/runs/a/adapter@0123456789ab"]), "ws", None)


def test_the_verifiable_reward_reads_the_truth_terms_and_needs_no_critic():
    weights = RewardWeights(weights={"truth:success": 1.0, "truth:max_error": -0.01}, missing={"truth:max_error": 50})
    assert weights.needs_truth() and not RewardWeights().needs_truth()
    right = RewardInputs(judged=False, truth={"success": 1.0, "max_error": 2.0, "wrong": 0.0})
    assert reward(right, weights) == pytest.approx(1.0 - 0.02)
    # the executor could not carry the sub-action out from where the segment started: no terms at all
    assert reward(RewardInputs(judged=False), weights) is None
    assert reward(RewardInputs(judged=False, truth={"success": 0.0}), weights) == pytest.approx(-0.5)
    with pytest.raises(ValidationError, match="truth:<success|max_error|wrong>"):
        RewardWeights(weights={"truth:psnr": 1.0})


def test_ratio_centres_follow_each_denoising_step_and_survive_a_resume():
    import torch

    from spiral.training.flow_grpo import RatioCentres

    centres = RatioCentres(momentum=0.5)
    assert centres.centre(3, torch.tensor([-0.2, -0.4])) == pytest.approx(-0.3)  # the first value is the mean
    assert centres.centre(3, torch.tensor([-0.1])) == pytest.approx(-0.2)  # then a running mean
    assert centres.centre(7, torch.tensor([0.05])) == pytest.approx(0.05)  # each step its own
    resumed = RatioCentres(momentum=0.5)
    resumed.load_state_dict(centres.state_dict())
    assert resumed.centre(3, torch.tensor([0.0])) == centres.centre(3, torch.tensor([0.0])) == pytest.approx(-0.1)


def test_ratio_norm_is_grpos_and_pairs_are_dpos(tmp_path, capsys):
    from spiral.shell.cli import main

    assert main(["train", "dpo", "--workspace", str(tmp_path), "--out", str(tmp_path / "o"), "--ratio-norm"]) != 0
    assert "DPO has no ratio" in capsys.readouterr().err
    assert main(["train", "grpo", "--workspace", str(tmp_path), "--out", str(tmp_path / "o"), "--pairs",
                 "refinement"]) != 0
    assert "GRPO learns from whole groups" in capsys.readouterr().err
