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
/* The hardened variant's; the driver has a weak no-op for the others. */
void kmod_dup_request_started(char *module_name);
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

/*
 * In kmod.c only: note in current whether the request was a duplicate
 * (the hook's answer), for the driver's checks. The macro's own name is
 * not expanded again inside it, so the real hook is called.
 */
#ifdef RIG_KMOD_C
#include <linux/sched.h>

static inline bool rig_note_dup(bool dup)
{
	current->kmod_dup = dup;
	return dup;
}

#define kmod_dup_request_exists_wait(name, wait, dup_ret) \
	rig_note_dup(kmod_dup_request_exists_wait(name, wait, dup_ret))

/*
 * Noted around the hook: the start before any waiter can see the result,
 * the end after every waiter it had could.
 */
void rig_note_announce(const char *name, int ret, bool done);

#define kmod_dup_request_announce(name, ret) do {			\
	rig_note_announce(name, ret, false);				\
	kmod_dup_request_announce(name, ret);				\
	rig_note_announce(name, ret, true);				\
} while (0)
#endif

#endif /* _RIG_KERNEL_MODULE_INTERNAL_H */
