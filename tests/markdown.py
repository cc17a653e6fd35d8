"""Markdown read the way a GitHub-flavoured renderer reads it, for the docs tests.

``tables(text)`` finds every pipe table (a header row, a delimiter row of ``---`` cells, then
body rows until the first line that is not a row) outside fenced code blocks; ``cells(line)``
splits one row on unescaped ``|`` (``\\|`` stays inside its cell, as in GFM, also inside a
code span). ``shell_blocks(text)`` returns the ```` ```sh ```` blocks with their first line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_DELIMITER_CELL = re.compile(r":?-{3,}:?")


@dataclass
class Table:
    line: int                       # 1-based line of the header row
    header: list[str]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)   # (line, cells)

    def column(self, name: str) -> int:
        return self.header.index(name)


def cells(line: str) -> list[str]:
    """The cells of a table row: split on ``|`` not preceded by a backslash, outer pipes dropped."""
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    return [part.strip().replace("\\|", "|") for part in re.split(r"(?<!\\)\|", text)]


def _is_row(line: str) -> bool:
    return line.lstrip().startswith("|")


def _is_delimiter(line: str) -> bool:
    return _is_row(line) and all(_DELIMITER_CELL.fullmatch(c) for c in cells(line))


def _outside_fences(lines: list[str]) -> list[bool]:
    inside, flags = False, []
    for line in lines:
        if line.lstrip().startswith("```"):
            inside = not inside
            flags.append(False)
            continue
        flags.append(not inside)
    return flags


def unclosed_fence(text: str) -> int | None:
    """The line of a ``` fence that is never closed (it swallows the rest of the page), or None."""
    opened = None
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            opened = n if opened is None else None
    return opened


def tables(text: str) -> list[Table]:
    lines = text.splitlines()
    prose = _outside_fences(lines)
    found, i = [], 0
    while i < len(lines) - 1:
        if prose[i] and _is_row(lines[i]) and prose[i + 1] and _is_delimiter(lines[i + 1]):
            table = Table(i + 1, cells(lines[i]))
            i += 2
            while i < len(lines) and prose[i] and _is_row(lines[i]):
                table.rows.append((i + 1, cells(lines[i])))
                i += 1
            found.append(table)
        else:
            i += 1
    return found


def stray_rows(text: str) -> list[int]:
    """Lines that look like table rows but belong to no table (e.g. a table cut by a paragraph)."""
    lines = text.splitlines()
    prose = _outside_fences(lines)
    in_tables = set()
    for table in tables(text):
        in_tables.update({table.line, table.line + 1}, {n for n, _ in table.rows})
    return [n for n, line in enumerate(lines, 1)
            if prose[n - 1] and _is_row(line) and n not in in_tables]


def shell_blocks(text: str) -> list[tuple[int, str]]:
    """Every ```sh block as (line of its first command, its text)."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            start, body = i + 2, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append((start, "\n".join(body)))
        i += 1
    return blocks


def row_of(table: Table, first_cell: str) -> list[str] | None:
    """The row whose first cell, without backticks, starts with ``first_cell`` then a space,
    ``/`` or its end."""
    for _, row in table.rows:
        text = row[0].replace("`", "")
        if text == first_cell or text.startswith(first_cell + " ") or text.startswith(first_cell + "/"):
            return row
    return None
