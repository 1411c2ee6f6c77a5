"""Chat models for the LLM/VLM agents: the OpenAI API or any OpenAI-compatible server.

Configured by a `provider/model` string and an optional `base_url` (vLLM,
SGLang, Ollama, ...). The API key is passed in by the caller, which decides
whether this URL may have it (vocabulary/environment.py: a key goes only to the URL it
was configured for), and lives only in the client object: never in settings,
state, checkpoints, traces or logs.
Timeouts, 429 and 5xx are retried with exponential backoff by the OpenAI client,
`max_retries` times.
"""

from __future__ import annotations

from functools import lru_cache

NO_KEY = "EMPTY"
"""What is sent where no key may go: OpenAI-compatible local servers accept any value."""


def model_name(spec: str) -> str:
    """`openai/gpt-4o-mini` → `gpt-4o-mini`; a bare name passes through (servers name models freely)."""
    provider, _, name = spec.partition("/")
    if not name:
        return spec
    if provider not in ("openai", "vllm", "sglang", "ollama", "local"):
        return spec  # e.g. Qwen/Qwen2.5-VL-7B-Instruct served under its hub name
    return name


@lru_cache(maxsize=8)
def chat_model(spec: str, base_url: str | None, temperature: float, timeout_s: float, max_retries: int,
               api_key: str = NO_KEY):
    """A langchain ChatOpenAI client (cached per configuration; holds the key in memory only)."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=model_name(spec), base_url=base_url or None, temperature=temperature,
                      timeout=timeout_s, max_retries=max_retries, api_key=api_key or NO_KEY)
