# shellcheck shell=sh
# trace.sh - dupstrace, the BCC tool, in the background for a whole session
# (kmod_dups.run), on top of lib.sh.  Reads KDS_PYTHON (the interpreter with
# kmod_dups installed) and KDS_TRACE_TICKS (tenths of a second to wait for
# the tracer to attach: BCC compiles its program in the guest, slow under TCG)
# and KDS_TRACE_ARGS (more dupstrace options, e.g. -e for a timeline, whose
# lines come before the JSON document).

kds_trace_start() {
	# shellcheck disable=SC2086 # KDS_TRACE_ARGS is a list of options
	"$KDS_PYTHON" -m kmod_dups.dupstrace -j $KDS_TRACE_ARGS > "$KDS_WORK/trace.json" 2> "$KDS_WORK/trace.err" &
	kds_trace_pid=$!
	kds_n=0
	until grep -qs '^Tracing' "$KDS_WORK/trace.err"; do
		if ! kill -0 "$kds_trace_pid" 2>/dev/null || [ "$kds_n" -ge "$KDS_TRACE_TICKS" ]; then
			sed 's/^/KDS tracer-error /' "$KDS_WORK/trace.err"
			kds_die "reason=tracer"
		fi
		sleep 0.1
		kds_n=$((kds_n + 1))
	done
	kds "tracer ready=$((kds_n / 10))s"
}

kds_trace_stop() {
	kds_settle
	# SIGTERM: a background job of a script ignores SIGINT.
	kill -TERM "$kds_trace_pid"
	wait "$kds_trace_pid"
	kds "tracer rc=$?"
	grep -v '^Tracing' "$KDS_WORK/trace.err" | sed 's/^/KDS tracer-error /'
	sed 's/^/KDS tracejson /' "$KDS_WORK/trace.json"
}
