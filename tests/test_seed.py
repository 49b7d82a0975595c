"""The as-posted variant is the seed: once the seed's mangled indentation
is put back, its C tokens and its Kconfig text equal the seed's."""

from __future__ import annotations

from pathlib import Path

from kmod_dups.codegen import basetree
from kmod_dups.codegen.render import KernelApis, render, render_dups_c
from tests.ctokens import tokens


def seed_parts(seed_text: str) -> tuple[str, list[str]]:
    """The seed's dups.c (with '+' stripped) and its added Kconfig lines."""
    kconfig, _, dups = seed_text.partition("--- /dev/null\n")
    dups_c = "\n".join(line[1:] for line in dups.splitlines() if line.startswith("+"))
    added = [line[1:] for line in kconfig.splitlines() if line.startswith("+")]
    return dups_c, added


def test_as_posted_dups_c_tokens_equal_the_seed(seed_text: str) -> None:
    seed_c, _ = seed_parts(seed_text)
    rendered = render_dups_c("as-posted", KernelApis(has_wait_for_completion_state=True))
    seed_tokens, our_tokens = tokens(seed_c), tokens(rendered)
    assert len(seed_tokens) > 600
    assert our_tokens == seed_tokens


def test_as_posted_on_the_default_base_is_the_seed(seed_text: str, base_tree: Path) -> None:
    tree = basetree.probe(base_tree)
    assert tree.apis.has_wait_for_completion_state  # 6.1 has it, so nothing is adapted
    seed_c, _ = seed_parts(seed_text)
    assert tokens(render_dups_c("as-posted", tree.apis)) == tokens(seed_c)


def test_hardened_differs_from_the_seed(seed_text: str) -> None:
    seed_c, _ = seed_parts(seed_text)
    assert tokens(render_dups_c("hardened")) != tokens(seed_c)


def test_kconfig_text_equals_the_seed(seed_text: str) -> None:
    _, added = seed_parts(seed_text)
    ours = render("Kconfig.dups.j2", variant="as-posted").rstrip("\n").splitlines()
    # The seed lost its indentation to a single space; the words and the
    # line breaks (the kernel's wrapping of the help text) are the seed's.
    seed_lines = [" ".join(line.split()) for line in added]
    while seed_lines and not seed_lines[-1]:
        seed_lines.pop()
    assert [" ".join(line.split()) for line in ours] == seed_lines
    # Indented as the kernel does: attributes by a tab, help text by a tab
    # and two spaces, config lines flush left.
    in_help = False
    for line in ours:
        if line.startswith("config "):
            in_help = False
        elif line == "\thelp":
            in_help = True
        elif line:
            assert line.startswith("\t  " if in_help else "\t") and not line.startswith("\t   "), line
            assert len(line.expandtabs()) <= 80, line


def test_the_spec_in_the_repository_is_the_handed_seed(seed_text: str) -> None:
    """spec/ keeps the seed so a clone stands alone; where shared/ sits
    beside the clone (the developers' machines, CI), the two are one text."""
    from tests.conftest import REPO

    handed = REPO.parent / "shared" / "seed" / "000_b656a6e755026c17.txt"
    assert "MODULE_DEBUG_AUTOLOAD_DUPS" in seed_text
    if handed.is_file():
        assert handed.read_text() == seed_text


def test_hardened_kconfig_help_says_what_the_code_does() -> None:
    """The hardened help describes its own semantics, in the seed's layout."""
    ours = render("Kconfig.dups.j2", variant="hardened")
    words = " ".join(ours.split())
    for said in ("The first duplicate of a burst is reported with pr_warn()",
                 "Tracking ends when the first request returns, whatever its result",
                 "duplicates do not take a slot", '("snd-dummy" is "snd_dummy")',
                 "before the wait for one of modprobe's concurrency slots",
                 "does not wait for itself", "120 seconds"):
        assert said in words, said
    assert "as soon as modprobe successfully completes" not in words
    for line in ours.splitlines():
        assert len(line.expandtabs()) <= 80 and not line.endswith(" "), line
