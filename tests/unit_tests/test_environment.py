"""SPIRAL reads each environment variable by its own name, and notices a change at the next read."""

from spiral.vocabulary.environment import environment


def test_look_alike_variables_of_other_programs_are_not_read(monkeypatch):
    """`langgraph dev` sets DATABASE_URI=":memory:" and every shell sets HOME; neither is SPIRAL's."""
    monkeypatch.delenv("SPIRAL_DATABASE_URI", raising=False)
    monkeypatch.delenv("SPIRAL_HOME", raising=False)
    monkeypatch.setenv("DATABASE_URI", ":memory:")
    monkeypatch.setenv("HOME", "/home/someone")
    monkeypatch.setenv("GENERATOR_URL", "http://elsewhere")
    env = environment()
    assert (env.database_uri, env.home, env.generator_url) == ("", "", "")


def test_a_changed_variable_is_read_again(monkeypatch):
    monkeypatch.setenv("SPIRAL_GENERATOR_URL", "http://a:1/v1")
    assert environment().generator_url == "http://a:1/v1"
    monkeypatch.setenv("SPIRAL_GENERATOR_URL", "http://b:2/v1")
    assert environment().generator_url == "http://b:2/v1"
