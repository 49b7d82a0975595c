/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: the module_request tracepoint kmod.c fires, a no-op here. */
#ifndef _RIG_TRACE_EVENTS_MODULE_H
#define _RIG_TRACE_EVENTS_MODULE_H

#include <linux/types.h>

static inline void trace_module_request(char *name, bool wait, unsigned long ip)
{
}

#endif /* _RIG_TRACE_EVENTS_MODULE_H */
