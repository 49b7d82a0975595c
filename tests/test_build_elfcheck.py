"""The ELF readers on small real executables compiled here with gcc: the
bulk symbol table reader, struct kernel_param in __param with its arg
pointer followed into .data/.bss, and the .rodata string search."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from kmod_dups.build import elfcheck
from kmod_dups.errors import UserError

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

# A miniature of what kernel/module/dups.c and moduleparam.h put in vmlinux:
# the same struct kernel_param layout, the same section and symbol names.
SOURCE = r"""
#include <stdbool.h>
#include <stddef.h>
struct kernel_param_ops { int flags; };
struct kernel_param {
	const char *name;
	void *mod;
	const struct kernel_param_ops *ops;
	const unsigned short perm;
	signed char level;
	unsigned char flags;
	union { void *arg; const void *str; const void *arr; };
};
const struct kernel_param_ops param_ops_bool_enable_only = { 0 };
const struct kernel_param_ops param_ops_int = { 0 };

static int other_value = 7;
static const char __param_str_other[] = "module.other";
static const struct kernel_param __param_other
	__attribute__((used, section("__param"), aligned(sizeof(void *)))) =
	{ __param_str_other, NULL, &param_ops_int, 0444, -1, 0, { &other_value } };

#ifdef FEATURE
static bool enable_dups_trace = TRACE;
static const char __param_str_enable_dups_trace[] = "module.enable_dups_trace";
static const struct kernel_param __param_enable_dups_trace
	__attribute__((used, section("__param"), aligned(sizeof(void *)))) =
	{ __param_str_enable_dups_trace, NULL, &PARAM_OPS, PERM, -1, 0, { &enable_dups_trace } };

extern int printf(const char *, ...);
#ifdef NO_PRINTK
#define printf(...) 0	/* what CONFIG_PRINTK=n makes of pr_warn() */
#endif
__attribute__((noinline)) int kmod_dup_request_exists_wait(char *name, bool wait, int *ret)
{
	printf("module-autoload: duplicate request for module %s\n", name);
	return wait + enable_dups_trace;
}
__attribute__((noinline)) void kmod_dup_request_announce(char *name, int ret)
{
	printf("%s %d\n", name, ret);
}
#endif

