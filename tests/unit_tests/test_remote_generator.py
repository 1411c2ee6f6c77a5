"""The `remote` backbone against `/v1/videos` engines: SPIRAL's own server (a test-double generator
behind it) and scripted HTTP answers for the failures an engine can have."""

import threading

import httpx
import numpy as np
import pytest

from spiral.tools.errors import InputError
from spiral.tools.video import SegmentRequest, backbone_info
from spiral.tools.video.base import Segment
from spiral.tools.video.engine_server import serve
from spiral.tools.video.remote import GeneratorUnavailableError, RemoteVideoBackbone
from spiral.vocabulary.config import RunContext


class SeededNoise:
    """A test double: frames that depend on the seed, the prompt and the start image, nothing else."""

    name = "seeded-noise"

    def generate(self, request, progress=None):
        if request.prompt == "explode":
            raise RuntimeError("CUDA out of memory. Tried to allocate 80 GiB")
        rng = np.random.default_rng([request.seed, len(request.prompt), int(request.image.sum())])
        frames = rng.integers(0, 256, (request.num_frames, request.height, request.width, 3), dtype=np.uint8)
        frames[0] = request.conditioning_frame()
        if progress:
            progress(1, 1)
        return Segment(frames=frames, fps=8, seed=request.seed, backbone=self.name)


@pytest.fixture
def engine_url():
    server = serve(SeededNoise(), port=0, api_key="secret-key")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def request(seed=3, prompt="Put the red ball in the white bowl.", **kw):
    image = np.full((48, 40, 3), 90, np.uint8)
    return SegmentRequest(image=image, prompt=prompt, num_frames=5, height=48, width=40, seed=seed, **kw)


def test_the_remote_backbone_returns_the_served_frames_bit_for_bit(engine_url):
    remote = RemoteVideoBackbone(engine_url, "secret-key", poll_interval_s=0.01)
    local = SeededNoise()
    steps = []
    got = remote.generate(request(), progress=lambda s, n: steps.append((s, n)))
    assert got.frames.shape == (5, 48, 40, 3)
    assert np.array_equal(got.frames, local.generate(request()).frames)
    assert not np.array_equal(got.frames, local.generate(request(seed=4)).frames)  # the seed reaches the engine
    assert steps[-1] == (100, 100)


def test_a_wrong_key_and_a_failed_job_are_one_line_naming_the_engine(engine_url):
    with pytest.raises(GeneratorUnavailableError, match=r"answered 401: missing or wrong API key"):
        RemoteVideoBackbone(engine_url, "guess", poll_interval_s=0.01).generate(request())
    with pytest.raises(GeneratorUnavailableError, match=r"failed job video_\w+: CUDA out of memory"):
        RemoteVideoBackbone(engine_url, "secret-key", poll_interval_s=0.01).generate(request(prompt="explode"))


def test_the_engine_refuses_a_request_without_a_start_frame(engine_url):
    answer = httpx.post(f"{engine_url}/videos", data={"prompt": "x"}, files={"other": ("a", b"b")},
                        headers={"Authorization": "Bearer secret-key"})
    assert answer.status_code == 400 and "input_reference is required" in answer.json()["error"]["message"]


def scripted(answers):
    """An httpx transport that answers each call with the next scripted response (or raises it)."""
    calls = []

    def handle(req):
        calls.append((req.method, req.url.path, req.headers.get("authorization")))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), calls


def test_transient_failures_are_retried_with_backoff_then_succeed():
    from spiral.tools.media import lossless_mp4_bytes

    frames = np.zeros((5, 48, 40, 3), np.uint8)
    transport, calls = scripted([httpx.ConnectError("refused"), httpx.Response(503, json={"detail": "warming up"}),
                                 httpx.Response(200, json={"id": "v1", "status": "queued"}),
                                 httpx.Response(200, json={"id": "v1", "status": "completed", "progress": 100}),
                                 httpx.Response(200, content=lossless_mp4_bytes(frames))])
    slept = []
    remote = RemoteVideoBackbone("http://engine:1/v1", "k", transport=transport, sleep=slept.append)
    assert remote.generate(request()).frames.shape == (5, 48, 40, 3)
    assert slept == [0.5, 1.0]  # exponential backoff before the second and third tries
    assert [c[1] for c in calls] == ["/v1/videos"] * 3 + ["/v1/videos/v1", "/v1/videos/v1/content"]
    assert {c[2] for c in calls} == {"Bearer k"}


def test_an_engine_that_keeps_failing_says_so_after_the_bounded_tries():
    transport, calls = scripted([httpx.ConnectError("refused")] * 3)
    remote = RemoteVideoBackbone("http://engine:1/v1", transport=transport, max_retries=2, sleep=lambda s: None)
    with pytest.raises(GeneratorUnavailableError, match=r"kept failing after 3 tries \(ConnectError: refused\)"):
        remote.generate(request())
    assert len(calls) == 3


def test_a_redirect_is_not_followed_so_the_key_stays_with_its_url():
    transport, calls = scripted([httpx.Response(302, headers={"Location": "http://elsewhere/steal"})])
    remote = RemoteVideoBackbone("http://engine:1/v1", "k", transport=transport)
    with pytest.raises(GeneratorUnavailableError, match="answered 302"):
        remote.generate(request())
    assert [c[1] for c in calls] == ["/v1/videos"]


def test_a_wrong_sized_answer_is_refused():
    from spiral.tools.media import lossless_mp4_bytes

    transport, _ = scripted([httpx.Response(200, json={"id": "v1"}), httpx.Response(200, json={"status": "completed"}),
                             httpx.Response(200, content=lossless_mp4_bytes(np.zeros((3, 48, 40, 3), np.uint8)))])
    with pytest.raises(GeneratorUnavailableError, match="returned 3 frames of 40x48 for a request of 5 frames"):
        RemoteVideoBackbone("http://engine:1/v1", transport=transport).generate(request())


def test_no_trajectory_and_no_engine_are_refused_before_any_work(monkeypatch):
    monkeypatch.delenv("SPIRAL_GENERATOR_URL", raising=False)
    with pytest.raises(InputError, match="needs SPIRAL_GENERATOR_URL"):
        RunContext(backbone="remote").check_backbone()
    monkeypatch.setenv("SPIRAL_GENERATOR_URL", "http://engine:1/v1")
    with pytest.raises(InputError, match="per-step latents and log-probabilities GRPO needs"):
        RunContext(backbone="remote", trajectory=True).check_backbone()
    assert RunContext(backbone="remote").generator_options()["generator_url"] == "http://engine:1/v1"
    assert "generator_url" not in RunContext.model_fields  # a run's input cannot name the engine
    assert backbone_info("remote").environment == ("generator_url", "generator_api_key")


def test_the_engine_refuses_a_body_it_cannot_size_and_a_hostile_length(engine_url):
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(engine_url)
    for length, status in (("-5", 413), ("lots", 411), (str(10**12), 413)):
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
        conn.putrequest("POST", "/v1/videos")
        conn.putheader("Authorization", "Bearer secret-key")
        conn.putheader("Content-Length", length)
        conn.endheaders()
        assert conn.getresponse().status == status, length
        conn.close()
