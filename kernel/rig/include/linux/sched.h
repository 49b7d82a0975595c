/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: tasks.
 *
 * Every rig thread owns a task_struct and "current" is a per-thread pointer
 * to it. Tasks sleep and wake as in the kernel (a woken flag under a
 * per-task lock), which is what completions and a fatal signal need.
 */
#ifndef _RIG_LINUX_SCHED_H
#define _RIG_LINUX_SCHED_H

#include <limits.h>
#include <pthread.h>
#include <linux/compiler.h>
#include <linux/pid.h>
#include <linux/types.h>

#define TASK_RUNNING		0x0000
#define TASK_INTERRUPTIBLE	0x0001
#define TASK_UNINTERRUPTIBLE	0x0002
#define TASK_WAKEKILL		0x0100
#define TASK_KILLABLE		(TASK_WAKEKILL | TASK_UNINTERRUPTIBLE)
#define TASK_NORMAL		(TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE)

#define TASK_COMM_LEN		16
#define MAX_SCHEDULE_TIMEOUT	LONG_MAX

struct task_struct {
	pid_t pid;
	char comm[TASK_COMM_LEN];

	/*
	 * The process: the usermode helper starts a new one for every
	 * modprobe (rig_task_new_process()), whose parent is init_task (the
	 * kernel's is a kworker or kthreadd, never the requester).
	 */
	struct task_struct *real_parent;
	struct pid *tgid_pid;

	/* Sleeping and waking: @woken under @sleep_lock. */
	pthread_mutex_t sleep_lock;
	pthread_cond_t sleep_cond;
	bool woken;
	int sigkill;			/* atomic: SIGKILL pending */

	/* The serial scheduler's, under its lock (lib/serial.c). */
	pthread_t thread;
	pthread_cond_t sched_cond;
	int sched_state;
	const void *sched_key;
	u64 sched_deadline;
	bool sched_timed_out;

	/* Rig bookkeeping, mostly touched by the task itself only. */
	u64 rng;
	int alloc_budget;		/* allocations left before they fail; <0: no limit */
	unsigned long nr_alloc_fail;
	unsigned long nr_warn;
	char last_warn[160];
	unsigned long nr_info;		/* pr_info(): dups.c's burst reports */
	char last_info[160];
	unsigned int rcu_nesting;	/* atomic */
	unsigned long rcu_seq;		/* atomic */
	const char *state;		/* atomic: for the hang report */
	const char *state_arg;		/* atomic */
	u64 state_since;		/* atomic */

	/*
	 * What the last __request_module() of this task did, noted by the
	 * rig's hooks around kmod.c (module/internal.h, the usermode helper)
	 * for the driver's checks; the driver clears them.
	 */
	bool kmod_dup;
	bool kmod_ran_modprobe;
	/* Set by the driver: a request_module() whose first allocation succeeds. */
	bool kmod_owner_hint;
	const char *kmod_name;		/* the request's name, during __request_module() */
};

extern __thread struct task_struct *rig_current;
extern struct task_struct init_task;
struct task_struct *rig_current_slow(void);

static inline struct task_struct *get_current(void)
{
	return likely(rig_current) ? rig_current : rig_current_slow();
}

#define current get_current()

static inline struct pid *task_tgid(struct task_struct *p)
{
	return p->tgid_pid;
}

/* The task becomes a new process (fork and exec): a new pid, same thread. */
void rig_task_new_process(struct task_struct *p);

static inline int fatal_signal_pending(struct task_struct *p)
{
	return __atomic_load_n(&p->sigkill, __ATOMIC_SEQ_CST);
}

/* SIGKILL is the only signal in the rig. */
static inline int signal_pending(struct task_struct *p)
{
	return fatal_signal_pending(p);
}

static inline int signal_pending_state(unsigned int state, struct task_struct *p)
{
	if (!(state & (TASK_INTERRUPTIBLE | TASK_WAKEKILL)))
		return 0;
	if (!signal_pending(p))
		return 0;
	return (state & TASK_INTERRUPTIBLE) || fatal_signal_pending(p);
}

int wake_up_process(struct task_struct *p);

/* schedule() split in two: announce the sleep, then sleep until woken. */
void rig_task_prepare_sleep(struct task_struct *p);
void rig_task_sleep(struct task_struct *p);
/* Sleeps until woken or @deadline_ns (rig_now_ns()); false on timeout. */
bool rig_task_sleep_until(struct task_struct *p, u64 deadline_ns);

/* Send SIGKILL: wakes the task from a killable sleep. */
void rig_send_sigkill(struct task_struct *p);
bool rig_clear_sigkill(struct task_struct *p);

static inline void cond_resched(void)
{
}

#endif /* _RIG_LINUX_SCHED_H */
