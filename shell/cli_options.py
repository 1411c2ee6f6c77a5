"""`spiral` flags derived from pydantic models' fields (`RunContext`, the training configs): names, types,
defaults, choices and help text.

A field `num_frames` is `--num-frames` (and its short flag, `--frames`, when
the field names one); a bool is `--x/--no-x`; a Literal lists its choices;
path fields are resolved against the current folder. Only the flags given
reach `RunContext`, so its defaults and bounds are the only ones.
"""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from rich_argparse import RichHelpFormatter

from ..tools.errors import InputError
from ..vocabulary.config import RunContext


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


def _extra(name: str, model: type[BaseModel] = RunContext) -> dict[str, Any]:
    extra = model.model_fields[name].json_schema_extra
    return extra if isinstance(extra, dict) else {}


def flags_of(name: str, model: type[BaseModel] = RunContext) -> list[str]:
    long = "--" + name.replace("_", "-")
    short = _extra(name, model).get("flag")
    return [short, long] if short and short != long else [long]


def _default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "see above"
    return "the backbone's" if field.default is None else repr(field.default)


DEMO_OPTIONS = ("seed", "difficulty", "max_tries_per_segment", "max_replans", "max_generator_calls", "review",
                "memory", "write_video", "workspace", "out_dir")
"""What `spiral demo` offers: the demo runs the built-in scene on the simulator, so no backbone, GPU or LLM flags."""


def _scalar(annotation: Any) -> Any:
    """`int | None` -> int; any other annotation as it is."""
    options = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(options) == 1:
        return options[0]
    return annotation


def add_model_options(parser: argparse.ArgumentParser, model: type[BaseModel], only: tuple[str, ...] = (),
                      skip: tuple[str, ...] = ()) -> None:
    """One option per scalar field of `model` (or per field named in `only`): its flag, type, choices and help
    come from the field, and its default stays the model's (an option not given does not reach the model)."""
    for name, field in model.model_fields.items():
        if only and name not in only or name in skip:
            continue
        kind = _scalar(field.annotation)
        if kind not in (bool, int, float, str) and typing.get_origin(kind) is not typing.Literal:
            continue  # nested settings (a LoRA, reward weights) have options of their own
        described = field.default_factory is not None or "default" in (field.description or "")
        text = field.description or name.replace("_", " ")
        kwargs: dict[str, Any] = {"dest": name, "default": None,
                                  "help": text if described else f"{text} (default: {_default_text(field)})"}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is typing.Literal:
            kwargs["choices"] = list(typing.get_args(kind))
        else:
            kwargs["type"] = kind if kind in (int, float) else str
            kwargs["metavar"] = name.upper()
        parser.add_argument(*flags_of(name, model), **kwargs)


def add_context_options(parser: argparse.ArgumentParser, only: tuple[str, ...] = ()) -> None:
    """One option per run-context field (or per field named in `only`)."""
    add_model_options(parser, RunContext, only)


def given_fields(args: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:
    """The fields of `model` whose options were given (relative paths made absolute)."""
    given = {name: getattr(args, name) for name in model.model_fields if getattr(args, name, None) is not None}
    for name in given:
        if _extra(name, model).get("path") and given[name]:
            try:
                given[name] = str(Path(given[name]).expanduser().resolve())
            except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
                raise InputError(f"{flags_of(name, model)[-1]} {given[name]}: {getattr(exc, 'strerror', None) or exc}") \
                    from None
    return given


M = typing.TypeVar("M", bound=BaseModel)


def model_from_args(model: type[M], args: argparse.Namespace, **overrides: Any) -> M:
    """`model` from the options given (and `overrides`), with one line naming the flag for a bad value."""
    try:
        return model(**{**given_fields(args, model), **overrides})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        name = flags_of(field, model)[0] if field in model.model_fields else field
        reason = error["msg"].removeprefix("Value error, ")
        raise InputError(f"{name}: {reason} (got {error.get('input')!r})" if name else reason) from None


def context_from_args(args: argparse.Namespace, **overrides: Any) -> RunContext:
    """The run context from the flags given (relative paths made absolute); one line on a bad value."""
    given = {**given_fields(args, RunContext), **overrides}
    return RunContext.from_fields(given, label=lambda field: flags_of(field)[0])
