"""The LLM agents' prompt templates (`*.md` beside this file), overridable from a folder."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).parent


@lru_cache(maxsize=32)
def template(name: str, override_dir: str = "") -> str:
    """`planner`, `critic` or `refiner`; a file of the same name in `override_dir` wins."""
    if override_dir:
        custom = Path(override_dir).expanduser() / f"{name}.md"
        if custom.exists():
            return custom.read_text()
    return (HERE / f"{name}.md").read_text()
