#!/usr/bin/python3
"""dupstrace: count module auto-load requests, modprobe launches and
finit_module() calls per module, to show whether duplicate requests
converge.  A BCC tool in the manner of bcc's own tools: it runs on any live
kernel with BPF and kprobes, and probes only what the kernel has.

Per module it counts
  REQ     request_module() calls         (tracepoint module:module_request,
                                          plus __request_module() calls that
                                          ended before it, e.g. -ETIME)
  DUPS    duplicates the kernel caught   (kmod_dup_request_exists_wait() ==
                                          true; its kretprobe is sized to the
                                          storm and its misses are reported)
  EXEC    modprobe launches              (call_usermodehelper_setup()'s argv,
                                          then call_usermodehelper_exec())
  FINIT   finit_module() calls           (syscalls:sys_{enter,exit}_finit_module)
  FAIL    of which failed; DUPF those with EEXIST/EBUSY: a concurrent load
  LIVE    calls that returned 0: the module went live
  DHELD   what the EEXIST/EBUSY calls held in vain: the module image read
          (kernel_read_file(READING_MODULE)) and the layouts allocated for it
  FHELD   the same for the other failures (init failed, bad image, ...)
and per request (a row named by the request string, e.g. fs-xfs), the
finit_module() calls and live modules of the modprobes launched for it.
Beside the table: finit_module() calls by origin (a modprobe the kernel
started, a udev worker, systemd-modules-load, other), failures by errno,
the exact peak of bytes held by in-flight finit_module() calls (with -m,
by the calls for that module, counted from when each names it), and
VmallocUsed sampled from /proc/meminfo.

Run it as root: /usr/bin/python3 -m kmod_dups.dupstrace -h
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno as errnos
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields

EXAMPLES = """examples:
  ./dupstrace.py                 # trace until Ctrl-C, then print the table
  ./dupstrace.py -d 30           # trace for 30 seconds
  ./dupstrace.py 5               # print what each 5 seconds added
  ./dupstrace.py 5 3 --cumulative   # ... totals so far, three times, then exit
  ./dupstrace.py -m kmod_dups_target   # only this module (and this request)
  ./dupstrace.py -e -d 10        # a timeline of every request, launch and load
  ./dupstrace.py -j -d 10 > out.json   # JSON for scripts, one document a line
  ./dupstrace.py --ebpf          # print the BPF program and exit
"""

MODULE_NAME_LEN = 56  # MODULE_NAME_LEN on 64-bit kernels: 64 - sizeof(unsigned long)
UNKNOWN = "?"  # finit_module() calls whose module name could not be learned
# kretprobe instances: each duplicate holds one for its whole wait, so the
# kernel's default (max(10, 2 x CPUs)) loses returns in a storm.  4096 is
# the most the kprobe_events interface accepts.
MAXACTIVE = 4096
ORIGINS = ("kernel modprobe", "udev worker", "systemd-modules-load", "user modprobe", "other")
TIMELINE_KINDS = ("request", "dup", "launch", "finit", "exit", "unslotted")

# The BPF program, in one place.  HAVE_* switches are defined from what the
# running kernel offers (see probe_kernel()); FILTER_NAME from -m, TIMELINE
# from -e.
BPF_PROGRAM = r"""
#include <uapi/linux/ptrace.h>
#include <linux/kernel_read_file.h>

#define NAME_LEN __NAME_LEN__
#define EEXIST_ 17
#define EBUSY_ 16

struct name_t {
	char name[NAME_LEN];
} __attribute__((aligned(8)));	/* FILTER_NAME reads it 8 bytes at a time */

struct counts_t {
	u64 requests;
	u64 requests_nowait;
	u64 unslotted;
	u64 dups;
	u64 launches;
	u64 finit;
	u64 finit_failed;
	u64 failed_dup;
	u64 live;
	u64 read_bytes;
	u64 dup_held_bytes;
	u64 fail_held_bytes;
	u64 via_finit;
	u64 via_live;
};

struct origin_t {
	u64 finit;
	u64 failed;
	u64 live;
};

/* A finit_module() in flight on a thread. */
struct finit_t {
	struct name_t name;
	struct name_t request;	/* the kernel request whose modprobe this is */
	u64 image;		/* bytes of the module file read */
	u64 layouts;		/* bytes allocated for its core and init layouts */
	u32 origin;
	u16 reading;		/* inside kernel_read_file(READING_MODULE) */
	u16 formed;		/* reached module:module_load: its image is freed, init is next */
	u32 counted;		/* with -m: named the module, its bytes count in flight */
};

/* An __request_module() in flight: its format and first argument, in case
 * it ends before the tracepoint names it. */
struct request_t {
	u64 fmt;
	u64 arg;
	u64 slotted;
};

struct global_t {
	u64 inflight;	/* bytes held by finit_module() calls in flight */
	u64 peak;
};

struct event_t {
	u64 ts;
	u64 arg;
	s64 ret;
	u32 tid;
	u32 kind;
	char name[NAME_LEN];
	char fmt[NAME_LEN];
};

BPF_HASH(counts, struct name_t, struct counts_t, 4096);
BPF_HASH(origins, u32, struct origin_t, 16);
BPF_HASH(errnos, s32, u64, 256);
BPF_HASH(finits, u32, struct finit_t, 8192);
BPF_HASH(dup_calls, u32, u64, 8192);
BPF_HASH(dup_names, u32, struct name_t, 8192);
BPF_HASH(setups, u32, struct name_t, 1024);
BPF_HASH(requests_inflight, u32, struct request_t, 8192);
BPF_ARRAY(globals, struct global_t, 1);
/* Never written: a zeroed finit_t and room for an event, off the 512-byte
 * BPF stack. */
BPF_ARRAY(zeroes, struct finit_t, 1);
BPF_PERCPU_ARRAY(scratch, struct event_t, 1);
/* A modprobe's process tree -> the request it was started for: the
 * helper's subprocess_info (as a key only) from the exec call to the child
 * that runs it, then every process that child forks. */
BPF_HASH(umh_infos, u64, struct name_t, 1024);
BPF_HASH(umh_procs, u32, struct name_t, 8192);
BPF_PERF_OUTPUT(events);

#define KIND_REQUEST 0
#define KIND_DUP 1
#define KIND_LAUNCH 2
#define KIND_FINIT 3
#define KIND_EXIT 4
#define KIND_UNSLOTTED 5

