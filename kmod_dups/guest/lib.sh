# shellcheck shell=sh
# lib.sh - the functions every kmod-dups guest script starts with.
#
# Runs as root inside the guest, after the variables kmod_dups.guest.script()
# puts first: KDS_ROOT (the modules root), KDS_RELEASE, KDS_WORK (a writable
# guest folder), KDS_CONF, KDS_LOG, KDS_WRAPPER and KDS_WRAPPER_TEXT (the
# kernel's modprobe), KDS_DIR (kmod_dups_storm's debugfs folder), KDS_STORM
# (1: load kmod_dups_storm), KDS_STORM_MODULE, KDS_PARAM (enable_dups_trace).
# Lines starting with "KDS " are for the host (kmod_dups.guest.storm).

kds() {
	echo "KDS $*"
}

kds_die() {
	kds "fatal $*"
	exit 1
}

kds_ms() {
	date +%s%3N
}

# Lines in a file (0 when it does not exist).
kds_lines() {
	if [ -f "$1" ]; then
		wc -l < "$1"
	else
		echo 0
	fi
}

# Wait (up to 120 s) until no modprobe runs.
kds_settle() {
	kds_n=0
	while grep -qsx modprobe /proc/[0-9]*/comm && [ "$kds_n" -lt 1200 ]; do
		sleep 0.1
		kds_n=$((kds_n + 1))
	done
}

# Unload a module if it is loaded (waiting for a load in progress first).
kds_unload() {
	kds_settle
	if [ -d "/sys/module/$1" ] && [ -e "/sys/module/$1/initstate" ]; then
		rmmod "$1" || kds "warning id=- unload=$1 rc=$?"
	fi
}

kds_state() {
	if [ -r "/sys/module/$1/initstate" ]; then
		cat "/sys/module/$1/initstate"
	else
		echo absent
	fi
}

# Options modprobe passes to module $1 (none when $2 is empty).
kds_options() {
	rm -f "$KDS_CONF/kmod-dups.conf"
	if [ -n "$2" ]; then
		echo "options $1 $2" > "$KDS_CONF/kmod-dups.conf"
	fi
}

kds_set() {
	echo "$2" > "$KDS_DIR/$1" || kds_die "reason=control file=$1 value=$2"
}

# The kernel log after the marker line "kmod-dups mark $1".
kds_mark() {
	echo "kmod-dups mark $1" > /dev/kmsg
}

kds_log_since() {
	dmesg | sed -n "/kmod-dups mark $1\$/,\$p"
}

# Module name $1 as a pattern for either spelling ('-' or '_').
kds_name_re() {
	echo "$1" | sed 's/[-_]/[-_]/g'
}

# The duplicates of module $2 in the kernel log text $1: what the first
# requests reported ("duplicate requests for module M: N, ..."), or, from a
# dups.c that reports none (the posted one), one warning line each.
kds_dups_in() {
	kds_re=$(kds_name_re "$2")
	if printf '%s\n' "$1" | grep -q "duplicate requests for module $kds_re: "; then
		printf '%s\n' "$1" |
			sed -n "s/.*duplicate requests for module $kds_re: \([0-9][0-9]*\),.*/\1/p" |
			awk '{ n += $1 } END { print n + 0 }'
	else
		printf '%s\n' "$1" | grep -c "duplicate request for module $kds_re\$"
	fi
}

# launches, duplicates, bursts reported, duplicate warnings and WARNs for
# module $2 since mark $1 and line $3 of the modprobe log.
kds_kernel() {
	kds_since=$(kds_log_since "$1")
	if [ -n "$kds_since" ]; then
		kds_marked=1
	else
		kds_marked=0
	fi
	kds_dups=$(kds_dups_in "$kds_since" "$2")
	kds_bursts=$(printf '%s\n' "$kds_since" | grep -c "duplicate requests for module $(kds_name_re "$2"): ")
	kds_warned=$(printf '%s\n' "$kds_since" | grep -c "duplicate request for module $(kds_name_re "$2")\$")
	kds_warns=$(printf '%s\n' "$kds_since" | grep -c "WARNING: .*kmod_dup_request_exists_wait")
	kds_launches=$(tail -n "+$(($3 + 1))" "$KDS_LOG" | grep -c -- "-q -- $2\$")
	kds "kernel id=$1 launches=$kds_launches dups=$kds_dups warns=$kds_warns marked=$kds_marked bursts=$kds_bursts warned=$kds_warned"
}

