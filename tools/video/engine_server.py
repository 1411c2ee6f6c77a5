"""Any SPIRAL backbone behind the OpenAI-style `/v1/videos` API (`spiral serve-generator`).

The same protocol vLLM-Omni and SGLang Diffusion speak, so the `remote` backbone, and any client of
those engines, can use a local model (tabletop-tiny, a Wan checkpoint on this GPU) unchanged. The
model is loaded once; jobs run one at a time on one worker thread, in the order they came (a GPU
renders one batch at a time anyway); the mp4 is lossless RGB, so the client decodes exactly the frames
the backbone made. Standard library HTTP: nothing to install on a GPU box but SPIRAL.

Bound to 127.0.0.1 unless told otherwise; with an API key set, every call must carry it as a bearer
token. Jobs live in memory (the newest `max_jobs`); a restart forgets them, and a client that polls a
forgotten job gets 404 and submits again.
"""

from __future__ import annotations

import email.parser
import email.policy
import hmac
import io
import json
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError, SpiralError
from ..media import lossless_mp4_bytes
from .base import SegmentRequest, VideoGenerator

MAX_BODY_BYTES = 64 * 2**20


@dataclass
class VideoJob:
    id: str
    request: SegmentRequest
    fps: int
    status: str = "queued"
    progress: int = 0
    error: str = ""
    content: bytes = b""
    created_at: float = 0.0

    def public(self) -> dict[str, Any]:
        """The job as the OpenAI video object reads."""
        body: dict[str, Any] = {"id": self.id, "object": "video", "status": self.status, "progress": self.progress,
                                "created_at": int(self.created_at),
                                "size": f"{self.request.width}x{self.request.height}",
                                "num_frames": self.request.num_frames, "seed": self.request.seed}
        if self.error:
            body["error"] = {"code": "generation_failed", "message": self.error}
        return body


@dataclass
class VideoEngine:
    """The job table and its worker: create, look up, run one job at a time."""

    generator: VideoGenerator
    fps: int = 8
    max_jobs: int = 256
    check: Callable[[SegmentRequest], None] | None = None
    jobs: OrderedDict[str, VideoJob] = field(default_factory=OrderedDict)
    _queue: queue.Queue[VideoJob | None] = field(default_factory=queue.Queue)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        threading.Thread(target=self._work, name="video-engine", daemon=True).start()

    def stop(self) -> None:
        self._queue.put(None)

    def submit(self, request: SegmentRequest) -> VideoJob:
        if self.check is not None:
            self.check(request)
        job = VideoJob(id=f"video_{uuid.uuid4().hex}", request=request, fps=self.fps, created_at=time.time())
        with self._lock:
            self.jobs[job.id] = job
            while len(self.jobs) > self.max_jobs:
                oldest = next(iter(self.jobs))
                if self.jobs[oldest].status in ("queued", "in_progress"):
                    break
                del self.jobs[oldest]
        self._queue.put(job)
        return job

    def waiting(self) -> int:
        with self._lock:
            return sum(job.status in ("queued", "in_progress") for job in self.jobs.values())

    def get(self, job_id: str) -> VideoJob | None:
        with self._lock:
            return self.jobs.get(job_id)

    def delete(self, job_id: str) -> bool:
        with self._lock:
            return self.jobs.pop(job_id, None) is not None

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            job.status = "in_progress"

            def progress(step: int, steps: int, job: VideoJob = job) -> None:
                job.progress = int(100 * step / max(steps, 1))

            try:
                segment = self.generator.generate(job.request, progress=progress)
                job.content = lossless_mp4_bytes(segment.frames, segment.fps)
                job.progress, job.status = 100, "completed"
            except Exception as exc:  # noqa: BLE001 - a failed job reports why; the engine keeps serving
                job.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                job.status = "failed"


