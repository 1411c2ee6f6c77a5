"""The LLM agents' prompt templates (`*.md` beside this file), overridable from a folder."""

from __future__ import annotations

import string
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


PROMPT_FIELDS: dict[str, tuple[str, ...]] = {
    "planner": ("objects", "established", "action"),
    "critic": ("description", "prompt", "postconditions", "movers", "memory", "evidence"),
    "refiner": ("description", "instruction", "feedback", "suggestion"),
}
"""The `{field}`s each prompt is filled with (str.format: a literal brace is written twice)."""
AGENT_PROMPTS = tuple(PROMPT_FIELDS)


def check_prompts_dir(folder: str) -> None:
    """A --prompts-dir that is missing, holds none of the prompts, or holds one that cannot be filled in is
    a mistake to say before any work, not to find in the middle of an episode."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(f"--prompts-dir {folder} is not a folder")
    if not any((path / f"{name}.md").is_file() for name in AGENT_PROMPTS):
        raise InputError(f"--prompts-dir {folder} holds none of {', '.join(n + '.md' for n in AGENT_PROMPTS)}; "
                         "copy the built-in ones from spiral/nodes/prompts/ and edit them")
    for name, fields in PROMPT_FIELDS.items():
        file = path / f"{name}.md"
        if file.is_file():
            _check_template(file, fields)


def _check_template(file: Path, fields: tuple[str, ...]) -> None:
    allowed = ", ".join("{" + f + "}" for f in fields)
    try:
        text = file.read_text(encoding="utf-8")
        used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except UnicodeDecodeError:
        raise InputError(f"--prompts-dir: {file} is not UTF-8 text") from None
    except ValueError as exc:
        raise InputError(f"--prompts-dir: {file}: {exc} (a literal brace is written {{{{ or }}}}; the fields are "
                         f"{allowed})") from None
    unknown = sorted(f or "{}" for f in used if f.split(".")[0].split("[")[0] not in fields)
    if unknown:
        raise InputError(f"--prompts-dir: {file} uses {', '.join(unknown)}, which this prompt is not given; its "
                         f"fields are {allowed} (a literal brace is written {{{{ or }}}})")
