from __future__ import annotations

from pathlib import Path

import pytest

from spiral.tools.media import save_png
from spiral.tools.world.render import render_scene
from spiral.tools.world.scene import Scene, WorldObject


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own SPIRAL_HOME so nothing leaks between tests."""
    monkeypatch.setenv("SPIRAL_HOME", str(tmp_path / "home"))
    yield


def obj(oid: str, shape: str, color: str, x: float, y: float, size: str = "medium", z: float = 0.0) -> WorldObject:
    return WorldObject(id=oid, shape=shape, color=color, size=size, x=x, y=y, z=z)  # type: ignore[arg-type]


@pytest.fixture
def make_obj():
    return obj


@pytest.fixture
def simple_scene() -> Scene:
    return Scene(objects=[
        obj("bowl", "bowl", "white", 90, 50),
        obj("red_ball", "ball", "red", 30, 40, "small"),
        obj("blue_cube", "cube", "blue", 40, 90, "medium"),
        obj("green_cube", "cube", "green", 95, 100, "large"),
    ])


@pytest.fixture
def scene_png(tmp_path, simple_scene) -> Path:
    return save_png(render_scene(simple_scene), tmp_path / "start.png")



@pytest.fixture
def kill_once_saved():
    """`kill(command, path)`: start `command`, SIGKILL it as soon as `path` exists (a saved state), and fail the
    test if it finished first."""
    import os
    import signal
    import subprocess
    import time

    def kill(command: list[str], path: Path, timeout: float = 300) -> None:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while not path.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"{command[3:5]} finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    return kill
