"""Who may use a SPIRAL server, and whose episodes they see (langgraph.json → `auth`).

Tokens come from the environment: `SPIRAL_API_TOKENS="alice:tok-a,bob:tok-b"`
(user name, colon, token; comma between users). A request carries
`Authorization: Bearer <token>`. Every thread is stamped with its creator as
`metadata.owner`, and every read, search, update, delete or run on a thread
is filtered to the caller's own, so one user can neither see nor resume
another's episode. The server keeps its paths to itself: a run may not set
`workspace`, `out_dir` or `prompts_dir` in its context. Nor does a client choose
where the server's LLM key goes: a run's `base_url` must be on the operator's
allow-list (`SPIRAL_ALLOWED_BASE_URLS`, empty by default), and the key is sent
only to the URL it was configured for (nodes/credentials.py).

LangGraph Studio on a local `langgraph dev` server signs in as its own
Studio user, which sees every thread (it is you, on your machine).
"""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path

import httpx
from langgraph_sdk import Auth
from langgraph_sdk.auth.types import StudioUser

from spiral.nodes.preflight import check_start
from spiral.tools.errors import SpiralError
from spiral.vocabulary.config import default_workspace
from spiral.vocabulary.environment import environment, same_url

TOKENS_ENV = "SPIRAL_API_TOKENS"
SERVER_PATHS = ("workspace", "out_dir", "prompts_dir")
"""Run-context fields that name folders on the server: the server's own settings decide them."""

auth = Auth()


def tokens_from_env() -> dict[str, str]:
    """{token: user} from SPIRAL_API_TOKENS; a malformed entry is an error that names it."""
    users: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in environment().api_tokens.split(","))):
        user, sep, token = entry.partition(":")
        if not sep or not user.strip() or len(token.strip()) < 8:
            raise ValueError(f"{TOKENS_ENV} entry {entry.split(':')[0]!r}... is not 'user:token' with a token "
                             "of at least 8 characters")
        users[token.strip()] = user.strip()
    return users