#define ORIGIN_KMOD 0
#define ORIGIN_UDEV 1
#define ORIGIN_MODULES_LOAD 2
#define ORIGIN_USER_MODPROBE 3
#define ORIGIN_OTHER 4

static __always_inline int wanted(struct name_t *key)
{
#ifdef FILTER_NAME
	/* Words XORed with the name, ORed together: byte compares (a loop
	 * or a chain) become a memcmp call that BPF cannot load (E2BIG). */
	return FILTER_NAME(key->name);
#else
	return 1;
#endif
}

static __always_inline struct counts_t *counts_of(struct name_t *key)
{
	struct counts_t zero = {};

	if (!wanted(key))
		return NULL;
	return counts.lookup_or_try_init(key, &zero);
}

static __always_inline void timeline(void *ctx, u32 kind, struct name_t *name, s64 ret, u64 arg)
{
#ifdef TIMELINE
	int zero = 0;
	struct event_t *ev = scratch.lookup(&zero);

	if (!ev || (name && !wanted(name)))
		return;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts = bpf_ktime_get_ns();
	ev->tid = bpf_get_current_pid_tgid();
	ev->kind = kind;
	ev->ret = ret;
	ev->arg = arg;
	if (name)
		__builtin_memcpy(ev->name, name->name, NAME_LEN);
	events.perf_submit(ctx, ev, sizeof(*ev));
#endif
}

/* Add to the bytes in flight and keep the exact maximum. */
static __always_inline void hold(s64 bytes)
{
	int zero = 0;
	struct global_t *g = globals.lookup(&zero);
	u64 now, old;

	if (!g)
		return;
	now = __sync_fetch_and_add(&g->inflight, bytes) + bytes;
	if (bytes <= 0)
		return;
	for (int i = 0; i < 16; i++) {
		old = g->peak;
		if (now <= old)
			break;
		if (__sync_val_compare_and_swap(&g->peak, old, now) == old)
			break;
	}
}

static __always_inline int is(const char *s, const char *want, int len)
{
	for (int i = 0; i < len; i++) {
		if (s[i] != want[i])
			return 0;
	}
	return 1;
}

/*
 * What a finit_module() call holds counts in flight as it is held; with -m
 * only a call for that module counts, from when it names the module (the
 * loader knows the name only once the image is read).
 */
static __always_inline void hold_for(struct finit_t *f, s64 bytes)
{
#ifdef FILTER_NAME
	if (!f->counted)
		return;
#endif
	hold(bytes);
}

/* The call has just learnt its module's name. */
static __always_inline void named(struct finit_t *f)
{
#ifdef FILTER_NAME
	if (f->counted || !wanted(&f->name))
		return;
	f->counted = 1;
	hold((f->formed ? 0 : f->image) + f->layouts);
#endif
}

TRACEPOINT_PROBE(module, module_request)
{
	struct name_t key = {};
	struct counts_t *c;
	u32 tid = bpf_get_current_pid_tgid();
	struct request_t *r = requests_inflight.lookup(&tid);

	if (r)
		r->slotted = 1;
	bpf_probe_read_kernel_str(&key.name, sizeof(key.name),
				  (void *)args + (args->data_loc_name & 0xFFFF));
	timeline(args, KIND_REQUEST, &key, 0, args->wait);
	c = counts_of(&key);
	if (!c)
		return 0;
	__sync_fetch_and_add(&c->requests, 1);
	if (!args->wait)
		__sync_fetch_and_add(&c->requests_nowait, 1);
	return 0;
}

#ifdef HAVE_REQUEST_ENTRY
/* Stock kernels fire module:module_request only once a modprobe slot is
 * taken: a request that times out (-ETIME) or is refused before it never
 * reaches the tracepoint.  Its name is formatted in userspace from the
 * format and the first argument. */
int trace_request_entry(struct pt_regs *ctx, bool wait, const char *fmt)
{
	struct request_t r = {};
	u32 tid = bpf_get_current_pid_tgid();

	r.fmt = (u64)fmt;
	r.arg = PT_REGS_PARM3(ctx);
	requests_inflight.update(&tid, &r);
	return 0;
}

int trace_request_return(struct pt_regs *ctx)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct request_t *r = requests_inflight.lookup(&tid);
	struct event_t ev = {};

	if (!r)
		return 0;
	if (!r->slotted) {
		ev.ts = bpf_ktime_get_ns();
		ev.tid = tid;
		ev.kind = KIND_UNSLOTTED;
		ev.ret = (int)PT_REGS_RC(ctx);
		ev.arg = r->arg;
		bpf_probe_read_kernel_str(ev.fmt, sizeof(ev.fmt), (void *)r->fmt);
		bpf_probe_read_kernel_str(ev.name, sizeof(ev.name), (void *)r->arg);
		events.perf_submit(ctx, &ev, sizeof(ev));
	}
	requests_inflight.delete(&tid);
	return 0;
}
#endif

TRACEPOINT_PROBE(module, module_load)
{
	struct name_t key = {};
	u32 tid = bpf_get_current_pid_tgid();
	struct finit_t *f = finits.lookup(&tid);

	bpf_probe_read_kernel_str(&key.name, sizeof(key.name),
				  (void *)args + (args->data_loc_name & 0xFFFF));
	if (!f)
		return 0;
	f->name = key;
	named(f);
	/*
	 * 6.1 fires this after add_unformed_module() let the load through and
	 * after free_copy() released the image, just before do_init_module():
	 * the image no longer counts as held, and a later failure is the
	 * module's own (init, a dependency), not a concurrent duplicate's.
	 */
	if (!f->formed) {
		f->formed = 1;
		hold_for(f, -(s64)f->image);
	}
	return 0;
}

/* call_modprobe() is inlined; the usermode helper calls are not.  The
 * argv is read from call_usermodehelper_setup()'s argument, not from
 * struct subprocess_info (__randomize_layout). */
