/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: fatal_signal_pending() lives in <linux/sched.h> here. */
#ifndef _RIG_LINUX_SCHED_SIGNAL_H
#define _RIG_LINUX_SCHED_SIGNAL_H

#include <linux/sched.h>

#endif /* _RIG_LINUX_SCHED_SIGNAL_H */
