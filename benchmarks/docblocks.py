"""Generated blocks in a Markdown document: ``<!-- begin NAME -->`` ... ``<!-- end NAME -->``.

The benchmarks that feed ``docs/teaching_at_scale.md`` render their tables from
their committed JSON results; ``replace_blocks`` writes them into the doc and
the tests compare the doc's blocks with a fresh rendering (``read_blocks``).
"""

from __future__ import annotations

import re
from pathlib import Path

BLOCK = re.compile(r"<!-- begin (?P<name>[\w-]+) -->\n(?P<body>.*?)\n?<!-- end (?P=name) -->", re.DOTALL)


def read_blocks(text):
    """``{name: body}`` of every generated block in ``text``."""
    return {m.group("name"): m.group("body") for m in BLOCK.finditer(text)}


def replace_blocks(path, blocks):
    """Rewrite the blocks of the file at ``path`` named in ``blocks``; the names it has no place for."""
    text = Path(path).read_text()

    def fill(m):
        name = m.group("name")
        return f"<!-- begin {name} -->\n{blocks.get(name, m.group('body'))}\n<!-- end {name} -->"

    new = BLOCK.sub(fill, text)
    Path(path).write_text(new)
    return sorted(set(blocks) - set(read_blocks(text)))
