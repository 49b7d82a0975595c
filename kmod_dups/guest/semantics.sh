# shellcheck shell=sh
# semantics.sh - the semantic tests' functions (kmod_dups.semantics), on top
# of lib.sh.  Reads KDS_TARGET, KDS_KILL_DELAY_MS (the anchor's load time in
# killed_waiter), KDS_RECURSE and KDS_RECURSE_THREADS (recursive_softdep),
# KDS_HOLD_PREFIX, KDS_HOLD_GATE and KDS_SLOTS (slots_full, nowait_lost), KDS_SPELLINGS (spellings), KDS_TRACE_THREADS and
# KDS_TRACE_OPTIONS (dups_trace's storms).

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

# Hold every modprobe slot: KDS_SLOTS requests (from background writers of
# call) for names whose modprobe the wrapper holds on the gate FIFO while
# this shell keeps it open for writing (fd 9). Returns once each holder
# logged that it has the FIFO open, that is, holds its slot. Children
# started while the gate is open must close fd 9 (9>&-), or they keep it
# shut.
kds_hold_slots() {
	kds_gate=$KDS_CONF/$KDS_HOLD_GATE
	rm -f "$kds_gate"
	mkfifo "$kds_gate" || kds_die "reason=hold-gate"
	kds_h_from=$(kds_lines "$KDS_LOG")
	kds_h_i=0
	kds_holders=
	while [ "$kds_h_i" -lt "$KDS_SLOTS" ]; do
		(echo "wait $KDS_HOLD_PREFIX${1}_$kds_h_i" > "$KDS_DIR/call") 2> /dev/null &
		kds_holders="$kds_holders $!"
		kds_h_i=$((kds_h_i + 1))
	done
	exec 9<> "$kds_gate"
	kds_h_n=0
	while [ "$(tail -n "+$((kds_h_from + 1))" "$KDS_LOG" | grep -c " hold $KDS_HOLD_PREFIX")" -lt "$KDS_SLOTS" ]; do
		kds_h_n=$((kds_h_n + 1))
		[ "$kds_h_n" -le 1200 ] || kds_die "reason=hold-slots"
		sleep 0.1
	done
}

# Let the holders go (their requests then fail: no module has their names)
# and wait for their writers (only theirs: a tracer may run in the background).
kds_release_slots() {
	exec 9>&-
	rm -f "$kds_gate"
	# Word splitting is wanted: a list of pids.
	# shellcheck disable=SC2086
	wait $kds_holders
}

# kds_slots_full ID THREADS: every slot held, then THREADS callers ask for
# KDS_TARGET at once: the first request waits for a slot and gets -ETIME
# after kmod.c's 5 s, and so does every duplicate, at the same time; no
# modprobe runs for it.
kds_slots_full() {
	kds_unload "$KDS_TARGET"
	kds_options "$KDS_TARGET" ""
	kds_hold_slots "$1"
	kds_storm_go "$1" "$KDS_TARGET" wait "$2" "$2" 1 none 500 ""
	kds_release_slots
	kds_storm_end "$1" "$KDS_TARGET"
}

# Every slot held; A asks for KDS_TARGET and waits for a slot; D asks with
# request_module_nowait(); A is killed; the slots free up. D must still get
# its modprobe: KDS_TARGET ends up loaded.
kds_nowait_lost() {
	kds_unload "$KDS_TARGET"
	kds_options "$KDS_TARGET" "init_delay_ms=500"
	kds_hold_slots "$1"
	kds_from=$(kds_lines "$KDS_LOG")
	kds_mark "$1"
	(echo "wait $KDS_TARGET" > "$KDS_DIR/call") 9>&- &
	kds_first=$!
	sleep 1
	(echo "nowait $KDS_TARGET" > "$KDS_DIR/call") 9>&- &
	kds_nowait=$!
	sleep 1
	kill -9 "$kds_first"
	kds_t0=$(kds_ms)
	kds_release_slots
	wait "$kds_first" "$kds_nowait"
	kds_t1=$(kds_ms)
	kds_settle
	kds "nowait-lost id=$1 first=$kds_first nowait=$kds_nowait release_to_done_ms=$((kds_t1 - kds_t0)) state=$(kds_state "$KDS_TARGET") launches=$(tail -n "+$((kds_from + 1))" "$KDS_LOG" | grep -c -- "-q -- $KDS_TARGET\$")"
	grep -v '^#' "$KDS_DIR/call" | grep " $KDS_TARGET\$" | sed "s/^/KDS call id=$1 /"
	kds_unload "$KDS_TARGET"
}

# KDS_SPELLINGS callers at once from writers of call, every other one
# spelling KDS_TARGET with '-': one module, so one modprobe.
kds_spellings() {
	kds_unload "$KDS_TARGET"
	kds_options "$KDS_TARGET" "init_delay_ms=2000"
	kds_sp_dashed=$(echo "$KDS_TARGET" | tr _ -)
	kds_from=$(kds_lines "$KDS_LOG")
	kds_mark "$1"
	kds_sp_i=0
	kds_sp_pids=
	while [ "$kds_sp_i" -lt "$KDS_SPELLINGS" ]; do
		if [ $((kds_sp_i % 2)) = 1 ]; then
			kds_sp_name=$kds_sp_dashed
		else
			kds_sp_name=$KDS_TARGET
		fi
		(echo "wait $kds_sp_name" > "$KDS_DIR/call") &
		kds_sp_pids="$kds_sp_pids $!"
		kds_sp_i=$((kds_sp_i + 1))
	done
	# shellcheck disable=SC2086
	wait $kds_sp_pids
	kds_settle
	kds_sp_log=$(tail -n "+$((kds_from + 1))" "$KDS_LOG")
	kds "spellings id=$1 callers=$KDS_SPELLINGS state=$(kds_state "$KDS_TARGET") launches_underscore=$(printf '%s\n' "$kds_sp_log" | grep -c -- "-q -- $KDS_TARGET\$") launches_dash=$(printf '%s\n' "$kds_sp_log" | grep -c -- "-q -- $kds_sp_dashed\$") dups=$(kds_dups_in "$(kds_log_since "$1")" "$KDS_TARGET")"
	grep -v '^#' "$KDS_DIR/call" | tail -n "$KDS_SPELLINGS" | sed "s/^/KDS call id=$1 /"
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
