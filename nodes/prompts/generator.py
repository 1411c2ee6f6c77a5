"""Instruction templates for the video generator, and how refinement extends them.

Why these phrases: TI2V models follow explicit, concrete instructions better
(name the object by colour and shape, say where it must end up, say that
nothing else moves). Refinement adds exactly the phrase the critique calls for.
"""

from __future__ import annotations

PLAIN = {
    "put_in": "Put the {subject} in the {target}.",
    "stack": "Stack the {subject} on the {target}.",
    "move_to": "Move the {subject} to the {target}.",
    "left_of": "Put the {subject} to the left of the {target}.",
    "right_of": "Put the {subject} to the right of the {target}.",
    "swap": "Swap the {subject} and the {partner}.",
}
EXPLICIT = {
    "put_in": "Pick up the {subject} and place it {complete}inside the {target}.",
    "stack": "Pick up the {subject} and set it {complete}on top of the {target}.",
    "move_to": "Pick up the {subject} and carry it {complete}to the {target}, then set it down.",
    "left_of": "Pick up the {subject} and set it down {complete}just to the left of the {target}.",
    "right_of": "Pick up the {subject} and set it down {complete}just to the right of the {target}.",
    "swap": "Swap the {subject} and the {partner}: lift each one and {complete}exchange their places.",
}
COMPLETE = "all the way "
IDENTITY = "Only the {subject} moves."
STILL = "Keep every other object still."


def write_instruction(template_key: str, subject: str, target: str = "", partner: str = "",
                      flags: tuple[str, ...] | list[str] = ()) -> str:
    """The instruction for one sub-action with the given refinement flags."""
    explicit = "explicit" in flags or "complete" in flags
    template = (EXPLICIT if explicit else PLAIN)[template_key]
    text = template.format(subject=subject, target=target, partner=partner,
                           complete=COMPLETE if "complete" in flags else "")
    if "identity" in flags:
        text += " " + IDENTITY.format(subject=subject)
    if "still" in flags:
        text += " " + STILL
    return text
