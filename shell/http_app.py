"""Artifact and video downloads for clients of a SPIRAL server (langgraph.json → `http.app`).

State and stream events hold artifact references (`sha256:<hex>.<ext>`) and
the final video's path on the server; a remote client fetches them here:

* `GET /spiral/artifacts/{ref}` — a frame as PNG, a segment as GIF (either
  `?format=npy` for the raw uint8 pixels), a plan or ledger as JSON, a thumbnail
  as JPEG;
* `GET /spiral/threads/{thread_id}/video` — the finished episode's MP4
  (`?format=gif` for the GIF);
* `GET /spiral/threads/{thread_id}/report` — its self-contained HTML report.

The server's auth runs on these routes too (`enable_custom_route_auth`). The
video and report routes serve a thread only to its owner (`metadata.owner`, as
shell/auth.py stamps it); an in-process SDK call is not filtered by the
caller's identity, so the route checks the owner itself. Artifact references
are content hashes, known only to whoever could read the state that holds
them, and they resolve only inside the workspace.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from spiral.memory.artifacts import ArtifactStore
from spiral.memory.workspace import Workspace
from spiral.tools.errors import InputError, SpiralError
from spiral.vocabulary.config import default_workspace


def _store() -> ArtifactStore:
    return Workspace.of().artifacts


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _render(ref: str, fmt: str) -> tuple[bytes, str]:
    """The artifact's bytes in the asked format, and its media type (runs in a worker thread)."""
    import numpy as np

    from spiral.tools.media import gif_bytes, png_bytes

    store = _store()
    if store.holds_pixels(ref):
        pixels = store.get_frame(ref)
        if fmt == "npy":
            buf = io.BytesIO()
            np.save(buf, pixels)
            return buf.getvalue(), "application/octet-stream"
        return (gif_bytes(pixels), "image/gif") if pixels.ndim == 4 else (png_bytes(pixels), "image/png")
    kinds = {".json": "application/json", ".jpg": "image/jpeg"}
    return store.get_bytes(ref), next((v for k, v in kinds.items() if ref.endswith(k)), "application/octet-stream")


async def artifact(request: Request) -> Response:
    ref, fmt = request.path_params["ref"], request.query_params.get("format", "")
    try:
        data, media = await asyncio.to_thread(_render, ref, fmt)
    except InputError as exc:  # a malformed reference
        return _error(400, str(exc))
    except SpiralError:  # well-formed but absent; the message would name the server's folders
        return _error(404, f"no artifact {ref}")
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=31536000, immutable"})


def _may_read(request: Request, thread: dict) -> bool:
    """The thread's owner may (as in shell/auth.py), and Studio's user on a local dev server."""
    from langgraph_sdk.auth.types import StudioUser

    user = request.scope.get("user")
    if isinstance(user, StudioUser):
        return True
    identity = getattr(user, "identity", None)
    return identity is not None and (thread.get("metadata") or {}).get("owner") == identity


async def _owned_values(request: Request, thread_id: str) -> dict | Response:
    """The thread's state values when the caller owns it; else the 404 a missing thread gets."""
    from langgraph_sdk import get_client

    client = get_client()  # in-process; it is not filtered by the caller's identity, so check the owner here
    missing = _error(404, f"no thread {thread_id} for you")
    try:
        thread = await client.threads.get(thread_id)
        if not _may_read(request, thread):
            return missing  # the same answer as for a thread that does not exist
        state = await client.threads.get_state(thread_id)
    except httpx.HTTPStatusError as exc:  # an unknown thread (404), or an id that is not one (422)
        if exc.response.status_code in (404, 422):
            return missing
        raise
    return state.get("values") or {}


async def report(request: Request) -> Response:
    """The episode's HTML report (graph/report.py), built from the server's workspace and the thread's state."""
    from spiral.graph.report import build_report
    from spiral.shell.report_page import render_report
    from spiral.vocabulary.state import EpisodeState

    thread_id = request.path_params["thread_id"]
    values = await _owned_values(request, thread_id)
    if isinstance(values, Response):
        return values
    if not values.get("summary"):
        return _error(409, "the episode has not finished")
    state = EpisodeState.model_validate(values)
    try:
        page = await asyncio.to_thread(lambda: render_report(build_report(default_workspace(), thread_id, state)))
    except SpiralError:
        return _error(404, f"no report for {thread_id}")
    return HTMLResponse(page, headers={"Cache-Control": "private, no-cache"})


async def video(request: Request) -> Response:
    thread_id, fmt = request.path_params["thread_id"], request.query_params.get("format", "mp4")
    if fmt not in ("mp4", "gif"):
        return _error(400, "format must be mp4 or gif")
    values = await _owned_values(request, thread_id)
    if isinstance(values, Response):
        return values
    path = values.get("video") or ""
    if not path:
        return _error(409, "the episode has no video yet")
    chosen = Path(path).with_suffix(f".{fmt}")
    workspace = Path(default_workspace()).resolve()
    if not chosen.resolve().is_relative_to(workspace):
        return _error(403, "the video is outside the server's workspace")
    try:
        data = await asyncio.to_thread(chosen.read_bytes)
    except OSError:
        return _error(404, f"{chosen.name} is missing on the server")
    return Response(data, media_type="video/mp4" if fmt == "mp4" else "image/gif")


app = Starlette(routes=[
    Route("/spiral/artifacts/{ref}", artifact),
    Route("/spiral/threads/{thread_id}/video", video),
    Route("/spiral/threads/{thread_id}/report", report),
])
