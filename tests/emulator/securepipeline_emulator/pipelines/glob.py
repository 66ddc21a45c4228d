r"""Glob patterns as CodePipeline's trigger filters read them.

CodePipeline documents the syntax of Java's NIO glob ("Working with glob
patterns in syntax", CodePipeline User Guide): `*` matches within one path
component, `**` across components, `?` one character of a component, `[ ]`
one character of a set (`!` negates, `-` makes a range, and `*`, `?`, `\`
match themselves there), `{a,b}` any of the comma-separated subpatterns (not
nested), and `\` escapes the next character. A pattern matches the whole
branch name or file path.
"""

from __future__ import annotations

import re
from functools import lru_cache


class GlobError(ValueError):
    """A pattern the syntax does not allow (an unclosed `[` or `{`)."""


def matches(pattern: str, value: str) -> bool:
    return compile_glob(pattern).fullmatch(value) is not None


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    return re.compile(_translate(pattern))


def _translate(pattern: str) -> str:
    out: list[str] = []
    in_group = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 == len(pattern):
                raise GlobError(f"`{pattern}` ends with an escape character")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
            else:
                out.append("[^/]*")
                i += 1
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            i = _bracket(pattern, i, out)
            continue
        elif c == "{":
            if in_group:
                raise GlobError(f"`{pattern}`: groups cannot be nested")
            in_group = True
            out.append("(?:")
        elif c == "}" and in_group:
            in_group = False
            out.append(")")
        elif c == "," and in_group:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if in_group:
        raise GlobError(f"`{pattern}` has an unclosed `{{`")
    return "".join(out)


def _bracket(pattern: str, start: int, out: list[str]) -> int:
    """Translate the bracket expression at `start`; return the index after it."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] == "!"
    if negate:
        i += 1
    members: list[str] = []
    while i < len(pattern) and pattern[i] != "]":
        c = pattern[i]
        # `-` makes a range between two members; first or last, itself.
        ranged = c == "-" and members and i + 1 < len(pattern) and pattern[i + 1] != "]"
        members.append("-" if ranged else re.escape(c))
        i += 1
    if i >= len(pattern):
        raise GlobError(f"`{pattern}` has an unclosed `[`")
    # One character of a name component: never the separator.
    out.append(f"(?!/)[{'^' if negate else ''}{''.join(members)}]")
    return i + 1
