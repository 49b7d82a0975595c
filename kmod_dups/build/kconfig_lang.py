"""Just enough of the Kconfig language to say why an option was dropped.

olddefconfig silently drops an option whose dependencies are not met.  To
name the option and the dependency that failed (as KUnit's runner does),
this module reads the tree's Kconfig files: every definition of a symbol
with its type, prompt, ``depends on``, ``range`` and ``select``, plus the
``if`` blocks, menus and choices around it.  The dependency expressions
are then evaluated against the final ``.config``.

It is a reader, not a configurator: defaults and select propagation are
left to the kernel's own tools.  It is only used to explain a failure and
to tell whether a symbol exists, so it can afford to be simple.
"""

from __future__ import annotations

import functools
import glob
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

# ---------------------------------------------------------------- expressions

_TOKEN = re.compile(r"""\s*(?:
    (?P<op>&&|\|\||!=|<=|>=|=|<|>|!|\(|\))
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<macro>\$\((?:[^()]|\([^()]*\))*\))
  | (?P<word>[A-Za-z0-9_\-.+/]+)
)""", re.X)

N, M, Y = 0, 1, 2
_TRI = {"n": N, "m": M, "y": Y}


class ExprError(ValueError):
    pass


@dataclass(frozen=True)
class Expr:
    """A parsed dependency expression; ``op`` is one of sym, const, not,
    and, or, or a comparison operator."""

    op: str
    args: tuple = ()
    text: str = ""

    def symbols(self) -> list[str]:
        if self.op == "sym":
            return [self.args[0]]
        out: list[str] = []
        for arg in self.args:
            if isinstance(arg, Expr):
                out.extend(s for s in arg.symbols() if s not in out)
        return out

    def conjuncts(self) -> list[Expr]:
        """The top-level ``&&`` terms."""
        if self.op == "and":
            return [c for arg in self.args for c in arg.conjuncts()]
        return [self]


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ExprError(f"cannot parse {text!r} at {text[pos:]!r}")
        out.append(match.group(match.lastgroup).strip())
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def parse_expr(text: str) -> Expr:
    tokens = _tokens(text)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ExprError(f"unexpected end of {text!r}")
        pos += 1
        return tokens[pos - 1]

    def atom() -> Expr:
        tok = take()
        if tok == "(":
            inner = expr_or()
            if take() != ")":
                raise ExprError(f"missing ) in {text!r}")
            return inner
        if tok == "!":
            inner = atom()
            return Expr("not", (inner,))
        if tok[0] in "\"'" or tok.startswith("$(") or tok in _TRI or not re.match(r"^[A-Za-z0-9_]+$", tok):
            return Expr("const", (tok,))
        if tok.isdigit() or re.match(r"^0x[0-9a-fA-F]+$", tok) or re.match(r"^-?\d+$", tok):
            return Expr("const", (tok,))
        return Expr("sym", (tok,))

    def comparison() -> Expr:
        left = atom()
        if peek() in ("=", "!=", "<", ">", "<=", ">="):
            op = take()
            right = atom()
            return Expr(op, (left, right))
        return left

    def expr_and() -> Expr:
        terms = [comparison()]
        while peek() == "&&":
            take()
            terms.append(comparison())
        return terms[0] if len(terms) == 1 else Expr("and", tuple(terms))

    def expr_or() -> Expr:
        terms = [expr_and()]
        while peek() == "||":
            take()
            terms.append(expr_and())
        return terms[0] if len(terms) == 1 else Expr("or", tuple(terms))

    result = expr_or()
    if pos != len(tokens):
        raise ExprError(f"trailing {tokens[pos:]} in {text!r}")
    return Expr(result.op, result.args, text.strip())


def _unquote(tok: str) -> str:
    if tok and tok[0] in "\"'" and tok[-1] == tok[0]:
        return tok[1:-1]
    return tok


def _scalar(expr: Expr, config: dict[str, str]) -> str | None:
    """The string value of an operand (None when it cannot be known)."""
    if expr.op == "sym":
        return _unquote(config.get(expr.args[0], "n"))
    if expr.op == "const":
        tok = expr.args[0]
        return None if tok.startswith("$(") else _unquote(tok)
    value = evaluate(expr, config)
    return None if value is None else "nmy"[value]


