/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: included by the posted dups.c, which uses nothing from it. */
#ifndef _RIG_LINUX_ASYNC_H
#define _RIG_LINUX_ASYNC_H

#include <linux/kernel.h>

static inline bool current_is_async(void)
{
	return false;
}

#endif /* _RIG_LINUX_ASYNC_H */
