"""Which LLM server a run talks to, and which key it may send there.

A run names a server with `RunContext.base_url` (empty: `OPENAI_BASE_URL`, else
OpenAI's API). `OPENAI_API_KEY` belongs to the URL it was configured for
(`OPENAI_BASE_URL`, else OpenAI's API) and is sent there only: to any other
server a run names, the agents send the placeholder key local servers accept,
so no setting a client chooses can move the key to a host of its choosing
(on a server, a client-chosen `base_url` must also be on the operator's
allow-list: shell/auth.py).
"""

from __future__ import annotations

import logging

from ..tools.errors import InputError
from ..tools.llm import NO_KEY
from ..vocabulary.config import RunContext
from ..vocabulary.environment import OPENAI_DEFAULT_URL, environment, same_url

log = logging.getLogger(__name__)


def llm_endpoint(settings: RunContext) -> tuple[str, str]:
    """(the server's URL, the key to send it): one clear error when OpenAI's API would get no key."""
    env = environment()
    env.check_for_http()
    url = settings.base_url or env.openai_base_url or OPENAI_DEFAULT_URL
    key = env.key_for(url)
    if key is None and same_url(url) == same_url(OPENAI_DEFAULT_URL):
        raise InputError("OPENAI_API_KEY is not set: the LLM agents need it (for a local OpenAI-compatible server "
                         "pass --base-url, no key needed); or use --planner rule --critic perception")
    if key is None and env.openai_api_key is not None:
        log.info("OPENAI_API_KEY is for %s; %s gets no key (set OPENAI_BASE_URL=%s to send it there)",
                 env.openai_base_url or OPENAI_DEFAULT_URL, url, url)
    return url, key or NO_KEY