def _compare(op: str, left: str, right: str) -> bool:
    if op in ("=", "!="):
        return (left == right) == (op == "=")
    try:
        a, b = int(left, 0), int(right, 0)
    except ValueError:
        a, b = left, right  # type: ignore[assignment]
    return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def evaluate(expr: Expr, config: dict[str, str]) -> int | None:
    """Tristate value (0, 1, 2) of ``expr`` with the symbol values of
    ``config``; None when it depends on something unknown (a macro)."""
    op = expr.op
    if op == "sym":
        return _TRI.get(config.get(expr.args[0], "n"), N)
    if op == "const":
        tok = _unquote(expr.args[0])
        if expr.args[0].startswith("$("):
            return None
        return _TRI.get(tok, N)
    if op == "not":
        inner = evaluate(expr.args[0], config)
        return None if inner is None else Y - inner
    if op in ("and", "or"):
        values = [evaluate(arg, config) for arg in expr.args]
        known = [v for v in values if v is not None]
        if op == "and":
            if known and min(known) == N:
                return N
            return None if len(known) != len(values) else min(known)
        if known and max(known) == Y:
            return Y
        return None if len(known) != len(values) else max(known)
    left, right = (_scalar(arg, config) for arg in expr.args)
    if left is None or right is None:
        return None
    return Y if _compare(op, left, right) else N


# ---------------------------------------------------------------- the tree


@dataclass
class Block:
    """An ``if``, ``menu`` or ``choice`` around definitions."""

    kind: str
    deps: list[Expr] = field(default_factory=list)


@dataclass
class Definition:
    symbol: str
    file: str
    line: int
    type: str | None = None
    prompts: list[Expr | None] = field(default_factory=list)  # condition of each prompt
    depends: list[Expr] = field(default_factory=list)
    context: list[Block] = field(default_factory=list)
    ranges: list[tuple[str, str, Expr | None]] = field(default_factory=list)
    in_choice: bool = False

    def all_deps(self) -> list[Expr]:
        out = [d for block in self.context for d in block.deps]
        return out + self.depends

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Select:
    by: str
    cond: Expr | None
    definition: Definition


_ENTRY = {"config", "menuconfig", "choice", "endchoice", "comment", "menu", "endmenu",
          "if", "endif", "source", "rsource", "osource", "orsource", "mainmenu"}
_TYPES = {"bool", "tristate", "int", "hex", "string", "def_bool", "def_tristate"}


