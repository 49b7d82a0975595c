"""What vmlinux must contain when the feature is on, and must not when it
is off, read with pyelftools.

- the functions kmod_dup_request_exists_wait and kmod_dup_request_announce
  (from .symtab);
- the kernel parameter module.enable_dups_trace: its struct kernel_param
  in the __param section, its name, ops and permissions, and the default
  that CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE implies, read by following
  the param's arg pointer into .data (or .bss when it is zero);
- the warning's format string in .rodata.

A vmlinux can be hundreds of MB, most of it DWARF.  pyelftools is used for
the ELF and section headers only; the symbol table is decoded in bulk with
struct, and nothing reads the debug sections.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.common.exceptions import ELFError

from kmod_dups.errors import UserError

DUPS_FUNCTIONS = ("kmod_dup_request_exists_wait", "kmod_dup_request_announce")
PARAM_NAME = "module.enable_dups_trace"
PARAM_OPS = "param_ops_bool_enable_only"
PARAM_PERM = 0o644
# Both variants print it: "module-autoload: duplicate ..." as posted,
# "module: duplicate ..." (pr_fmt) hardened.
WARNING_FORMAT = b"duplicate request for module %s\n"

STT_OBJECT, STT_FUNC = 1, 2


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    type: int
    bind: int
    shndx: int


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: str
    addr: int
    offset: int
    size: int
    flags: int


@dataclass(frozen=True)
class KernelParam:
    """One struct kernel_param from the __param section."""

    address: int
    name: str
    ops: int
    perm: int
    level: int
    flags: int
    arg: int


class ElfImage:
    """An ELF file read the cheap way: headers with pyelftools, tables in bulk."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._file = open(self.path, "rb")
        except OSError as err:
            raise UserError(f"cannot read {path}: {err.strerror}") from None
        try:
            self.elf = ELFFile(self._file)
        except ELFError as err:
            self._file.close()
            raise UserError(f"{path} is not an ELF file ({err})") from None
        self.is64 = self.elf.elfclass == 64
        self.endian = "<" if self.elf.little_endian else ">"
        self.ptr = 8 if self.is64 else 4
        self.sections = [
            Section(i, s.name, s["sh_type"], s["sh_addr"], s["sh_offset"], s["sh_size"], s["sh_flags"])
            for i, s in enumerate(self.elf.iter_sections())
        ]
        self._by_name = {s.name: s for s in self.sections}
        self._symbols: dict[str, list[Symbol]] | None = None
        self._by_addr: dict[int, list[Symbol]] | None = None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ElfImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw access

    def section(self, name: str) -> Section | None:
        return self._by_name.get(name)

    def section_bytes(self, sec: Section) -> bytes:
        if sec.type == "SHT_NOBITS":
            return bytes(sec.size)
        self._file.seek(sec.offset)
        return self._file.read(sec.size)

    def section_at(self, addr: int) -> Section | None:
        for sec in self.sections:
            if sec.flags & SH_FLAGS.SHF_ALLOC and sec.size and sec.addr <= addr < sec.addr + sec.size:
                return sec
        return None

    def read(self, addr: int, size: int) -> bytes:
        sec = self.section_at(addr)
        if sec is None:
            raise ValueError(f"address {addr:#x} is in no loaded section of {self.path.name}")
        if sec.type == "SHT_NOBITS":
            return bytes(size)
        self._file.seek(sec.offset + addr - sec.addr)
        return self._file.read(size)

    def cstring(self, addr: int, limit: int = 256) -> str:
        raw = self.read(addr, limit)
        return raw.split(b"\0", 1)[0].decode(errors="replace")

    def pointer(self, raw: bytes, offset: int) -> int:
        return struct.unpack_from(self.endian + ("Q" if self.is64 else "I"), raw, offset)[0]

    # -- symbols

    def symbols(self) -> dict[str, list[Symbol]]:
        """Every named symbol of .symtab, decoded in one pass."""
        if self._symbols is not None:
            return self._symbols
        symtab = self.section(".symtab")
        if symtab is None:
            raise UserError(f"{self.path} has no .symtab (stripped?); build vmlinux, not a stripped copy")
        strtab = self.sections[self.elf.get_section(symtab.index)["sh_link"]]
        table = self.section_bytes(symtab)
        strings = self.section_bytes(strtab)
        if self.is64:
            fmt, order = self.endian + "IBBHQQ", (0, 4, 5, 1, 3)
        else:
            fmt, order = self.endian + "IIIBBH", (0, 1, 2, 3, 5)
        out: dict[str, list[Symbol]] = {}
        i_name, i_value, i_size, i_info, i_shndx = order
        for entry in struct.iter_unpack(fmt, table):
            name_off = entry[i_name]
            if not name_off:
                continue
            end = strings.index(b"\0", name_off)
            name = strings[name_off:end].decode(errors="replace")
            info = entry[i_info]
            sym = Symbol(name, entry[i_value], entry[i_size], info & 0xF, info >> 4, entry[i_shndx])
            out.setdefault(name, []).append(sym)
        self._symbols = out
        return out

    def symbol(self, name: str) -> Symbol | None:
        found = self.symbols().get(name)
        return found[0] if found else None

    def symbols_at(self, addr: int) -> list[str]:
        if self._by_addr is None:
            self._by_addr = {}
            for syms in self.symbols().values():
                for s in syms:
                    if s.type in (STT_OBJECT, STT_FUNC):
                        self._by_addr.setdefault(s.value, []).append(s)
        found = self._by_addr.get(addr, [])
        sized = [s.name for s in found if s.size]
        return sized or [s.name for s in found]

    # -- kernel structures

    def param_entry_size(self, sec: Section) -> int:
        """sizeof(struct kernel_param), from the sizes of the objects the
        symbol table places in __param (fallback: the 6.1 layout)."""
        sizes = Counter(s.size for syms in self.symbols().values() for s in syms
                        if s.shndx == sec.index and s.type == STT_OBJECT and s.size)
        if sizes:
            return sizes.most_common(1)[0][0]
        return 5 * self.ptr

    def kernel_params(self) -> list[KernelParam]:
        """Every struct kernel_param of the __param section:
        { name, mod, ops, u16 perm, s8 level, u8 flags, arg }."""
        sec = self.section("__param")
        if sec is None:
            return []
        size = self.param_entry_size(sec)
        raw = self.section_bytes(sec)
        p = self.ptr
        out = []
        for off in range(0, len(raw) - size + 1, size):
            name_ptr = self.pointer(raw, off)
            ops = self.pointer(raw, off + 2 * p)
            perm, level, flags = struct.unpack_from(self.endian + "HbB", raw, off + 3 * p)
            arg = self.pointer(raw, off + 4 * p)
            try:
                name = self.cstring(name_ptr)
            except ValueError:
                name = ""
            out.append(KernelParam(sec.addr + off, name, ops, perm, level, flags, arg))
        return out

    def find_in_section(self, name: str, needle: bytes) -> int | None:
        """Address of ``needle`` in section ``name`` (None when absent)."""
        sec = self.section(name)
        if sec is None or sec.type == "SHT_NOBITS":
            return None
        pos = self.section_bytes(sec).find(needle)
        return None if pos < 0 else sec.addr + pos


