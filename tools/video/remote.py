"""A backbone that is a video-serving engine over HTTP: the OpenAI-style `/v1/videos` protocol.

vLLM-Omni and SGLang Diffusion serve Wan and other TI2V models behind this API, and
`spiral serve-generator` puts any SPIRAL backbone behind it. A segment is one job: create it
(`POST /videos`, multipart: prompt, size, seed, the conditioning frame as `input_reference`),
poll it (`GET /videos/{id}` until `completed` or `failed`), download it (`GET /videos/{id}/content`,
an mp4). Transient failures (connection errors, timeouts, 429 and 5xx) are retried with
exponential backoff; anything else is one line naming the engine and what it said.

What an engine cannot give: it returns pixels, not the denoising trajectory, so there are no per-step
latents or log-probabilities and `spiral train grpo` cannot learn from its segments. A request that asks
for a trajectory is refused before any work (the validator below); collect RL rollouts with a local
diffusers backbone. The engine's URL and key are the operator's (SPIRAL_GENERATOR_URL,
SPIRAL_GENERATOR_API_KEY): a run cannot name another host, and the key goes to that URL only
(redirects are not followed).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
from PIL import Image

from ..errors import InputError, SpiralError
from ..media import read_video_bytes
from .base import ProgressFn, Segment, SegmentRequest

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
NO_TRAJECTORY = ("backbone remote: a serving engine returns pixels, not the per-step latents and log-probabilities "
                 "GRPO needs; collect RL rollouts with a local diffusers backbone (e.g. --backbone tiny-wan)")


class GeneratorUnavailableError(SpiralError):
    """The video engine could not be reached, kept failing, or failed the job."""


def check_remote(*, num_frames: int, height: int, width: int, generator_url: str = "", trajectory: bool = False,
                 **_: Any) -> None:
    """What needs no network: an engine is configured, and nothing asks it for a trajectory."""
    if not generator_url:
        raise InputError("backbone remote needs SPIRAL_GENERATOR_URL: the engine's base URL, "
                         "e.g. http://gpu-host:8091/v1 (vLLM-Omni, SGLang Diffusion or `spiral serve-generator`)")
    if not generator_url.startswith(("http://", "https://")):
        raise InputError(f"SPIRAL_GENERATOR_URL must be an http:// or https:// URL; got {generator_url!r}")
    if trajectory:
        raise InputError(NO_TRAJECTORY)


class RemoteVideoBackbone:
    """`VideoGenerator` over an engine's `/v1/videos` API. Same seed and request, same segment: the
    engine's determinism is the engine's (SPIRAL's own server is bit-exact)."""

    def __init__(self, generator_url: str, generator_api_key: str = "", model: str = "", *,
                 job_timeout_s: float = 1800.0, request_timeout_s: float = 60.0, poll_interval_s: float = 0.5,
                 max_retries: int = 4, backoff_s: float = 0.5, fps: int = 8,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        check_remote(num_frames=2, height=32, width=32, generator_url=generator_url)
        self.url = generator_url.rstrip("/")
        self.model = model
        self.name = f"remote:{model}" if model else "remote"
        self.job_timeout_s, self.poll_interval_s = job_timeout_s, poll_interval_s
        self.max_retries, self.backoff_s, self.fps, self._sleep = max_retries, backoff_s, fps, sleep
        headers = {"Authorization": f"Bearer {generator_api_key}"} if generator_api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=request_timeout_s,
                                  follow_redirects=False, transport=transport)

    # -- one HTTP call, retried when the failure is transient ------------------------------------------
    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            try:
                response = self._http.request(method, path, **kw)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return response
                if response.status_code not in RETRYABLE_STATUS:
                    raise GeneratorUnavailableError(
                        f"video engine {self.url}{path} answered {response.status_code}: {_reason(response)}")
                failure = f"HTTP {response.status_code}: {_reason(response)}"
            if attempt < self.max_retries:
                self._sleep(self.backoff_s * 2**attempt)
        raise GeneratorUnavailableError(f"video engine {self.url}{path} kept failing after {self.max_retries + 1} "
                                        f"tries ({failure}); is it running and reachable?")

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise GeneratorUnavailableError(f"video engine {self.url}{response.request.url.path} answered something "
                                            f"other than a JSON object: {response.text[:120]!r}")
        return body

    def _create(self, request: SegmentRequest) -> str:
        form: dict[str, str] = {
            "prompt": request.prompt, "size": f"{request.width}x{request.height}", "width": str(request.width),
            "height": str(request.height), "num_frames": str(request.num_frames), "fps": str(self.fps),
            "seed": str(request.seed)}
        if self.model:
            form["model"] = self.model
        if request.negative_prompt:
            form["negative_prompt"] = request.negative_prompt
        if request.num_inference_steps is not None:
            form["num_inference_steps"] = str(request.num_inference_steps)
        if request.guidance_scale is not None:
            form["guidance_scale"] = str(request.guidance_scale)
        png = io.BytesIO()
        Image.fromarray(request.conditioning_frame()).save(png, format="PNG")
        job = self._json(self._call("POST", "/videos", data=form,
                                    files={"input_reference": ("start.png", png.getvalue(), "image/png")}))
        if not isinstance(job.get("id"), str):
            raise GeneratorUnavailableError(f"video engine {self.url} answered a create without a job id: {job!r:.200}")
        return job["id"]

    def _wait(self, job_id: str, progress: ProgressFn | None) -> None:
        deadline = time.monotonic() + self.job_timeout_s
        while True:
            job = self._json(self._call("GET", f"/videos/{job_id}"))
            status = job.get("status")
            if progress is not None and isinstance(job.get("progress"), (int, float)):
                progress(int(job["progress"]), 100)
            if status == "completed":
                return
            if status == "failed":
                error = job.get("error") or {}
                message = error.get("message") if isinstance(error, dict) else str(error)
                raise GeneratorUnavailableError(f"video engine {self.url} failed job {job_id}: {message or 'no reason given'}")
            if time.monotonic() > deadline:
                raise GeneratorUnavailableError(f"video engine {self.url} did not finish job {job_id} within "
                                                f"{self.job_timeout_s:.0f} s (status {status!r})")
            self._sleep(self.poll_interval_s)

    def generate(self, request: SegmentRequest, progress: ProgressFn | None = None) -> Segment:
        if request.trajectory:
            raise InputError(NO_TRAJECTORY)
        started = time.perf_counter()
        job_id = self._create(request)
        self._wait(job_id, progress)
        content = self._call("GET", f"/videos/{job_id}/content").content
        frames = read_video_bytes(content)[:, :request.height, :request.width]
        if frames.shape[:3] != (request.num_frames, request.height, request.width):
            raise GeneratorUnavailableError(
                f"video engine {self.url} returned {frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]} "
                f"for a request of {request.num_frames} frames of {request.width}x{request.height}")
        return Segment(frames=np.ascontiguousarray(frames), fps=self.fps, seed=request.seed, backbone=self.name,
                       timings={"remote_s": time.perf_counter() - started})


def _reason(response: httpx.Response) -> str:
    """The engine's own words: OpenAI-style `{"error": {"message": ...}}`, FastAPI's `detail`, or the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0][:200] if response.text.strip() else "no body"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:200]
        for key in ("detail", "message", "error"):
            if body.get(key):
                return str(body[key])[:200]
    return str(body)[:200]
