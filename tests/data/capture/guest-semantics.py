"""Recapture tests/data/kmods/semantics-{dups,nodups}-4cpu.log: the semantic
tests' script (kmod_dups.semantics) run in a 4-vCPU guest of the default
feature-on build and of the control build.

    .venv/bin/python tests/data/capture/guest-semantics.py OUT_DIR

Both builds are made (or brought up to date) as the tests make them.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from kmod_dups import kmods, semantics
from kmod_dups.build import pipeline
from kmod_dups.guest import session
from kmod_dups.guest.storm import GuestPaths
from kmod_dups.run import CONTROL_CONFIGS, FEATURE_CONFIGS


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for name, configs in (("dups", FEATURE_CONFIGS), ("nodups", CONTROL_CONFIGS)):
        record = pipeline.run(pipeline.Request(configs=list(configs), variant="hardened", quiet=True))
        build = Path(record["builddir"])
        root = kmods.prepare(build)
        script = semantics.render(GuestPaths(str(root.root), root.release))
        with tempfile.TemporaryDirectory(prefix="kd-capture-") as runs:
            run = session.run_script(build, 4, script, Path(runs), name="semantics")
            (out / f"semantics-{name}-4cpu.log").write_text(run.output, encoding="utf-8")
        print(f"{name}: {run.result}", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1])))
