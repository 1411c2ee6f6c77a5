"""Preflight: everything the first steps would reject, checked before a thread exists.

The settings (the backbone's checks, an API key for LLM agents), an unreadable
start image, an image with no objects, and with the rule planner an action
outside the grammar or naming objects that are not there. It writes nothing,
and hands back the start frame at the run's size: the session stores it and
starts the thread with its artifact ref, so the first steps neither read the
user's file again nor ground the action again (grounding is memoised).
"""

from __future__ import annotations

import numpy as np

from ..graph.config import RunContext
from ..tools.perception import perceive
from .ingest import check_settings, load_start_frame
from .plan import require_objects
from .planner import ground_action


def preflight(image: str, action: str, settings: RunContext) -> np.ndarray:
    check_settings(settings)
    frame = load_start_frame(image, settings)
    scene = perceive(frame)
    require_objects(scene)
    if settings.planner == "rule":
        ground_action(action, scene)
    return frame
