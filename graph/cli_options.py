"""`spiral` flags derived from `RunContext`'s fields: names, types, defaults, choices and help text.

A field `num_frames` is `--num-frames` (and its short flag, `--frames`, when
the field names one); a bool is `--x/--no-x`; a Literal lists its choices;
path fields are resolved against the current folder. Only the flags given
reach `RunContext`, so its defaults and bounds are the only ones.
"""

from __future__ import annotations

import argparse
import typing
from pathlib import Path
from typing import Any

from rich_argparse import RichHelpFormatter

from .config import RunContext


class HelpFormatter(RichHelpFormatter):
    """Coloured help that states every default the help text does not state already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.option_strings and "default" not in text and action.default not in (None, False, "", [],
                                                                                        argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def finish_help(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Every (sub)command: the formatter above, and its one-line help as its description when it has none."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                sub.description = sub.description or (helps.get(name) or "").capitalize() or None
                finish_help(sub)
    return parser


def _extra(name: str) -> dict[str, Any]:
    extra = RunContext.model_fields[name].json_schema_extra
    return extra if isinstance(extra, dict) else {}


def flags_of(name: str) -> list[str]:
    long = "--" + name.replace("_", "-")
    short = _extra(name).get("flag")
    return [short, long] if short and short != long else [long]


def _default_text(name: str) -> str:
    field = RunContext.model_fields[name]
    if field.default_factory is not None:
        return "see above"
    return "the backbone's" if field.default is None else repr(field.default)


DEMO_OPTIONS = ("seed", "difficulty", "max_tries_per_segment", "max_replans", "max_generator_calls", "review",
                "memory", "write_video", "workspace", "out_dir")
"""What `spiral demo` offers: the demo runs the built-in scene on the simulator, so no backbone, GPU or LLM flags."""


def add_context_options(parser: argparse.ArgumentParser, only: tuple[str, ...] = ()) -> None:
    """One option per run-context field (or per field named in `only`)."""
    for name, field in RunContext.model_fields.items():
        if only and name not in only:
            continue
        annotation = field.annotation
        options = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
        kind = options[0]
        described = field.default_factory is not None or "default" in (field.description or "")
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": field.description if described else
                                  f"{field.description} (default: {_default_text(name)})"}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is typing.Literal:
            kwargs["choices"] = list(typing.get_args(kind))
        else:
            kwargs["type"] = kind if kind in (int, float) else str
            kwargs["metavar"] = name.upper()
        parser.add_argument(*flags_of(name), **kwargs)


def context_from_args(args: argparse.Namespace, **overrides: Any) -> RunContext:
    """The run context from the flags given (relative paths made absolute); one line on a bad value."""
    given = {name: getattr(args, name) for name in RunContext.model_fields if getattr(args, name, None) is not None}
    given.update(overrides)
    for name in given:
        if _extra(name).get("path") and given[name]:
            given[name] = str(Path(given[name]).expanduser().resolve())
    return RunContext.from_fields(given, label=lambda field: flags_of(field)[0])