int trace_umh_setup(struct pt_regs *ctx, const char *path, char **argv)
{
	struct name_t key = {};
	u32 tid = bpf_get_current_pid_tgid();
	char *arg;
	char opt[4] = {};

	/* Every setup starts afresh: one whose exec never came is forgotten. */
	setups.delete(&tid);
	if (bpf_probe_read_kernel(&arg, sizeof(arg), &argv[1]) || !arg)
		return 0;
	bpf_probe_read_kernel_str(opt, sizeof(opt), arg);
	if (opt[0] != '-' || opt[1] != 'q' || opt[2] != 0)
		return 0;	/* not call_modprobe()'s "modprobe -q -- name" */
	if (bpf_probe_read_kernel(&arg, sizeof(arg), &argv[3]) || !arg)
		return 0;
	bpf_probe_read_kernel_str(&key.name, sizeof(key.name), arg);
	setups.update(&tid, &key);
	return 0;
}

int trace_umh_exec(struct pt_regs *ctx)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct name_t *key = setups.lookup(&tid);
	u64 info = PT_REGS_PARM1(ctx);

	if (!key) {
		/* Not a modprobe: an entry left at this address by an exec
		 * that failed before its child ran must not name this one. */
		umh_infos.delete(&info);
		return 0;
	}
	umh_infos.update(&info, key);
	setups.delete(&tid);
	return 0;
}

/* Runs in the new process, before it execs modprobe: a launch that really
 * happened (exec can fail before, e.g. -EBUSY while helpers are disabled). */
int trace_umh_child(struct pt_regs *ctx)
{
	u64 info = PT_REGS_PARM1(ctx);
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct name_t *key = umh_infos.lookup(&info);
	struct counts_t *c;

	if (!key)
		return 0;
	timeline(ctx, KIND_LAUNCH, key, 0, 0);
	c = counts_of(key);
	if (c)
		__sync_fetch_and_add(&c->launches, 1);
	umh_procs.update(&tgid, key);
	umh_infos.delete(&info);
	return 0;
}

/* What a modprobe forks (an install command, a softdep's modprobe) loads
 * for the same request. */
TRACEPOINT_PROBE(sched, sched_process_fork)
{
	u32 parent = bpf_get_current_pid_tgid() >> 32;
	u32 child = args->child_pid;
	struct name_t *key = umh_procs.lookup(&parent);

	if (key)
		umh_procs.update(&child, key);
	return 0;
}

/* Every exiting task: its entries go, so a reused pid inherits nothing.
 * A finit_module() whose exit tracepoint never came (the task died in it)
 * stops counting as in flight. */
TRACEPOINT_PROBE(sched, sched_process_exit)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct finit_t *f = finits.lookup(&tid);

	umh_procs.delete(&tid);
	if (f) {
		hold_for(f, -(s64)((f->formed ? 0 : f->image) + f->layouts));
		finits.delete(&tid);
	}
	return 0;
}

#ifdef HAVE_DUPS
int trace_dups_entry(struct pt_regs *ctx, char *module_name)
{
	struct name_t key = {};
	u32 tid = bpf_get_current_pid_tgid();
	u64 now = bpf_ktime_get_ns();

	bpf_probe_read_kernel_str(&key.name, sizeof(key.name), module_name);
	dup_names.update(&tid, &key);
	dup_calls.update(&tid, &now);
	return 0;
}

int trace_dups_return(struct pt_regs *ctx)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct name_t *key = dup_names.lookup(&tid);
	u64 *start = dup_calls.lookup(&tid);
	struct counts_t *c;

	if (!key || !start)
		return 0;
	if (PT_REGS_RC(ctx) & 0xff) {
		timeline(ctx, KIND_DUP, key, 0, bpf_ktime_get_ns() - *start);
		c = counts_of(key);
		if (c)
			__sync_fetch_and_add(&c->dups, 1);
	}
	dup_names.delete(&tid);
	dup_calls.delete(&tid);
	return 0;
}
#endif

/* Who calls finit_module(): a modprobe the kernel started (a process of a
 * usermode helper launched for a request), a udev worker,
 * systemd-modules-load, a modprobe run by hand, anything else. */
static __always_inline u32 origin_of(struct finit_t *f)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct name_t *request = umh_procs.lookup(&tgid);
	char comm[16] = {};

	if (request) {
		f->request = *request;
		return ORIGIN_KMOD;
	}
	bpf_get_current_comm(comm, sizeof(comm));
	if (is(comm, "(udev-worker)", 13) || is(comm, "systemd-udevd", 13))
		return ORIGIN_UDEV;
	if (is(comm, "systemd-modules", 15))
		return ORIGIN_MODULES_LOAD;
	if (is(comm, "modprobe", 9))
		return ORIGIN_USER_MODPROBE;
	return ORIGIN_OTHER;
}

TRACEPOINT_PROBE(syscalls, sys_enter_finit_module)
{
	int zero = 0;
	struct finit_t *f = zeroes.lookup(&zero);
	u32 tid = bpf_get_current_pid_tgid();

	if (!f)
		return 0;
	finits.update(&tid, f);
	f = finits.lookup(&tid);
	if (!f)
		return 0;
	f->origin = origin_of(f);
	timeline(args, KIND_FINIT, f->request.name[0] ? &f->request : NULL, 0, f->origin);
	return 0;
}

#ifdef HAVE_READ_FILE
int trace_read_file_entry(struct pt_regs *ctx, struct file *file, loff_t offset, void **buf,
			  size_t buf_size, size_t *file_size, enum kernel_read_file_id id)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct finit_t *f = finits.lookup(&tid);

	if (f)
		f->reading = id == READING_MODULE;
	return 0;
}

/* The module image read into vmalloc space by finit_module(). */
int trace_read_file_return(struct pt_regs *ctx)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct finit_t *f = finits.lookup(&tid);
	long ret = PT_REGS_RC(ctx);

	if (!f || !f->reading)
		return 0;
	f->reading = 0;
	if (ret > 0) {
		f->image += ret;
		hold_for(f, ret);
	}
	return 0;
}
#endif

#ifdef HAVE_LAYOUT
/* module_alloc(size) on 6.1; execmem_alloc(type, size) on 6.10+. */
int trace_layout_alloc(struct pt_regs *ctx)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct finit_t *f = finits.lookup(&tid);
	u64 size = HAVE_LAYOUT == 2 ? PT_REGS_PARM2(ctx) : PT_REGS_PARM1(ctx);

	if (!f)
		return 0;
	f->layouts += size;
	hold_for(f, size);
	return 0;
}
#endif

#ifdef HAVE_FIND_MODULE
/* A failed load never reaches module_load; learn its name from the
 * loader's check for an existing module of the same name. */