# Threads for a storm: $1 (0 means one per online CPU) but at least $2.
kds_threads() {
	if [ "$1" -gt 0 ]; then
		echo "$1"
	elif [ "$(nproc)" -lt "$2" ]; then
		echo "$2"
	else
		echo 0
	fi
}

# kds_storm ID NAME MODE THREADS MIN_THREADS ROUNDS LEAD LEAD_DELAY_MS OPTIONS
kds_storm() {
	kds_unload "$2"
	kds_options "$2" "$9"
	kds_storm_go "$@"
	kds_storm_end "$1" "$2"
}

# The storm itself, with the module and its options as they are: sets the
# controls, marks the log (kds_from: the modprobe log's length then), runs
# the callers and prints the storm, summary and result lines.
kds_storm_go() {
	kds_set name "$2"
	kds_set mode "$3"
	kds_set threads "$(kds_threads "$4" "$5")"
	kds_set rounds "$6"
	kds_set lead "$7"
	kds_set lead_delay_ms "$8"
	kds_from=$(kds_lines "$KDS_LOG")
	kds_mark "$1"
	kds_t0=$(kds_ms)
	echo 1 > "$KDS_DIR/go"
	# The write's own status is the storm's: go fails when a caller did.
	# shellcheck disable=SC2320
	kds_rc=$?
	kds_t1=$(kds_ms)
	kds "storm id=$1 name=$2 mode=$3 threads=$4 min_threads=$5 rounds=$6 lead=$7 lead_delay_ms=$8 options=$(echo "$9" | tr ' ' +) rc=$kds_rc ms=$((kds_t1 - kds_t0))"
	sed "s/^/KDS summary id=$1 /" "$KDS_DIR/summary"
	grep -v '^#' "$KDS_DIR/results" | sed "s/^/KDS result id=$1 /"
}

# Once every modprobe exited: the kernel's counts for storm $1 of module $2.
kds_storm_end() {
	kds_settle
	kds_kernel "$1" "$2" "$kds_from"
	kds "module id=$1 name=$2 state=$(kds_state "$2")"
}

kds_setup() {
	[ "$(id -u)" = 0 ] || kds_die "reason=not-root"
	[ "$(uname -r)" = "$KDS_RELEASE" ] || kds_die "reason=release running=$(uname -r) modules=$KDS_RELEASE"
	mkdir -p "$KDS_WORK/bin" "$KDS_CONF" || kds_die "reason=workdir dir=$KDS_WORK"
	if ! grep -qs ' /sys/kernel/debug debugfs ' /proc/mounts; then
		mount -t debugfs debugfs /sys/kernel/debug || kds_die "reason=debugfs"
	fi
	if [ -d /sys/kernel/tracing ] && ! grep -qs ' /sys/kernel/tracing tracefs ' /proc/mounts; then
		mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || :
	fi
	printf '%s' "$KDS_WRAPPER_TEXT" > "$KDS_WRAPPER" || kds_die "reason=wrapper"
	chmod 755 "$KDS_WRAPPER"
	: > "$KDS_LOG"
	echo "$KDS_WRAPPER" > /proc/sys/kernel/modprobe || kds_die "reason=modprobe-path"
	PATH="$KDS_WORK/bin:$PATH"
	export PATH
	if [ "$KDS_STORM" = 1 ] && [ ! -d "$KDS_DIR" ]; then
		insmod "$KDS_ROOT/lib/modules/$KDS_RELEASE/extra/$KDS_STORM_MODULE.ko" || kds_die "reason=insmod"
		[ -d "$KDS_DIR" ] || kds_die "reason=no-debugfs-dir"
	fi
	if [ -e "$KDS_PARAM" ]; then
		kds_feature=1
		kds_trace=$(cat "$KDS_PARAM")
	else
		kds_feature=0
		kds_trace=-
	fi
	kds "setup release=$(uname -r) cpus=$(nproc) online=$(cat /sys/devices/system/cpu/online) feature=$kds_feature trace=$kds_trace"
}

kds_teardown() {
	kds_settle
	if [ -d "/sys/module/$KDS_STORM_MODULE" ]; then
		rmmod "$KDS_STORM_MODULE" || kds "warning id=- unload=$KDS_STORM_MODULE"
	fi
	kds "end"
}
