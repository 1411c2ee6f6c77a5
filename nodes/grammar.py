"""The rule planner's action grammar.

Understood (case-insensitive; several clauses may be joined by "then", ";",
"," or "and" before a verb):

* `put|place|move all|every|each|both|all N <colour?> <shapes|objects|things> in|into|on <container>`,
  `put everything in <container>`
* `put|place|move|drop the <object> in|into|inside|on|onto|on top of <container>`
* `stack the <object> on|onto [top of] the <object>` ("the blue one" reuses the subject's shape)
* `swap the <object> and|with the <object>`
* `line|arrange|order|sort the <shapes> [up] [from left to right] by size`
* `move|push|slide the <object> to the left|right|front|back edge|side | center`
* `put|move|place the <object> [to the] left of|right of the <object>`
* `take the <object> out of the <container> and put it in|on <container>`
* `it`/`them` stand for the previous clause's objects; "clear the table: ..." is a heading

`<object>` is any of size (small/medium/large), colour and shape words
("the red ball", "the big cube", "the block"), or a superlative: "the largest
ball", "the leftmost cube", "the ball closest to the bowl"; containers are the
bowl, the plate and the box. A word outside this is named in the error, never
skipped.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from ..tools.errors import ActionParseError
from ..tools.words import (
    COLOR_WORDS,
    GROUP_WORDS,
    SHAPE_WORDS,
    SIZE_WORDS,
    ObjectRef,
    take_word,
)

GRAMMAR_HELP = (
    "I understand: 'put all red objects in the bowl', 'put the red ball in the bowl', "
    "'stack the blue cube on the green cube', 'swap the ball and the cube', "
    "'line the cubes up from left to right by size', 'move the yellow ball to the left edge', "
    "'put the ball left of the cube', 'take the red ball out of the bowl and put it on the plate', "
    "'put the largest ball in the box' (join several with 'then'; docs/actions.md has the grammar)"
)
_VERB = (r"(?:put|place|move|drop|set|push|slide|carry|bring|stack|swap|exchange|switch|line|arrange|order|sort|"
         r"gather|collect|take)")
_SPLIT = re.compile(r"\s*(?:;|\.(?:\s+|$)|,?\s*\band then\b|,?\s*\bthen\b|,?\s+and\s+(?=%s\b))\s*" % _VERB)
_HEADING = re.compile(r"^\s*(?:clear|tidy|clean)(?: up)? (?:the )?table\s*(?::\s*|$)", re.I)
PLACES = {"left": "left", "right": "right", "front": "front", "back": "back", "rear": "back",
          "center": "center", "centre": "center", "middle": "center"}
VERBS = ("put", "place", "move", "drop", "set", "push", "slide", "carry", "bring", "stack", "swap", "exchange",
         "switch", "line", "arrange", "order", "sort", "gather", "collect", "take")
_FILLERS = {"the", "a", "an", "of", "one", "ones", "that", "which", "is", "are"}
_COUNTS = {"both": 2, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_RANKS = {"largest": "largest", "biggest": "largest", "smallest": "smallest", "littlest": "smallest",
          "leftmost": "leftmost", "rightmost": "rightmost"}
_NEAR = re.compile(r"^(.*?)\s*(?:(?:that|which) (?:is|are) )?(closest|nearest|farthest|furthest)(?: to| from)? (.+)$")
_STRUCTURE = {"in", "into", "inside", "on", "onto", "top", "to", "and", "with", "by", "size", "up", "from", "out",
              "edge", "side", "table", "very", "just", "directly", "it", "them", "then", "all", "every", "each",
              *PLACES, *VERBS, *_FILLERS, *_COUNTS, *_RANKS}


def _unknown_word(phrase: str, text: str) -> ActionParseError:
    return ActionParseError(f"cannot parse {text.strip()!r}: {phrase!r} is not a word I know. {GRAMMAR_HELP}")


def read_ref(phrase: str, text: str) -> ObjectRef:
    """The object words of `phrase`; a word the grammar does not know is named, never skipped."""
    words = " ".join(re.findall(r"[a-z\-]+", phrase.lower()))
    if m := _NEAR.match(words):
        ref = read_ref(m.group(1), text)
        anchor = read_ref(m.group(3), text)
        return ref.model_copy(update={"rank": "nearest" if m.group(2) in ("closest", "nearest") else "farthest",
                                      "anchor": anchor})
    ref = ObjectRef()
    for w in words.split():
        if w in _RANKS and ref.rank is None:  # before the size words, where "largest" would mean large
            ref.rank = _RANKS[w]
        elif w in _COUNTS:  # before the group words, where "both" would lose its count
            ref.group, ref.count = True, _COUNTS[w]
        elif take_word(ref, w):
            continue
        elif w == "everything":
            ref.group = True
        elif w not in _FILLERS:
            raise _unknown_word(w, text)
    return ref


class Clause(BaseModel):
    """One parsed instruction, before it is grounded in the scene."""

    kind: Literal["put_in", "stack", "swap", "lineup", "place", "relative", "take_out"]
    subject: ObjectRef
    other: ObjectRef | None = None
    place: str | None = None
    source: ObjectRef | None = None
    """The container a 'take X out of Y' clause says the subject is in now (checked when grounded)."""


_PRONOUNS = {"it", "them"}


def _clause(text: str, previous: ObjectRef | None) -> Clause:
    t = " ".join(re.findall(r"[a-z\-]+", text.lower()))

    def ref(phrase: str) -> ObjectRef:
        if phrase.strip() in _PRONOUNS:
            if previous is None:
                raise ActionParseError(f"cannot parse {text.strip()!r}: {phrase.strip()!r} refers to nothing before "
                                       f"it; name the object. {GRAMMAR_HELP}")
            return previous
        return read_ref(phrase, text)

    def pair(first: str, second: str) -> tuple[ObjectRef, ObjectRef]:
        a, b = ref(first), ref(second)
        if "one" in second.split() and b.shape is None:  # "the blue one": the subject's shape
            b = b.model_copy(update={"shape": a.shape})
        return a, b

    if m := re.match(r"(?:swap|exchange|switch) (.+?) (?:and|with) (.+)$", t):
        a, b = pair(m.group(1), m.group(2))
        return Clause(kind="swap", subject=a, other=b)
    if m := re.match(r"(?:swap|exchange|switch) (.+?)(?: around| over)?$", t):  # "swap the two cubes": a pair
        group = ref(m.group(1))
        if not group.group:
            raise ActionParseError(f"cannot parse {text.strip()!r}: a swap needs two objects: 'swap the X and the Y' "
                                   f"or 'swap the two Xs'. {GRAMMAR_HELP}")
        return Clause(kind="swap", subject=group.model_copy(update={"count": 2}))
    if m := re.match(r"(?:line|arrange|order|sort) (.+?)(?: up)?(?: from left to right)? by size$", t):
        return Clause(kind="lineup", subject=ref(m.group(1)))
    if m := re.match(r"take (.+?) out of (.+)$", t):
        return Clause(kind="take_out", subject=ref(m.group(1)), source=ref(m.group(2)))
    if m := re.match(r"stack (.+?) (?:onto|on)(?: top of)? (.+)$", t):
        a, b = pair(m.group(1), m.group(2))
        return Clause(kind="stack", subject=a, other=b)
    if m := re.match(r"(?:move|push|slide|carry|bring|put|place) (.+?) to (?:the )?(?:very )?"
                     r"(left|right|front|back|rear|center|centre|middle)(?: edge| side| of the table)*$", t):
        return Clause(kind="place", subject=ref(m.group(1)), place=PLACES[m.group(2)])
    if m := re.match(r"(?:put|place|move|set|push|slide) (.+?) (?:to the |just |directly )?(left|right) of (.+)$", t):
        a, b = pair(m.group(1), m.group(3))
        return Clause(kind="relative", subject=a, other=b, place=f"{m.group(2)}_of")
    if m := re.match(r"(?:put|place|move|drop|set|gather|collect|carry|bring) (.+?) "
                     r"(?:on top of|into|inside|in|onto|on) (.+)$", t):
        a, other = pair(m.group(1), m.group(2))
        if other.shape not in ("bowl", "plate", "box"):
            return Clause(kind="stack", subject=a, other=other)
        return Clause(kind="put_in", subject=a, other=other)
    raise _why_not(t, text)


def _why_not(t: str, text: str) -> ActionParseError:
    """The most specific reason a clause did not parse: an unknown verb or word, or a missing part."""
    words = t.split()
    if not words:
        return ActionParseError(f"the action is empty. {GRAMMAR_HELP}")
    if words[0] not in VERBS:
        return ActionParseError(f"cannot parse {text.strip()!r}: {words[0]!r} is not a verb I know "
                                f"({', '.join(VERBS)}). {GRAMMAR_HELP}")
    known = _STRUCTURE | set(COLOR_WORDS) | set(SIZE_WORDS) | set(SHAPE_WORDS) | GROUP_WORDS | {"everything",
                                                                                                  "closest", "nearest",
                                                                                                  "farthest", "furthest"}
    for w in words[1:]:
        if w not in known:
            return _unknown_word(w, text)
    return ActionParseError(f"cannot parse {text.strip()!r}: after {words[0]!r} I expected an object and where it goes "
                            f"(or, for 'take', 'out of' a container). {GRAMMAR_HELP}")


def parse_action(action: str) -> list[Clause]:
    """Clauses of a high-level action; ActionParseError names the word or part it does not understand."""
    text = action.strip()
    if heading := _HEADING.match(text):
        text = text[heading.end():]
        if not text.strip():
            raise ActionParseError(f"cannot parse {action.strip()!r}: say where things go, e.g. 'clear the table: put "
                                   f"everything in the box'. {GRAMMAR_HELP}")
    parts = [p for p in _SPLIT.split(text) if p and p.strip()]
    if not parts:
        raise ActionParseError(f"the action is empty. {GRAMMAR_HELP}")
    clauses: list[Clause] = []
    for part in parts:
        clause = _clause(part, clauses[-1].subject if clauses else None)
        if clauses and clauses[-1].kind == "take_out":
            if clause.subject is not clauses[-1].subject or clause.kind != "put_in":
                raise _dangling_take_out(clauses[-1])
            clause = clause.model_copy(update={"source": clauses[-1].source})
            clauses[-1] = clause
            continue
        clauses.append(clause)
    if clauses[-1].kind == "take_out":
        raise _dangling_take_out(clauses[-1])
    return clauses


def _dangling_take_out(clause: Clause) -> ActionParseError:
    what = clause.subject.words()
    return ActionParseError(f"'take the {what} out of the {clause.source.words() if clause.source else 'container'}' "
                            f"needs to say where it goes next: 'take the {what} out of the bowl and put it on the "
                            f"plate'. {GRAMMAR_HELP}")