int trace_find_module(struct pt_regs *ctx, const char *name)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct finit_t *f = finits.lookup(&tid);

	if (!f || f->name.name[0])
		return 0;
	bpf_probe_read_kernel_str(&f->name.name, sizeof(f->name.name), name);
	named(f);
	return 0;
}
#endif

TRACEPOINT_PROBE(syscalls, sys_exit_finit_module)
{
	u32 tid = bpf_get_current_pid_tgid();
	struct finit_t *f = finits.lookup(&tid);
	struct origin_t zero_origin = {};
	struct origin_t *o;
	struct name_t key = {};
	struct counts_t *c;
	s32 err = args->ret;
	u64 held, zero = 0, *n;

	if (!f)
		return 0;
	held = f->image + f->layouts;
	hold_for(f, -(s64)((f->formed ? 0 : f->image) + f->layouts));
	key = f->name;
	if (!key.name[0]) {
		key.name[0] = '?';
		key.name[1] = 0;
	}
	timeline(args, KIND_EXIT, &key, err, held);
	c = counts_of(&key);
	if (c) {
		__sync_fetch_and_add(&c->finit, 1);
		__sync_fetch_and_add(&c->read_bytes, f->image);
		if (!err) {
			__sync_fetch_and_add(&c->live, 1);
		} else {
			__sync_fetch_and_add(&c->finit_failed, 1);
			/* EEXIST/EBUSY before module:module_load: refused by
			 * add_unformed_module(), a load of the same module was
			 * live or in flight.  Init can return them too, later. */
			if (!f->formed && (err == -EEXIST_ || err == -EBUSY_)) {
				__sync_fetch_and_add(&c->failed_dup, 1);
				__sync_fetch_and_add(&c->dup_held_bytes, held);
			} else {
				__sync_fetch_and_add(&c->fail_held_bytes, held);
			}
		}
		if (err) {
			n = errnos.lookup_or_try_init(&err, &zero);
			if (n)
				__sync_fetch_and_add(n, 1);
		}
		o = origins.lookup_or_try_init(&f->origin, &zero_origin);
		if (o) {
			__sync_fetch_and_add(&o->finit, 1);
			if (err)
				__sync_fetch_and_add(&o->failed, 1);
			else
				__sync_fetch_and_add(&o->live, 1);
		}
	}
	if (f->request.name[0]) {
		c = counts_of(&f->request);
		if (c) {
			__sync_fetch_and_add(&c->via_finit, 1);
			if (!err)
				__sync_fetch_and_add(&c->via_live, 1);
		}
	}
	finits.delete(&tid);
	return 0;
}
"""

# Kernel functions, in order of preference, for what is not a tracepoint.
UMH_SETUP = "call_usermodehelper_setup"
UMH_EXEC = "call_usermodehelper_exec"
UMH_CHILD = "call_usermodehelper_exec_async"  # the helper's new process, before its exec
REQUEST_FUNC = "__request_module"
DUPS_FUNC = "kmod_dup_request_exists_wait"
# kernel_read_file() does the reading on 6.1 (under kernel_read_file_from_fd())
# and on 6.5+ (init_module_from_file()); its id tells module reads apart.
READ_FILE_FUNCS = ("kernel_read_file",)
LAYOUT_FUNCS = (("module_alloc", 1), ("execmem_alloc", 2))
FIND_MODULE_FUNCS = ("find_module_all",)
TRACEPOINTS = (("module", "module_request"), ("module", "module_load"),
               ("syscalls", "sys_enter_finit_module"), ("syscalls", "sys_exit_finit_module"),
               ("sched", "sched_process_fork"), ("sched", "sched_process_exit"))
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
TRACEFS_EVENTS = tuple(f"{root}/events" for root in TRACEFS)

COUNT_FIELDS = ("requests", "requests_nowait", "unslotted", "dups", "launches", "finit", "finit_failed",
                "failed_dup", "live", "read_bytes", "dup_held_bytes", "fail_held_bytes", "via_finit", "via_live")


@dataclass
class ModuleCounts:
    """What one module (or one request string) cost during the session."""

    module: str
    requests: int = 0
    requests_nowait: int = 0
    unslotted: int = 0  # requests that ended before the tracepoint (no modprobe slot, refused)
    dups: int = 0
    launches: int = 0
    finit: int = 0
    finit_failed: int = 0
    failed_dup: int = 0  # of the failures, EEXIST/EBUSY: a concurrent load of the same module
    live: int = 0
    read_bytes: int = 0
    dup_held_bytes: int = 0  # image + layouts held by the EEXIST/EBUSY calls
    fail_held_bytes: int = 0  # the same for the other failures
    via_finit: int = 0  # finit_module() calls of the modprobes launched for this request
    via_live: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> ModuleCounts:
        """From JSON; fields this version does not know are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def minus(self, earlier: ModuleCounts | None) -> ModuleCounts:
        if earlier is None:
            return self
        return ModuleCounts(self.module, **{f: getattr(self, f) - getattr(earlier, f) for f in COUNT_FIELDS})

    def is_zero(self) -> bool:
        return not any(getattr(self, f) for f in COUNT_FIELDS)


@dataclass
class OriginCounts:
    origin: str
    finit: int = 0
    failed: int = 0
    live: int = 0


@dataclass
class Session:
    """A tracing session's result: per-module counts, where the loads came
    from, and what could not be traced (or was lost) on this kernel."""

    kernel: str
    seconds: float
    modules: list[ModuleCounts]
    vmalloc_start_kb: int | None
    vmalloc_peak_kb: int | None
    dups_traced: bool
    untraced: list[str] = field(default_factory=list)
    origins: list[OriginCounts] = field(default_factory=list)
    errnos: dict[str, int] = field(default_factory=dict)  # failed finit_module() calls by errno name
    inflight_peak_bytes: int | None = None  # exact, in BPF: image + layouts of calls in flight
    missed: dict[str, int] = field(default_factory=dict)  # kprobe/kretprobe misses: counts are low
    interval: bool = False  # the counts are what this interval added (peaks, misses: since the start)
    kernel_stats: dict[str, int] = field(default_factory=dict)  # CONFIG_MODULE_STATS: what the session added

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Session:
        """One document of ``-j``; ValueError when it is not one (fields a
        later version adds are left out)."""
        try:
            data = json.loads(text)
            known = {f.name for f in fields(cls)}
            values = {k: v for k, v in data.items() if k in known}
            values["modules"] = [ModuleCounts.from_dict(m) for m in data.get("modules", [])]
            values["origins"] = [OriginCounts(**o) for o in data.get("origins", [])]
            return cls(**values)
        except (AttributeError, TypeError, KeyError) as err:
            raise ValueError(f"not a dupstrace document: {err}") from None