@dataclass
class Check:
    what: str
    expected: str
    actual: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


@dataclass
class Report:
    vmlinux: Path
    feature: bool
    trace: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def as_dict(self) -> dict:
        return {"vmlinux": str(self.vmlinux), "feature": self.feature, "trace": self.trace, "ok": self.ok,
                "checks": [{"what": c.what, "expected": c.expected, "actual": c.actual, "ok": c.ok,
                            "detail": c.detail}
                           for c in self.checks]}

    def table(self) -> str:
        width = max(len(c.what) for c in self.checks)
        lines = [f"  {'ok ' if c.ok else 'BAD'} {c.what:<{width}}  {c.actual}"
                 + (f"  [{c.detail}]" if c.detail else "")
                 + ("" if c.ok else f"  (expected {c.expected})") for c in self.checks]
        return "\n".join(lines)


def present(flag: bool) -> str:
    return "present" if flag else "absent"


def check(vmlinux: Path, feature: bool, trace: bool, printk: bool = True) -> Report:
    """Compare vmlinux with what the config implies: the dups functions and
    the parameter exist exactly when ``feature``; the parameter defaults to
    ``trace``; the format string exists when ``feature`` and ``printk``
    (without CONFIG_PRINTK, pr_warn() and WARN()'s message compile to
    nothing, so its absence is then what is expected, not a failure)."""
    report = Report(Path(vmlinux), feature, trace)
    with ElfImage(vmlinux) as img:
        for fn in DUPS_FUNCTIONS:
            sym = img.symbol(fn)
            actual = present(sym is not None and sym.type == STT_FUNC)
            report.checks.append(Check(f"function {fn}", present(feature), actual))

        params = [p for p in img.kernel_params() if p.name == PARAM_NAME]
        report.checks.append(Check(f"__param {PARAM_NAME}", present(feature), present(bool(params))))
        if params and feature:
            param = params[0]
            ops = img.symbol(PARAM_OPS)
            report.checks.append(Check(f"{PARAM_NAME} ops", PARAM_OPS,
                                       PARAM_OPS if ops and ops.value == param.ops
                                       else ",".join(img.symbols_at(param.ops)) or f"{param.ops:#x}"))
            report.checks.append(Check(f"{PARAM_NAME} perm", oct(PARAM_PERM), oct(param.perm)))
            sec = img.section_at(param.arg)
            value = img.read(param.arg, 1)[0] if sec else None
            names = ",".join(img.symbols_at(param.arg)) or f"{param.arg:#x}"
            report.checks.append(Check(f"{PARAM_NAME} default", str(int(trace)),
                                       str(value) if value is not None else "unreadable",
                                       detail=f"arg -> {names} in {sec.name if sec else 'no section'}"))
        addr = img.find_in_section(".rodata", WARNING_FORMAT)
        report.checks.append(Check("warning format in .rodata", present(feature and printk),
                                   present(addr is not None),
                                   detail="" if printk else "CONFIG_PRINTK is not set: printk compiled out"))
    return report


def expectations(values: dict[str, str]) -> tuple[bool, bool, bool]:
    """(feature, trace, printk) as the build's .config sets them."""
    return (values.get("MODULE_DEBUG_AUTOLOAD_DUPS") == "y",
            values.get("MODULE_DEBUG_AUTOLOAD_DUPS_TRACE") == "y",
            values.get("PRINTK") == "y")
