"""Apply the feature to a base tree's text: the file contents after each
patch of the series.  Templates give the inserted text; this module only
finds where it goes in the tree at hand (layout and kernel APIs differ
between 6.1 and later trees)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kmod_dups.codegen import basetree
from kmod_dups.codegen.basetree import BaseTree
from kmod_dups.codegen.render import check_variant, render, render_dups_c
from kmod_dups.errors import UserError


@dataclass
class Patch:
    """One logical change: its subject, commit message and new file texts."""

    slug: str
    subject: str
    message: str
    files: dict[str, str] = field(default_factory=dict)
    # Tags above Signed-off-by, as they are (Fixes: is never wrapped).
    trailers: tuple[str, ...] = ()


def _replace_once(text: str, old: str, new: str, where: str, what: str) -> str:
    count = text.count(old)
    if count != 1:
        raise UserError(f"{where}: cannot find {what} (found {count} matches); this tree's "
                        f"{where} differs from the kernels the generator knows (6.1 and later)")
    return text.replace(old, new)


def module_kconfig(tree: BaseTree, variant: str) -> str:
    """kernel/module/Kconfig with the two options in the MODULE_DEBUG menu,
    creating the menu (at the top of the MODULES menu) where the tree has none.
    The help says what the variant's code does."""
    text = tree.read(basetree.MODULE_KCONFIG)
    options = render("Kconfig.dups.j2", variant=variant)
    if tree.has_module_debug_menu:
        return _replace_once(text, "endif # MODULE_DEBUG\n", f"{options}\nendif # MODULE_DEBUG\n",
                             basetree.MODULE_KCONFIG, "the end of the MODULE_DEBUG menu")
    menu = render("Kconfig.menu.j2", options=options)
    return _replace_once(text, "if MODULES\n\n", f"if MODULES\n\n{menu}\n",
                         basetree.MODULE_KCONFIG, "'if MODULES'")


def module_makefile(tree: BaseTree) -> str:
    text = tree.read(basetree.MODULE_MAKEFILE)
    return text.rstrip("\n") + "\n" + render("Makefile.dups.j2")


def internal_h(tree: BaseTree, variant: str) -> str:
    text = tree.read(basetree.INTERNAL_H)
    return text.rstrip("\n") + "\n" + render("internal.h.dups.j2", variant=variant)


def kmod_c(tree: BaseTree, variant: str) -> str:
    """kmod.c with __request_module() asking dups.c about duplicates and
    the first request announcing its result on every path."""
    where = tree.kmod_c
    text = tree.read(where)

    def sub(old: str, new: str, what: str) -> None:
        nonlocal text
        text = _replace_once(text, old, new, where, what)

    sub("#include <trace/events/module.h>\n",
        f"#include <trace/events/module.h>\n\n#include {tree.internal_h_include}\n",
        "the include of trace/events/module.h")
    check = render("kmod.dups_check.c.j2", variant=variant)
    trace = "\ttrace_module_request(module_name, wait, _RET_IP_);\n\n"
    call = "\tret = call_modprobe(module_name, wait ? UMH_WAIT_PROC : UMH_WAIT_EXEC);\n\n"
    if variant == "as-posted":
        return _posted_hooks(tree, text, check, trace, call)

    # The first request holds its entry (a token) from the check on and
    # announces once, at the single exit of __request_module(): every
    # early return after the check becomes a jump there.
    sub("\tchar module_name[MODULE_NAME_LEN];\n\tint ret;\n",
        "\tchar module_name[MODULE_NAME_LEN];\n\tstruct kmod_dup_req *first;\n\tint ret, dup_ret;\n",
        "__request_module()'s locals")
    sub(trace, "", "the module_request tracepoint in __request_module()")
    sub("\tret = security_kernel_module_request(module_name);\n\tif (ret)\n\t\treturn ret;\n\n",
        "\tret = security_kernel_module_request(module_name);\n\tif (ret)\n\t\treturn ret;\n\n"
        + check + "\n", "the security_kernel_module_request() check")
    if tree.throttle == "atomic":
        sub("\t\t\treturn -ETIME;\n", "\t\t\tret = -ETIME;\n\t\t\tgoto out;\n",
            "the -ETIME exit of the concurrency limit")
        sub("giving up\", module_name);\n\t\t\treturn ret;\n", "giving up\", module_name);\n\t\t\tgoto out;\n",
            "the fatal-signal exit of the concurrency limit")
    else:
        match = re.search(r"\tret = down_timeout\(&kmod_concurrent_max,.*?\n\t\t(return ret;)\n", text, re.S)
        if not match:
            raise UserError(f"{where}: cannot find the down_timeout() exit of the concurrency limit")
        text = text[: match.start(1)] + "goto out;" + text[match.end(1):]
    sub(call, call.replace("UMH_WAIT_EXEC);", "UMH_WAIT_EXEC, first);"), "the call_modprobe() in __request_module()")
    sub("\n\treturn ret;\n}\nEXPORT_SYMBOL(__request_module);",
        "\nout:\n\tkmod_dup_request_announce(first, ret);\n\treturn ret;\n}\nEXPORT_SYMBOL(__request_module);",
        "the end of __request_module()")

    # The subprocess_info carries the entry: its init tells dups.c which
    # process is the first request's modprobe (a request from it must not
    # wait for itself) and its cleanup drops the reference that takes.
    sub("\tkfree(info->argv[3]); /* check call_modprobe() */\n\tkfree(info->argv);\n}\n",
        "\tkfree(info->argv[3]); /* check call_modprobe() */\n\tkfree(info->argv);\n"
        "\tkmod_dup_request_put(info->data);\n}\n\n"
        "static int modprobe_init(struct subprocess_info *info, struct cred *new)\n{\n"
        "\tkmod_dup_request_exec(info->data);\n\treturn 0;\n}\n",
        "free_modprobe_argv()")
    sub("\t\t\t\t\t NULL, free_modprobe_argv, NULL);\n",
        "\t\t\t\t\t modprobe_init, free_modprobe_argv, first);\n",
        "call_usermodehelper_setup() in call_modprobe()")
    # call_modprobe() tells dups.c when nothing but the exec is left, the
    # point from which a request_module_nowait() may count on it.
    sub("static int call_modprobe(char *module_name, int wait)\n",
        "static int call_modprobe(char *module_name, int wait, struct kmod_dup_req *first)\n",
        "call_modprobe()'s signature")
    sub("\treturn call_usermodehelper_exec(info, wait | UMH_KILLABLE);\n",
        "\tkmod_dup_request_started(first);\n\treturn call_usermodehelper_exec(info, wait | UMH_KILLABLE);\n",
        "call_usermodehelper_exec() in call_modprobe()")
    return text


