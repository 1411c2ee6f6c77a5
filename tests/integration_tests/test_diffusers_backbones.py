"""Diffusers backbones on tiny random-weight pipelines: the code path a user's weights take, on a CPU."""

import subprocess
import sys

import numpy as np
import pytest

from spiral.tools.errors import InputError
from spiral.tools.video import (
    SegmentRequest,
    backbone_info,
    backbone_names,
    clear_cache,
    load_generator,
)
from spiral.tools.video.diffusers_backbone import DiffusersBackbone
from spiral.tools.video.diffusers_specs import validate
from spiral.tools.video.tiny import save_tiny_wan

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_wan(tmp_path_factory.mktemp("weights") / "tiny-wan")


def _request(seed=0, frames=5, prompt="put the red ball in the bowl"):
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[8:16, 8:16] = (210, 40, 40)
    return SegmentRequest(image=image, prompt=prompt, num_frames=frames, height=32, width=32, seed=seed)


def test_registry_names_every_backbone():
    names = backbone_names()
    for name in ("wan2.1-i2v", "wan2.2-ti2v", "cogvideox-i2v", "ltx-i2v", "tiny-wan", "sim"):
        assert name in names
    assert "WanImageToVideoPipeline" in backbone_info("wan2.2-ti2v").description
    assert backbone_info("wan2.1-i2v").needs_gpu and not backbone_info("tiny-wan").needs_gpu


def test_loads_once_seeds_reproducibly_and_caches_prompt_embeddings(tiny_dir, monkeypatch):
    clear_cache()
    gen = load_generator("tiny-wan", model=str(tiny_dir), dtype="auto", device="cpu", cpu_offload=False,
                         vae_tiling=False)
    assert load_generator("tiny-wan", model=str(tiny_dir), dtype="auto", device="cpu", cpu_offload=False,
                          vae_tiling=False) is gen
    calls = []
    real = gen.pipe.encode_prompt
    # the pipeline itself calls encode_prompt with the cached embeddings (prompt=None): count real encodes
    monkeypatch.setattr(gen.pipe, "encode_prompt", lambda **kw: calls.append(kw.get("prompt")) or real(**kw))
    a = gen.generate(_request(seed=3)).frames
    b = gen.generate(_request(seed=3)).frames
    c = gen.generate(_request(seed=4)).frames
    assert a.shape == (5, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert [c for c in calls if c] == ["put the red ball in the bowl"]  # encoded once for three calls


def test_memory_flags_are_set_or_refused_with_a_reason(tiny_dir, caplog):
    gen = DiffusersBackbone("tiny-wan", model=str(tiny_dir), device="cpu", cpu_offload=True, vae_tiling=True)
    assert gen.pipe.vae.use_tiling is True  # tiled VAE decode is on
    assert gen.cpu_offload is False and gen.refused == {"cpu_offload": "the model already runs on the CPU"}
    assert "cpu_offload has no effect: the model already runs on the CPU" in caplog.text
    assert gen.generate(_request()).frames.shape == (5, 32, 32, 3)
    plain = DiffusersBackbone("tiny-wan", model=str(tiny_dir), device="cpu")
    assert plain.pipe.vae.use_tiling is False and plain.refused == {}


def test_prompt_embedding_cache_is_bounded(tiny_dir, monkeypatch):
    from spiral.tools.video import diffusers_backbone

    monkeypatch.setattr(diffusers_backbone, "EMBEDDING_CACHE_SIZE", 2)
    gen = DiffusersBackbone("tiny-wan", model=str(tiny_dir), device="cpu")
    for prompt in ("put the red ball in the bowl", "put the blue cube in the box", "stack the cube on the block"):
        gen.generate(_request(prompt=prompt).model_copy(update={"num_inference_steps": 1}))
    assert [p for p, _ in gen._embeds] == ["put the blue cube in the box", "stack the cube on the block"]


def test_one_call_at_a_time_on_a_shared_pipeline(tiny_dir, monkeypatch):
    import threading
    import time

    gen = DiffusersBackbone("tiny-wan", model=str(tiny_dir), device="cpu")
    inside, overlaps = [], []
    real = gen._generate

    def watched(request, progress, seeds):
        if inside:
            overlaps.append(True)
        inside.append(1)
        time.sleep(0.05)
        try:
            return real(request, progress, seeds)
        finally:
            inside.pop()

    monkeypatch.setattr(gen, "_generate", watched)
    done = []
    threads = [threading.Thread(target=lambda i=i: done.append(gen.generate(_request(seed=i)).seed)) for i in range(2)]
    threads.append(threading.Thread(target=lambda: done.extend(s.seed for s in gen.generate_group(_request(), [7, 8]))))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [] and sorted(done) == [0, 1, 7, 8]  # every call finished, none overlapped another


@pytest.mark.parametrize("kwargs,message", [
    (dict(num_frames=16, height=32, width=32), r"4k\+1 \(e\.g\. 17\)"),
    (dict(num_frames=17, height=30, width=32), "divisible by 16"),
    (dict(num_frames=17, height=32, width=32, device="cuda"), "CUDA was requested"),
    (dict(num_frames=17, height=32, width=32, dtype="float8"), "unknown dtype"),
    (dict(num_frames=17, height=32, width=32, model="/no/such/weights"), "not found"),
])
def test_bad_options_fail_before_any_work(kwargs, message):
    import torch

    if kwargs.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InputError, match=message):
        validate("wan2.2-ti2v" if "model" in kwargs else "tiny-wan", **kwargs)
    with pytest.raises(InputError, match=message):  # the same checks through the registry, as the CLI runs them
        backbone_info("wan2.2-ti2v" if "model" in kwargs else "tiny-wan").check(**kwargs)


