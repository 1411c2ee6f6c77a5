"""The fleet client's contracts that need no server: thread ids, what is sent, what is refused."""

import pytest

from spiral.graph.fleet import Fleet, FleetEpisode, remote_context, thread_id_for
from spiral.tools.errors import InputError
from spiral.vocabulary.config import RunContext


def test_an_episode_name_gives_the_same_uuid_thread_every_time():
    assert thread_id_for("collect-t1-s0") == thread_id_for("collect-t1-s0") != thread_id_for("collect-t1-s1")
    assert len(thread_id_for("x").split("-")) == 5  # a LangGraph server wants a UUID


def test_a_server_is_never_sent_a_folder():
    context = RunContext(workspace="/data/mine", out_dir="/data/out", difficulty="hard", seed=3)
    sent = remote_context(context)
    assert sent == {"difficulty": "hard", "seed": 3}


def test_bad_fleets_are_refused_before_any_request():
    with pytest.raises(InputError, match="must be an http:// or https:// URL"):
        Fleet(["ftp://host"])
    with pytest.raises(InputError, match="at least one --server"):
        Fleet([])
    with pytest.raises(InputError, match="--concurrency must be at least 1"):
        Fleet(["http://127.0.0.1:1"], concurrency=0)
    twin = FleetEpisode(name="a", action="x", image_png=b"")
    with pytest.raises(InputError, match="share a name"):
        Fleet(["http://127.0.0.1:1"]).run([twin, twin])


def test_a_fleet_where_no_server_answers_fails_each_episode_with_the_reason():
    report = Fleet(["http://127.0.0.1:9"], concurrency=1).run([FleetEpisode(name="a", action="x", image_png=b"")])
    assert [o.how for o in report.outcomes] == ["failed"]
    assert report.outcomes[0].reason.startswith("no server answers (last: http://127.0.0.1:9: ConnectError")
