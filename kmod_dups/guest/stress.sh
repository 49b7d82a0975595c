# shellcheck shell=sh
# stress.sh - the debug-kernel scenarios' functions (kmod_dups.debugstorm),
# on top of lib.sh.  Reads KDX_TARGET (the module with an init delay),
# KDX_HOG_PRIO and KDX_SOFTIRQ_PRIO (late-waiter's SCHED_FIFO priorities),
# KDX_FAILSLAB (failslab's debugfs folder).
#
# The conditions given to kdx_until (and the hog's sh -c) are expanded later,
# by eval (by that sh): the single quotes are meant.
# shellcheck disable=SC2016

# Only faults armed per task (fail-nth) fail: failslab's own probability
# stays 0, and sleeping allocations (GFP_KERNEL, as dups.c's) are eligible.
# Each injected fault dumps its stack (verbose 2), at most 10 per 500
# jiffies (5 s at the guest's HZ=100; 6.1 stores the "_ms" value as is):
# a dump per fault would make the storm as slow as the serial console.
kdx_failslab() {
	[ -d "$KDX_FAILSLAB" ] || kds_die "reason=no-failslab"
	echo 0 > "$KDX_FAILSLAB/probability" || kds_die "reason=failslab-knob"
	echo N > "$KDX_FAILSLAB/ignore-gfp-wait" || kds_die "reason=failslab-knob"
	echo 500 > "$KDX_FAILSLAB/verbose_ratelimit_interval_ms" || kds_die "reason=failslab-knob"
	echo 10 > "$KDX_FAILSLAB/verbose_ratelimit_burst" || kds_die "reason=failslab-knob"
	echo 2 > "$KDX_FAILSLAB/verbose" || kds_die "reason=failslab-knob"
}

# A scenario starts: the host splits the kernel console at this line.
kdx_begin() {
	echo "kmod-dups scenario $1" > /dev/kmsg
	kds "scenario id=$1 cpus=$(nproc)"
}

kdx_last_seq() {
	kdx_seq=$(grep -v '^#' "$KDS_DIR/call" | tail -n 1 | cut -d ' ' -f 1)
	echo "${kdx_seq:-0}"
}

# The call log's entries after sequence number $2, as KDS call lines of id $1.
kdx_calls() {
	grep -v '^#' "$KDS_DIR/call" | awk -v from="$2" '$1 > from' | sed "s/^/KDS call id=$1 /"
}

# kdx_prep ID NAME OPTIONS: unload NAME, set its options, mark the log.
kdx_prep() {
	kds_unload "$2"
	kds_options "$2" "$3"
	kdx_opts=$(echo "$3" | tr ' ' +)
	kdx_from=$(kds_lines "$KDS_LOG")
	kds_mark "$1"
}

# kdx_launch ID NAME MODE THREADS ROUNDS LEAD LEAD_DELAY_MS INJECT: start a
# storm in the background (kdx_done waits for it).
kdx_launch() {
	kds_set name "$2"
	kds_set mode "$3"
	kds_set threads "$4"
	kds_set rounds "$5"
	kds_set lead "$6"
	kds_set lead_delay_ms "$7"
	kds_set inject "$8"
	kdx_args="name=$2 mode=$3 threads=$4 min_threads=1 rounds=$5 lead=$6 lead_delay_ms=$7 options=$kdx_opts"
	kdx_t0=$(kds_ms)
	(echo 1 > "$KDS_DIR/go") &
	kdx_go=$!
}

# kdx_done ID NAME: wait for the storm and print it as kds_storm does.
kdx_done() {
	wait "$kdx_go"
	kdx_rc=$?
	kdx_t1=$(kds_ms)
	kds_set inject 0
	kds_settle
	kds "storm id=$1 $kdx_args rc=$kdx_rc ms=$((kdx_t1 - kdx_t0))"
	sed "s/^/KDS summary id=$1 /" "$KDS_DIR/summary"
	grep -v '^#' "$KDS_DIR/results" | sed "s/^/KDS result id=$1 /"
	kds_kernel "$1" "$2" "$kdx_from"
	kds "module id=$1 name=$2 state=$(kds_state "$2")"
}

# kdx_storm ID NAME MODE THREADS ROUNDS LEAD LEAD_DELAY_MS OPTIONS INJECT
kdx_storm() {
	kdx_prep "$1" "$2" "$8"
	kdx_launch "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$9"
	kdx_done "$1" "$2"
}

