"""Chat models for the LLM/VLM agents: the OpenAI API or any OpenAI-compatible server.

Configured by a `provider/model` string and an optional `base_url` (vLLM,
SGLang, Ollama, ...). The API key comes only from the environment
(`OPENAI_API_KEY`; local servers accept any value, e.g. `EMPTY`) and lives only
in the client object: never in settings, state, checkpoints, traces or logs.
Timeouts, 429 and 5xx are retried with exponential backoff by the OpenAI client,
`max_retries` times.
"""

from __future__ import annotations

import os
from functools import lru_cache

from .errors import InputError

API_KEY_ENV = "OPENAI_API_KEY"


def require_api_key() -> None:
    """One clear error before any work when no key is set."""
    if not os.environ.get(API_KEY_ENV):
        raise InputError(f"{API_KEY_ENV} is not set: the LLM agents need it (for a local OpenAI-compatible "
                         f"server any value works, e.g. {API_KEY_ENV}=EMPTY); or use --planner rule --critic perception")


def model_name(spec: str) -> str:
    """`openai/gpt-4o-mini` → `gpt-4o-mini`; a bare name passes through (servers name models freely)."""
    provider, _, name = spec.partition("/")
    if not name:
        return spec
    if provider not in ("openai", "vllm", "sglang", "ollama", "local"):
        return spec  # e.g. Qwen/Qwen2.5-VL-7B-Instruct served under its hub name
    return name


@lru_cache(maxsize=8)
def chat_model(spec: str, base_url: str | None, temperature: float, timeout_s: float, max_retries: int):
    """A langchain ChatOpenAI client (cached per configuration; holds the key in memory only)."""
    from langchain_openai import ChatOpenAI

    require_api_key()
    return ChatOpenAI(model=model_name(spec), base_url=base_url or None, temperature=temperature,
                      timeout=timeout_s, max_retries=max_retries, api_key=os.environ[API_KEY_ENV])
