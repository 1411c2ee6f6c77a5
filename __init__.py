"""SPIRAL: closed-loop, long-horizon, action-conditioned video generation.

The repository's top-level rooms (graph/, nodes/, tools/, memory/, training/,
bench/) install as subpackages of `spiral`.
"""

__version__ = "0.1.0"