def parse_create(content_type: str, body: bytes) -> SegmentRequest:
    """A create request (multipart form, as OpenAI's and vLLM-Omni's clients send it) as a SegmentRequest."""
    if not content_type.startswith("multipart/form-data"):
        raise InputError("POST /v1/videos takes multipart/form-data (prompt, size, seed, input_reference)")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    image: np.ndarray | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "input_reference":
            try:
                image = np.asarray(Image.open(io.BytesIO(payload)).convert("RGB"))
            except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
                raise InputError(f"input_reference is not an image ({exc})") from exc
        elif isinstance(name, str):
            fields[name] = payload.decode("utf-8", "replace")
    if image is None:
        raise InputError("input_reference is required: this engine renders image-to-video from a start frame")
    if "prompt" not in fields:
        raise InputError("prompt is required")
    width, height = _size(fields, image)
    numbers = {key: fields[key] for key in ("num_frames", "seed", "num_inference_steps", "guidance_scale")
               if fields.get(key, "").strip()}
    try:
        return SegmentRequest(image=image, prompt=fields["prompt"], negative_prompt=fields.get("negative_prompt", ""),
                              width=width, height=height, **numbers)
    except (ValueError, TypeError) as exc:
        raise InputError(str(exc).splitlines()[-1] if "\n" in str(exc) else str(exc)) from exc


def _size(fields: dict[str, str], image: np.ndarray) -> tuple[int, int]:
    if fields.get("width") and fields.get("height"):
        text = f"{fields['width']}x{fields['height']}"
    else:
        text = fields.get("size") or f"{image.shape[1]}x{image.shape[0]}"
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise InputError(f"size must be WIDTHxHEIGHT; got {text!r}") from exc
    return width, height


def make_handler(engine: VideoEngine, api_key: str = "") -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, json.dumps(body).encode())

        def _error(self, status: int, message: str) -> None:
            self._json(status, {"error": {"message": message, "type": "invalid_request_error" if status < 500
                                          else "server_error"}})

        def _authorized(self) -> bool:
            if not api_key:
                return True
            sent = self.headers.get("Authorization", "")
            if hmac.compare_digest(sent.encode(), f"Bearer {api_key}".encode()):
                return True
            self._error(401, "missing or wrong API key (Authorization: Bearer ...)")
            return False

        def _job(self) -> tuple[VideoJob | None, str]:
            parts = self.path.split("?", 1)[0].strip("/").split("/")
            if len(parts) < 3 or parts[:2] != ["v1", "videos"]:
                self._error(404, f"no such endpoint: {self.path}")
                return None, ""
            job = engine.get(parts[2])
            if job is None:
                self._error(404, f"no such video job: {parts[2]}")
            return job, "/".join(parts[3:])

        def do_POST(self) -> None:
            if not self._authorized():
                return
            if self.path.split("?", 1)[0].rstrip("/") != "/v1/videos":
                return self._error(404, f"no such endpoint: {self.path}")
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                return self._error(411, "a create needs a Content-Length")
            if not 0 <= length <= MAX_BODY_BYTES:
                return self._error(413, f"request body over {MAX_BODY_BYTES // 2**20} MB")
            if engine.waiting() >= engine.max_jobs:
                return self._error(429, f"{engine.max_jobs} jobs are waiting already; try again later")
            try:
                job = engine.submit(parse_create(self.headers.get("Content-Type", ""), self.rfile.read(length)))
            except SpiralError as exc:
                return self._error(400, str(exc))
            self._json(200, job.public())

        def do_GET(self) -> None:
            if not self._authorized():
                return
            job, rest = self._job()
            if job is None:
                return
            if rest == "":
                return self._json(200, job.public())
            if rest == "content":
                if job.status != "completed":
                    return self._error(409, f"video job {job.id} is {job.status}, not completed")
                return self._send(200, job.content, "video/mp4")
            self._error(404, f"no such endpoint: {self.path}")

        def do_DELETE(self) -> None:
            if not self._authorized():
                return
            job, rest = self._job()
            if job is not None and rest == "":
                engine.delete(job.id)
                self._json(200, {"id": job.id, "object": "video", "deleted": True})

    return Handler


def serve(generator: VideoGenerator, host: str = "127.0.0.1", port: int = 8091, api_key: str = "",
          fps: int = 8, check: Callable[[SegmentRequest], None] | None = None) -> ThreadingHTTPServer:
    """A started engine and its HTTP server (call `serve_forever`, or `shutdown` when embedded). `check`
    is the backbone's own validation of a request (frame counts, sizes): what it refuses is a 400."""
    engine = VideoEngine(generator, fps=fps, check=check)
    engine.start()
    server = ThreadingHTTPServer((host, port), make_handler(engine, api_key))
    server.daemon_threads = True
    return server
