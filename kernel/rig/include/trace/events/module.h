/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: the module_request tracepoint kmod.c fires. It leaves a
 * note in current, for the driver's check of where it fires (before or
 * after the modprobe slot).
 */
#ifndef _RIG_TRACE_EVENTS_MODULE_H
#define _RIG_TRACE_EVENTS_MODULE_H

#include <linux/sched.h>

static inline void trace_module_request(char *name, bool wait, unsigned long ip)
{
	current->kmod_traced = true;
}

#endif /* _RIG_TRACE_EVENTS_MODULE_H */
