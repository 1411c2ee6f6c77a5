"""Video generators: the `VideoGenerator` protocol, a registry, and the backbones."""

from .base import ProgressFn, Segment, SegmentRequest, VideoGenerator
from .registry import backbone_info, backbone_names, clear_cache, load_generator, register_backbone

__all__ = ["ProgressFn", "Segment", "SegmentRequest", "VideoGenerator", "backbone_info", "backbone_names", "clear_cache",
           "load_generator", "register_backbone"]
