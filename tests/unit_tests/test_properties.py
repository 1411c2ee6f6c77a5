"""Property-based tests (hypothesis): whatever text or request arrives, the action grammar and the
request models answer with a result or SPIRAL's own error, never another exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spiral.nodes.grammar import parse_action
from spiral.tools.errors import ActionParseError, SpiralError
from spiral.tools.words import COLOR_WORDS, SHAPE_WORDS, SIZE_WORDS
from spiral.vocabulary.config import RunContext
from spiral.vocabulary.events import ReviewDecision

WORDS = sorted({"put", "the", "in", "on", "then", "stack", "swap", "and", "with", "all", "left", "of", "to",
                "move", "bowl", "box", "plate", ",", ";", "by", "size", "line", "up", *COLOR_WORDS, *SHAPE_WORDS})
CONTAINERS = ("bowl", "plate", "box")
MOVABLE = sorted(w for w, shape in SHAPE_WORDS.items() if shape not in CONTAINERS and not w.endswith("s"))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(st.sampled_from(WORDS), max_size=25).map(" ".join)))
def test_any_text_parses_or_says_what_is_understood(text):
    try:
        clauses = parse_action(text)
    except ActionParseError as exc:
        assert "I understand" in str(exc)
        return
    assert clauses and all(c.subject is not None for c in clauses)


object_phrase = st.tuples(st.sampled_from([None, *sorted(SIZE_WORDS)]), st.sampled_from([None, *sorted(COLOR_WORDS)]),
                          st.sampled_from(MOVABLE)).map(lambda t: " ".join(w for w in ("the", *t) if w))


@given(st.lists(st.tuples(st.sampled_from(["put", "place", "stack"]), object_phrase,
                          st.one_of(st.sampled_from(CONTAINERS).map(lambda c: f"the {c}"), object_phrase)),
                min_size=1, max_size=4))
def test_a_sentence_of_the_grammar_parses_clause_by_clause(steps):
    """Clauses joined by 'then' parse one by one, keeping their subject's shape word."""
    text = " then ".join(f"{verb} {subject} {'on' if verb == 'stack' else 'in'} {target}"
                         for verb, subject, target in steps)
    clauses = parse_action(text)
    assert len(clauses) == len(steps)
    for clause, (verb, subject, target) in zip(clauses, steps, strict=True):
        assert clause.subject.shape == SHAPE_WORDS[subject.split()[-1]]
        into_container = SHAPE_WORDS[target.split()[-1]] in CONTAINERS and verb != "stack"
        assert clause.kind == ("put_in" if into_container else "stack")


field_value = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30))
run_context_fields = st.dictionaries(
    st.sampled_from(sorted(n for n in RunContext.model_fields if n not in ("workspace", "out_dir", "prompts_dir"))),
    field_value, max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_context_fields)
def test_any_run_context_is_accepted_or_refused_in_one_line(fields):
    try:
        context = RunContext.from_fields(fields)
    except SpiralError as exc:
        assert "\n" not in str(exc)
        return
    assert 2 <= context.num_frames <= 257 and context.max_tries_per_segment >= 1 and 0 <= context.seed < 2**63


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=40), st.dictionaries(st.sampled_from(["decision", "feedback", "x"]), field_value),
                 st.integers(), st.none()))
def test_any_review_answer_parses_or_says_what_it_wants(answer):
    try:
        decision = ReviewDecision.parse(answer)
    except ValueError as exc:
        assert "approve" in str(exc) or "decision" in str(exc) or "answer" in str(exc)
        return
    assert decision.decision in ("approve", "reject")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.none(), st.dictionaries(st.sampled_from(["action", "image", "extra"]),
                                            st.one_of(st.text(max_size=60), st.integers(), st.none()))),
       run_context_fields)
def test_any_server_request_is_accepted_or_refused_with_spirals_message(scene_png, episode_input, context):
    """What the server's create-run check (shell/auth.py) does with any input and run context."""
    from spiral.nodes.preflight import check_start

    if isinstance(episode_input, dict) and episode_input.get("image") == "scene":
        episode_input["image"] = str(scene_png)
    try:
        check_start(episode_input, context)
    except SpiralError as exc:
        assert "\n" not in str(exc).strip()


def _numeric_fields(model) -> list[str]:
    from spiral.shell.cli_options import _scalar

    return sorted(n for n, f in model.model_fields.items() if _scalar(f.annotation) in (int, float))


def _option_models():
    from spiral.training.config import FitOptions, LoopOptions, PretrainConfig

    return [RunContext, PretrainConfig, FitOptions, LoopOptions]


number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-2**70, max_value=2**70))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_option_models()).flatmap(lambda m: st.tuples(st.just(m), st.sampled_from(_numeric_fields(m)),
                                                                     number)))
def test_every_numeric_option_is_finite_and_in_range_or_refused_naming_its_flag(case):
    """Whatever number reaches a command's option (the CLI parses floats like 'inf' and 'nan'), the model
    takes it finite and within its bounds, or one InputError names the flag."""
    import argparse
    import math

    from spiral.shell.cli_options import flags_of, model_from_args
    from spiral.tools.errors import InputError

    model, field, value = case
    if model.model_fields[field].annotation is int or isinstance(value, int):
        value = value if isinstance(value, int) else (int(value) if math.isfinite(value) else value)
    try:
        made = model_from_args(model, argparse.Namespace(**{field: value}))
    except InputError as exc:
        text = str(exc)
        assert "\n" not in text and (text.startswith(flags_of(field, model)[0]) or text.startswith("--")), text
        return
    got = getattr(made, field)
    assert got is None or math.isfinite(got)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.one_of(st.text(max_size=20), st.integers()), max_size=4))
def test_an_episode_input_takes_exactly_action_and_image(extra):
    """Unknown keys are refused by name (a client's typo is not silently dropped)."""
    from pydantic import ValidationError

    from spiral.vocabulary.state import EpisodeInput

    given = {"action": "put the red ball in the bowl", "image": "start.png", **extra}
    try:
        EpisodeInput.model_validate(given)
    except ValidationError as exc:
        unknown = sorted(set(given) - {"action", "image"})
        wrong_type = any(not isinstance(given[k], str) for k in ("action", "image"))
        assert unknown or wrong_type
        if unknown and not wrong_type:
            assert {str(e["loc"][0]) for e in exc.errors()} == set(unknown)
        return
    assert set(given) == {"action", "image"}
