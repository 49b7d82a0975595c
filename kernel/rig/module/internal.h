/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Userspace rig: stand-in for the module loader's internal header,
 * reduced to the declarations kmod.c and dups.c share.
 *
 * The rig force-includes it ahead of dups.c (-include), so that the posted
 * dups.c, which does not include it, is also compiled against the
 * prototypes kmod.c calls. It must therefore not pull in <linux/printk.h>
 * before dups.c had a chance to define pr_fmt().
 */
#ifndef _RIG_KERNEL_MODULE_INTERNAL_H
#define _RIG_KERNEL_MODULE_INTERNAL_H

#include <linux/types.h>

#ifdef CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS
bool kmod_dup_request_exists_wait(char *module_name, bool wait, int *dup_ret);
void kmod_dup_request_announce(char *module_name, int ret);
#else
static inline bool kmod_dup_request_exists_wait(char *module_name, bool wait,
						int *dup_ret)
{
	return false;
}

static inline void kmod_dup_request_announce(char *module_name, int ret)
{
}
#endif

#endif /* _RIG_KERNEL_MODULE_INTERNAL_H */
