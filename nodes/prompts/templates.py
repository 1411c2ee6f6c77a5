"""The LLM agents' prompt templates (`*.md` beside this file), overridable from a folder."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ...tools.errors import InputError

HERE = Path(__file__).parent


@lru_cache(maxsize=32)
def template(name: str, override_dir: str = "") -> str:
    """`planner`, `critic` or `refiner`; a file of the same name in `override_dir` wins."""
    if override_dir:
        custom = Path(override_dir).expanduser() / f"{name}.md"
        if custom.exists():
            return custom.read_text()
    return (HERE / f"{name}.md").read_text()


AGENT_PROMPTS = ("planner", "critic", "refiner")


def check_prompts_dir(folder: str) -> None:
    """A --prompts-dir that is missing, or holds none of the prompts, is a mistake to say, not to ignore."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(f"--prompts-dir {folder} is not a folder")
    if not any((path / f"{name}.md").is_file() for name in AGENT_PROMPTS):
        raise InputError(f"--prompts-dir {folder} holds none of {', '.join(n + '.md' for n in AGENT_PROMPTS)}; "
                         "copy the built-in ones from spiral/nodes/prompts/ and edit them")
