"""The Kconfig reader that explains dropped options: expressions, blocks,
help text, and the explanations, on a small Kconfig tree written here."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmod_dups.build import kconfig_lang as kl

KCONFIG = {
    "Kconfig": """\
mainmenu "Test $(ARCH)"
source "sub/Kconfig"
source "arch/$(SRCARCH)/Kconfig"

config MODULES
	bool "Modules"

if MODULES

menuconfig MODULE_DEBUG
	bool "Module debugging"
	help
	  This help mentions
	  depends on NOT_A_DEPENDENCY
	  and config NOT_A_SYMBOL, which must be ignored.

if MODULE_DEBUG
config FEATURE
	bool "The feature"

config FEATURE_TRACE
	bool "Trace"
	depends on FEATURE
endif # MODULE_DEBUG

endif # MODULES

config NEEDS_M
	tristate "Only a module"
	depends on m
	depends on MODULES

config HIDDEN
	bool
	default y if MODULES

config SELECTOR
	bool "Selects HIDDEN"
	select HIDDEN

config NUM_RANGE_END
	int
	default 512

config NUM
	int "A number" if MODULES && !BIG
	range 2 NUM_RANGE_END
	default 64

config BIG
	bool "Big"

choice
	prompt "Allocator"
	depends on MODULES
config ALLOC_A
	bool "A"
config ALLOC_B
	bool "B"
endchoice

menu "Menu with a dependency"
	depends on BIG
config IN_MENU
	bool "In the menu"
endmenu

config CMP
	bool "Compared"
	depends on NUM >= 100 && "$(ARCH)" = "x86"

config MACRO
	def_bool $(cc-option,-fsomething)

config CONT
	bool "Continued"
	depends on MODULES && \\
		   BIG
""",
    "sub/Kconfig": """\
config IN_SUB
	bool "From a sourced file"
	depends on BIG || MODULES
""",
    "arch/x86/Kconfig": """\
config ARCHY
	def_bool y
""",
}


@pytest.fixture
def tree(tmp_path: Path) -> kl.KconfigTree:
    for rel, text in KCONFIG.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return kl.KconfigTree(tmp_path, arch="x86")


@pytest.mark.parametrize("text, config, value", [
    ("A", {"A": "y"}, 2),
    ("A", {}, 0),
    ("A && B", {"A": "y", "B": "m"}, 1),
    ("A || B", {"A": "m"}, 1),
    ("!A", {"A": "m"}, 1),
    ("!(A || B) && C", {"C": "y"}, 2),
    ("m", {}, 1),
    ("A = B", {"A": "y", "B": "y"}, 2),
    ("NUM >= 100", {"NUM": "64"}, 0),
    ("NUM < 0x100", {"NUM": "0x80"}, 2),
    ('STR != "x"', {"STR": '"x"'}, 0),
    ("$(cc-option,-fx)", {}, None),
    ("A && $(cc-option,-fx)", {}, 0),
    ("A || $(cc-option,-fx)", {"A": "y"}, 2),
])
def test_evaluate(text: str, config: dict, value: int | None) -> None:
    assert kl.evaluate(kl.parse_expr(text), config) == value


def test_parse_errors_are_reported() -> None:
    with pytest.raises(kl.ExprError):
        kl.parse_expr("(A && B")
    with pytest.raises(kl.ExprError):
        kl.parse_expr("A B")


def test_definitions_and_context(tree: kl.KconfigTree) -> None:
    assert tree.exists("FEATURE") and tree.exists("IN_SUB") and tree.exists("ARCHY")
    assert not tree.exists("NOT_A_SYMBOL")
    feature = tree.definitions["FEATURE"][0]
    assert [d.text for d in feature.all_deps()] == ["MODULES", "MODULE_DEBUG"]
    trace = tree.definitions["FEATURE_TRACE"][0]
    assert [d.text for d in trace.all_deps()] == ["MODULES", "MODULE_DEBUG", "FEATURE"]
    debug = tree.definitions["MODULE_DEBUG"][0]
    assert [d.text for d in debug.all_deps()] == ["MODULES"], "help text leaked a dependency"
    assert tree.definitions["ALLOC_A"][0].in_choice
    assert [d.text for d in tree.definitions["IN_MENU"][0].all_deps()] == ["BIG"]
    assert tree.definitions["CONT"][0].depends[0].symbols() == ["MODULES", "BIG"]
    assert [s.by for s in tree.selected_by["HIDDEN"]] == ["SELECTOR"]


def test_explain_unmet_dependencies(tree: kl.KconfigTree) -> None:
    config = {"MODULES": "y"}
    assert tree.explain("FEATURE_TRACE", "y", config) == \
        "unmet dependency MODULE_DEBUG (=n), FEATURE (=n)"
    assert tree.explain("FEATURE", "y", {}) == "unmet dependency MODULES (=n), MODULE_DEBUG (=n)"
    assert tree.explain("IN_MENU", "y", config) == "unmet dependency BIG (=n)"
    assert tree.explain("IN_SUB", "y", {}) == "unmet dependency BIG || MODULES (BIG=n, MODULES=n)"
    assert tree.explain("CMP", "y", {"NUM": "64"}) == "unmet dependency NUM >= 100 (NUM=64)"


def test_explain_other_reasons(tree: kl.KconfigTree) -> None:
    config = {"MODULES": "y", "NEEDS_M": "m", "HIDDEN": "y", "NUM_RANGE_END": "512", "NUM": "64"}
    assert tree.explain("NOPE", "y", config) == "no such option in this kernel"
    assert tree.explain("NEEDS_M", "y", config) == \
        "unmet dependency m (it can only be built as a module)"
    assert "no prompt" in tree.explain("HIDDEN", "n", {"MODULES": "y", "HIDDEN": "y"})
    assert tree.explain("HIDDEN", "n", {"SELECTOR": "y", "HIDDEN": "y"}) == "selected by SELECTOR (=y)"
    assert tree.explain("NUM", "1024", config) == \
        "1024 is outside its range 2..512 (NUM_RANGE_END=512)"
    assert tree.explain("NUM", "100", {**config, "BIG": "y"}) == "its prompt is hidden: MODULES && !BIG " \
        "(MODULES=y, BIG=y)"
    assert tree.explain("ALLOC_B", "y", {"MODULES": "y", "ALLOC_A": "y"}) == \
        "another option of the same choice won"
    assert "only set when selected (by SELECTOR)" in tree.explain("HIDDEN", "y", {})
    assert tree.explain("BIG", "m", {"BIG": "y"}) == "it is a bool option: it can be y or n, not m"


def test_an_option_asked_off_that_the_kernel_lacks_is_not_unknown(tree: kl.KconfigTree, tmp_path: Path) -> None:
    """debug.config's "# CONFIG_SLUB_TINY is not set" serves 6.1, which has
    no SLUB_TINY, and 7.2, whose tinyconfig sets it; a typo asked on is
    still refused."""
    from kmod_dups.build.fragments import Setting
    from kmod_dups.build.kconfig import unknown_symbols

    asked = {s.symbol: s for s in (Setting("NOT_HERE", "n", tmp_path / "f.config", 1),
                                   Setting("TYPO_HERE", "y", tmp_path / "f.config", 2),
                                   Setting("FEATURE", "y", tmp_path / "f.config", 3))}
    assert [s.symbol for s in unknown_symbols(tree, asked)] == ["TYPO_HERE"]
