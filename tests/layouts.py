"""Base-tree layouts for the generator tests: the real 6.1 tree, and trees
made from it that have what later kernels changed (kmod.c under
kernel/module/, a MODULE_DEBUG menu, a semaphore for the modprobe limit, no
wait_for_completion_state()).  Only the files the generator reads are laid
down, since that is all it looks at."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

READ_FILES = ("Makefile", "kernel/module/Kconfig", "kernel/module/Makefile",
              "kernel/module/internal.h", "kernel/kmod.c", "include/linux/completion.h")

ATOMIC_DECL = ("static atomic_t kmod_concurrent_max = ATOMIC_INIT(MAX_KMOD_CONCURRENT);\n"
               "static DECLARE_WAIT_QUEUE_HEAD(kmod_wq);\n")
SEMAPHORE_DECL = "static DEFINE_SEMAPHORE(kmod_concurrent_max, MAX_KMOD_CONCURRENT);\n"
SEMAPHORE_TAKE = """\tret = down_timeout(&kmod_concurrent_max, MAX_KMOD_ALL_BUSY_TIMEOUT * HZ);
\tif (ret) {
\t\tpr_warn_ratelimited("request_module: modprobe %s cannot be processed, kmod busy with %d threads for more than %d seconds now",
\t\t\t\t    module_name, MAX_KMOD_CONCURRENT, MAX_KMOD_ALL_BUSY_TIMEOUT);
\t\treturn ret;
\t}

"""
MENU = """menuconfig MODULE_DEBUG
\tbool "Module debugging"
\tdepends on DEBUG_FS
\thelp
\t  Allows you to enable / disable features which can help you debug
\t  modules. You don't need these options on production systems.

if MODULE_DEBUG

config MODULE_STATS
\tbool "Module statistics"
\tdepends on DEBUG_FS
\thelp
\t  Module statistics (a stand-in for the later kernels' option).

\t  If unsure, say N.

endif # MODULE_DEBUG

"""


@dataclass(frozen=True)
class Layout:
    name: str
    kmod_in_module_dir: bool = False
    debug_menu: bool = False
    semaphore: bool = False
    completion_state: bool = True


LAYOUTS = [
    Layout("6.1"),
    Layout("later", kmod_in_module_dir=True, debug_menu=True, semaphore=True),
    Layout("6.1-no-completion-state", completion_state=False),
    Layout("menu-only", debug_menu=True),
]


def make_tree(base: Path, dest: Path, layout: Layout) -> Path:
    for rel in READ_FILES:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base / rel, dest / rel)
    if layout.semaphore:
        kmod = dest / "kernel/kmod.c"
        text = kmod.read_text().replace(ATOMIC_DECL, SEMAPHORE_DECL)
        start = text.index("\tif (atomic_dec_if_positive(&kmod_concurrent_max) < 0) {")
        end = text.index("\ttrace_module_request(")
        text = text[:start] + SEMAPHORE_TAKE + text[end:]
        text = text.replace("\tatomic_inc(&kmod_concurrent_max);\n\twake_up(&kmod_wq);\n",
                            "\tup(&kmod_concurrent_max);\n")
        kmod.write_text(text)
    if layout.kmod_in_module_dir:
        (dest / "kernel/kmod.c").rename(dest / "kernel/module/kmod.c")
    if layout.debug_menu:
        kconfig = dest / "kernel/module/Kconfig"
        kconfig.write_text(kconfig.read_text().replace("if MODULES\n\n", "if MODULES\n\n" + MENU, 1))
    if not layout.completion_state:
        header = dest / "include/linux/completion.h"
        header.write_text("\n".join(line for line in header.read_text().splitlines()
                                    if "wait_for_completion_state" not in line) + "\n")
    return dest
