"""Plain-text and markdown tables, and CSV/JSON writers, for sweep results."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path


def fmt_value(value: object, digits: int = 3) -> str:
    """A compact string for a table cell (None -> '-', floats to `digits` significant figures)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0:
            return "0"
        mag = math.floor(math.log10(abs(value)))
        decimals = max(0, digits - 1 - mag)
        return f"{value:.{decimals}f}"
    return str(value)


def text_table(rows: Sequence[Mapping], columns: Sequence[tuple[str, str]]) -> str:
    """Aligned text table; `columns` are (key, header) pairs."""
    cells = [[header for _, header in columns]] + [[fmt_value(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Mapping], columns: Sequence[tuple[str, str]]) -> str:
    """GitHub-flavoured markdown table."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt_value(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def write_csv(rows: Sequence[Mapping], path: str | Path) -> Path:
    """Write rows (dicts with the same keys) as CSV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(obj: object, path: str | Path) -> Path:
    """Write JSON with a trailing newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    return path
