/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: nothing dups.c uses lives here beyond <linux/sched.h>. */
#ifndef _RIG_LINUX_SCHED_TASK_H
#define _RIG_LINUX_SCHED_TASK_H

#include <linux/sched.h>

#endif /* _RIG_LINUX_SCHED_TASK_H */
