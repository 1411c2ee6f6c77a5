"""The rule planner's action grammar.

Understood (case-insensitive; several clauses may be joined by "then", ";",
"," or "and" before a verb):

* `put|place|move all|every|each <colour?> <shapes|objects|things> in|into|on <container>`
* `put|place|move|drop the <object> in|into|inside|on <container>`
* `stack the <object> on [top of] the <object>`
* `swap the <object> and|with the <object>`
* `line|arrange|order|sort the <shapes> [up] [from left to right] by size`
* `move|push|slide the <object> to the left|right|front|back edge|side | center`
* `put|move|place the <object> [to the] left of|right of the <object>`

`<object>` is any of size (small/medium/large), colour and shape words
("the red ball", "the big cube", "the block"); containers are the bowl, the
plate and the box.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from ..tools.errors import ActionParseError
from ..tools.words import ObjectRef, parse_ref

GRAMMAR_HELP = (
    "I understand: 'put all red objects in the bowl', 'put the red ball in the bowl', "
    "'stack the blue cube on the green cube', 'swap the ball and the cube', "
    "'line the cubes up from left to right by size', 'move the yellow ball to the left edge', "
    "'put the ball left of the cube' (join several with 'then')"
)
_VERB = r"(?:put|place|move|drop|set|push|slide|carry|bring|stack|swap|exchange|switch|line|arrange|order|sort|gather|collect)"
_SPLIT = re.compile(r"\s*(?:;|\.(?:\s+|$)|,?\s*\band then\b|,?\s*\bthen\b|,?\s+and\s+(?=%s\b))\s*" % _VERB)
PLACES = {"left": "left", "right": "right", "front": "front", "back": "back", "rear": "back",
          "center": "center", "centre": "center", "middle": "center"}


class Clause(BaseModel):
    """One parsed instruction, before it is grounded in the scene."""

    kind: Literal["put_in", "stack", "swap", "lineup", "place", "relative"]
    subject: ObjectRef
    other: ObjectRef | None = None
    place: str | None = None


def _clause(text: str) -> Clause:
    t = " ".join(re.findall(r"[a-z\-]+", text.lower()))
    if m := re.match(r"(?:swap|exchange|switch) (.+?) (?:and|with) (.+)$", t):
        return Clause(kind="swap", subject=parse_ref(m.group(1)), other=parse_ref(m.group(2)))
    if m := re.match(r"(?:line|arrange|order|sort) (.+?)(?: up)?(?: from left to right)? by size$", t):
        return Clause(kind="lineup", subject=parse_ref(m.group(1)))
    if m := re.match(r"stack (.+?) on (?:top of )?(.+)$", t):
        return Clause(kind="stack", subject=parse_ref(m.group(1)), other=parse_ref(m.group(2)))
    if m := re.match(r"(?:move|push|slide|carry|bring|put|place) (.+?) to (?:the )?(?:very )?"
                     r"(left|right|front|back|rear|center|centre|middle)(?: edge| side| of the table)*$", t):
        return Clause(kind="place", subject=parse_ref(m.group(1)), place=PLACES[m.group(2)])
    if m := re.match(r"(?:put|place|move|set|push|slide) (.+?) (?:to the |just |directly )?(left|right) of (.+)$", t):
        return Clause(kind="relative", subject=parse_ref(m.group(1)), other=parse_ref(m.group(3)),
                      place=f"{m.group(2)}_of")
    if m := re.match(r"(?:put|place|move|drop|set|gather|collect|carry|bring) (.+?) "
                     r"(?:in|into|inside|on|onto|on top of) (.+)$", t):
        other = parse_ref(m.group(2))
        if other.shape not in ("bowl", "plate", "box"):
            return Clause(kind="stack", subject=parse_ref(m.group(1)), other=other)
        return Clause(kind="put_in", subject=parse_ref(m.group(1)), other=other)
    raise ActionParseError(f"cannot parse {text.strip()!r}. {GRAMMAR_HELP}")


def parse_action(action: str) -> list[Clause]:
    """Clauses of a high-level action; ActionParseError says what is understood."""
    parts = [p for p in _SPLIT.split(action.strip()) if p and p.strip()]
    if not parts:
        raise ActionParseError(f"the action is empty. {GRAMMAR_HELP}")
    return [_clause(p) for p in parts]
