"""The trace database's records: one pydantic model per table, its key and its column types.

Lists and dicts are stored as JSON text; a model's fields are its table's
columns, the key's first. `memory/traces.py` writes and reads them.
"""

from __future__ import annotations

import json
from types import UnionType
from typing import (
    Any,
    ClassVar,
    Literal,
    NamedTuple,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

from pydantic import BaseModel, Field

CriticKind = Literal["perception", "llm", "ensemble", "none", "person"]
"""Who judged an attempt: an offline or LLM critic, nobody (`none`: accepted unjudged), or a person."""
R = TypeVar("R", bound="Record")


def column_value(value: Any) -> Any:
    """JSON text for containers, 0/1 for booleans (an integer column in SQLite and PostgreSQL alike)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return int(value) if isinstance(value, bool) else value

class Record(BaseModel):
    """A row of one table; lists and dicts are stored as JSON text."""

    table: ClassVar[str]
    key: ClassVar[tuple[str, ...]]

    def row(self) -> dict[str, Any]:
        """Column values as every backend stores them (see `column_value`)."""
        return {k: column_value(v) for k, v in self.model_dump().items()}

    @classmethod
    def from_row(cls: type[R], row: dict[str, Any]) -> R:
        fields = cls.model_fields
        values = {k: json.loads(v) if isinstance(v, str) and _column_type(fields[k].annotation) is _JSON else v
                  for k, v in row.items() if k in fields}
        return cls.model_validate(values)

    @classmethod
    def columns(cls) -> dict[str, type]:
        """Column types, the key's columns first (as people browse the table)."""
        names = [*cls.key, *(n for n in cls.model_fields if n not in cls.key)]
        return {n: str if (t := _column_type(cls.model_fields[n].annotation)) is _JSON else t for n in names}


class _JSON:
    """Column type marker: a list or dict stored as JSON text."""


def _column_type(annotation: Any) -> type:
    """SQLite column type of a field: JSON text for containers, else that of its first non-None type."""
    options = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) in (Union, UnionType) \
        else [annotation]
    first = options[0]
    if get_origin(first) in (dict, list) or first in (dict, list):
        return _JSON
    if get_origin(first) is Literal:
        return str
    return {bool: int, int: int, float: float}.get(first, str)


class EpisodeRecord(Record):
    table: ClassVar[str] = "episodes"
    key: ClassVar[tuple[str, ...]] = ("thread_id",)

    thread_id: str
    action: str
    status: str = "running"
    backbone: str = ""
    planner: str = ""
    critic: str = ""
    seed: int = 0
    generator_calls: int = 0
    replans: int = 0
    out_dir: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)
    """The run context as the episode ran (a record, for people and the trainer; runs resume from state)."""


class PlanRecord(Record):
    """Every plan an episode made: the first (version 0) and each replan."""

    table: ClassVar[str] = "plans"
    key: ClassVar[tuple[str, ...]] = ("thread_id", "version")

    thread_id: str
    version: int
    plan: str
    """Artifact ref of the `Plan` (JSON)."""
    planner: str
    """`rule`, or `llm` (with `fallback` when its replies were invalid and the rule planner took over)."""
    fallback: str = ""
    sub_actions: int = 0
    usage: dict[str, float | str] = Field(default_factory=dict)


class SubActionRecord(Record):
    table: ClassVar[str] = "sub_actions"
    key: ClassVar[tuple[str, ...]] = ("thread_id", "plan_version", "index")

    thread_id: str
    plan_version: int
    index: int
    sub_action_id: str
    verb: str
    subject: str
    description: str
    postconditions: list[str]
    passed: bool
    tries: int
    segment: str


class AttemptKey(NamedTuple):
    thread_id: str
    plan_version: int
    sub_action_index: int
    try_index: int
    sample: int = 0
    """Which of the try's `group_size` samples (0 when one segment is generated per try)."""


class Verdict(BaseModel):
    """What was decided about an attempt, and by whom (nobody yet: `critic` None)."""

    critic: CriticKind | None = None
    judged: bool = False
    """False when nobody looked (`critic="none"`): `passed` is then None, not a pass."""
    passed: bool | None = None
    failure: str | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    feedback: str = ""
    suggestion: str = ""
    evidence: dict[str, float | str] = Field(default_factory=dict)
    """The critic's dense measurements (distances, displacements, jumps), for people and training."""
    critique_s: float = 0.0


class Judgement(Verdict):
    """A verdict on an attempt: by a critic (or `none`), or by a person in review."""

    critic: CriticKind


class AttemptRecord(Verdict, Record):
    table: ClassVar[str] = "attempts"
    key: ClassVar[tuple[str, ...]] = ("thread_id", "plan_version", "sub_action_index", "try_index", "sample")

    thread_id: str
    plan_version: int
    sub_action_index: int
    try_index: int
    sample: int = 0
    """A try makes `group_size` samples from the same frame and instruction (a GRPO group); 0 to G-1."""
    group_size: int = 1
    chosen: bool = True
    """The sample the loop went on with (the best passing one of its group; the only one when G = 1)."""
    sub_action_id: str
    verb: str
    movers: list[str]
    postconditions: list[str]
    prompt: str
    flags: list[str]
    seed: int
    backbone: str
    conditioning_frame: str
    """Artifact ref of the frame the segment was generated from."""
    segment: str
    last_frame: str
    thumbnail: str
    trajectory: str = ""
    generate_s: float = 0.0
    critic_passed: bool | None = None
    """The critic's verdict when a person's replaced it."""
    review: Literal["", "approve", "reject"] = ""
    review_feedback: str = ""
    usage: dict[str, float | str] = Field(default_factory=dict)
    """LLM calls for this attempt: tokens, latency, tries, fallbacks per role (critic, refiner)."""

    @property
    def key_of(self) -> AttemptKey:
        return AttemptKey(self.thread_id, self.plan_version, self.sub_action_index, self.try_index, self.sample)


class Lesson(BaseModel):
    """A phrasing lesson (memory/store.py): what failed for a verb on a kind of object, and what fixed it."""

    verb: str
    shape: str
    failure: str
    failed_prompt: str
    fixed_prompt: str
    fixed_flags: list[str]
    text: str


class LessonRecord(Lesson, Record):
    table: ClassVar[str] = "lessons"
    key: ClassVar[tuple[str, ...]] = ("thread_id", "text")

    thread_id: str


RECORDS: tuple[type[Record], ...] = (EpisodeRecord, PlanRecord, SubActionRecord, AttemptRecord, LessonRecord)