int main(void)
{
#ifdef FEATURE
	int r;
	kmod_dup_request_announce("x", kmod_dup_request_exists_wait("x", 1, &r));
#endif
	return other_value;
}
"""


def compile_image(tmp_path: Path, name: str, *flags: str) -> Path:
    src = tmp_path / "image.c"
    src.write_text(SOURCE)
    out = tmp_path / name
    subprocess.run(["gcc", "-O2", "-no-pie", "-fno-pie", "-o", str(out), str(src), *flags], check=True)
    return out


def feature_flags(trace: int, ops: str = "param_ops_bool_enable_only", perm: str = "0644") -> list[str]:
    return ["-DFEATURE", f"-DTRACE={trace}", f"-DPARAM_OPS={ops}", f"-DPERM={perm}"]


def test_bulk_symbols_match_pyelftools(tmp_path: Path) -> None:
    image = compile_image(tmp_path, "on", *feature_flags(1))
    with elfcheck.ElfImage(image) as img:
        bulk = {name: (s[0].value, s[0].size) for name, s in img.symbols().items()}
    with open(image, "rb") as f:
        ref = {}
        for sym in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            if sym.name:
                ref.setdefault(sym.name, (sym["st_value"], sym["st_size"]))
    assert bulk == ref
    assert "kmod_dup_request_exists_wait" in bulk


@pytest.mark.parametrize("trace", [0, 1])
def test_kernel_params_follow_arg_pointer(tmp_path: Path, trace: int) -> None:
    image = compile_image(tmp_path, f"t{trace}", *feature_flags(trace))
    with elfcheck.ElfImage(image) as img:
        params = {p.name: p for p in img.kernel_params()}
        assert set(params) == {"module.enable_dups_trace", "module.other"}
        dups = params["module.enable_dups_trace"]
        assert dups.perm == 0o644 and dups.level == -1
        assert img.symbols_at(dups.ops) == ["param_ops_bool_enable_only"]
        assert img.symbols_at(dups.arg) == ["enable_dups_trace"]
        assert img.read(dups.arg, 1)[0] == trace
        # a zero default lives in .bss, a non-zero one in .data
        assert img.section_at(dups.arg).name == (".data" if trace else ".bss")
        other = params["module.other"]
        assert other.perm == 0o444 and img.read(other.arg, 4) == (7).to_bytes(4, "little")


@pytest.mark.parametrize("trace", [0, 1])
def test_check_passes_on_a_matching_feature_image(tmp_path: Path, trace: int) -> None:
    image = compile_image(tmp_path, "on", *feature_flags(trace))
    report = elfcheck.check(image, feature=True, trace=bool(trace))
    assert report.ok, report.table()
    assert [c.what for c in report.checks] == [
        "function kmod_dup_request_exists_wait", "function kmod_dup_request_announce",
        "__param module.enable_dups_trace", "module.enable_dups_trace ops",
        "module.enable_dups_trace perm", "module.enable_dups_trace default",
        "warning format in .rodata"]


def test_check_catches_a_wrong_default_ops_and_perm(tmp_path: Path) -> None:
    image = compile_image(tmp_path, "bad", *feature_flags(1, ops="param_ops_int", perm="0600"))
    report = elfcheck.check(image, feature=True, trace=False)
    bad = {c.what: (c.expected, c.actual) for c in report.failures()}
    assert bad == {
        "module.enable_dups_trace ops": ("param_ops_bool_enable_only", "param_ops_int"),
        "module.enable_dups_trace perm": ("0o644", "0o600"),
        "module.enable_dups_trace default": ("0", "1"),
    }


def test_control_image_has_nothing_of_the_feature(tmp_path: Path) -> None:
    image = compile_image(tmp_path, "off")
    assert elfcheck.check(image, feature=False, trace=False).ok
    report = elfcheck.check(image, feature=True, trace=False)
    assert {c.what for c in report.failures()} == {
        "function kmod_dup_request_exists_wait", "function kmod_dup_request_announce",
        "__param module.enable_dups_trace", "warning format in .rodata"}
    on = compile_image(tmp_path, "on", *feature_flags(0))
    assert not elfcheck.check(on, feature=False, trace=False).ok


def test_stripped_and_non_elf_files_are_one_line_errors(tmp_path: Path) -> None:
    image = compile_image(tmp_path, "on", *feature_flags(0))
    stripped = tmp_path / "stripped"
    subprocess.run(["strip", "-o", str(stripped), str(image)], check=True)
    with pytest.raises(UserError, match="no .symtab"):
        elfcheck.check(stripped, feature=True, trace=False)
    text = tmp_path / "text"
    text.write_text("not an elf\n")
    with pytest.raises(UserError, match="not an ELF file"):
        elfcheck.check(text, feature=True, trace=False)


def test_without_printk_the_format_is_expected_absent(tmp_path: Path) -> None:
    """tinyconfig + the feature fragment: CONFIG_PRINTK is off, so the
    warning's format is compiled out; expecting it would reject a good build."""
    image = compile_image(tmp_path, "noprintk", *feature_flags(0), "-DNO_PRINTK")
    assert elfcheck.check(image, feature=True, trace=False, printk=False).ok
    report = elfcheck.check(image, feature=True, trace=False, printk=True)
    assert [c.what for c in report.failures()] == ["warning format in .rodata"]
    # With printk, a format that is missing is still a failure.
    assert not elfcheck.check(compile_image(tmp_path, "off"), feature=True, trace=False, printk=False).ok
    assert elfcheck.expectations({"MODULE_DEBUG_AUTOLOAD_DUPS": "y"}) == (True, False, False)