# Wait up to 300 s for a condition (a shell command); 1 if it never held.
kdx_until() {
	kdx_n=0
	until eval "$1"; do
		if [ "$kdx_n" -ge 3000 ]; then
			kds "warning id=- waited-for=$(echo "$1" | tr ' ' +)"
			return 1
		fi
		sleep 0.1
		kdx_n=$((kdx_n + 1))
	done
}

# Duplicates of module $2 since mark $1, while a storm runs. The posted
# dups.c warns for each (kds_dups_in counts the lines); the hardened one
# warns once a burst and reports the burst's count when its first request
# returns, so the duplicates still waiting are the tasks asleep in dups.c's
# wait (their wchan), whatever module they wait for (a storm asks for one).
kdx_dups() {
	kdx_log=$(kds_log_since "$1")
	kdx_seen=$(kds_dups_in "$kdx_log" "$2")
	kdx_waiting=$(grep -lx kmod_dup_request_exists_wait "${KDX_PROC:-/proc}"/[0-9]*/wchan 2>/dev/null | wc -l)
	if printf '%s\n' "$kdx_log" | grep -q "duplicate requests for module $(kds_name_re "$2"): "; then
		kdx_seen=$((kdx_seen + kdx_waiting))
	elif [ "$kdx_waiting" -gt "$kdx_seen" ]; then
		kdx_seen=$kdx_waiting
	fi
	echo "$kdx_seen"
}

# The injected-fault stacks logged since mark $1 (their frames in function
# $2 and should_failslab), as KDS dmesg lines: read from the kernel's log
# buffer, which keeps every line, where the serial console can lose some
# when thousands of lines come at once.
kdx_stacks() {
	kds_log_since "$1" |
		grep -E "Call Trace:|</TASK>|should_failslab\\+|$2\\+" |
		sed "s/^/KDS dmesg id=$1 /"
}

# modprobe launches for module $1 after line $2 of the modprobe log.
kdx_launches() {
	tail -n "+$(($2 + 1))" "$KDS_LOG" | grep -c -- "-q -- $1\$"
}

kdx_reload() {
	kdx_prep "$1" "$KDX_TARGET" ""
	kdx_s0=$(kdx_last_seq)
	echo "wait $KDX_TARGET" > "$KDS_DIR/call"
	kdx_state1=$(kds_state "$KDX_TARGET")
	kdx_t0=$(kds_ms)
	rmmod "$KDX_TARGET"
	kdx_rm=$?
	echo "wait $KDX_TARGET" > "$KDS_DIR/call"
	kdx_t1=$(kds_ms)
	kdx_state2=$(kds_state "$KDX_TARGET")
	kds_settle
	kds "reload id=$1 first=$kdx_state1 rmmod=$kdx_rm gap_ms=$((kdx_t1 - kdx_t0)) second=$kdx_state2 settled=$(kds_state "$KDX_TARGET") launches=$(kdx_launches "$KDX_TARGET" "$kdx_from")"
	kdx_calls "$1" "$kdx_s0"
}

kdx_killed_first() {
	kdx_prep "$1" "$KDX_TARGET" "init_delay_ms=$4"
	kdx_s0=$(kdx_last_seq)
	(echo "wait $KDX_TARGET" > "$KDS_DIR/call") &
	kdx_first=$!
	kdx_until '[ "$(kdx_launches "$KDX_TARGET" "$kdx_from")" -ge 1 ]'
	kdx_launch "$1" "$KDX_TARGET" wait "$2" 1 none 0 0
	kdx_id=$1
	kdx_want=$3
	kdx_until '[ "$(kdx_dups "$kdx_id" "$KDX_TARGET")" -ge "$kdx_want" ]'
	kill -9 "$kdx_first"
	wait "$kdx_first"
	kdx_done "$1" "$KDX_TARGET"
	kds "killed-first id=$1 first=$kdx_first"
	kdx_calls "$1" "$kdx_s0"
}

