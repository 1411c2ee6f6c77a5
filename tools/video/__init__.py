"""Video generators: the `VideoGenerator` protocol, a registry, and the built-in backbones."""

from . import catalog  # noqa: F401  (registers the built-in backbones)
from .base import ProgressFn, Segment, SegmentRequest, VideoGenerator, generate_group
from .registry import (
           BackboneInfo,
           backbone_info,
           backbone_names,
           clear_cache,
           load_generator,
           register_backbone,
)

__all__ = ["BackboneInfo", "ProgressFn", "Segment", "SegmentRequest", "VideoGenerator", "backbone_info",
           "backbone_names", "clear_cache", "generate_group", "load_generator", "register_backbone"]