def _indent(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _split_if(rest: str) -> tuple[str, Expr | None]:
    """``"prompt" if EXPR`` or ``VALUE if EXPR`` -> (first part, condition)."""
    match = re.match(r'^("(?:[^"\\]|\\.)*"|\S+)\s+if\s+(.+)$', rest.strip())
    if match:
        return match.group(1), _safe_parse(match.group(2))
    return rest.strip(), None


def _safe_parse(text: str) -> Expr | None:
    try:
        return parse_expr(text)
    except ExprError:
        return None


def srcarch() -> str:
    machine = os.environ.get("SRCARCH") or os.environ.get("ARCH") or platform.machine()
    return {"x86_64": "x86", "i386": "x86", "i686": "x86", "aarch64": "arm64"}.get(machine, machine)


class KconfigTree:
    """Every symbol definition in a kernel tree's Kconfig files."""

    def __init__(self, srctree: Path, arch: str | None = None):
        self.srctree = Path(srctree)
        self.arch = arch or srcarch()
        self.definitions: dict[str, list[Definition]] = {}
        self.selected_by: dict[str, list[Select]] = {}
        self._read("Kconfig", [])

    # -- reading

    def _expand(self, text: str) -> str:
        return (text.replace("$(SRCARCH)", self.arch).replace("$(ARCH)", self.arch)
                .replace("$(HEADER_ARCH)", self.arch))

    def _read(self, relpath: str, outer: list[Block]) -> None:
        path = self.srctree / relpath
        try:
            raw = path.read_text(errors="replace").split("\n")
        except OSError:
            return
        stack = list(outer)
        current: object = None  # the entry attribute lines belong to
        help_indent: int | None = None
        in_help = False
        i = 0
        while i < len(raw):
            start = i
            line = raw[i]
            i += 1
            if in_help:
                if not line.strip():
                    continue
                ind = _indent(line)
                if help_indent is None:
                    help_indent = ind
                    continue
                if ind >= help_indent:
                    continue
                in_help = False
            while line.endswith("\\") and i < len(raw):
                line = line[:-1] + " " + raw[i]
                i += 1
            text = self._expand(_strip_comment(line).strip())
            if not text:
                continue
            word, _, rest = text.partition(" ")
            if "\t" in word:
                word, _, more = word.partition("\t")
                rest = more + " " + rest
            rest = rest.strip()
            lineno = start + 1
            if word in ("help", "---help---"):
                in_help, help_indent = True, None
                continue
            if word in ("config", "menuconfig"):
                sym = rest.split()[0]
                in_choice = any(b.kind == "choice" for b in stack)
                current = Definition(sym, relpath, lineno, context=list(stack), in_choice=in_choice)
                self.definitions.setdefault(sym, []).append(current)
            elif word == "choice":
                block = Block("choice")
                stack.append(block)
                current = block
            elif word == "menu":
                block = Block("menu")
                stack.append(block)
                current = block
            elif word == "if":
                expr = _safe_parse(rest)
                stack.append(Block("if", [expr] if expr else []))
                current = None
            elif word in ("endchoice", "endmenu", "endif"):
                kind = word[3:]
                while stack and len(stack) > len(outer):
                    if stack.pop().kind == kind:
                        break
                current = None
            elif word == "comment":
                current = Block("comment")
            elif word in ("source", "rsource", "osource", "orsource"):
                target = _unquote(rest)
                if word.startswith("r") or word == "orsource":
                    target = str(Path(relpath).parent / target)
                matches = sorted(glob.glob(str(self.srctree / target)))
                for match in matches:
                    self._read(str(Path(match).relative_to(self.srctree)), list(stack))
                current = None
            elif word == "mainmenu":
                current = None
            elif word == "depends" and rest.startswith("on"):
                expr = _safe_parse(rest[2:])
                if expr is not None and isinstance(current, (Definition, Block)):
                    target = current.depends if isinstance(current, Definition) else current.deps
                    target.append(expr)
            elif isinstance(current, Definition):
                self._attribute(current, word, rest)
        # Blocks opened in this file are closed by it; nothing to do.

    def _attribute(self, d: Definition, word: str, rest: str) -> None:
        if word in _TYPES:
            d.type = word.removeprefix("def_")
            if word in ("bool", "tristate", "int", "hex", "string") and rest.startswith('"'):
                d.prompts.append(_split_if(rest)[1])
        elif word == "prompt":
            d.prompts.append(_split_if(rest)[1])
        elif word == "select":
            target, cond = _split_if(rest)
            self.selected_by.setdefault(target, []).append(Select(d.symbol, cond, d))
        elif word == "range":
            match = re.match(r"^(\S+)\s+(\S+)(?:\s+if\s+(.+))?$", rest)
            if match:
                cond = _safe_parse(match.group(3)) if match.group(3) else None
                d.ranges.append((match.group(1), match.group(2), cond))

    # -- questions

    def exists(self, symbol: str) -> bool:
        return symbol in self.definitions

    def explain(self, symbol: str, wanted: str, config: dict[str, str]) -> str:
        """Why ``symbol`` is not ``wanted`` in ``config``: the unmet
        dependency, a missing prompt, a range, or what selects it."""
        defs = self.definitions.get(symbol)
        if not defs:
            return "no such option in this kernel"
        actual = config.get(symbol, "n")
        if wanted == "n":
            return self._why_set(symbol, defs, actual, config)
        if wanted == "m" and all(d.type == "bool" for d in defs if d.type):
            return "it is a bool option: it can be y or n, not m"
        need = M if wanted == "m" else Y
        reasons: list[str] = []
        for d in defs:
            if d.type in ("int", "hex") and wanted not in ("y", "m", "n"):
                why = self._range(d, wanted, config)
                if why:
                    reasons.append(why)
                    continue
            unmet = self._unmet(d.all_deps(), need if d.type in ("bool", "tristate") else Y, config)
            if unmet:
                reasons.append("unmet dependency " + ", ".join(unmet))
                continue
            if not d.prompts:
                continue
            visible = [c for c in d.prompts if c is None or (evaluate(c, config) or N) >= M]
            if not visible:
                reasons.append("its prompt is hidden: " + ", ".join(
                    self._describe(c, config) for c in d.prompts if c is not None))
        if reasons:
            return "; ".join(dict.fromkeys(reasons))
        if not any(d.prompts for d in defs):
            sel = self.selected_by.get(symbol, [])
            who = ", ".join(dict.fromkeys(s.by for s in sel))
            return ("it has no prompt and is only set when selected"
                    + (f" (by {who})" if who else "") + "; ask for a selecting option instead")
        if wanted == "y" and actual == "m":
            return "it can only be a module here (a dependency is m)"
        if any(d.in_choice for d in defs):
            return "another option of the same choice won"
        unknown = [dep.text or _render(dep) for d in defs for dep in d.all_deps()
                   if evaluate(dep, config) is None]
        if unknown:
            return "it depends on what could not be evaluated here: " + "; ".join(unknown)
        return f"olddefconfig set it to {actual}"

    def _unmet(self, deps: list[Expr], need: int, config: dict[str, str]) -> list[str]:
        out = []
        for dep in deps:
            for term in dep.conjuncts():
                value = evaluate(term, config)
                if value is not None and value < need:
                    out.append(self._describe(term, config))
        return list(dict.fromkeys(out))

    @staticmethod
    def _describe(term: Expr, config: dict[str, str]) -> str:
        text = term.text or _render(term)
        if term.op == "const" and term.args[0] == "m":
            return "m (it can only be built as a module)"
        values = [f"{s}={config.get(s, 'n')}" for s in term.symbols()]
        if term.op == "sym":
            return f"{text} (={config.get(term.args[0], 'n')})"
        return f"{text} ({', '.join(values)})" if values else text

    def _range(self, d: Definition, wanted: str, config: dict[str, str]) -> str | None:
        for low, high, cond in d.ranges:
            if cond is not None and (evaluate(cond, config) or N) == N:
                continue
            lo, hi = (config.get(b, b) for b in (low, high))
            try:
                value, lo_i, hi_i = int(wanted, 0), int(lo, 0), int(hi, 0)
            except ValueError:
                return None
            if not lo_i <= value <= hi_i:
                bound = "".join(f" ({b}={config.get(b)})" for b in (low, high) if b in config)
                return f"{wanted} is outside its range {lo_i}..{hi_i}{bound}"
            return None
        return None

    def _why_set(self, symbol: str, defs: list[Definition], actual: str, config: dict[str, str]) -> str:
        selectors = []
        for sel in self.selected_by.get(symbol, []):
            if (evaluate(Expr("sym", (sel.by,)), config) or N) >= M and (
                    sel.cond is None or (evaluate(sel.cond, config) or N) >= M):
                selectors.append(f"{sel.by} (={config.get(sel.by)})")
        if selectors:
            return "selected by " + ", ".join(dict.fromkeys(selectors))
        if not any(d.prompts for d in defs):
            return f"it has no prompt and defaults to {actual}"
        return f"olddefconfig set it to {actual}"


def _render(expr: Expr) -> str:
    if expr.op in ("sym", "const"):
        return expr.args[0]
    if expr.op == "not":
        return "!" + _render(expr.args[0])
    if expr.op in ("and", "or"):
        joiner = " && " if expr.op == "and" else " || "
        return "(" + joiner.join(_render(a) for a in expr.args) + ")"
    return f"{_render(expr.args[0])} {expr.op} {_render(expr.args[1])}"


@functools.lru_cache(maxsize=4)
def load(srctree: Path) -> KconfigTree:
    return KconfigTree(Path(srctree))
