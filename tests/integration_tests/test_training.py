"""training/: Flow-GRPO and Diffusion-DPO on tiny-wan, on the CPU, checked against controls.

The learning tests compare fresh samples of a trained LoRA with those of a
learning-rate-0 control that saw the same seeds and data (a paired t-test over
evaluation seeds neither run trained on), so they test learning, not a loss curve.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from spiral.shell.cli import main
from spiral.tools.video.base import SegmentRequest
from spiral.tools.video.diffusers_backbone import DiffusersBackbone
from spiral.tools.video.tabletop import shipped_weights
from spiral.tools.video.tiny import tiny_wan_pipeline
from spiral.training.config import DPOConfig, GRPOConfig, config_for
from spiral.training.dpo import DiffusionDPO, PreferencePair
from spiral.training.flow_grpo import FlowGRPO
from spiral.training.online import fresh_seed, online_grpo, sample_rewards
from spiral.training.rewards import brightness

pytestmark = pytest.mark.e2e
HERE = Path(__file__).resolve().parent
EVAL_SEEDS = range(2**30, 2**30 + 12)


def last_frame_brightness(frames: np.ndarray) -> float:
    return brightness(frames[-1])


def _requests() -> list[SegmentRequest]:
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[8:16, 8:16] = (210, 40, 40)
    return [SegmentRequest(image=image, prompt=p, num_frames=5, height=32, width=32, num_inference_steps=4,
                           guidance_scale=1.0) for p in ("put the red ball in the bowl", "move the blue cube left")]


def _fresh():
    pipe = tiny_wan_pipeline(vae_base_dim=16)  # a VAE whose pixels respond to latents (tiny.py)
    return pipe, DiffusersBackbone.from_pipeline("tiny-wan", pipe, device="cpu")


@pytest.mark.timeout(1200)  # minutes on a loaded 2-core machine
def test_grpo_raises_the_reward_of_fresh_samples_beyond_a_learning_rate_zero_control(tmp_path):
    rewards = {}
    for name, lr in (("control", 0.0), ("trained", 3e-2)):
        pipe, generator = _fresh()
        config = config_for(GRPOConfig, "tiny-cpu", learning_rate=lr, gradient_accumulation=8, save_every=10**6)
        trainer = FlowGRPO(pipe, "tiny-wan", "tiny", config, tmp_path / name)
        online_grpo(generator, trainer, _requests(), last_frame_brightness, group_size=4, iterations=30)
        assert trainer.steps == 30  # <= 50 optimizer steps
        rewards[name] = np.array(sample_rewards(generator, _requests(), last_frame_brightness, EVAL_SEEDS))
    gain = rewards["trained"] - rewards["control"]
    test = stats.ttest_rel(rewards["trained"], rewards["control"])
    print(f"GRPO: fresh-sample brightness {rewards['control'].mean():.5f} -> {rewards['trained'].mean():.5f}, "
          f"paired t = {test.statistic:.1f}, p = {test.pvalue:.2g}")
    assert gain.mean() > 0 and test.pvalue < 1e-3
    assert (tmp_path / "trained" / "metrics.csv").read_text().count("\n") == 31  # header + one row per round
    assert (tmp_path / "trained" / "curves.png").stat().st_size > 1000


def test_dpo_widens_the_implicit_margin_and_fresh_samples_move_toward_the_preferred(tmp_path):
    rewards, margins = {}, {}
    for name, lr in (("control", 0.0), ("trained", 3e-2)):
        pipe, generator = _fresh()
        pairs = []
        for g in range(8):  # best vs worst of groups of 4 from the base model
            request = _requests()[g % 2]
            segments = [generator.generate(request.model_copy(update={"seed": fresh_seed(0, g, k), "trajectory": True}))
                        for k in range(4)]
            values = [last_frame_brightness(s.frames) for s in segments]
            best, worst = int(np.argmax(values)), int(np.argmin(values))
            pairs.append(PreferencePair.from_trajectories(segments[best].trajectory, segments[worst].trajectory,
                                                          values[best] - values[worst]))
        config = config_for(DPOConfig, "tiny-cpu", learning_rate=lr, gradient_accumulation=2, save_every=10**6)
        trainer = DiffusionDPO(pipe, "tiny-wan", "tiny", config, tmp_path / name)
        before = trainer.margin(pairs)
        for round_index in range(10):
            trainer.train(pairs, round_index)
        margins[name] = (before, trainer.margin(pairs))
        rewards[name] = np.array(sample_rewards(generator, _requests(), last_frame_brightness, EVAL_SEEDS))
    assert margins["control"] == (0.0, 0.0)  # the adapter starts as the base model, and lr 0 keeps it there
    assert margins["trained"][0] == 0.0 and margins["trained"][1] > 10.0
    test = stats.ttest_rel(rewards["trained"], rewards["control"])
    print(f"DPO: margin 0 -> {margins['trained'][1]:.1f}; fresh-sample brightness {rewards['control'].mean():.5f} -> "
          f"{rewards['trained'].mean():.5f}, p = {test.pvalue:.2g}")
    assert rewards["trained"].mean() > rewards["control"].mean() and test.pvalue < 1e-2


def test_two_processes_train_what_one_does_with_twice_the_accumulation(tmp_path):
    """torchrun --nproc_per_node 2 (what multi-process runs on CPUs go through: `accelerate launch --cpu`
    starts one process unless given an MPI hostfile) against one process accumulating twice as much."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    script = HERE.parent / "training" / "ddp_grpo.py"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(script), str(tmp_path / "one.safetensors"), "4"], check=True, env=env,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script),
                    str(tmp_path / "two.safetensors"), "2"], check=True, env=env, capture_output=True)
    one, two = load_file(tmp_path / "one.safetensors"), load_file(tmp_path / "two.safetensors")
    for name in ("one", "two"):
        with safe_open(tmp_path / f"{name}.safetensors", "pt") as fh:
            assert fh.metadata() == {"steps": "2"}
    assert set(one) == set(two) and len(one) > 10
    moved = max(float(v.abs().max()) for k, v in one.items() if "lora_B" in k)
    assert moved > 1e-2  # the adapter trained (B starts at zero)
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-4


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Rollouts of two ActWM-Sim train tasks through the graph on tiny-wan, groups of 3, trajectories on."""
    ws = tmp_path_factory.mktemp("collect") / "ws"
    assert main(["train", "collect", "--backbone", "tiny-wan", "--size", "2", "--group", "3", "--frames", "5",
                 "--steps", "2", "--max-calls", "9", "--workspace", str(ws)]) == 0
    return ws


def _frames_of_a_run(tmp_path: Path, scene: Path, name: str, *extra: str) -> np.ndarray:
    out = tmp_path / f"out-{name}"
    assert main(["run", "--image", str(scene), "--action", "put the red ball in the bowl", "--backbone", "tiny-wan",
                 "--frames", "5", "--steps", "2", "--max-calls", "1", "--workspace", str(tmp_path / "runs"),
                 "--out", str(out), "--no-write-video", "--thread-id", name, *extra]) == 3  # noise: partial
    return np.load(out / "frames.npy")


def test_collect_through_the_graph_train_grpo_and_sample_with_the_adapter(collected, tmp_path, scene_png):
    from spiral.memory.traces import TraceDB
    from spiral.tools.video.adapters import read_card

    rows = TraceDB.open(collected / "traces.sqlite").attempts()
    assert rows and all(r.trajectory and r.group_size == 3 for r in rows)
    assert {r.sample for r in rows} == {0, 1, 2} and sum(r.chosen for r in rows) * 3 == len(rows)
    out = tmp_path / "grpo"
    assert main(["train", "grpo", "--workspace", str(collected), "--out", str(out), "--recipe", "tiny-cpu",
                 "--epochs", "2", "--reward", "brightness=1"]) == 0
    card = read_card(out / "adapter")
    assert (card.backbone, card.method, card.rank) == ("tiny-wan", "grpo", 4) and card.optimizer_steps > 0
    assert (out / "metrics.csv").exists() and (out / "curves.png").exists()
    base = _frames_of_a_run(tmp_path, scene_png, "base")
    adapted = _frames_of_a_run(tmp_path, scene_png, "lora", "--lora", str(out / "adapter"))
    assert base.shape == adapted.shape and not np.array_equal(base, adapted)
    again = _frames_of_a_run(tmp_path, scene_png, "base-again")
    assert np.array_equal(base, again)  # the difference is the adapter's, not the sampler's


@pytest.mark.parametrize("extra", [[], ["--ratio-norm"]], ids=["plain", "ratio-norm"])
def test_training_killed_with_sigkill_resumes_from_its_last_state(extra, collected, tmp_path, kill_once_saved):
    """With --ratio-norm the per-step centres are part of the saved state: the resumed run centres as the
    uninterrupted one did, and ends with the same weights."""
    from safetensors.torch import load_file

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "spiral.shell.cli", "train", "grpo", "--workspace", str(collected), "--out",
                str(out), "--recipe", "tiny-cpu", "--epochs", "3", "--reward", "brightness=1", *extra]

    subprocess.run(command(tmp_path / "whole"), check=True, capture_output=True)
    killed = tmp_path / "killed"
    kill_once_saved(command(killed), killed / "state" / "step-000020")
    assert not (killed / "adapter").exists()
    subprocess.run(command(killed), check=True, capture_output=True)
    whole = load_file(tmp_path / "whole" / "adapter" / "pytorch_lora_weights.safetensors")
    resumed = load_file(killed / "adapter" / "pytorch_lora_weights.safetensors")
    assert set(whole) == set(resumed)
    assert max(float((whole[k] - resumed[k]).abs().max()) for k in whole) < 1e-6


@pytest.mark.parametrize("case,args,message", [
    ("empty", ["train", "grpo", "--workspace", "{empty}", "--out", "{out}"], "no trace database in"),
    ("no trajectories", ["train", "grpo", "--workspace", "{sim}", "--out", "{out}"],
     "holds no trajectories: collect with trajectories on"),
    ("groups of one", ["train", "dpo", "--workspace", "{single}", "--out", "{out}"],
     "has one sample, and GRPO learns from differences within a group: collect with --group 2 or more"),
    ("unknown reward", ["train", "grpo", "--workspace", "{collected}", "--out", "{out}", "--reward", "beauty=1"],
     "--reward: unknown reward 'beauty'"),
    ("missing value for an unweighted term", ["train", "grpo", "--workspace", "{collected}", "--out", "{out}",
                                              "--reward-missing", "evidence:goal_distance=100"],
     "a value for a missing 'evidence:goal_distance' but no weight for it"),
    ("missing value not a number", ["train", "grpo", "--workspace", "{collected}", "--out", "{out}",
                                    "--reward-missing", "evidence:goal_distance=far"],
     "--reward-missing evidence:goal_distance=far: the value must be a number"),
    ("unknown recipe", ["train", "grpo", "--workspace", "{collected}", "--out", "{out}", "--recipe", "huge"],
     "unknown recipe 'huge'; known: tiny-cpu, wan-1gpu"),
    ("adapter for another backbone", ["run", "--image", "{scene}", "--action", "put the red ball in the bowl",
                                      "--backbone", "wan2.2-ti2v", "--frames", "17", "--lora", "{adapter}",
                                      "--workspace", "{out}"],
     "was trained for tiny-wan; this run uses wan2.2-ti2v"),
    ("sim with an adapter", ["run", "--image", "{scene}", "--action", "put the red ball in the bowl",
                             "--lora", "{adapter}", "--workspace", "{out}"],
     "--lora: backbone sim takes no adapters"),
    ("collect on sim", ["train", "collect", "--size", "1", "--workspace", "{out}"], "the sim backbone has no latents"),
])
def test_bad_training_input_is_one_line_and_writes_nothing(case, args, message, collected, tmp_path, scene_png, capsys):
    paths = {"empty": tmp_path / "empty", "out": tmp_path / "out", "scene": scene_png, "collected": collected,
             "sim": _sim_workspace(tmp_path), "single": _single_groups(tmp_path), "adapter": _adapter(tmp_path)}
    paths["empty"].mkdir()
    capsys.readouterr()
    code = main([a.format(**{k: str(v) for k, v in paths.items()}) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("spiral: error: ") and message in err[0], err
    assert not (tmp_path / "out").exists()


def _sim_workspace(tmp_path: Path) -> Path:
    """A workspace whose attempts have no trajectories (the sim records none)."""
    ws = tmp_path / "sim-ws"
    if not ws.exists():
        assert main(["demo", "--workspace", str(ws), "--out", str(tmp_path / "demo"), "--no-write-video"]) == 0
    return ws


def _single_groups(tmp_path: Path) -> Path:
    ws = tmp_path / "single-ws"
    if not ws.exists():
        assert main(["train", "collect", "--backbone", "tiny-wan", "--size", "1", "--group", "1", "--frames", "5",
                     "--steps", "2", "--max-calls", "2", "--workspace", str(ws)]) == 0
    return ws


def _adapter(tmp_path: Path) -> Path:
    """A real tiny-wan adapter (untrained: the card and weights are what is checked)."""
    from spiral.tools.video.adapters import AdapterCard, add_lora, save_adapter

    directory = tmp_path / "adapter"
    if not directory.exists():
        pipe = tiny_wan_pipeline()
        add_lora(pipe.transformer, 4, 4.0, ["to_q", "to_k", "to_v", "to_out.0"])
        save_adapter(pipe, pipe.transformer, directory, AdapterCard(backbone="tiny-wan", base_model="tiny", rank=4,
                                                                    alpha=4.0, targets=["to_q"], method="grpo"))
    return directory



def test_loop_collects_with_the_adapter_it_trains_and_evaluates_held_out(tmp_path, capsys):

    from safetensors.torch import load_file

    from spiral.memory.artifacts import ArtifactStore
    from spiral.memory.traces import TraceDB

    root = tmp_path / "loop"
    assert main(["train", "loop", "--backbone", "tiny-wan", "--rounds", "2", "--size", "1", "--eval-size", "1",
                 "--group", "3", "--frames", "5", "--steps", "2", "--max-calls", "3", "--workspace", str(root),
                 "--recipe", "tiny-cpu", "--epochs", "1", "--reward", "brightness=1"]) == 0
    from spiral.training.loop_log import read_loop

    rows = read_loop(root / "loop.csv")
    assert [(r.policy, r.optimizer_steps > 0) for r in rows] == [(0, False), (1, True), (2, True)]
    assert rows[2].optimizer_steps > rows[1].optimizer_steps  # cumulative over rounds
    assert all(r.heldout_reward > 0 for r in rows)
    assert [r.train_reward is not None for r in rows] == [True, True, False]  # nothing collects with the last
    assert (root / "loop.png").stat().st_size > 0
    base_eval = TraceDB.open(root / "base-eval" / "traces.sqlite").attempts()
    assert base_eval and {a.group_size for a in base_eval} == {1}
    second = TraceDB.open(root / "round-1" / "rollouts" / "traces.sqlite").attempts()
    _, meta = ArtifactStore(root / "round-1" / "rollouts" / "artifacts").get_tensors(second[0].trajectory)
    assert meta["adapter"].startswith(str((root / "round-0" / "grpo" / "adapter").resolve()) + "@")
    first_eval = TraceDB.open(root / "round-0" / "eval" / "traces.sqlite").attempts()
    assert first_eval and {a.group_size for a in first_eval} == {1} and not any(a.trajectory for a in first_eval)
    a = load_file(root / "round-0" / "grpo" / "adapter" / "pytorch_lora_weights.safetensors")
    b = load_file(root / "round-1" / "grpo" / "adapter" / "pytorch_lora_weights.safetensors")
    assert any(not bool((a[k] == b[k]).all()) for k in a)  # round 1 went on training round 0's adapter


def test_the_loop_warns_when_training_reward_rises_while_held_out_falls():
    from spiral.training.loop_log import LoopRow, overfitting_warning

    def row(train, heldout):
        return LoopRow(policy=1, optimizer_steps=1, train_reward=train, heldout_reward=heldout)

    before = row(0.5, 0.6)
    assert "held-out reward fell (0.6000 -> 0.5000)" in overfitting_warning(before, row(0.7, 0.5))
    assert overfitting_warning(before, row(0.7, 0.7)) == ""
    assert overfitting_warning(before, row(None, 0.5)) == ""


def test_the_loop_warns_when_the_critic_passes_more_and_the_judge_finds_no_more_right():
    from spiral.training.loop_log import LoopRow, hacking_warning

    def row(critic, judge):
        return LoopRow(policy=1, optimizer_steps=1, heldout_critic_pass=critic, heldout_judge_right=judge)

    before = row(0.10, 0.08)
    assert hacking_warning(before, row(0.20, 0.08)) == ("reward hacking: the critic's pass rate on held-out segments "
                                                        "rose (0.100 -> 0.200) while the judge's success did not "
                                                        "(0.080 -> 0.080)")
    assert hacking_warning(before, row(0.20, 0.12)) == ""  # both rose: learning, not hacking
    assert hacking_warning(before, row(0.05, 0.02)) == ""  # both fell: worse, but the critic was not fooled
    assert hacking_warning(before, LoopRow(policy=2, optimizer_steps=2)) == ""


@pytest.mark.timeout(900)
@pytest.mark.skipif(shipped_weights() is None, reason="no shipped weights in this checkout")
def test_the_loop_on_tabletop_tiny_records_the_critic_and_the_judge_on_held_out_segments(tmp_path):
    from spiral.training.loop_log import read_loop

    root = tmp_path / "loop"
    assert main(["train", "loop", "--backbone", "tabletop-tiny", "--frames", "9", "--height", "128", "--width", "128",
                 "--rounds", "1", "--size", "1", "--eval-size", "1", "--group", "2", "--max-calls", "1",
                 "--segment-check", "2", "--workspace", str(root), "--recipe", "tiny-cpu", "--epochs", "1"]) == 0
    rows = read_loop(root / "loop.csv")
    assert [r.policy for r in rows] == [0, 1]
    for r in rows:  # shares of the same two held-out segments
        assert r.heldout_critic_pass is not None and r.heldout_judge_right is not None
        assert round(2 * r.heldout_critic_pass, 6).is_integer() and round(2 * r.heldout_judge_right, 6).is_integer()
    assert (root / "loop.png").stat().st_size > 0
    assert main(["train", "loop", "--backbone", "tiny-wan", "--segment-check", "2", "--workspace",
                 str(tmp_path / "other")]) != 0


@pytest.mark.timeout(900)
@pytest.mark.skipif(shipped_weights() is None, reason="no shipped weights in this checkout")
def test_the_arms_of_self_evolution_train_on_one_tabletop_tiny_rollout(tmp_path):
    """One train task's rollouts (tabletop-tiny, groups of 4: the first try fails, the retry is accepted) feed the
    verifiable reward (the judge against the executor's truth), and DPO on the loop's refinement pair."""
    from spiral.training.replay import grpo_samples, refinement_pairs
    from spiral.training.rewards import RewardWeights
    from spiral.training.truth_reward import TRUTH_FILE, truth_verdicts

    ws = tmp_path / "ws"
    assert main(["train", "collect", "--backbone", "tabletop-tiny", "--frames", "9", "--height", "128", "--width",
                 "128", "--size", "1", "--group", "4", "--seed", "0", "--workspace", str(ws)]) == 0
    pairs, stats = refinement_pairs(ws)
    assert (len(pairs), stats.groups) == (1, 1)  # try 0's pick, rejected, against try 1's accepted sample
    truth = truth_verdicts(ws)
    assert len(truth) == 8 and len((ws / TRUTH_FILE).read_text().splitlines()) == 8
    # the truth finds right only the sample the critic passed and the loop went on with
    assert sorted((k.try_index, k.sample) for k, v in truth.items() if v.success) == [(1, 3)]
    samples, replayed = grpo_samples(ws, RewardWeights(weights={"truth:success": 1.0, "truth:wrong": -0.25}))
    # both groups teach: wrong counts 3, 2, 1, 1 (mean 1.75) and 2, 2, 1, right (mean 1.25)
    assert (replayed.groups, replayed.skipped_equal, len(samples)) == (2, 0, 8)
    assert samples[0].advantage < 0 < samples[2].advantage and max(s.advantage for s in samples) == samples[7].advantage
    assert main(["train", "dpo", "--workspace", str(ws), "--out", str(tmp_path / "dpo"), "--recipe", "tiny-cpu",
                 "--epochs", "1", "--pairs", "refinement"]) == 0
    assert main(["train", "grpo", "--workspace", str(ws), "--out", str(tmp_path / "no"), "--pairs",
                 "refinement"]) != 0