@dataclass(frozen=True)
class Probes:
    """Which optional probe points the running kernel has."""

    dups: bool
    read_file: str | None
    find_module: str | None
    layout: tuple[str, int] | None = None  # (function, index of its size argument)
    request_entry: bool = False

    def defines(self, filter_name: str | None, timeline: bool = False) -> str:
        lines = []
        if self.dups:
            lines.append("#define HAVE_DUPS 1")
        if self.read_file:
            lines.append("#define HAVE_READ_FILE 1")
        if self.find_module:
            lines.append("#define HAVE_FIND_MODULE 1")
        if self.layout:
            lines.append(f"#define HAVE_LAYOUT {self.layout[1]}")
        if self.request_entry:
            lines.append("#define HAVE_REQUEST_ENTRY 1")
        if filter_name:
            lines.append(f"#define FILTER_NAME(n) ({filter_match(filter_name)})")
        if timeline:
            lines.append("#define TIMELINE 1")
        return "".join(line + "\n" for line in lines)

    def untraced(self) -> list[str]:
        out = []
        if not self.dups:
            out.append(f"DUPS: this kernel has no {DUPS_FUNC}() to probe")
        if not self.read_file:
            out.append(f"DHELD/FHELD image bytes: {READ_FILE_FUNCS[0]}() cannot be probed")
        if not self.layout:
            out.append(f"DHELD/FHELD layout bytes: none of {', '.join(f for f, _ in LAYOUT_FUNCS)}() "
                       "can be probed")
        if not self.find_module:
            out.append(f"FAIL names: {FIND_MODULE_FUNCS[0]}() cannot be probed; failed loads count as {UNKNOWN!r}")
        if not self.request_entry:
            out.append(f"REQ: {REQUEST_FUNC}() cannot be probed; requests that end before "
                       "module:module_request (on stock kernels: -ETIME, no modprobe slot) are not seen")
        return out


def filter_match(name: str) -> str:
    """A C expression true when the 8-aligned char array n holds exactly
    *name* (its NUL included; what follows the NUL is not compared), as
    little-endian 64-bit words XORed with the name's and ORed together."""
    data = name.encode() + b"\0"
    terms = []
    for at in range(0, len(data), 8):
        chunk = data[at:at + 8]
        word = int.from_bytes(chunk.ljust(8, b"\0"), "little")
        mask = (1 << (8 * len(chunk))) - 1
        load = f"*(const u64 *)((n) + {at})"
        if len(chunk) < 8:
            load = f"({load} & {mask:#x}ULL)"
        terms.append(f"({load} ^ {word:#x}ULL)")
    return f"({' | '.join(terms)}) == 0"


def program(probes: Probes, filter_name: str | None = None, timeline: bool = False) -> str:
    text = probes.defines(filter_name, timeline) + BPF_PROGRAM
    return text.replace("__NAME_LEN__", str(MODULE_NAME_LEN))


def format_request(fmt: str, arg: int, arg_text: str) -> str:
    """The module name __request_module() would have formatted from *fmt*
    and its first argument (a string or an integer), as far as one
    argument goes."""
    out, i, used = [], 0, False
    while i < len(fmt):
        if fmt[i] != "%" or i + 1 >= len(fmt):
            out.append(fmt[i])
            i += 1
            continue
        j = i + 1
        while j < len(fmt) and fmt[j] in "0123456789.-lhz":
            j += 1
        conv = fmt[j] if j < len(fmt) else ""
        if conv == "%":
            out.append("%")
        elif used:
            out.append(fmt[i:j + 1])
        elif conv == "s":
            out.append(arg_text)
            used = True
        elif conv in "di":
            out.append(str(ctypes.c_int(arg & 0xFFFFFFFF).value if "l" not in fmt[i:j] else
                           ctypes.c_long(arg).value))
            used = True
        elif conv in "ux":
            value = arg if "l" in fmt[i:j] else arg & 0xFFFFFFFF
            out.append(str(value) if conv == "u" else format(value, "x"))
            used = True
        else:
            out.append(fmt[i:j + 1])
        i = j + 1
    return "".join(out)[:MODULE_NAME_LEN - 1]


MODULE_STATS = "/sys/kernel/debug/modules/stats"  # 6.4+, CONFIG_MODULE_STATS