def _refuse(status: int, detail: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(status_code=status, detail=detail)


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    try:
        users = tokens_from_env()
    except ValueError as exc:
        raise _refuse(500, f"server misconfigured: {exc}") from None
    if not users:
        raise _refuse(401, f"this server has no API tokens: set {TOKENS_ENV}=user:token[,user:token]")
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise _refuse(401, "send 'Authorization: Bearer <token>'")
    # compare against every token so the time taken does not say which one was close
    match = [user for token, user in users.items() if hmac.compare_digest(token, presented.strip())]
    if not match:
        raise _refuse(401, "unknown token")
    return {"identity": match[0], "display_name": match[0]}


def _is_studio(ctx: Auth.types.AuthContext) -> bool:
    return isinstance(ctx.user, StudioUser)


def _owned(ctx: Auth.types.AuthContext, value: dict) -> dict | None:
    """Stamp the caller as owner of what is being created, and filter to what they own."""
    if _is_studio(ctx):
        return None
    value.setdefault("metadata", {})["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}


@auth.on.threads.create
async def own_new_thread(ctx: Auth.types.AuthContext, value: Auth.types.on.threads.create.value):
    return _owned(ctx, value)


@auth.on.threads.create_run
async def run_own_thread(ctx: Auth.types.AuthContext, value: Auth.types.on.threads.create_run.value):
    kwargs = value.get("kwargs") or {}
    context = kwargs.get("context") or {}
    chosen = [name for name in SERVER_PATHS if context.get(name)]
    if chosen:
        raise _refuse(403, f"{', '.join(chosen)} are set by the server, not per run")
    base_url = context.get("base_url")
    if base_url and (not isinstance(base_url, str) or same_url(base_url) not in environment().allowed_urls()):
        raise _refuse(403, "base_url: this server talks only to the LLM servers its operator allows "
                           "(SPIRAL_ALLOWED_BASE_URLS); leave it out to use the server's own")
    lora = context.get("lora")
    if lora and not (isinstance(lora, str) and Path(lora).resolve().is_relative_to(Path(default_workspace()).resolve())):
        raise _refuse(403, "lora: this server loads adapters only from inside its own workspace")
    command = kwargs.get("command") or {}
    episode_input = kwargs.get("input")
    thread_id = value.get("thread_id")
    if thread_id is not None and not _is_studio(ctx) and not await _visible(thread_id):
        raise _refuse(404, f"thread {thread_id} not found")  # not the caller's: nothing about its state is said
    if command.get("resume") is not None:
        await _check_review_answer(value.get("thread_id"), command["resume"])
    elif episode_input is None and not await _has_state(value.get("thread_id")):
        raise _refuse(400, "input: a new episode needs {'action': ..., 'image': ...} (null only continues a thread "
                           "that has started)")
    try:  # a bad run is refused here, with the CLI's message, before any node runs
        await asyncio.to_thread(check_start, episode_input, context)
    except SpiralError as exc:
        raise _refuse(400, str(exc)) from None
    return _owned(ctx, value)


async def _thread_state(thread_id: object) -> dict:
    """The thread's state through the in-process client (empty for a thread with none)."""
    from langgraph_sdk import get_client

    if thread_id is None:
        return {}
    try:
        return await get_client().threads.get_state(str(thread_id))
    except httpx.HTTPStatusError as exc:  # a thread with no state yet (404), or no such thread
        if exc.response.status_code in (404, 422):
            return {}
        raise


async def _visible(thread_id: object) -> bool:
    """Whether the caller may see the thread (the in-process client reads as the caller: another user's thread
    is a 404 to them, as a thread that does not exist is)."""
    from langgraph_sdk import get_client

    try:
        await get_client().threads.get(str(thread_id))
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code in (403, 404, 422):
            return False
        raise
    return True


async def _has_state(thread_id: object) -> bool:
    return bool((await _thread_state(thread_id)).get("values"))


async def _check_review_answer(thread_id: object, answer: object) -> None:
    """A review answer must name the question it answers (`review_id`), and that question must be pending:
    a second click or a second client gets 409 instead of approving a segment nobody saw."""
    named = answer.get("review_id") if isinstance(answer, dict) else None
    if not named:
        raise _refuse(400, "resume: a review answer names the question it answers: {'review_id': ID, 'decision': "
                           "'approve'} (the ID is the pending interrupt's `id`)")
    state = await _thread_state(thread_id)
    pending = [i.get("value", {}).get("id") for i in state.get("interrupts") or []
               if isinstance(i, dict) and isinstance(i.get("value"), dict)]
    if named not in pending:
        now = f"review {pending[0]} is pending now" if pending else "no review is pending now"
        raise _refuse(409, f"review {named} is no longer pending (it was answered already); {now}")


@auth.on.threads.read
@auth.on.threads.update
@auth.on.threads.delete
@auth.on.threads.search
async def only_own_threads(ctx: Auth.types.AuthContext, value: dict):
    return None if _is_studio(ctx) else {"owner": ctx.user.identity}


@auth.on.assistants.read
@auth.on.assistants.search
async def read_assistants(ctx: Auth.types.AuthContext, value: dict):
    """The graph's assistants are the server's; everyone may use them."""
    return None


@auth.on.assistants
async def no_assistant_changes(ctx: Auth.types.AuthContext, value: dict):
    if _is_studio(ctx):
        return None
    raise _refuse(403, "assistants are configured by the server (langgraph.json), not by clients")


@auth.on.crons
async def no_crons(ctx: Auth.types.AuthContext, value: dict):
    if _is_studio(ctx):
        return None
    raise _refuse(403, "scheduled runs are not offered by this server")


@auth.on.store
async def own_store_namespace(ctx: Auth.types.AuthContext, value: dict):
    """Through the API a user reads and writes only under a namespace that starts with their name
    (the graph's own lessons live under ("spiral", ...) and are written by the graph, not clients)."""
    if _is_studio(ctx):
        return None
    namespace = tuple(value.get("namespace") or ())
    if namespace[:1] != (ctx.user.identity,):
        raise _refuse(403, f"store namespaces must start with your user name ({ctx.user.identity!r})")
    return None
