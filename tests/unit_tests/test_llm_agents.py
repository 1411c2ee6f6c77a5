"""LLM agents on langchain-core fake chat models: structured replies, retries with the error, fallbacks."""

import json

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from spiral.nodes.critique import PerceptionCritic
from spiral.nodes.llm_agents import (
    LLMCritic,
    LLMInstructionReply,
    LLMPlanAgent,
    LLMRefiner,
    structured_call,
)
from spiral.nodes.plan import RulePlanAgent, ledger_from
from spiral.tools.perception import perceive
from spiral.tools.world.motion import Move, animate, render_segment
from spiral.tools.world.render import render_scene
from spiral.vocabulary.config import RunContext

SETTINGS = RunContext(planner="llm", critic="llm")


def fake(*replies: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(content=r) for r in replies]))


PLAN = {"sub_actions": [{"verb": "put_in", "subject": "red_ball", "target": "bowl",
                         "description": "put the red ball in the bowl",
                         "prompt": "Put the small red ball in the white bowl.",
                         "preconditions": ["on_table(red_ball)"], "postconditions": ["inside(red_ball, bowl)"]}]}
CRITIQUE = {"action_completion": 1, "object_fidelity": 1, "temporal_consistency": 1, "physical_plausibility": 1,
            "visual_quality": 0.9, "passed": True, "failure": None, "feedback": "The ball is in the bowl."}


def test_planner_reads_a_structured_plan_after_a_malformed_reply(simple_scene):
    frame = render_scene(simple_scene)
    model = fake("{not json", "```json\n" + json.dumps(PLAN) + "\n```")
    steps, call = LLMPlanAgent(SETTINGS, model).plan("put the ball in the bowl", perceive(frame), frame)
    assert [s.subject for s in steps] == ["red_ball"] and steps[0].postconditions == ["inside(red_ball, bowl)"]
    assert steps[0].subject_desc == "red ball" and steps[0].target_desc == "white bowl"
    assert call.tries == 2 and not call.fallback


def test_planner_rejects_unknown_objects_and_falls_back(simple_scene):
    frame = render_scene(simple_scene)
    bad = json.loads(json.dumps(PLAN))
    bad["sub_actions"][0]["subject"] = "purple_dragon"
    steps, call = LLMPlanAgent(SETTINGS, fake(*[json.dumps(bad)] * 3)).plan("x", perceive(frame), frame)
    assert steps is None and call.fallback and "purple_dragon" in call.error and call.tries == 3


def test_validation_errors_are_fed_back():
    seen = []

    class Spy(GenericFakeChatModel):
        def _generate(self, messages, *args, **kwargs):
            seen.append(messages)
            return super()._generate(messages, *args, **kwargs)

    model = Spy(messages=iter([AIMessage(content='{"instruction": ""}'), AIMessage(content='{"instruction": "Move it."}')]))
    reply, call = structured_call(SETTINGS, "refiner", LLMInstructionReply, [], model=model)
    assert reply.instruction == "Move it." and call.tries == 2
    assert "not valid" in seen[1][-1].content and "at least 5" in seen[1][-1].content


def test_critic_and_ensemble(simple_scene):
    frame = render_scene(simple_scene)
    seen = perceive(frame)
    sub = RulePlanAgent().plan("put the red ball in the bowl", seen).sub_actions[0]
    frames = render_segment(animate(simple_scene, [Move(object_id="red_ball", x=90, y=50)], 8), 128, 128)
    ledger = ledger_from(seen, "")
    verdict, call = LLMCritic(SETTINGS, fake(json.dumps(CRITIQUE))).judge(sub, frames, frame, ledger)
    assert verdict.passed and verdict.scores.visual_quality == 0.9 and call.tries == 1
    assert call.evidence()["critic_tries"] == 1.0 and call.evidence()["critic_input_tokens"] >= 0
    perception = PerceptionCritic().judge(sub, frames, frame, ledger)
    both, _ = LLMCritic(SETTINGS, fake(json.dumps({**CRITIQUE, "passed": False, "failure": "drift"}))).judge(
        sub, frames, frame, ledger, perception)
    assert not both.passed and both.failure == "drift" and both.evidence["perception_passed"] == "yes"
    none, call = LLMCritic(SETTINGS, fake("nope", "nope", "nope")).judge(sub, frames, frame, ledger)
    assert none is None and call.fallback


def test_refiner(simple_scene):
    seen = perceive(render_scene(simple_scene))
    sub = RulePlanAgent().plan("put the red ball in the bowl", seen).sub_actions[0]
    critique = PerceptionCritic().judge(sub, render_segment(animate(simple_scene, [], 4), 128, 128),
                                        render_scene(simple_scene), ledger_from(seen, ""))
    text, _ = LLMRefiner(SETTINGS, fake('{"instruction": "Lift the small red ball into the white bowl."}')).revise(
        sub, critique, sub.prompt)
    assert text == "Lift the small red ball into the white bowl."


def test_prompt_templates_can_be_overridden(tmp_path, simple_scene):
    from spiral.nodes.prompts.templates import template

    (tmp_path / "planner.md").write_text("CUSTOM {objects} {established} {action}")
    assert template("planner", str(tmp_path)).startswith("CUSTOM")
    assert "PlanAgent" in template("planner")


def test_no_api_key_is_a_clear_error_for_openai_and_none_is_needed_for_a_local_server(monkeypatch):
    from spiral.nodes.credentials import llm_endpoint
    from spiral.tools.errors import InputError
    from spiral.vocabulary.config import RunContext

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(InputError, match="OPENAI_API_KEY is not set"):
        llm_endpoint(RunContext(planner="llm"))
    assert llm_endpoint(RunContext(planner="llm", base_url="http://localhost:8000/v1")) == (
        "http://localhost:8000/v1", "EMPTY")


def test_the_key_goes_only_to_the_url_it_was_configured_for(monkeypatch):
    from spiral.nodes.credentials import llm_endpoint
    from spiral.tools.errors import InputError
    from spiral.vocabulary.config import RunContext

    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert llm_endpoint(RunContext())[1] == "sk-secret"  # OpenAI's API, the key's default home
    assert llm_endpoint(RunContext(base_url="https://api.openai.com/v1/"))[1] == "sk-secret"  # same URL, spelt otherwise
    assert llm_endpoint(RunContext(base_url="https://evil.example/v1"))[1] == "EMPTY"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://LOCALHOST:8000/v1")
    assert llm_endpoint(RunContext()) == ("http://LOCALHOST:8000/v1", "sk-secret")
    assert llm_endpoint(RunContext(base_url="http://localhost:8000/v1"))[1] == "sk-secret"
    with pytest.raises(InputError, match="OPENAI_API_KEY is not set"):  # OpenAI's API is not the key's URL now
        llm_endpoint(RunContext(base_url="https://api.openai.com/v1"))
