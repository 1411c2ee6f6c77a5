"""`sim`: a SIMULATOR of a TI2V video model on the procedural tabletop world."""

from .config import PRESETS, SimConfig, preset
from .generator import SimTruth, SimVideoGenerator, scene_from_frame

__all__ = ["PRESETS", "SimConfig", "SimTruth", "SimVideoGenerator", "preset", "scene_from_frame"]
