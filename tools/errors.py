"""One exception hierarchy for SPIRAL.

Every message says what to do next; the CLI prints it on one line and exits
non-zero without a traceback.
"""


class SpiralError(Exception):
    """Base of every error SPIRAL raises on purpose."""

    exit_code = 2


class InputError(SpiralError):
    """Bad user input: an image that cannot be read, sizes out of range, ..."""


class ActionParseError(InputError):
    """The action text is outside what the rule planner's grammar understands."""


class UnknownBackboneError(InputError):
    """A backbone name that is not registered."""


class PerceptionError(SpiralError):
    """The start image does not show a scene the offline agents can read."""


class ResumeError(SpiralError):
    """A thread that cannot be resumed (unknown id, already finished, ...)."""


class LLMUnavailableError(SpiralError):
    """The LLM server could not be reached or kept failing after the bounded retries."""
