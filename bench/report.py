"""What the benchmark scripts share when they print their results."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, columns padded to width: the first row is the header; the first
    column is left-aligned, the others right-aligned (figures)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) if j == 0 else c.rjust(w)
                                        for j, (c, w) in enumerate(zip(row, widths, strict=True)))
                     + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
