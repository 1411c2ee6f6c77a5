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
    from ..graph.workflow import graph

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


FOLDERS = ("shell", "bench", "training", "graph", "nodes", "memory", "vocabulary", "tools")
"""Top to bottom, as import-linter's `rooms` contract has them (bench and training share a floor)."""
FOLDERS_START, FOLDERS_END = "<!-- folders:start -->", "<!-- folders:end -->"


def folder_imports() -> dict[tuple[str, str], int]:
    """(importer, imported) -> number of module-level import lines between SPIRAL's top-level folders, read
    by grimp (import-linter's graph builder, a dev dependency), imports inside functions included."""
    import grimp

    graph = grimp.build_graph("spiral", include_external_packages=False, cache_dir=None)
    edges: dict[tuple[str, str], int] = {}
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            a, b = importer.split(".")[1:2], imported.split(".")[1:2]
            if a and b and a[0] in FOLDERS and b[0] in FOLDERS and a[0] != b[0]:
                edges[(a[0], b[0])] = edges.get((a[0], b[0]), 0) + 1
    return edges


def folder_picture() -> str:
    """The folders as Mermaid, top to bottom, each arrow an importing folder -> an imported one."""
    lines = ["flowchart TD"]
    lines += [f"    {a} --> {b}" for (a, b) in sorted(folder_imports(), key=lambda e: (FOLDERS.index(e[0]),
                                                                                        FOLDERS.index(e[1])))]
    return "\n".join(lines)


def folders_block() -> str:
    return f"{FOLDERS_START}\n```mermaid\n{folder_picture()}\n```\n{FOLDERS_END}"