def read_module_stats(path: str = MODULE_STATS) -> dict[str, int] | None:
    """The kernel's own module statistics (6.4+): each "label  number"
    line; None when the kernel has none."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError:
        return None
    stats = {}
    for line in text.splitlines():
        label, _, value = line.strip().rpartition(" ")
        label = label.strip().rstrip(":").strip()
        if label and value.isdigit():
            stats[label] = int(value)
    return stats


def stats_delta(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, int]:
    if before is None or after is None:
        return {}
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def errno_name(value: int) -> str:
    return errnos.errorcode.get(-value, str(value)) if value < 0 else str(value)

def kprobe_functions() -> set[str]:
    """Functions that can take a kprobe: listed by ftrace when the kernel has
    dynamic ftrace, else the text symbols of /proc/kallsyms (a function
    inlined everywhere has neither), less the kprobe blacklist."""
    names: set[str] = set()
    for path in ("/sys/kernel/tracing/available_filter_functions",
                 "/sys/kernel/debug/tracing/available_filter_functions"):
        try:
            with open(path) as handle:
                names = {line.split()[0] for line in handle if line.strip()}
            break
        except OSError:
            continue
    if not names:
        try:
            with open("/proc/kallsyms") as handle:
                names = {fields[2] for fields in map(str.split, handle)
                         if len(fields) >= 3 and fields[1] in "tT" and len(fields) == 3}
        except OSError:
            pass
    try:
        with open("/sys/kernel/debug/kprobes/blacklist") as handle:
            names -= {line.split()[1] for line in handle if len(line.split()) > 1}
    except OSError:
        pass
    return names


def probe_kernel(functions: set[str]) -> Probes:
    def first(candidates: tuple[str, ...]) -> str | None:
        return next((name for name in candidates if name in functions), None)

    layout = next(((name, arg) for name, arg in LAYOUT_FUNCS if name in functions), None)
    return Probes(dups=DUPS_FUNC in functions, read_file=first(READ_FILE_FUNCS),
                  find_module=first(FIND_MODULE_FUNCS), layout=layout,
                  request_entry=REQUEST_FUNC in functions)


def table(session: Session) -> str:
    """The per-module table and what sits beside it, 80 columns wide."""
    dups = "DUPS" if session.dups_traced else "DUPS*"
    lines = [f"{'MODULE':<22} {'REQ':>5} {dups:>5} {'EXEC':>5} {'FINIT':>5} {'FAIL':>5} {'DUPF':>5} "
             f"{'LIVE':>5} {'DHELD':>7} {'FHELD':>7}"]
    for m in sorted(session.modules, key=lambda m: (-m.requests, -m.finit, m.module)):
        name = m.module if len(m.module) <= 22 else m.module[:21] + "~"
        dup = str(m.dups) if session.dups_traced else "-"
        lines.append(f"{name:<22} {m.requests:>5} {dup:>5} {m.launches:>5} {m.finit:>5} {m.finit_failed:>5} "
                     f"{m.failed_dup:>5} {m.live:>5} {human_bytes(m.dup_held_bytes):>7} "
                     f"{human_bytes(m.fail_held_bytes):>7}")
    via = [m for m in session.modules if m.via_finit]
    if via:
        lines.append("requests -> what their modprobes loaded: " + ", ".join(
            f"{m.module} {m.via_finit} finit/{m.via_live} live" for m in sorted(via, key=lambda m: m.module)))
    unslotted = [m for m in session.modules if m.unslotted]
    if unslotted:
        lines.append("requests that never reached module:module_request: " + ", ".join(
            f"{m.module} {m.unslotted}" for m in unslotted))
    if session.origins:
        lines.append("finit_module() by origin: " + ", ".join(
            f"{o.origin} {o.finit} ({o.live} live)" for o in session.origins if o.finit))
    if session.errnos:
        lines.append("failures by errno: " + ", ".join(f"{k} {v}" for k, v in sorted(session.errnos.items())))
    for label, value in session.kernel_stats.items():
        if "wasted" in label.lower() or "failed" in label.lower():
            lines.append(f"kernel's modules/stats: {label} +{value}")
    since = " since the start" if session.interval else ""
    if session.inflight_peak_bytes is not None:
        lines.append(f"held by finit_module() calls in flight: peak{since} "
                     f"{human_bytes(session.inflight_peak_bytes)}")
    if session.vmalloc_peak_kb is not None and session.vmalloc_start_kb is not None:
        lines.append(f"VmallocUsed: {session.vmalloc_start_kb} kB at start, peak {session.vmalloc_peak_kb} kB "
                     f"(+{session.vmalloc_peak_kb - session.vmalloc_start_kb} kB, sampled{since})")
    for probe, count in sorted(session.missed.items()):
        lines.append(f"MISSED: {count} hits of {probe} were lost; its counts are low")
    for note in session.untraced:
        lines.append(f"not traced: {note}")
    if not session.dups_traced:
        lines.append("* this kernel has no duplicate detection to count")
    return "\n".join(line[:80] for line in wrap(lines))


def wrap(lines: list[str]) -> list[str]:
    """Long note lines folded at 80 columns (the table rows fit already)."""
    out = []
    for line in lines:
        while len(line) > 80:
            cut = line.rfind(" ", 0, 80)
            cut = cut if cut > 20 else 80
            out.append(line[:cut])
            line = "    " + line[cut:].lstrip()
        out.append(line)
    return out


def read_counts(bpf_table, filter_name: str | None = None,  # noqa: ANN001 - a bcc table
                extra: dict[str, ModuleCounts] | None = None) -> list[ModuleCounts]:
    modules = {}
    for key, value in bpf_table.items():
        name = key.name.decode(errors="replace")
        modules[name] = ModuleCounts(module=name, **{f: getattr(value, f) for f in COUNT_FIELDS})
    for name, added in (extra or {}).items():
        if filter_name and name != filter_name:
            continue
        base = modules.setdefault(name, ModuleCounts(name))
        for f in COUNT_FIELDS:
            setattr(base, f, getattr(base, f) + getattr(added, f))
    return list(modules.values())


def read_origins(bpf_table) -> list[OriginCounts]:  # noqa: ANN001 - a bcc table
    out = [OriginCounts(ORIGINS[k.value] if k.value < len(ORIGINS) else str(k.value), v.finit, v.failed, v.live)
           for k, v in bpf_table.items()]
    return sorted(out, key=lambda o: ORIGINS.index(o.origin) if o.origin in ORIGINS else len(ORIGINS))


def read_misses(names: dict[str, str]) -> tuple[dict[str, int], str | None]:
    """Misses of our kretprobes from tracefs' kprobe_profile (BCC makes a
    kprobe_events entry for a kretprobe with maxactive).  *names*: the
    event's name -> what to call it.  Returns the misses and, when the
    profile cannot be read, why."""
    for root in TRACEFS:
        try:
            with open(f"{root}/kprobe_profile") as handle:
                text = handle.read()
        except OSError:
            continue
        missed = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] in names and int(parts[2]):
                missed[names[parts[0]]] = int(parts[2])
        return missed, None
    return {}, "kprobe_profile cannot be read: misses of the kretprobes are unknown"


def parse_args(argv: list[str] | None = None, prog: str = "dupstrace") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Count module auto-load requests, modprobe launches and finit_module() calls "
        "per module, and show whether duplicate requests converge.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES.replace("./dupstrace.py", prog if prog != "dupstrace" else "./dupstrace.py"))
    parser.add_argument("interval", nargs="?", type=float, help="print what each INTERVAL seconds added")
    parser.add_argument("count", nargs="?", type=int, help="number of intervals to print")
    parser.add_argument("-d", "--duration", type=float, help="total tracing time in seconds")
    parser.add_argument("-m", "--module", help="only count this module name (or request string); the "
                        "in-flight peak then counts only its finit_module() calls")
    parser.add_argument("-j", "--json", action="store_true", help="print JSON, one document a line")
    parser.add_argument("-e", "--timeline", action="store_true",
                        help="print each request, duplicate (with its wait), launch, finit_module() call "
                        "and its end as it happens")
    parser.add_argument("--cumulative", action="store_true", help="with INTERVAL: print totals so far")
    parser.add_argument("--maxactive", type=int, default=MAXACTIVE,
                        help=f"kretprobe instances: waiters traced at once (default {MAXACTIVE})")
    parser.add_argument("--ebpf", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("interval", "duration"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"{name} must be positive")
    if args.count is not None and args.count <= 0:
        parser.error("count must be positive")
    if args.module and len(args.module) >= MODULE_NAME_LEN:
        parser.error(f"module names are shorter than {MODULE_NAME_LEN} characters")
    if not 1 <= args.maxactive <= MAXACTIVE:
        parser.error(f"--maxactive must be between 1 and {MAXACTIVE}")
    return args


class VmallocSampler(threading.Thread):
    """Samples VmallocUsed from /proc/meminfo; keeps the first and the peak."""

    def __init__(self, period: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.period = period
        self.start_kb: int | None = None
        self.peak_kb: int | None = None
        self._halt = threading.Event()

    @staticmethod
    def read_kb() -> int | None:
        try:
            with open("/proc/meminfo") as handle:
                for line in handle:
                    if line.startswith("VmallocUsed:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def run(self) -> None:
        while not self._halt.is_set():
            value = self.read_kb()
            if value is not None:
                if self.start_kb is None:
                    self.start_kb = value
                self.peak_kb = value if self.peak_kb is None else max(self.peak_kb, value)
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def human_bytes(value: int) -> str:
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024  # type: ignore[assignment]
    return str(value)


KHEADERS = "/sys/kernel/kheaders.tar.xz"


@contextlib.contextmanager
def kernel_headers() -> Iterator[str | None]:
    """The running kernel's own headers for BCC while it compiles: the
    CONFIG_IKHEADERS archive, unpacked into a private folder (mkdtemp: 0700,
    ours alone) that is removed afterwards.  Nothing another user could have
    written (a planted folder, marker or symlink under /tmp) is trusted or
    followed.  BCC can unpack the archive by itself, but it renames a
    directory into place, which fails (EXDEV) on overlayfs such as
    virtme-ng's /tmp, and it prefers /lib/modules/RELEASE/build, which for an
    O= build folder holds only generated headers.  Yields the folder for
    BCC_KERNEL_SOURCE, or None to leave BCC to its own search."""
    if os.environ.get("BCC_KERNEL_SOURCE") or not os.path.exists(KHEADERS):
        yield None
        return
    dest = tempfile.mkdtemp(prefix=f"dupstrace-kheaders-{os.uname().release}-")
    try:
        subprocess.run(["tar", "-xf", KHEADERS, "-C", dest, "--no-same-owner"], check=True)
        yield dest
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def attach(probes: Probes, text: str, maxactive: int = MAXACTIVE):  # noqa: ANN201 - (bcc.BPF, failed, events)
    """Load the program and attach every probe.  The required ones (the
    tracepoints, the usermode helper calls) end the tool when they fail; an
    optional one that fails is named in the result and the rest still run.
    Also returns the kprobe_events names of the kretprobes, for their
    misses."""
    from bcc import BPF  # Debian's python3-bpfcc; imported late so -h works anywhere

    if not any(os.path.isdir(path) for path in TRACEFS_EVENTS):
        raise SystemExit("dupstrace: tracefs is not mounted, so no tracepoint can be found; "
                         "mount -t tracefs nodev /sys/kernel/tracing")
    for category, event in TRACEPOINTS:
        if not BPF.tracepoint_exists(category, event):
            raise SystemExit(f"dupstrace: this kernel has no tracepoint {category}:{event}; "
                             "it needs CONFIG_MODULES and CONFIG_FTRACE_SYSCALLS")
    with kernel_headers() as headers:
        if headers:
            os.environ["BCC_KERNEL_SOURCE"] = headers
        try:
            bpf = BPF(text=text)
        finally:
            if headers:
                del os.environ["BCC_KERNEL_SOURCE"]
    bpf.attach_kprobe(event=UMH_SETUP, fn_name="trace_umh_setup")
    bpf.attach_kprobe(event=UMH_EXEC, fn_name="trace_umh_exec")
    bpf.attach_kprobe(event=UMH_CHILD, fn_name="trace_umh_child")
    optional = []
    if probes.dups:
        optional += [("kprobe", DUPS_FUNC, "trace_dups_entry", "DUPS"),
                     ("kretprobe", DUPS_FUNC, "trace_dups_return", "DUPS")]
    if probes.request_entry:
        optional += [("kprobe", REQUEST_FUNC, "trace_request_entry", "REQ before the modprobe slot"),
                     ("kretprobe", REQUEST_FUNC, "trace_request_return", "REQ before the modprobe slot")]
    if probes.read_file:
        optional += [("kprobe", probes.read_file, "trace_read_file_entry", "image bytes"),
                     ("kretprobe", probes.read_file, "trace_read_file_return", "image bytes")]
    if probes.layout:
        optional.append(("kprobe", probes.layout[0], "trace_layout_alloc", "layout bytes"))
    if probes.find_module:
        optional.append(("kprobe", probes.find_module, "trace_find_module", "module names of failed loads"))
    failed = []
    retprobes = {}
    for kind, event, fn_name, what in optional:
        try:
            if kind == "kretprobe":
                bpf.attach_kretprobe(event=event, fn_name=fn_name, maxactive=maxactive)
                # BCC's name for the kprobe_events entry it makes.
                retprobes[f"r_{event}_bcc_{os.getpid()}"] = f"the kretprobe on {event}()"
            else:
                bpf.attach_kprobe(event=event, fn_name=fn_name)
        except Exception as err:  # bcc raises bare Exceptions for attach errors
            failed.append(f"{what}: cannot attach the {kind} on {event}() ({err})")
    return bpf, failed, retprobes


class Timeline:
    """Prints the events of -e as they come: seconds since the first, the
    thread, what happened."""

    def __init__(self, start_ns: int | None = None) -> None:
        # bpf_ktime_get_ns() is CLOCK_MONOTONIC: times count from the start.
        self.first = start_ns

    def line(self, ts: int, tid: int, kind: str, name: str, ret: int, arg: int) -> str:
        if self.first is None:
            self.first = ts
        when = (ts - self.first) / 1e9
        what = {
            "request": lambda: f"request_module({name}){'' if arg else ' nowait'}",
            "dup": lambda: f"duplicate {name} waited {arg / 1e6:.1f} ms",
            "launch": lambda: f"modprobe -q -- {name}",
            "finit": lambda: f"finit_module() by {ORIGINS[arg] if arg < len(ORIGINS) else arg}"
                             + (f" for request {name}" if name else ""),
            "exit": lambda: f"finit_module({name}) = {ret if ret >= 0 else '-' + errno_name(ret)}, "
                            f"held {human_bytes(arg)}",
            "unslotted": lambda: f"request_module({name}) = -{errno_name(ret)} before a modprobe slot",
        }[kind]()
        return f"{when:10.6f} {tid:>7} {what}"


def main(argv: list[str] | None = None, prog: str = "dupstrace") -> int:
    args = parse_args(argv, prog)
    functions = kprobe_functions()
    probes = probe_kernel(functions) if functions else Probes(
        dups=True, read_file=READ_FILE_FUNCS[0], find_module=FIND_MODULE_FUNCS[0], layout=LAYOUT_FUNCS[0],
        request_entry=True)
    text = program(probes, args.module, args.timeline)
    if args.ebpf:
        print(text)
        return 0
    if os.geteuid() != 0:
        print("dupstrace: must run as root (BPF)", file=sys.stderr)
        return 1
    if not functions:
        print("dupstrace: cannot list the kernel's functions (available_filter_functions, "
              "/proc/kallsyms); mount tracefs (mount -t tracefs nodev /sys/kernel/tracing) "
              "and run as root", file=sys.stderr)
        return 1
    for needed in (UMH_SETUP, UMH_EXEC, UMH_CHILD):
        if needed not in functions:
            print(f"dupstrace: {needed}() cannot be probed on this kernel", file=sys.stderr)
            return 1
    try:
        bpf, not_attached, retprobes = attach(probes, text, args.maxactive)
    except Exception as err:  # bcc raises bare Exceptions for compile/attach errors
        print(f"dupstrace: cannot load the BPF program: {err}", file=sys.stderr)
        return 1

    unslotted: dict[str, ModuleCounts] = {}
    request_errnos: dict[str, int] = {}
    timeline = Timeline(time.monotonic_ns())
    lost = {"samples": 0}
    pending: list[tuple[int, int, str, str, int, int]] = []

    def on_event(cpu: int, data: int, size: int) -> None:
        ev = bpf["events"].event(data)
        kind = TIMELINE_KINDS[ev.kind] if ev.kind < len(TIMELINE_KINDS) else str(ev.kind)
        name = ev.name.decode(errors="replace")
        if kind == "unslotted":
            name = format_request(ev.fmt.decode(errors="replace"), ev.arg, name)
            counts = unslotted.setdefault(name, ModuleCounts(name))
            counts.requests += 1
            counts.unslotted += 1
            key = f"request {errno_name(ev.ret)}"
            request_errnos[key] = request_errnos.get(key, 0) + 1
            if args.module and name != args.module:
                return
        if args.timeline:
            pending.append((ev.ts, ev.tid, kind, name, ev.ret, ev.arg))

    def flush_timeline() -> None:
        # Each CPU has its own perf buffer: put what one poll read in order.
        for event in sorted(pending):
            print(timeline.line(*event), flush=True)
        pending.clear()

    def on_lost(count: int) -> None:
        lost["samples"] += count

    bpf["events"].open_perf_buffer(on_event, page_cnt=256, lost_cb=on_lost)
    stats_start = read_module_stats()
    sampler = VmallocSampler()
    sampler.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("Tracing module requests... Hit Ctrl-C to end.", file=sys.stderr, flush=True)
    started = time.monotonic()
    deadline = started + args.duration if args.duration else None

    def session() -> Session:
        missed, why = read_misses(retprobes)
        if lost["samples"]:
            missed["perf buffer samples (requests before module:module_request, the timeline)"] = lost["samples"]
        g = bpf["globals"][0]
        errors = {errno_name(k.value): v.value for k, v in bpf["errnos"].items()}
        errors.update(request_errnos)
        return Session(kernel=os.uname().release, seconds=round(time.monotonic() - started, 3),
                       modules=read_counts(bpf["counts"], args.module, unslotted),
                       vmalloc_start_kb=sampler.start_kb, vmalloc_peak_kb=sampler.peak_kb,
                       dups_traced=probes.dups, untraced=probes.untraced() + not_attached + ([why] if why else []),
                       origins=read_origins(bpf["origins"]), errnos=errors,
                       inflight_peak_bytes=g.peak if probes.read_file else None, missed=missed,
                       kernel_stats=stats_delta(stats_start, read_module_stats()))

    def interval_of(now: Session, before: Session | None) -> Session:
        if args.cumulative or before is None:
            return now
        earlier = {m.module: m for m in before.modules}
        modules = [m.minus(earlier.get(m.module)) for m in now.modules]
        before_origins = {o.origin: o for o in before.origins}
        origins = [OriginCounts(o.origin, *(getattr(o, f) - getattr(before_origins[o.origin], f)
                                            if o.origin in before_origins else getattr(o, f)
                                            for f in ("finit", "failed", "live"))) for o in now.origins]
        errors = {k: v - before.errnos.get(k, 0) for k, v in now.errnos.items() if v - before.errnos.get(k, 0)}
        return Session(**{**asdict(now), "modules": [m for m in modules if not m.is_zero()],
                          "origins": [o for o in origins if o.finit], "errnos": errors, "interval": True})

    def show(result: Session) -> None:
        if args.json:
            print(result.to_json(), flush=True)
        else:
            print(f"{time.strftime('%H:%M:%S')}\n{table(result)}\n", flush=True)

    printed = 0
    previous: Session | None = None
    while not stop.is_set():
        bpf.perf_buffer_poll(timeout=100)
        flush_timeline()
        now = time.monotonic()
        if deadline and now >= deadline:
            break
        if args.interval and now >= started + (printed + 1) * args.interval:
            printed += 1
            current = session()
            show(interval_of(current, previous))
            previous = current
            if args.count and printed >= args.count:
                sampler.stop()
                return 0
    bpf.perf_buffer_poll(timeout=0)
    flush_timeline()
    sampler.stop()
    final = session()
    if args.interval and not args.cumulative and previous is not None:
        show(interval_of(final, previous))
    print(final.to_json() if args.json else table(final), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
