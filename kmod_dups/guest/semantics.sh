# shellcheck shell=sh
# semantics.sh - the semantic tests' functions (kmod_dups.semantics), on top
# of lib.sh.  Reads KDS_TARGET, KDS_KILL_DELAY_MS (the anchor's load time in
# killed_waiter), KDS_RECURSE and KDS_RECURSE_THREADS (recursive_softdep),
# KDS_TRACE_THREADS and KDS_TRACE_OPTIONS (dups_trace's storms).

# Two writers of call: an anchor whose modprobe takes KDS_KILL_DELAY_MS, and
# a duplicate waiter that gets SIGKILL a second later.
kds_killed_waiter() {
	kds_unload "$KDS_TARGET"
	kds_options "$KDS_TARGET" "init_delay_ms=$KDS_KILL_DELAY_MS"
	kds_from=$(kds_lines "$KDS_LOG")
	kds_mark "$1"
	(echo "wait $KDS_TARGET" > "$KDS_DIR/call") &
	kds_anchor=$!
	sleep 1
	(echo "wait $KDS_TARGET" > "$KDS_DIR/call") &
	kds_waiter=$!
	sleep 1
	kds_t0=$(kds_ms)
	kill -9 "$kds_waiter"
	wait "$kds_waiter"
	kds_t1=$(kds_ms)
	wait "$kds_anchor"
	kds_t2=$(kds_ms)
	kds_settle
	kds "killed id=$1 anchor=$kds_anchor waiter=$kds_waiter kill_to_exit_ms=$((kds_t1 - kds_t0)) kill_to_anchor_ms=$((kds_t2 - kds_t0))"
	grep -v '^#' "$KDS_DIR/call" | sed "s/^/KDS call id=$1 /"
	kds_kernel "$1" "$KDS_TARGET" "$kds_from"
	kds_unload "$KDS_TARGET"
}

# A storm for KDS_TARGET whose post softdep KDS_RECURSE asks for KDS_TARGET
# from its init, in the modprobe the first request waits for. Prints what
# that inner request returned (KDS_RECURSE's log line) and the kernel's
# warnings that it came from its own modprobe.
kds_recursive_softdep() {
	kds_unload "$KDS_RECURSE"
	echo "softdep $KDS_TARGET post: $KDS_RECURSE" > "$KDS_CONF/kmod-dups-softdep.conf" ||
		kds_die "reason=softdep-conf"
	kds_storm "$1" "$KDS_TARGET" wait "$KDS_RECURSE_THREADS" "$KDS_RECURSE_THREADS" 1 none 500 "init_delay_ms=1000"
	rm -f "$KDS_CONF/kmod-dups-softdep.conf"
	kds_r_log=$(kds_log_since "$1")
	kds_r_ret=$(printf '%s\n' "$kds_r_log" |
		sed -n "s/.*$KDS_RECURSE: request_module($KDS_TARGET) returned \(-\{0,1\}[0-9][0-9]*\)\$/\1/p" | tail -n 1)
	kds_r_own=$(printf '%s\n' "$kds_r_log" | grep -c "request for module $KDS_TARGET from its own modprobe")
	kds "recursive id=$1 state=$(kds_state "$KDS_RECURSE") ret=${kds_r_ret:--} own=$kds_r_own"
	kds_unload "$KDS_RECURSE"
	kds_unload "$KDS_TARGET"
}

# enable_dups_trace: its mode, a storm before and after writing 1, then 0.
kds_dups_trace() {
	if [ ! -e "$KDS_PARAM" ]; then
		kds "trace id=$1 present=0"
		return
	fi
	kds_perm=$(stat -c %a "$KDS_PARAM")
	kds_before=$(cat "$KDS_PARAM")
	kds_storm "$1.before" "$KDS_TARGET" wait "$KDS_TRACE_THREADS" "$KDS_TRACE_THREADS" 1 none 500 "$KDS_TRACE_OPTIONS"
	echo 1 > "$KDS_PARAM"
	# The write's own status: the parameter refuses 0 once it is 1.
	# shellcheck disable=SC2320
	kds_rc_on=$?
	kds_on=$(cat "$KDS_PARAM")
	kds_storm "$1.on" "$KDS_TARGET" wait "$KDS_TRACE_THREADS" "$KDS_TRACE_THREADS" 1 none 500 "$KDS_TRACE_OPTIONS"
	echo 0 > "$KDS_PARAM"
	# shellcheck disable=SC2320
	kds_rc_off=$?
	kds_off=$(cat "$KDS_PARAM")
	kds "trace id=$1 present=1 perm=$kds_perm before=$kds_before rc_on=$kds_rc_on on=$kds_on rc_off=$kds_rc_off off=$kds_off"
}