# kdx_late_waiter ID THREADS INIT_DELAY_MS HOG_MS: the hog is started, bound
# and SCHED_FIFO, before the storm, and blocks reading a FIFO; once the
# duplicates wait, a write to the FIFO sets it spinning at once (an exec
# chain from the 9p root takes too long under TCG to start it then).
# Nothing else may run on the hogged CPU meanwhile: RT throttling is turned
# off while it spins.
kdx_late_waiter() {
	kdx_id=$1
	kdx_want=$(($2 - 1))
	kdx_hog_cpu=$(($2 - 1))
	kdx_last=$(($(nproc) - 1))
	kdx_others="0-$((kdx_hog_cpu - 1))"
	if [ "$kdx_hog_cpu" -lt "$kdx_last" ]; then
		kdx_others="$kdx_others,$((kdx_hog_cpu + 1))-$kdx_last"
	fi
	kdx_prep "$1" "$KDX_TARGET" "init_delay_ms=$3"
	taskset -p -c "$kdx_others" $$ > /dev/null || kds_die "reason=taskset"
	kdx_fifo=/tmp/kdx-hog.$$
	rm -f "$kdx_fifo"
	mkfifo "$kdx_fifo" || kds_die "reason=mkfifo"
	timeout -s KILL "$(($4 / 1000 + 180))" chrt -f "$KDX_HOG_PRIO" taskset -c "$kdx_hog_cpu" \
		sh -c 'read -r _ < "$1"; while :; do :; done' kdx-hog "$kdx_fifo" &
	kdx_hog=$!
	kdx_launch "$1" "$KDX_TARGET" wait "$2" 1 wait 300 0
	kdx_until '[ "$(kdx_dups "$kdx_id" "$KDX_TARGET")" -ge "$kdx_want" ]'
	kdx_rt=$(cat /proc/sys/kernel/sched_rt_runtime_us)
	echo -1 > /proc/sys/kernel/sched_rt_runtime_us
	kdx_tm=$(cat /proc/sys/kernel/timer_migration)
	echo 0 > /proc/sys/kernel/timer_migration
	kdx_softirqd=$(pgrep -x "ksoftirqd/$kdx_hog_cpu")
	[ -n "$kdx_softirqd" ] && chrt -f -p "$KDX_SOFTIRQ_PRIO" "$kdx_softirqd"
	echo go > "$kdx_fifo"
	kdx_h0=$(kds_ms)
	kdx_until '[ "$(kds_state "$KDX_TARGET")" = live ]'
	sleep "$(($4 / 1000 + 3))"
	kill -TERM "$kdx_hog"
	wait "$kdx_hog"
	kdx_h1=$(kds_ms)
	rm -f "$kdx_fifo"
	echo "$kdx_rt" > /proc/sys/kernel/sched_rt_runtime_us
	echo "$kdx_tm" > /proc/sys/kernel/timer_migration
	[ -n "$kdx_softirqd" ] && chrt -o -p 0 "$kdx_softirqd"
	taskset -p -c "0-$kdx_last" $$ > /dev/null
	kdx_done "$1" "$KDX_TARGET"
	kds "late-waiter id=$1 hog_cpu=$kdx_hog_cpu hog_at_ms=$((kdx_h0 - kdx_t0)) hog_ms=$((kdx_h1 - kdx_h0)) linger_ms=$4"
}

kdx_starve() {
	kds_unload "$KDX_TARGET"
	kdx_s0=$(kdx_last_seq)
	kdx_b0=$(kds_ms)
	echo "wait $5" > "$KDS_DIR/call"
	kdx_b1=$(kds_ms)
	kdx_prep "$1" "$KDX_TARGET" "init_delay_ms=$3"
	kdx_launch "$1" "$KDX_TARGET" wait "$2" 1 none 0 0
	# Read by the condition kdx_until evaluates.
	# shellcheck disable=SC2034
	kdx_id=$1
	# shellcheck disable=SC2034
	kdx_want=$4
	kdx_until '[ "$(kdx_dups "$kdx_id" "$KDX_TARGET")" -ge "$kdx_want" ]'
	kdx_p0=$(kds_ms)
	echo "wait $6" > "$KDS_DIR/call"
	kdx_p1=$(kds_ms)
	kdx_done "$1" "$KDX_TARGET"
	kds "starve id=$1 threads=$2 delay_ms=$3 baseline_ms=$((kdx_b1 - kdx_b0)) probe_ms=$((kdx_p1 - kdx_p0)) probe_at_ms=$((kdx_p0 - kdx_t0)) storm_ms=$((kdx_t1 - kdx_t0))"
	kdx_calls "$1" "$kdx_s0"
}
