# shellcheck shell=sh
# selftest.sh - the kernel's kmod.sh, one test an invocation
# (kmod_dups.kmod_selftest), on top of lib.sh.  Reads KDS_KMOD_SH.

# kds_selftest ID COUNT: run test ID COUNT times, print its log and what the
# kernel did meanwhile.
kds_selftest() {
	kds_from=$(kds_lines "$KDS_LOG")
	kds_mark "$1"
	kds_t0=$(kds_ms)
	bash "$KDS_KMOD_SH" -c "$1" "$2" > "$KDS_WORK/kmod-$1.log" 2>&1
	kds_rc=$?
	kds_t1=$(kds_ms)
	sed "s/^/KDS selftest-log id=$1 /" "$KDS_WORK/kmod-$1.log"
	kds_kernel "$1" '.*' "$kds_from"
	kds "selftest id=$1 count=$2 rc=$kds_rc ms=$((kds_t1 - kds_t0))"
}