def test_folder_without_a_pipeline_is_refused(tmp_path):
    with pytest.raises(InputError, match="model_index.json"):
        DiffusersBackbone("tiny-wan", model=str(tmp_path), device="cpu")


def test_full_graph_runs_on_tiny_wan(tmp_path, scene_png):
    res = subprocess.run([sys.executable, "-m", "spiral.shell.cli", "run", "--image", str(scene_png), "--action",
                          "put the red ball in the bowl", "--backbone", "tiny-wan", "--frames", "5", "--height", "64",
                          "--width", "64", "--max-calls", "2", "--trajectory", "--workspace", str(tmp_path / "ws"),
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 3, res.stderr  # random weights render noise: accepted best-effort, partial
    assert (tmp_path / "out" / "summary.json").exists() and "generator calls: 2" in res.stdout
    assert "not done: 1 of 1 sub-actions were accepted without passing the critic" in " ".join(res.stdout.split())
    from spiral.memory.traces import TraceDB

    attempts = TraceDB(tmp_path / "ws" / "traces.sqlite").attempts()
    assert len(attempts) == 2 and all(a.trajectory.endswith(".safetensors") for a in attempts)
    bad = subprocess.run([sys.executable, "-m", "spiral.shell.cli", "run", "--image", str(scene_png), "--action",
                          "put the red ball in the bowl", "--backbone", "tiny-wan", "--frames", "16",
                          "--workspace", str(tmp_path / "ws2")], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "4k+1" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "ws2" / "checkpoints.sqlite").exists()  # nothing left behind


def _replay(pipe, tensors, conditioning, noise_level, steps):
    """Re-score every stored transition by recomputing the guided model output (never read back)."""
    import copy

    import torch

    from spiral.tools.video.policy import guided_output
    from spiral.tools.video.trajectory import scored_from, sde_step_with_logprob

    first = scored_from(conditioning.expand_timesteps)
    scheduler = copy.deepcopy(pipe.scheduler)
    scheduler.set_timesteps(steps)
    out = []
    with torch.no_grad():
        for i in range(steps):
            latents = tensors["latents"][i].float()
            output = guided_output(pipe.transformer, latents, tensors["timesteps"][i], conditioning)
            out.append(sde_step_with_logprob(scheduler, output, tensors["timesteps"][i], latents, noise_level,
                                             first_frame=first,
                                             prev_sample=tensors["latents"][i + 1].float()))
    return out


@pytest.mark.parametrize("shape,guidance,storage", [("wan2.2", 1.0, "float32"), ("wan2.2", 4.0, "float32"),
                                                     ("wan2.1", 4.0, "float32"), ("wan2.2", 4.0, "bfloat16")])
def test_trajectory_replays_with_ratio_one_by_recomputing_the_policy(shape, guidance, storage, tmp_path):
    """A stored trajectory holds S+1 latents, log-probs and the conditioning; recomputing the model's
    guided output from them with unchanged weights gives ratio exp(new - old) = 1 +- 1e-5 at every step,
    and the log-prob equals torch's own Normal density over the step's closed-form mean and std."""
    import math

    import torch

    from spiral.memory.artifacts import ArtifactStore
    from spiral.nodes.generate import save_trajectory
    from spiral.tools.video.policy import WanConditioning
    from spiral.tools.video.tiny import tiny_wan21_pipeline, tiny_wan_pipeline

    pipe = tiny_wan_pipeline() if shape == "wan2.2" else tiny_wan21_pipeline()
    gen = DiffusersBackbone.from_pipeline("tiny-wan" if shape == "wan2.2" else "wan2.1-i2v", pipe, device="cpu")
    request = _request(seed=2).model_copy(update={"trajectory": True, "num_inference_steps": 3,
                                                  "guidance_scale": guidance, "trajectory_dtype": storage})
    seg = gen.generate(request)
    store = ArtifactStore(tmp_path)
    tensors, meta = store.get_tensors(save_trajectory(store, seg.trajectory))
    assert tensors["latents"].shape[0] == 4 and tensors["log_probs"].shape == (3, 1)
    assert tensors["latents"].dtype == getattr(torch, storage) and "model_outputs" not in tensors
    assert meta["backbone"] == gen.name and meta["guidance"] == repr(guidance) and meta["steps"] == "3"
    cond_tensors, cond_meta = store.get_tensors(meta["conditioning"])
    conditioning = WanConditioning.from_tensors(cond_tensors, cond_meta)
    assert (conditioning.negative_embeds is not None) == (guidance > 1.0)
    assert (conditioning.image_embeds is not None) == (shape == "wan2.1")
    steps = _replay(pipe, tensors, conditioning, float(meta["noise_level"]), 3)
    for i, step in enumerate(steps):
        ratio = torch.exp(step.log_prob - tensors["log_probs"][i])
        assert torch.allclose(ratio, torch.ones_like(ratio), atol=1e-5), (i, ratio)
        nxt = tensors["latents"][i + 1].double()
        scale = float(step.std_dev_t.flatten()[0]) * math.sqrt(float(pipe.scheduler.sigmas[i])
                                                                - float(pipe.scheduler.sigmas[i + 1]))
        density = torch.distributions.Normal(step.prev_sample_mean.double(), scale).log_prob(nxt)
        counted = density[:, :, 1:] if shape == "wan2.2" else density  # TI2V: frame 0 is the image, not scored
        assert math.isclose(float(counted.mean()), float(tensors["log_probs"][i]), rel_tol=1e-4, abs_tol=1e-4)
    assert np.array_equal(gen.generate(request).frames, seg.frames)  # SDE sampling is seeded too
    assert gen.generate(request.model_copy(update={"trajectory": False})).trajectory is None


def test_changed_weights_change_the_ratio(tmp_path):
    """The ratio test above can fail: nudging the transformer's weights moves the recomputed log-probs."""
    import torch

    from spiral.tools.video.tiny import tiny_wan_pipeline

    pipe = tiny_wan_pipeline()
    gen = DiffusersBackbone.from_pipeline("tiny-wan", pipe, device="cpu")
    seg = gen.generate(_request(seed=2).model_copy(update={"trajectory": True, "num_inference_steps": 3,
                                                           "guidance_scale": 4.0}))
    tensors = seg.trajectory.tensors()
    with torch.no_grad():
        for p in pipe.transformer.proj_out.parameters():
            p.add_(0.05 * torch.randn_like(p))
    steps = _replay(pipe, tensors, seg.trajectory.conditioning, seg.trajectory.noise_level, 3)
    drift = max(float((s.log_prob - tensors["log_probs"][i]).abs().max()) for i, s in enumerate(steps))
    assert drift > 1e-3


@pytest.mark.parametrize("name,side,frames,bad_frames,rule", [
    ("wan2.1-i2v", 32, 5, 6, r"4k\+1"),
    ("wan2.2-ti2v", 32, 5, 6, r"4k\+1"),
    ("cogvideox-i2v", 64, 9, 10, r"4k\+1"),
    ("ltx-i2v", 64, 9, 13, r"8k\+1"),
])
def test_each_backbone_through_the_user_path(name, side, frames, bad_frames, rule, tmp_path):
    """A tiny pipeline shaped like the backbone, saved with save_pretrained, loaded with --model DIR."""
    from spiral.tools.video.tiny import save_tiny

    weights = save_tiny(name, tmp_path / name)
    clear_cache()
    gen = load_generator(name, model=str(weights), dtype="auto", device="cpu", cpu_offload=False, vae_tiling=True)
    image = np.zeros((side, side, 3), dtype=np.uint8)
    request = SegmentRequest(image=image, prompt="put the red ball in the bowl", num_frames=frames, height=side,
                             width=side, num_inference_steps=2, guidance_scale=1.0, seed=5)
    a, b = gen.generate(request).frames, gen.generate(request).frames
    assert a.shape == (frames, side, side, 3) and np.array_equal(a, b)
    with pytest.raises(InputError, match=rule):
        gen.generate(request.model_copy(update={"num_frames": bad_frames}))
    if name in ("cogvideox-i2v", "ltx-i2v"):
        with pytest.raises(InputError, match=f"{name} cannot record trajectories for training: SPIRAL recomputes "
                                             "the policy of wan2.1-i2v, wan2.2-ti2v, tiny-wan, tabletop-tiny only"):
            gen.generate(request.model_copy(update={"trajectory": True}))
    else:
        traj = gen.generate(request.model_copy(update={"trajectory": True})).trajectory
        assert len(traj.log_probs) == 2 and len(traj.latents) == 3 and traj.latents[0].shape == traj.latents[2].shape


def test_a_graph_run_loads_the_pipeline_once(tmp_path, scene_png, monkeypatch):
    from langgraph.checkpoint.memory import InMemorySaver

    from spiral.graph.workflow import build_graph
    from spiral.tools.video import diffusers_backbone
    from spiral.vocabulary.config import RunContext

    clear_cache()
    loads = []
    real_init = diffusers_backbone.DiffusersBackbone.__init__
    monkeypatch.setattr(diffusers_backbone.DiffusersBackbone, "__init__",
                        lambda self, *a, **kw: loads.append(a) or real_init(self, *a, **kw))
    graph = build_graph(checkpointer=InMemorySaver())
    for episode in range(2):
        graph.invoke({"action": "put the red ball in the bowl", "image": str(scene_png)},
                     {"configurable": {"thread_id": f"e{episode}"}},
                     context=RunContext(backbone="tiny-wan", num_frames=5, height=64, width=64, device="cpu",
                                        max_generator_calls=2, write_video=False, workspace=str(tmp_path / "ws")))
    assert len(loads) == 1


def test_out_of_memory_is_one_clear_error(tiny_dir, monkeypatch):
    import torch

    from spiral.tools.errors import SpiralError

    gen = DiffusersBackbone("tiny-wan", model=str(tiny_dir), device="cpu")

    def boom(**kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(gen, "pipe", type("P", (), {"__call__": staticmethod(boom), "encode_prompt": gen.pipe.encode_prompt,
                                                    "scheduler": gen.pipe.scheduler, "_execution_device": "cpu"})())
    with pytest.raises(SpiralError, match="out of GPU memory.*--cpu-offload"):
        gen.generate(_request())


@pytest.mark.parametrize("trajectory", [False, True])
def test_progress_reports_every_denoising_step(tiny_dir, trajectory):
    gen = DiffusersBackbone("tiny-wan", model=str(tiny_dir), device="cpu")
    steps = []
    request = _request(seed=1).model_copy(update={"num_inference_steps": 4, "trajectory": trajectory})
    gen.generate(request, progress=lambda i, n: steps.append((i, n)))
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_pipeline_built_in_code_is_wrapped_and_a_wrong_class_refused():
    from spiral.tools.video.tiny import tiny_cogvideox_pipeline, tiny_wan_pipeline

    gen = DiffusersBackbone.from_pipeline("tiny-wan", tiny_wan_pipeline(), device="cpu")
    a, b = gen.generate(_request(seed=2)).frames, gen.generate(_request(seed=2)).frames
    assert a.shape == (5, 32, 32, 3) and np.array_equal(a, b)
    with pytest.raises(InputError, match="tiny-wan needs a WanImageToVideoPipeline; got CogVideoXImageToVideoPipeline"):
        DiffusersBackbone.from_pipeline("tiny-wan", tiny_cogvideox_pipeline(), device="cpu")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_frames_scaled_on_the_device_equal_diffusers_numpy_output(dtype):
    import torch

    from spiral.tools.video.diffusers_backbone import _uint8_frames

    video = torch.rand((7, 3, 16, 24), generator=torch.Generator().manual_seed(0)).to(getattr(torch, dtype))
    video[0, 0, 0, :4] = torch.tensor([0.0, 1.0, 0.5 / 255, 254.5 / 255])  # the edges and the rounding ties
    numpy_path = video.cpu().permute(0, 2, 3, 1).float().numpy()  # what output_type="np" gives
    expected = np.clip(np.round(numpy_path * 255.0), 0, 255).astype(np.uint8)
    assert np.array_equal(_uint8_frames(video), expected)


def test_gpu_bench_runs_its_plan_on_tiny_configs(tmp_path):
    """The GPU bench's code (full-size builders at tiny scale, every measurement) on the CPU."""
    import json

    from spiral.bench.gpu import TINY_PLAN, run

    report = run(TINY_PLAN, "cpu", "tiny", budget_s=600, out=tmp_path / "gpu.json")
    assert json.loads((tmp_path / "gpu.json").read_text()) == report
    rows = {(r["backbone"], r["what"]): r for r in report["results"]}
    assert [r.get("error") for r in report["results"]] == [None] * len(TINY_PLAN)
    assert rows[("wan2.2-ti2v", "generate")]["tool_repeat_diff"] == 0
    assert rows[("wan2.2-ti2v", "generate")]["frames_shape"] == [5, 64, 64, 3]
    assert rows[("wan2.2-ti2v", "trajectory")]["trajectory_mb"] > 0
    assert rows[("wan2.2-ti2v", "group")]["batched_s"] > 0 and rows[("wan2.2-ti2v", "group")]["group"] == 4
    grpo = rows[("wan2.2-ti2v", "grpo_step")]
    assert grpo["lora_params_m"] > 0 and grpo["tokens"] == 2 * 2 * 2  # 2 latent frames x 4x4 latents / (2x2 patches)
    assert grpo["transitions"] == 4 * 2 and abs(grpo["ratio"] - 1) < 1e-3  # 60 % of 3 steps, on-policy
    assert set(report["built"]["wan2.1-i2v"]["params_b"]) == {"vae", "text_encoder", "image_encoder", "transformer"}


def test_a_group_is_one_batched_call_whose_samples_match_alone_and_replay(monkeypatch):
    """`generate_group` samples G seeds in one pipeline call: without trajectories each sample is the one its
    seed gives alone; with them, every sample's transitions re-score to ratio 1 when recomputed alone."""
    import torch

    from spiral.tools.video.tiny import tiny_wan_pipeline

    pipe = tiny_wan_pipeline()
    gen = DiffusersBackbone.from_pipeline("tiny-wan", pipe, device="cpu")
    calls = []
    real_call = type(pipe).__call__
    monkeypatch.setattr(type(pipe), "__call__", lambda self, *a, **kw: calls.append(1) or real_call(self, *a, **kw))
    unguided = gen.generate_group(_request().model_copy(update={"guidance_scale": 1.0}), [1, 2])  # no negative
    assert len(unguided) == 2 and not np.array_equal(unguided[0].frames, unguided[1].frames)
    calls.clear()
    request = _request(seed=0).model_copy(update={"num_inference_steps": 3, "guidance_scale": 4.0})
    group = gen.generate_group(request, [11, 12, 13])
    assert len(calls) == 1 and [s.seed for s in group] == [11, 12, 13]
    for segment in group:
        alone = gen.generate(request.model_copy(update={"seed": segment.seed})).frames
        assert int(np.abs(alone.astype(int) - segment.frames.astype(int)).max()) <= 1
    assert not np.array_equal(group[0].frames, group[1].frames)
    traced = gen.generate_group(request.model_copy(update={"trajectory": True}), [11, 12, 13])
    for segment in traced:
        tensors = segment.trajectory.tensors()
        assert tensors["latents"].shape[1] == 1 and segment.trajectory.metadata["seed"] == str(segment.seed)
        steps = _replay(pipe, tensors, segment.trajectory.conditioning, segment.trajectory.noise_level, 3)
        for i, step in enumerate(steps):
            ratio = torch.exp(step.log_prob - tensors["log_probs"][i])
            assert torch.allclose(ratio, torch.ones_like(ratio), atol=1e-5), (segment.seed, i, ratio)


def test_a_ti2v_trajectory_scores_the_frames_the_policy_makes_not_the_image():
    """Wan2.2 TI2V overwrites latent frame 0 with the image, so its transitions carry no choice of the policy's:
    the recorded log-probs, the replay and the KL count frames 1 on (frame 0 once used up the clip range)."""
    import torch

    from spiral.tools.video.policy import guided_output
    from spiral.tools.video.tiny import tiny_wan_pipeline
    from spiral.tools.video.trajectory import sde_step_with_logprob

    pipe = tiny_wan_pipeline()
    gen = DiffusersBackbone.from_pipeline("tiny-wan", pipe, device="cpu")
    seg = gen.generate(_request(seed=2).model_copy(update={"trajectory": True, "num_inference_steps": 3}))
    tensors, cond = seg.trajectory.tensors(), seg.trajectory.conditioning
    latents, prev, t = tensors["latents"][0].float(), tensors["latents"][1].float(), tensors["timesteps"][0]
    moved = prev.clone()
    moved[:, :, 0] += 3.0  # another frame 0: nothing the policy chose
    with torch.no_grad():
        output = guided_output(pipe.transformer, latents, t, cond)
    scheduler = pipe.scheduler
    scheduler.set_timesteps(3)
    same = [sde_step_with_logprob(scheduler, output, t, latents, 0.7, prev_sample=p, first_frame=1).log_prob
            for p in (prev, moved)]
    counted = [sde_step_with_logprob(scheduler, output, t, latents, 0.7, prev_sample=p).log_prob for p in (prev, moved)]
    assert torch.equal(same[0], same[1]) and not torch.allclose(counted[0], counted[1])
    assert torch.allclose(same[0], tensors["log_probs"][0], atol=1e-5)  # what the recorder stored


def test_sde_sampling_stays_bounded_on_the_unipc_schedule_wan_ships():
    """Wan's Diffusers pipelines ship UniPC with flow sigmas, whose first sigma is 0.999999, not 1: the SDE's
    noise term sqrt(sigma / (1 - sigma)) was 695 there and the latents' std grew to 21,721 in three steps."""
    import torch
    from diffusers import UniPCMultistepScheduler

    from spiral.tools.video.tiny import tiny_wan_pipeline

    pipe = tiny_wan_pipeline()
    pipe.scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0)
    gen = DiffusersBackbone.from_pipeline("tiny-wan", pipe, device="cpu")
    seg = gen.generate(_request(seed=2).model_copy(update={"trajectory": True, "num_inference_steps": 4}))
    assert 0.999 < float(pipe.scheduler.sigmas[0]) < 1.0  # the schedule this test is about
    stds = [float(t.float().std()) for t in seg.trajectory.latents]
    assert max(stds) < 3.0, stds
    assert all(torch.isfinite(lp).all() for lp in seg.trajectory.log_probs)
