"""A small C tokenizer for comparing code regardless of layout: comments are
kept (as their words), strings and character literals are single tokens."""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"""
    (?P<comment>/\*.*?\*/|//[^\n]*)
    |(?P<string>"(?:\\.|[^"\\\n])*")
    |(?P<char>'(?:\\.|[^'\\\n])+')
    |(?P<word>[A-Za-z_0-9]+)
    |(?P<punct>->|\+\+|--|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^]=|\.\.\.|\#\#|[^\sA-Za-z_0-9])
    |(?P<space>\s+)
    """,
    re.S | re.X,
)


def tokens(source: str) -> list[str]:
    out = []
    for match in _TOKEN.finditer(source):
        kind = match.lastgroup
        if kind == "space":
            continue
        text = match.group()
        out.append(" ".join(text.split()) if kind == "comment" else text)
    return out
