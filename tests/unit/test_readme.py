"""The README's shell snippets read top to bottom: every variable a snippet uses was set by an
earlier line (a reader who pastes them in order never sends `$KEY` empty)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
ASSIGNED = re.compile(rf"(?:^|[\s;(])(?:export\s+)?({NAME})=|^({NAME})\(\)", re.M)
COMMENT = re.compile(r"(?:^|\s)#.*$", re.M)


def _shell_text() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    return "\n".join(COMMENT.sub("", block) for block in blocks)


def _expansions(text: str) -> list[tuple[int, str]]:
    """(position, name) of each `$NAME`/`${NAME}` the shell expands: not in single quotes."""
    found = []
    single = double = False
    for i, char in enumerate(text):
        if char == "'" and not double:
            single = not single
        elif char == '"' and not single:
            double = not double
        elif char == "$" and not single:
            match = re.match(rf"\{{?({NAME})", text[i + 1 :])
            if match:
                found.append((i, match.group(1)))
    return found


def test_every_variable_is_set_before_a_snippet_uses_it() -> None:
    text = _shell_text()
    first_set: dict[str, int] = {}
    for match in ASSIGNED.finditer(text):
        name = match.group(1) or match.group(2)
        first_set.setdefault(name, match.start())

    unset = sorted({name for at, name in _expansions(text) if first_set.get(name, len(text)) > at})

    assert unset == [], f"README snippets use {unset} before setting them"


def test_the_check_sees_what_it_checks() -> None:
    # Guards the test above against passing vacuously: the README's API calls use these.
    names = {name for _, name in _expansions(_shell_text())}
    assert {"URL", "KEY", "CHANNEL", "ORG"} <= names
