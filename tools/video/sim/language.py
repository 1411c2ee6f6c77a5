"""How the simulated video model reads a prompt.

A real TI2V model maps text to motion through learned associations; this
reader does so with a small lexicon. It splits a prompt into action clauses,
finds the verb, the object phrase and the goal phrase of each, and notes the
wording that real models respond to (completion words, "keep the rest still").
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from ...words import ObjectRef, parse_ref

VERBS: dict[str, str] = {
    "put": "put", "place": "put", "drop": "put", "set": "put", "pick": "put", "gather": "put",
    "collect": "put", "stack": "stack", "move": "move", "carry": "move", "bring": "move",
    "push": "push", "slide": "push", "shove": "push", "swap": "swap", "exchange": "swap",
    "switch": "swap", "line": "lineup", "arrange": "lineup", "order": "lineup", "sort": "lineup",
}
COMPLETION_PHRASES = ("all the way", "fully", "completely", "entirely", "until it rests", "so that it rests")
STILL_PHRASES = ("keep every other", "keep all other", "keep the other", "keep everything else",
                 "nothing else", "do not move any other", "only the")
_SPLIT = re.compile(r"\s*(?:;|\.(?:\s+|$)|,?\s*\band then\b|,?\s*\bthen\b|,\s*and\s+(?=(?:%s)\b))\s*"
                    % "|".join(VERBS))
_TARGET = re.compile(
    r"\b(into|inside|in|onto|on top of|on|to the left of|to the right of|left of|right of|next to|beside|"
    r"to the|towards the|toward the|at the)\b")
PLACE_WORDS = {"left": "left", "right": "right", "front": "front", "back": "back", "rear": "back",
               "center": "center", "centre": "center", "middle": "center", "far": "back", "near": "front"}


class Intent(BaseModel):
    """One action clause as the model understood it."""

    verb: Literal["put_in", "stack", "move_to", "swap", "lineup"]
    subject: ObjectRef
    other: ObjectRef | None = None
    """The container, the base, the reference object or the swap partner."""
    place: str | None = None
    """left / right / front / back / center, or left_of / right_of with `other`."""
    style: Literal["lift", "slide"] = "lift"
    completion: bool = False


class Reading(BaseModel):
    intents: list[Intent]
    keep_still: bool


def _read_clause(clause: str) -> Intent | None:
    text = clause.lower().strip()
    verb = None
    for m in re.finditer(r"[a-z]+", text):
        if m.group(0) in VERBS:
            verb, rest = VERBS[m.group(0)], text[m.end():]
            break
    if verb is None:
        return None
    completion = any(p in text for p in COMPLETION_PHRASES)
    for phrase in COMPLETION_PHRASES:
        rest = rest.replace(phrase, " ")
    # "pick up the ball and place it in the bowl": the object is named before "and <verb>"
    rest = re.sub(r"\band (?:%s)\b( it| them)?" % "|".join(VERBS), " ", rest)
    if verb == "swap":
        parts = re.split(r"\band\b|\bwith\b", rest, maxsplit=1)
        if len(parts) < 2:
            return None
        return Intent(verb="swap", subject=parse_ref(parts[0]), other=parse_ref(parts[1]), completion=completion)
    if verb == "lineup":
        return Intent(verb="lineup", subject=parse_ref(rest.split(" by ")[0]), completion=completion)
    m = _TARGET.search(rest)
    if m is None:
        return None
    subject = parse_ref(rest[: m.start()])
    prep, goal = m.group(1), rest[m.end():]
    style = "slide" if verb == "push" else "lift"
    if prep in ("to the left of", "left of", "to the right of", "right of", "next to", "beside"):
        place = "left_of" if "left" in prep else "right_of"
        return Intent(verb="move_to", subject=subject, other=parse_ref(goal), place=place, style=style,
                      completion=completion)
    if prep in ("to the", "towards the", "toward the", "at the"):
        words = re.findall(r"[a-z]+", goal)
        place = next((PLACE_WORDS[w] for w in words if w in PLACE_WORDS), None)
        if place is None:
            return None
        return Intent(verb="move_to", subject=subject, place=place, style=style, completion=completion)
    other = parse_ref(goal)
    if other.shape in ("bowl", "plate", "box") or prep in ("into", "inside", "in"):
        return Intent(verb="put_in", subject=subject, other=other, style=style, completion=completion)
    return Intent(verb="stack", subject=subject, other=other, completion=completion)


def read_prompt(prompt: str) -> Reading:
    """Split a prompt into the intents the simulated model will try to render."""
    lowered = prompt.lower()
    clauses = [c for c in _SPLIT.split(lowered) if c and c.strip()]
    intents = [i for i in (_read_clause(c) for c in clauses) if i is not None]
    return Reading(intents=intents, keep_still=any(p in lowered for p in STILL_PHRASES))


__all__ = ["Intent", "ObjectRef", "Reading", "read_prompt"]
