"""Every option of every command is described and states its default; the demo offers only what it uses."""

import argparse

from spiral.shell.cli import parser
from spiral.shell.cli_options import HelpFormatter


def _commands(p: argparse.ArgumentParser, path: str = "spiral"):
    yield path, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{path} {name}")


def _options(p: argparse.ArgumentParser):
    return [a for a in p._actions if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)]


def test_every_option_has_help_and_every_default_is_shown():
    undescribed, no_default = [], []
    formatter = HelpFormatter("spiral")
    for path, command in _commands(parser()):
        for action in _options(command):
            if not action.help:
                undescribed.append(f"{path} {action.option_strings or action.dest}")
            meaningful = action.default not in (None, False, "", [], argparse.SUPPRESS)
            if action.option_strings and meaningful and "default" not in formatter._get_help_string(action):
                no_default.append(f"{path} {action.option_strings}")
    assert undescribed == [] and no_default == []


def test_every_command_s_help_renders():
    for path, command in _commands(parser()):
        assert command.format_help().startswith("Usage: " + path), path


def test_every_command_has_a_description():
    assert [path for path, command in _commands(parser()) if path != "spiral" and not command.description] == []


def test_help_renders_defaults_and_the_demo_lists_no_gpu_or_llm_options():
    commands = dict(_commands(parser()))
    assert "(default: 3)" in " ".join(commands["spiral bench"].format_help().split())
    demo = commands["spiral demo"].format_help()
    assert "--seed" in demo and "--difficulty" in demo
    assert not any(flag in demo for flag in ("--backbone", "--cpu-offload", "--llm-model", "--base-url", "--planner"))
