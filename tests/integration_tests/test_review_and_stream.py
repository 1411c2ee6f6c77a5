"""Watching a run: custom stream events, thumbnails in state, and the human-review interrupt."""

import base64
import io

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from PIL import Image

from spiral.graph.workflow import build_graph, checkpoint_serde
from spiral.memory.artifacts import ArtifactStore
from spiral.memory.traces import TraceDB
from spiral.vocabulary.config import RunContext
from spiral.vocabulary.events import ReviewDecision
from spiral.vocabulary.state import Ledger

ACTION = "put the red ball in the bowl then stack the blue cube on the green cube"


def _graph():
    return build_graph(checkpointer=InMemorySaver(serde=checkpoint_serde()))


def _drive(g, payload, config, context):
    """Stream updates and custom events until the run ends or pauses; returns (events, interrupts)."""
    events, interrupts = [], []
    for mode, chunk in g.stream(payload, config, context=context, stream_mode=["updates", "custom"]):
        if mode == "custom":
            events.append(chunk)
        elif "__interrupt__" in chunk:
            interrupts.extend(i.value for i in chunk["__interrupt__"])
    return events, interrupts


def _jpeg(data_url: str) -> Image.Image:
    assert data_url.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def test_custom_events_report_progress_segments_and_critiques(scene_png, tmp_path):
    g = _graph()
    config = {"configurable": {"thread_id": "watch"}}
    events, interrupts = _drive(g, {"action": ACTION, "image": str(scene_png)}, config,
                                RunContext(workspace=str(tmp_path), difficulty="easy"))
    assert not interrupts
    kinds = [e["event"] for e in events]
    calls = g.get_state(config).values["generator_calls"]
    assert kinds.count("generator_progress") == kinds.count("segment") == kinds.count("critique") == calls
    # each segment is announced after its progress and before its critique
    assert kinds[:3] == ["generator_progress", "segment", "critique"]
    segment = next(e for e in events if e["event"] == "segment")
    assert segment["segment"].startswith("sha256:") and max(_jpeg(segment["thumbnail"]).size) == 64
    critique = next(e for e in events if e["event"] == "critique")
    assert set(critique["scores"]) >= {"action_completion", "object_fidelity"}


def test_review_reject_with_feedback_then_approve(scene_png, tmp_path):
    g = _graph()
    config = {"configurable": {"thread_id": "review"}}
    context = RunContext(workspace=str(tmp_path), difficulty="easy", review=True)
    _, asked = _drive(g, {"action": ACTION, "image": str(scene_png)}, config, context)
    assert len(asked) == 1 and asked[0]["sub_action"] == 0
    first = asked[0]
    assert first["segment"].startswith("sha256:") and _jpeg(first["thumbnail"])
    state = g.get_state(config)
    assert state.next == ("review",)
    # the attempt waiting for review keeps its thumbnail as an artifact; the question carries its bytes
    thumb = state.values["attempts"][-1].thumbnail
    assert thumb.endswith(".jpg") and ArtifactStore(tmp_path / "artifacts").get_bytes(thumb) == \
        base64.b64decode(first["thumbnail"].split(",", 1)[1])

    _, asked = _drive(g, Command(resume={"decision": "reject", "feedback": "the ball stopped on the rim"}),
                      config, context)
    values = g.get_state(config).values
    rejected = [a for a in values["attempts"] if a.review == "rejected"]
    assert len(rejected) == 1 and rejected[0].critique.failure == "rejected"
    assert "the ball stopped on the rim" in rejected[0].critique.feedback
    assert asked[0]["sub_action"] == 0 and asked[0]["try_index"] > first["try_index"]  # generated again
    assert values["instruction_flags"]  # refine strengthened the instruction

    while asked:
        _, asked = _drive(g, Command(resume="approve"), config, context)
    final = g.get_state(config).values
    outcomes = ArtifactStore(tmp_path / "artifacts").get_model(final["ledger_ref"], Ledger).outcomes
    assert final["status"] == "done" and len(outcomes) == 2
    assert all(o.reviewed for o in outcomes)
    traced = {r.try_index: r for r in TraceDB.open(tmp_path / "traces.sqlite").attempts("review")
              if r.sub_action_index == 0}
    first_try = traced[first["try_index"]]
    assert (first_try.review, first_try.passed, first_try.failure, first_try.critic) == \
        ("reject", False, "rejected", "person")
    assert first_try.critic_passed == first["critic_passed"]
    assert outcomes[0].tries == 2  # the rejected try and the approved one


def test_an_answer_that_is_not_a_decision_asks_again(scene_png, tmp_path):
    g = _graph()
    config = {"configurable": {"thread_id": "confused"}}
    context = RunContext(workspace=str(tmp_path), difficulty="easy", review=True)
    _drive(g, {"action": ACTION, "image": str(scene_png)}, config, context)
    _, asked = _drive(g, Command(resume="maybe?"), config, context)
    assert len(asked) == 1 and "neither 'approve' nor 'reject" in asked[0]["error"]
    _, asked = _drive(g, Command(resume="approve"), config, context)
    assert asked and asked[0]["sub_action"] == 1 and not asked[0]["error"]


@pytest.mark.parametrize("answer,decision,feedback", [
    ("approve", "approve", ""), ("Reject: too far left", "reject", "too far left"),
    ({"decision": "reject", "feedback": "x"}, "reject", "x")])
def test_review_decision_parses_shorthands(answer, decision, feedback):
    parsed = ReviewDecision.parse(answer)
    assert (parsed.decision, parsed.feedback) == (decision, feedback)


def test_review_decision_refuses_other_answers():
    with pytest.raises(ValueError):
        ReviewDecision.parse({"decision": "perhaps"})
    with pytest.raises(ValueError):
        ReviewDecision.parse(3)
