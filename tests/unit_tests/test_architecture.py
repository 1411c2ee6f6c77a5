"""The rooms and arrows of DESIGN.md hold: import-linter's contracts (pyproject.toml) pass on this tree
and fail on a tree with an upward import, and no module imports another module's private names."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("shell", "graph", "nodes", "tools", "memory", "vocabulary", "bench", "training")
FOLDERS = "the folders, top to bottom: shell -> bench/training -> graph -> nodes -> memory -> vocabulary -> tools"
CYCLES = "no import cycles between the modules of a room, at any depth"
TOOLS_ALONE = "tools/ knows nothing of LangGraph and can be used alone"
GRAPH_FLOORS = "inside graph/: the report data -> the session driver -> the workflow, routing and time travel"
CONTRACTS = (FOLDERS, GRAPH_FLOORS, CYCLES, TOOLS_ALONE, "planner, critic, graph and memory reach the simulator only through the registry, "
             "by name")


def _lint(root: Path, package_parent: Path | None = None) -> subprocess.CompletedProcess:
    """lint-imports on the tree at `root`; `package_parent` puts a copied tree first on the path."""
    lint = Path(sys.executable).with_name("lint-imports")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if package_parent:
        env["PYTHONPATH"] = str(package_parent)  # `spiral` resolves to the tree under test
    return subprocess.run([str(lint), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def _copy_tree(tmp_path: Path) -> Path:
    package = tmp_path / "spiral"
    package.mkdir()
    shutil.copy(ROOT / "__init__.py", package / "__init__.py")
    shutil.copy(ROOT / "pyproject.toml", package / "pyproject.toml")
    for room in ROOMS:
        shutil.copytree(ROOT / room, package / room, ignore=shutil.ignore_patterns("__pycache__"))
    return package


def verdicts(output: str) -> dict[str, str]:
    """Each contract's verdict, KEPT or BROKEN, from lint-imports' report (whose lines wrap at 80 columns)."""
    flat = re.sub(r"\s+", " ", output)
    found = {}
    for name in CONTRACTS:
        match = re.search(re.escape(name) + r" (KEPT|BROKEN)", flat)
        found[name] = match.group(1) if match else "missing"
    return found


def test_the_tree_keeps_every_contract():
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert verdicts(res.stdout) == {name: "KEPT" for name in CONTRACTS}
    assert f"{len(CONTRACTS)} kept, 0 broken" in res.stdout


@pytest.mark.parametrize("where,line,broken", [
    ("tools/errors.py", "from spiral.vocabulary.state import Plan  # upward\n", {FOLDERS, TOOLS_ALONE}),
    ("memory/gc.py", "def _peek():\n    from spiral.nodes import plan  # upward, inside a function\n", {FOLDERS}),
    ("nodes/ledger.py", "from spiral.graph import session  # a node importing the session driver\n",
     {FOLDERS, GRAPH_FLOORS}),  # and through the nodes, the workflow would reach up to the session
    ("vocabulary/state.py", "from spiral.memory import traces  # the vocabulary reaching up\n", {FOLDERS}),
    ("nodes/grammar.py", "def _peek():\n    from spiral.nodes import plan  # a cycle through a function\n", {CYCLES}),
])
def test_an_upward_import_or_a_cycle_breaks_a_contract(tmp_path, where, line, broken):
    """Exactly the contracts the line breaks say BROKEN; the others stay KEPT."""
    package = _copy_tree(tmp_path)
    with open(package / where, "a") as fh:
        fh.write("\n\n" + line)
    res = _lint(package, tmp_path)
    assert res.returncode != 0
    assert verdicts(res.stdout) == {name: "BROKEN" if name in broken else "KEPT" for name in CONTRACTS}


def _spiral_module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["spiral", *parts])


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for room in ROOMS:
        for path in (ROOT / room).rglob("*.py"):
            me = _spiral_module(path)
            package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ImportFrom):
                    continue
                base = package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rsplit(".", 1)[0]
                source = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
                if not source.startswith("spiral") or source == me:
                    continue
                offenders += [f"{me} imports {source}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []


def test_the_folder_picture_runs_only_down_and_the_docs_show_it():
    from spiral.shell.drawing import FOLDERS, folder_imports, folders_block

    edges = folder_imports()
    floor = {name: FOLDERS.index(name) if name != "training" else FOLDERS.index("bench") for name in FOLDERS}
    upward = sorted((a, b) for a, b in edges if floor[a] > floor[b])
    assert upward == [] and ("graph", "nodes") in edges and ("vocabulary", "tools") in edges
    assert folders_block() in (ROOT / "docs" / "architecture.md").read_text(), "docs/architecture.md: redraw the folders"
