"""What a user gets from `pip install spiral-actwm`: the wheel, no extras, no torch, runs the demo."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, timeout: float = 900, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)


def _source_tree(dest: Path) -> Path:
    """The files a source distribution holds, copied (a build/ folder left in the checkout would leak in)."""
    dest.mkdir()
    for name in ("__init__.py", "setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    rooms = [p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests"]  # as setup.py finds them
    assert {"shell", "vocabulary", "graph", "tools"} <= set(rooms)
    for room in rooms:
        shutil.copytree(ROOT / room, dest / room, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_the_wheel_installs_without_torch_and_runs_the_demo(tmp_path):
    source = _source_tree(tmp_path / "src")
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path / "dist"), str(source))
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("spiral_actwm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "spiral/tools/video/sim/generator.py" in names and "spiral/nodes/prompts/critic.md" in names
    assert {"spiral/shell/templates/report.html.j2", "spiral/bench/templates/bench_page.html.j2"} <= set(names)
    assert not [n for n in names if n.startswith(("spiral/tests", "spiral/setup.py", "spiral/docs"))]
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)  # the interpreter behind this virtual environment
    assert _run(base, "-m", "venv", str(venv)).returncode == 0
    python, spiral = venv / "bin" / "python", venv / "bin" / "spiral"
    installed = _run(str(python), "-m", "pip", "install", "-q", str(wheel))
    assert installed.returncode == 0, installed.stderr
    assert _run(str(python), "-c", "import importlib.util as u; assert u.find_spec('torch') is None").returncode == 0

    out = tmp_path / "out"
    demo = _run(str(spiral), "demo", "--out", str(out), "--workspace", str(tmp_path / "ws"), cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "SIMULATED" in demo.stdout and (out / "summary.json").stat().st_size > 0
    assert (out / "video.mp4").stat().st_size > 0 and "data-attempt=" in (out / "report.html").read_text()

    listed = _run(str(spiral), "backbones", cwd=tmp_path)  # every backbone is listed without torch
    assert listed.returncode == 0 and "wan2.2-ti2v" in listed.stdout and "frames 4k+1" in listed.stdout
    gpu = _run(str(spiral), "run", "--image", str(out / "start.png"), "--action", "put the red cube in the bowl",
               "--backbone", "tiny-wan", "--frames", "5", "--workspace", str(tmp_path / "ws2"), cwd=tmp_path)
    assert gpu.returncode == 2 and "needs torch and diffusers" in gpu.stderr and "Traceback" not in gpu.stderr
