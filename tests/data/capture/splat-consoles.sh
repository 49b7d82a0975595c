#!/bin/bash
# Recapture tests/data/console-splat-*.log: real consoles of a debug kernel
# where 24 kthreads request one missing module at once (23 dups WARNs) and
# the middle one raises a lockdep, refcount or list report among them.
#
#   tests/data/capture/splat-consoles.sh BUILD_DIR OUT_DIR
#
# BUILD_DIR: `kmod-dups build --config boot dups debug` (PRINTK_CALLER on).
set -euo pipefail
if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR OUT_DIR" >&2
	exit 2
fi
build=$1
out=$2
repo=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$repo/tests/crashmod" "$work/crashmod"
make -s -C "$build" M="$work/crashmod" modules
mkdir -p "$out"
for splat in none lockdep refcount list; do
	arg="splat=$splat"
	[ "$splat" = none ] && arg=""
	"$repo/.venv/bin/kmod-dups" boot --build "$build" --cpus 4 --accel tcg \
		--runs "$work/runs-$splat" --append module.enable_dups_trace=1 -- \
		"insmod $work/crashmod/kmod_dups_crashtest.ko crash=dups nr_threads=24 dups_module=kmod_dups_nonexistent $arg" || true
	cp "$work/runs-$splat"/boot-*/console.log "$out/console-splat-$splat.log"
done
