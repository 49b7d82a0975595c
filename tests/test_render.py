"""Every template, rendered for every variant and base layout, reads as if
written by hand: no template artefacts, kernel indentation, and the hunks
land where they belong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kmod_dups.codegen import basetree, feature
from kmod_dups.codegen.generate import final_files
from kmod_dups.codegen.render import VARIANTS, environment
from tests.layouts import LAYOUTS, Layout, make_tree


@pytest.fixture(params=LAYOUTS, ids=lambda layout: layout.name)
def layout_tree(request, base_tree: Path, tmp_path: Path) -> tuple[Layout, basetree.BaseTree]:
    layout = request.param
    return layout, basetree.probe(make_tree(base_tree, tmp_path / layout.name, layout))


def test_every_template_is_used() -> None:
    """A template nobody renders is dead text; the loops below cover all."""
    names = set(environment().list_templates())
    used = {"Kconfig.dups.j2", "Kconfig.menu.j2", "Makefile.dups.j2", "internal.h.dups.j2",
            "kmod.dups_check.c.j2", "commit.dups.j2", "commit.hooks.j2", "cover.j2"}
    used |= {f"dups.c.{variant}.j2" for variant in VARIANTS}
    # the fix-up series: a message per defect, the shared rig paragraph, its cover
    from kmod_dups.codegen import fixups

    used |= {f"fixup/{d.slug}.j2" for d in fixups.DEFECTS} | {"fixup/_rig.j2", "cover.fixup.j2"}
    assert names == used


def _no_artefacts(rel: str, text: str) -> None:
    assert "{{" not in text and "{%" not in text, rel
    assert "\n\n\n" not in text, f"{rel}: doubled blank line"
    assert text.endswith("\n") and not text.endswith("\n\n"), f"{rel}: ending"
    for number, line in enumerate(text.splitlines(), 1):
        assert line == line.rstrip(), f"{rel}:{number}: trailing whitespace"
        assert not re.match(r"^ {8}", line), f"{rel}:{number}: spaces where the kernel indents with tabs"


@pytest.mark.parametrize("variant", VARIANTS)
def test_render_every_layout(layout_tree, variant: str) -> None:
    layout, tree = layout_tree
    assert tree.has_module_debug_menu == layout.debug_menu
    assert tree.throttle == ("semaphore" if layout.semaphore else "atomic")
    files = final_files(tree, variant)
    kmod_rel = "kernel/module/kmod.c" if layout.kmod_in_module_dir else "kernel/kmod.c"
    assert set(files) == {basetree.DUPS_C, basetree.MODULE_KCONFIG, basetree.MODULE_MAKEFILE,
                          basetree.INTERNAL_H, kmod_rel}
    for rel, text in files.items():
        _no_artefacts(rel, text)

    dups = files[basetree.DUPS_C]
    # The posted code waits TASK_UNINTERRUPTIBLE | TASK_KILLABLE where the
    # base has wait_for_completion_state(), else killable, the same state;
    # the hardened code waits killable with a timeout.
    if variant == "hardened":
        waiter = "wait_for_completion_killable_timeout("
    elif layout.completion_state:
        waiter = "wait_for_completion_state("
    else:
        waiter = "wait_for_completion_killable("
    assert waiter in dups

    kconfig = files[basetree.MODULE_KCONFIG]
    menu = kconfig[kconfig.index("menuconfig MODULE_DEBUG"):kconfig.index("endif # MODULE_DEBUG")]
    assert "config MODULE_DEBUG_AUTOLOAD_DUPS\n" in menu
    assert "config MODULE_DEBUG_AUTOLOAD_DUPS_TRACE\n\tbool" in menu
    assert kconfig.count("menuconfig MODULE_DEBUG\n") == 1
    assert kconfig.index("if MODULES") < kconfig.index("menuconfig MODULE_DEBUG") < kconfig.index("endif # MODULES")
    if layout.debug_menu:
        assert menu.index("config MODULE_STATS") < menu.index("config MODULE_DEBUG_AUTOLOAD_DUPS")

    assert files[basetree.MODULE_MAKEFILE].endswith("obj-$(CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS) += dups.o\n")
    header = files[basetree.INTERNAL_H]
    kmod = files[kmod_rel]
    include = '"internal.h"' if layout.kmod_in_module_dir else '"module/internal.h"'
    assert f"#include {include}\n" in kmod
    call_modprobe = kmod[kmod.index("static int call_modprobe("):kmod.index("int __request_module(")]
    request = kmod[kmod.index("int __request_module("):]
    limit = request.index("down_timeout(" if layout.semaphore else "atomic_dec_if_positive(")
    assert request.count("trace_module_request(") == 1
    if variant == "hardened":
        assert "bool kmod_dup_request_exists_wait(const char *module_name, bool wait, int *dup_ret,\n" \
               "\t\t\t\t  struct kmod_dup_req **first);" in header
        assert "static inline void kmod_dup_request_announce(struct kmod_dup_req *first, int ret)" in header
        # The first request holds its entry and announces once, at the one
        # exit of __request_module(); every exit of the limit jumps there.
        # It tells dups.c when only the exec is left.
        check = request.index("kmod_dup_request_exists_wait(module_name, wait, &dup_ret, &first)")
        assert request.index("trace_module_request(") < check < limit
        assert "kmod_dup_request_announce" not in call_modprobe
        assert request.count("kmod_dup_request_announce(") == 1
        assert "\nout:\n\tkmod_dup_request_announce(first, ret);\n\treturn ret;\n}\n" in request
        assert "\t\treturn" not in request[limit:], "an exit of the limit returns without announcing"
        assert call_modprobe.index("kmod_dup_request_started(first);\n\treturn call_usermodehelper_exec(") > 0
    else:
        assert "bool kmod_dup_request_exists_wait(char *module_name, bool wait, int *dup_ret);" in header
        assert "static inline void kmod_dup_request_announce(char *module_name, int ret)" in header
        # Announced on success and on the allocation failures, never with the
        # helper's copy of the name (freed once modprobe is exec'ed).
        assert call_modprobe.count("kmod_dup_request_announce(module_name,") == 2
        assert "kmod_dup_request_announce(modprobe_arg" not in call_modprobe
        check = request.index("kmod_dup_request_exists_wait(module_name, wait, &dup_ret)")
        assert request.index("trace_module_request(") < check
        assert limit < check
        assert "goto out;" in request and "\nout:\n" in request
        release = "up(&kmod_concurrent_max)" if layout.semaphore else "atomic_inc(&kmod_concurrent_max)"
        assert request.index("\nout:\n") < request.index(release)


def test_patches_are_ordered_and_split(base_tree: Path) -> None:
    tree = basetree.probe(base_tree)
    core, hooks = feature.patches(tree, "hardened")
    assert core.subject.startswith("module: ") and hooks.subject.startswith("module: ")
    assert tree.kmod_c not in core.files and set(hooks.files) == {tree.kmod_c}
