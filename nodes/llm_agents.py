"""LLM/VLM PlanAgent, CriticAgent and refiner, with structured output and offline fallbacks.

Replies are JSON validated into pydantic models (the OpenAI `json_schema`
response format is requested, so servers that support it constrain decoding).
A reply that fails validation is sent back with the validation error, up to
`STRUCTURED_TRIES` times; then the offline agent takes over and a warning is
recorded. Connection failures, timeouts, 429 and 5xx are retried with backoff
by the OpenAI client and then raise `LLMUnavailableError` (the episode stays
checkpointed and resumes once the server is back). Token usage and latency of
every call are recorded.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Literal, TypeVar

import numpy as np
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, Field, ValidationError

from ..tools.errors import LLMUnavailableError
from ..tools.llm import chat_model
from ..tools.media import data_url, keyframe_sheet, png_bytes
from ..tools.perception import PerceivedObject
from ..tools.predicates import Predicate
from ..tools.world.scene import name_among
from ..vocabulary.config import RunContext
from ..vocabulary.state import (
    CriticFailure,
    Critique,
    CritiqueScores,
    Ledger,
    Plan,
    SubAction,
)
from .credentials import llm_endpoint
from .planner import PLACE_WORDS
from .prompts.templates import template

log = logging.getLogger(__name__)
STRUCTURED_TRIES = 3
T = TypeVar("T", bound=BaseModel)
PREDICATES = {"inside", "on", "at_edge", "left_of", "right_of", "at", "on_table"}


class LLMStep(BaseModel):
    verb: Literal["put_in", "stack", "move_to", "swap"]
    subject: str
    target: str | None = None
    partner: str | None = None
    description: str
    prompt: str
    preconditions: list[str] = Field(default_factory=list)
    postconditions: list[str]


class LLMPlanReply(BaseModel):
    sub_actions: list[LLMStep]


class LLMCritiqueReply(BaseModel):
    action_completion: float = Field(ge=0, le=1)
    object_fidelity: float = Field(ge=0, le=1)
    temporal_consistency: float = Field(ge=0, le=1)
    physical_plausibility: float = Field(ge=0, le=1)
    visual_quality: float = Field(ge=0, le=1)
    passed: bool
    failure: CriticFailure | None = None
    feedback: str
    suggestion: str = ""
    replan: bool = False


class LLMInstructionReply(BaseModel):
    instruction: str = Field(min_length=5)


class LLMCall(BaseModel):
    """What one agent call cost: tokens, seconds, tries; whether it fell back."""

    role: str
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    tries: int = 0
    fallback: bool = False
    error: str = ""

    def evidence(self) -> dict[str, float | str]:
        return {f"{self.role}_input_tokens": float(self.input_tokens),
                f"{self.role}_output_tokens": float(self.output_tokens),
                f"{self.role}_latency_s": round(self.latency_s, 3), f"{self.role}_tries": float(self.tries),
                **({f"{self.role}_fallback": self.error[:200]} if self.fallback else {})}


def frame_url(frame: np.ndarray) -> str:
    """A frame as an inline PNG for a VLM."""
    return data_url(png_bytes(frame), "image/png")


def _text(reply: BaseMessage) -> str:
    content = reply.content
    if isinstance(content, list):
        content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    match = re.search(r"```(?:json)?\s*(.*?)```", content, re.S)
    return match.group(1) if match else content


def structured_call(settings: RunContext, role: str, schema: type[T], messages: list[BaseMessage],
                    check: Callable[[T], None] | None = None, model=None) -> tuple[T | None, LLMCall]:
    """Ask for JSON matching `schema`; feed validation errors back; None after STRUCTURED_TRIES."""
    import openai

    if model is None:
        url, key = llm_endpoint(settings)
        model = chat_model(settings.llm_model, url, settings.temperature, settings.llm_timeout_s,
                           settings.llm_retries, key)
    bound = model.bind(response_format={"type": "json_schema",
                                        "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()}})
    call = LLMCall(role=role)
    t0 = time.perf_counter()
    for _ in range(STRUCTURED_TRIES):
        call.tries += 1
        try:
            reply = bound.invoke(messages)
        except (openai.APIConnectionError, openai.APITimeoutError, openai.APIStatusError) as exc:
            where = settings.base_url or "the OpenAI API"
            raise LLMUnavailableError(f"the {role} LLM at {where} failed after {settings.llm_retries} retries "
                                      f"({exc.__class__.__name__}); the episode is checkpointed: fix the server "
                                      "and run `spiral resume THREAD_ID`") from None
        except (IndexError, KeyError, TypeError, AttributeError) as exc:
            # a server that answers 200 with no `choices` (or another shape the client cannot read):
            # the reply is unusable like an invalid one, so it is retried and then falls back
            call.error = f"the server's reply could not be read ({exc.__class__.__name__}: {exc})"[:500]
            continue
        usage = getattr(reply, "usage_metadata", None) or {}
        call.input_tokens += int(usage.get("input_tokens", 0))
        call.output_tokens += int(usage.get("output_tokens", 0))
        refusal = reply.additional_kwargs.get("refusal")
        if refusal:  # asking again gets the same refusal: fall back now, and say why
            call.error = f"the model refused: {' '.join(str(refusal).split())}"[:500]
            break
        text = _text(reply)
        try:
            parsed = schema.model_validate_json(text)
            if check is not None:
                check(parsed)
            call.latency_s = time.perf_counter() - t0
            return parsed, call
        except (ValidationError, ValueError) as exc:
            call.error = " ".join(str(exc).split())[:500]
            messages = [*messages, AIMessage(content=text),
                        HumanMessage(content=f"That reply is not valid: {call.error}. Reply again with JSON only, "
                                             "matching the schema.")]
    call.latency_s, call.fallback = time.perf_counter() - t0, True
    log.warning("%s: LLM output invalid after %d tries, falling back to the offline agent: %s", role,
                call.tries, call.error)
    return None, call


OPEN_WORLD = ("(none: the image is not SPIRAL's tabletop world, so nothing was read from it; name each object "
              "you see with a short id of your own, e.g. red_mug, and use those ids throughout)")


def _objects_text(scene: list[PerceivedObject]) -> str:
    if not scene:
        return OPEN_WORLD
    return "\n".join(f"- {o.id}: {name_among(o, scene, with_size=True)} at ({o.x:.0f}, {o.y:.0f})" for o in scene)


def _check_plan(scene: list[PerceivedObject]) -> Callable[[LLMPlanReply], None]:
    ids = {o.id for o in scene}

    def check(reply: LLMPlanReply) -> None:
        if not reply.sub_actions:
            raise ValueError("the plan has no sub-actions")
        for step in reply.sub_actions:
            if not ids:  # an image outside the tabletop world: the model names the objects
                for text in step.postconditions:
                    if Predicate.parse(text).name not in PREDICATES:
                        raise ValueError(f"unknown predicate {Predicate.parse(text).name!r}; use {sorted(PREDICATES)}")
                if not step.postconditions:
                    raise ValueError(f"sub-action {step.description!r} has no postconditions")
                continue
            for oid in (step.subject, step.partner):
                if oid and oid not in ids:
                    raise ValueError(f"unknown object id {oid!r}; use one of {sorted(ids)}")
            if step.target and step.target not in ids and step.target not in {*PLACE_WORDS, "left_of", "right_of"}:
                raise ValueError(f"unknown target {step.target!r}")
            if not step.postconditions:
                raise ValueError(f"sub-action {step.description!r} has no postconditions")
            for text in step.postconditions:
                pred = Predicate.parse(text)
                if pred.name not in PREDICATES:
                    raise ValueError(f"unknown predicate {pred.name!r}; use {sorted(PREDICATES)}")
                missing = [s for s in pred.subjects if s not in ids]
                if missing:
                    raise ValueError(f"postcondition {text!r} names unknown objects {missing}")
    return check


def _to_sub_actions(reply: LLMPlanReply, scene: list[PerceivedObject], start: int) -> list[SubAction]:
    by_id = {o.id: o for o in scene}
    steps = []
    for i, s in enumerate(reply.sub_actions):
        def words(oid: str | None) -> str:  # a perceived object's name, else the model's own id in words
            return name_among(by_id[oid], scene) if oid in by_id else (oid or "").replace("_", " ")

        target_desc = (words(s.target) if s.target in by_id else PLACE_WORDS.get(s.target or "", "")
                       or (words(s.target) if not scene else ""))
        steps.append(SubAction(index=start + i, verb=s.verb, subject=s.subject, target=s.target, partner=s.partner,
                               subject_desc=words(s.subject), target_desc=target_desc,
                               partner_desc=words(s.partner) if s.partner else "",
                               description=s.description, prompt=s.prompt, preconditions=s.preconditions,
                               postconditions=s.postconditions))
    return steps


class LLMPlanAgent:
    def __init__(self, settings: RunContext, model=None) -> None:
        self.settings, self.model = settings, model

    def plan(self, action: str, scene: list[PerceivedObject], frame: np.ndarray,
             established: list[str] = (), start: int = 0) -> tuple[list[SubAction] | None, LLMCall]:
        text = template("planner", self.settings.prompts_dir).format(
            objects=_objects_text(scene), established="\n".join(established) or "(nothing yet)", action=action)
        message = HumanMessage(content=[{"type": "text", "text": text},
                                        {"type": "image_url", "image_url": {"url": frame_url(frame)}}])
        reply, call = structured_call(self.settings, "planner", LLMPlanReply, [message], _check_plan(scene),
                                      self.model)
        return (_to_sub_actions(reply, scene, start) if reply else None), call


class LLMCritic:
    """A VLM judges a keyframe sheet; with `ensemble`, the perception critic's measurements are its evidence."""

    def __init__(self, settings: RunContext, model=None) -> None:
        self.settings, self.model = settings, model

    def judge(self, sub: SubAction, frames: np.ndarray, conditioning: np.ndarray, ledger: Ledger,
              perception: Critique | None = None) -> tuple[Critique | None, LLMCall]:
        sheet = keyframe_sheet([conditioning, frames[0], frames[len(frames) // 2], frames[-1]])
        evidence = ""
        if perception is not None:
            evidence = ("Measurements by the perception critic (pixels, object tracking): "
                        + json.dumps({"scores": perception.scores.model_dump(), "passed": perception.passed,
                                      "failure": perception.failure, "feedback": perception.feedback,
                                      **{k: v for k, v in perception.evidence.items() if ":" not in k}}) + "\n")
        memory = json.dumps({"established": ledger.established, "notes": ledger.notes[-5:]})
        text = template("critic", self.settings.prompts_dir).format(
            description=sub.description, prompt=sub.prompt, postconditions=", ".join(sub.postconditions),
            movers=", ".join(m for m in (sub.subject, sub.partner) if m), memory=memory, evidence=evidence)
        message = HumanMessage(content=[{"type": "text", "text": text},
                                        {"type": "image_url", "image_url": {"url": frame_url(sheet)}}])
        reply, call = structured_call(self.settings, "critic", LLMCritiqueReply, [message], model=self.model)
        if reply is None:
            return None, call
        scores = CritiqueScores(**reply.model_dump(include=set(CritiqueScores.model_fields)))
        ev: dict[str, float | str] = {}
        if perception is not None:
            ev.update({"perception_passed": "yes" if perception.passed else "no",
                       "perception_failure": perception.failure or "", "perception_feedback": perception.feedback})
        return Critique(scores=scores, passed=reply.passed, failure=None if reply.passed else reply.failure,
                        feedback=reply.feedback, suggestion=reply.suggestion, replan=reply.replan,
                        evidence=ev), call


class LLMRefiner:
    def __init__(self, settings: RunContext, model=None) -> None:
        self.settings, self.model = settings, model

    def revise(self, sub: SubAction, critique: Critique, instruction: str) -> tuple[str | None, LLMCall]:
        text = template("refiner", self.settings.prompts_dir).format(
            description=sub.description, instruction=instruction, feedback=critique.feedback,
            suggestion=critique.suggestion)
        reply, call = structured_call(self.settings, "refiner", LLMInstructionReply, [HumanMessage(content=text)],
                                      model=self.model)
        return (reply.instruction if reply else None), call


def replan_with_llm(settings: RunContext, plan: Plan, cursor: int, scene: list[PerceivedObject],
                    frame: np.ndarray, established: list[str]) -> tuple[Plan | None, LLMCall]:
    """Ask the planner for the remaining steps from the current frame, keeping what was accepted."""
    steps, call = LLMPlanAgent(settings).plan(plan.goal, scene, frame, established, start=cursor)
    if steps is None:
        return None, call
    return Plan(goal=plan.goal, sub_actions=[*plan.sub_actions[:cursor], *steps], version=plan.version + 1), call