def _posted_hooks(tree: BaseTree, text: str, check: str, trace: str, call: str) -> str:
    """The hooks as posted: the check after the concurrency limit (a
    duplicate gives its modprobe slot back on the way out) and the result
    announced by name from call_modprobe()."""
    where = tree.kmod_c

    def sub(old: str, new: str, what: str) -> None:
        nonlocal text
        text = _replace_once(text, old, new, where, what)

    # call_modprobe(): the kstrdup()ed copy belongs to the usermode helper
    # and is freed with argv once modprobe has been exec'ed (UMH_WAIT_EXEC),
    # so the result is announced under the caller's name, not the copy's.
    sub("\tstruct subprocess_info *info;\n", "\tstruct subprocess_info *info;\n\tchar *modprobe_arg;\n\tint ret;\n",
        "call_modprobe()'s locals")
    sub("\tmodule_name = kstrdup(module_name, GFP_KERNEL);\n\tif (!module_name)\n",
        "\tmodprobe_arg = kstrdup(module_name, GFP_KERNEL);\n\tif (!modprobe_arg)\n",
        "the kstrdup() of the module name")
    sub("\targv[3] = module_name;", "\targv[3] = modprobe_arg;", "argv[3]")
    sub("\treturn call_usermodehelper_exec(info, wait | UMH_KILLABLE);\n",
        "\tret = call_usermodehelper_exec(info, wait | UMH_KILLABLE);\n"
        "\tkmod_dup_request_announce(module_name, ret);\n\treturn ret;\n",
        "call_usermodehelper_exec() in call_modprobe()")
    sub("free_module_name:\n\tkfree(module_name);\n", "free_module_name:\n\tkfree(modprobe_arg);\n",
        "call_modprobe()'s free_module_name label")
    sub("out:\n\treturn -ENOMEM;\n}\n",
        "out:\n\tkmod_dup_request_announce(module_name, -ENOMEM);\n\treturn -ENOMEM;\n}\n",
        "call_modprobe()'s -ENOMEM exit")
    sub("\tchar module_name[MODULE_NAME_LEN];\n\tint ret;\n",
        "\tchar module_name[MODULE_NAME_LEN];\n\tint ret, dup_ret;\n", "__request_module()'s locals")
    sub(trace + call, trace + check + "\n" + call + "out:\n", "the call_modprobe() in __request_module()")
    return text


def patches(tree: BaseTree, variant: str, linger_ms: int | None = None) -> list[Patch]:
    """The series' patches in order, each with the full text of the files
    it changes (after the patches before it).  *linger_ms*: a test build's
    shorter as-posted linger (see ``render.render_dups_c``)."""
    check_variant(variant)
    if tree.has_dups:
        raise UserError(f"{tree.path} (Linux {tree.version}) already has {basetree.DUPS_C} (the series is "
                        "applied, or the kernel is 6.4 or later): `kmod-dups series` writes its fix-up "
                        "series; `kmod-dups rig --tree` runs its own dups.c")
    context = dict(tree=tree, variant=variant)
    core = Patch(
        slug="dups",
        subject="module: add debugging auto-load duplicate module support",
        message=render("commit.dups.j2", **context),
        files={
            basetree.DUPS_C: render_dups_c(variant, tree.apis, linger_ms),
            basetree.MODULE_KCONFIG: module_kconfig(tree, variant),
            basetree.MODULE_MAKEFILE: module_makefile(tree),
            basetree.INTERNAL_H: internal_h(tree, variant),
        },
    )
    hooks = Patch(
        slug="hooks",
        subject="module: converge duplicate requests in request_module()",
        message=render("commit.hooks.j2", **context),
        files={tree.kmod_c: kmod_c(tree, variant)},
    )
    return [core, hooks]
