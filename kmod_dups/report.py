"""Re-judge a saved run, as ``kunit.py parse`` does: read what the guests
printed (output.log, console.log, result.json in each guest's folder) and
judge it again with today's judges, without booting anything.

A run folder of ``kmod-dups run`` or ``kmod-dups stress`` has a report.json
naming its guests; that is all that is read of the old verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kmod_dups import debugstorm, run, stress
from kmod_dups.errors import UserError


@dataclass
class Rejudged:
    kind: str  # "run" or "stress"
    folder: Path
    run: run.RunReport | None = None
    stress: stress.StressReport | None = None

    @property
    def ok(self) -> bool:
        if self.run is not None:
            return self.run.verdict.ok
        return self.stress is not None and self.stress.clean

    def text(self) -> str:
        if self.run is not None:
            return self.run.text()
        assert self.stress is not None
        return stress.table(self.stress) + "\n\n" + stress.details(self.stress)

    def data(self) -> dict:
        if self.run is not None:
            return self.run.data()
        assert self.stress is not None
        return stress.report_data(self.stress)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None


def _guest(folder: Path) -> tuple[str, float | None, str, str | None]:
    """A guest folder's result, boot time, output and console."""
    try:
        result = json.loads(_read(folder / "result.json"))
    except ValueError:
        raise UserError(f"{folder}/result.json is not JSON") from None
    timings = result.get("timings") if isinstance(result.get("timings"), dict) else {}
    try:
        console: str | None = (folder / "console.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        console = None
    return str(result.get("result", "no-result")), timings.get("guest_up"), _read(folder / "output.log"), console


def rejudge(folder: Path) -> Rejudged:
    folder = folder.expanduser()
    if not folder.is_dir():
        raise UserError(f"{folder}: no such run folder")
    try:
        saved = json.loads(_read(folder / "report.json"))
    except ValueError:
        raise UserError(f"{folder}/report.json is not JSON") from None
    if "kernels" in saved:
        runs = []
        for k in saved["kernels"]:
            result, boot, output, _ = _guest(Path(k["guest"]))
            runs.append(run.read_kernel_run(k["kernel"], Path(k["build"]), int(k["cpus"]), Path(k["guest"]),
                                            result, boot, output, run.TARGETS))
        return Rejudged("run", folder, run=run.RunReport(runs))
    if "scenarios" in saved:
        sizes = dict(saved.get("sizes") or {})
        if "starve_delays_ms" in sizes:
            sizes["starve_delays_ms"] = tuple(sizes["starve_delays_ms"])
        ctx = debugstorm.Context(cpus=int(saved["cpus"]), variant=saved["variant"], linger_ms=saved.get("linger_ms"),
                                 sizes=debugstorm.Sizes(**sizes))
        names = [s["name"] for s in saved["scenarios"]]
        guest = Path(saved["guest"])
        result, boot, output, console = _guest(guest)
        out, scenarios, boot_reports, other = stress.judge(output, console or "", ctx, names,
                                                           stress.dups_sites(Path(saved["build"])))
        report = stress.StressReport(
            variant=ctx.variant, linger_ms=ctx.linger_ms, build=saved["build"], cpus=ctx.cpus,
            online=out.setup.get("online", "?"), guest=str(guest), result=result, boot_seconds=boot,
            seconds=float(saved.get("seconds", 0)), ended=out.ended, scenarios=scenarios,
            boot_reports=boot_reports, other_reports=other, problems=stress.run_problems(result, console),
            sizes=dict(saved.get("sizes") or {}))
        return Rejudged("stress", folder, stress=report)
    raise UserError(f"{folder}/report.json is neither a kmod-dups run nor a stress report")
