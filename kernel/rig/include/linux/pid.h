/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: struct pid, as far as a thread group's identity goes.
 *
 * Every rig task has one (task_tgid()); a usermode helper thread gets a
 * fresh one for each modprobe it runs, as each modprobe is a new process.
 * The object lives while references are held, so a pointer held with
 * get_pid() never matches a later process's.
 */
#ifndef _RIG_LINUX_PID_H
#define _RIG_LINUX_PID_H

#include <linux/types.h>

struct pid {
	unsigned int count;	/* atomic */
	pid_t nr;
};

struct pid *rig_pid_alloc(void);

static inline struct pid *get_pid(struct pid *pid)
{
	if (pid)
		__atomic_fetch_add(&pid->count, 1, __ATOMIC_RELAXED);
	return pid;
}

void put_pid(struct pid *pid);

static inline pid_t pid_nr(struct pid *pid)
{
	return pid ? pid->nr : 0;
}

#endif /* _RIG_LINUX_PID_H */
