"""The graph's drawing, exported from the compiled graph (not drawn by hand), for the README.

`spiral graph` prints the Mermaid text; `spiral graph --readme README.md` rewrites
the block between the README's `<!-- graph:start -->` and `<!-- graph:end -->`
markers. A test checks that the README's drawing is the live graph's.
"""

from __future__ import annotations

import re
from pathlib import Path

START, END = "<!-- graph:start -->", "<!-- graph:end -->"


def mermaid() -> str:
    from .workflow import graph

    return graph.get_graph().draw_mermaid()


def readme_block() -> str:
    return f"{START}\n```mermaid\n{mermaid().rstrip()}\n```\n{END}"


def update_readme(path: str | Path) -> bool:
    """Rewrite the drawing between the markers; True if it changed."""
    path = Path(path)
    text = path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{path} has no {START} ... {END} markers")
    new = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: readme_block(), text, flags=re.S)
    path.write_text(new)
    return new != text
