"""What a kernel build needs on the host, checked before anything starts,
each missing piece named with the Debian package that provides it."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from kmod_dups.errors import UserError

# tool -> Debian package
BASIC = {"git": "git", "make": "make", "flex": "flex", "bison": "bison", "bc": "bc", "perl": "perl"}
# option in .config -> tools it needs at build time
BY_OPTION = {
    "IKHEADERS": {"cpio": "cpio", "xz": "xz-utils"},
    "MODULES": {"depmod": "kmod"},
    "KERNEL_XZ": {"xz": "xz-utils"},
    "KERNEL_LZ4": {"lz4": "lz4"},
    "KERNEL_ZSTD": {"zstd": "zstd"},
    "KERNEL_LZO": {"lzop": "lzop"},
    "DEBUG_INFO_BTF": {"pahole": "dwarves"},
}
# option -> (header, package)
HEADERS_BY_OPTION = {
    "OBJTOOL": ("gelf.h", "libelf-dev"),
    "UNWINDER_ORC": ("gelf.h", "libelf-dev"),
    "MODULE_SIG": ("openssl/opensslv.h", "libssl-dev"),
    "SYSTEM_TRUSTED_KEYRING": ("openssl/opensslv.h", "libssl-dev"),
}


def which(tool: str) -> str | None:
    found = shutil.which(tool)
    if found is None and tool == "depmod":
        for d in ("/sbin", "/usr/sbin"):
            if Path(d, tool).exists():
                return str(Path(d, tool))
    return found


def compiler_command(cc: str, use_ccache: bool) -> str:
    """The CC= value for make: ``ccache gcc`` unless told otherwise."""
    words = shlex.split(cc)
    if not words or which(words[0]) is None:
        raise UserError(f"C compiler {cc!r} not found on PATH; install it (apt-get install gcc) "
                        "or pass --cc")
    if use_ccache:
        if which("ccache") is None:
            raise UserError("ccache not found on PATH; install it (apt-get install ccache) "
                            "or pass --no-ccache")
        return f"ccache {cc}"
    return cc


def check_basic() -> None:
    missing = [f"{tool} ({pkg})" for tool, pkg in BASIC.items() if which(tool) is None]
    if missing:
        pkgs = " ".join(sorted({BASIC[m.split()[0]] for m in missing}))
        raise UserError(f"missing build tools: {', '.join(missing)}; install them: apt-get install {pkgs}")


def has_header(cc: str, header: str) -> bool:
    words = shlex.split(cc)
    proc = subprocess.run([*words, "-E", "-x", "c", "-", "-o", "/dev/null"],
                          input=f"#include <{header}>\n", capture_output=True, text=True)
    return proc.returncode == 0


def check_for_config(values: dict[str, str], cc: str) -> None:
    """Tools and headers that this particular configuration needs."""
    missing: dict[str, str] = {}
    for option, tools in BY_OPTION.items():
        if values.get(option) in ("y", "m"):
            for tool, pkg in tools.items():
                if which(tool) is None:
                    missing[f"{tool} (for CONFIG_{option})"] = pkg
    for option, (header, pkg) in HEADERS_BY_OPTION.items():
        if values.get(option) == "y" and pkg not in missing.values() and not has_header(cc, header):
            missing[f"<{header}> (for CONFIG_{option})"] = pkg
    if missing:
        raise UserError(f"missing for this configuration: {', '.join(missing)}; "
                        f"install them: apt-get install {' '.join(sorted(set(missing.values())))}")
