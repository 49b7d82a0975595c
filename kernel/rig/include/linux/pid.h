/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: struct pid, refcounted as in the kernel, so that a holder
 * of a reference may compare the pointer with a task's long after that
 * task exited (the rig's usermode helper gives its task a new process, and
 * a new struct pid, for every modprobe).
 */
#ifndef _RIG_LINUX_PID_H
#define _RIG_LINUX_PID_H

#include <linux/refcount.h>
#include <linux/types.h>

struct pid {
	refcount_t count;
	int nr;
};

/* A new process's pid, with one reference for its task. */
struct pid *rig_pid_alloc(void);

static inline struct pid *get_pid(struct pid *pid)
{
	if (pid)
		refcount_inc(&pid->count);
	return pid;
}

void put_pid(struct pid *pid);

static inline pid_t pid_nr(struct pid *pid)
{
	return pid ? pid->nr : 0;
}

#endif /* _RIG_LINUX_PID_H */
