"""English words for tabletop objects, shared by everything that reads text.

Both the rule planner (reading the user's action) and the simulated video
model (reading a prompt) need to know that "big" means large and "sphere"
means ball; that knowledge of English lives here once.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

from .world.scene import OBJECT_COLORS

COLOR_WORDS = {c: c for c in OBJECT_COLORS} | {"violet": "purple", "gold": "yellow", "white": "white",
                                               "black": "black", "brown": "brown"}
SIZE_WORDS = {"small": "small", "little": "small", "tiny": "small", "smallest": "small", "medium": "medium",
              "mid-sized": "medium", "large": "large", "big": "large", "largest": "large", "biggest": "large"}
SHAPE_WORDS = {"ball": "ball", "balls": "ball", "sphere": "ball", "spheres": "ball", "cube": "cube",
               "cubes": "cube", "block": "block", "blocks": "block", "bar": "block", "bars": "block",
               "brick": "block", "bricks": "block", "bowl": "bowl", "plate": "plate", "box": "box",
               "tray": "box", "dish": "plate"}
PLURAL_SHAPES = {"balls", "spheres", "cubes", "blocks", "bars", "bricks"}
GROUP_WORDS = {"all", "every", "each", "both", "objects", "things", "items", "toys"}


class ObjectRef(BaseModel):
    """Words that pick out one object or a group: colour, shape, size, plural; for the planner also a
    count ("both", "all three") and a superlative ("the largest", "the ball closest to the bowl")."""

    color: str | None = None
    shape: str | None = None
    size: str | None = None
    group: bool = False
    count: int | None = None
    """How many the words say there are ("both": 2), checked against the scene."""
    rank: str | None = None
    """largest, smallest, leftmost, rightmost, nearest or farthest: pick the one extreme match."""
    anchor: ObjectRef | None = None
    """What nearest/farthest is measured from."""

    @property
    def specific(self) -> bool:
        """Colour and shape both named."""
        return self.color is not None and self.shape is not None

    def words(self) -> str:
        parts = [p for p in (self.rank if self.anchor is None else None, self.size, self.color,
                             self.shape or "object") if p]
        text = " ".join(parts)
        if self.anchor is not None:
            text += f" {self.rank} {'to' if self.rank == 'nearest' else 'from'} the {self.anchor.words()}"
        return text


def take_word(ref: ObjectRef, w: str) -> bool:
    """Fill `ref` from one colour, size, shape or group word; False when the word is none of those (or
    names a slot already filled)."""
    if w in COLOR_WORDS and ref.color is None:
        ref.color = COLOR_WORDS[w]
    elif w in SIZE_WORDS and ref.size is None:
        ref.size = SIZE_WORDS[w]
    elif w in SHAPE_WORDS and ref.shape is None:
        ref.shape = SHAPE_WORDS[w]
        ref.group = ref.group or w in PLURAL_SHAPES
    elif w in GROUP_WORDS:
        ref.group = True
    else:
        return False
    return True


def parse_ref(phrase: str) -> ObjectRef:
    """The first colour, size and shape words of `phrase`, and whether it is plural (other words skipped:
    the simulator reads prompts full of manner words)."""
    ref = ObjectRef()
    for w in re.findall(r"[a-z\-]+", phrase.lower()):
        take_word(ref, w)
    return ref
