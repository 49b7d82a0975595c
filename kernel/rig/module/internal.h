/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Userspace rig: stand-in for the module loader's internal header,
 * reduced to the declarations kmod.c and dups.c share.
 *
 * The rig force-includes it ahead of dups.c (-include), so that the posted
 * dups.c, which does not include it, is also compiled against the
 * prototypes kmod.c calls. It must therefore not pull in <linux/printk.h>
 * before dups.c had a chance to define pr_fmt().
 *
 * RIG_DUPS_API picks the hooks: 1 for the posted ones (and the first
 * hardened version's), by name from kmod.c's exits; 2 for the second
 * hardened version's, where the first request holds its entry and
 * announces it once; 3 for today's, whose modprobe's subprocess_info also
 * holds the entry (kmod_dup_request_exec() in its init, _put() in its
 * cleanup).
 */
#ifndef _RIG_KERNEL_MODULE_INTERNAL_H
#define _RIG_KERNEL_MODULE_INTERNAL_H

#include <linux/types.h>

#ifndef RIG_DUPS_API
#define RIG_DUPS_API 1
#endif

#if RIG_DUPS_API >= 2
struct kmod_dup_req;

bool kmod_dup_request_exists_wait(const char *module_name, bool wait, int *dup_ret,
				  struct kmod_dup_req **first);
void kmod_dup_request_started(struct kmod_dup_req *first);
#if RIG_DUPS_API >= 3
void kmod_dup_request_exec(struct kmod_dup_req *first);
void kmod_dup_request_put(struct kmod_dup_req *kmod_req);
#endif
void kmod_dup_request_announce(struct kmod_dup_req *first, int ret);
#else
bool kmod_dup_request_exists_wait(char *module_name, bool wait, int *dup_ret);
void kmod_dup_request_announce(char *module_name, int ret);
#endif

/*
 * In kmod.c only: note in current what the request did, for the driver's
 * checks: whether it was a duplicate (the hook's answer), and an announce
 * of -ENOMEM by a first request, before any waiter can see it and after
 * every waiter could. A macro's own name is not expanded again inside it,
 * so the real hooks are called.
 */
#ifdef RIG_KMOD_C
#include <linux/sched.h>

void rig_note_announce(const char *name, int ret, bool done, bool first);

static inline bool rig_note_dup(const char *name, bool dup)
{
	current->kmod_name = name;
	current->kmod_dup = dup;
	return dup;
}

#if RIG_DUPS_API >= 2
#define kmod_dup_request_exists_wait(name, wait, dup_ret, first) \
	rig_note_dup(name, kmod_dup_request_exists_wait(name, wait, dup_ret, first))

#define kmod_dup_request_announce(first, ret) do {			\
	rig_note_announce(current->kmod_name, ret, false, first);	\
	kmod_dup_request_announce(first, ret);				\
	rig_note_announce(current->kmod_name, ret, true, first);	\
} while (0)
#else
#define kmod_dup_request_exists_wait(name, wait, dup_ret) \
	rig_note_dup(name, kmod_dup_request_exists_wait(name, wait, dup_ret))

#define kmod_dup_request_announce(name, ret) do {			\
	rig_note_announce(name, ret, false, current->kmod_owner_hint);	\
	kmod_dup_request_announce(name, ret);				\
	rig_note_announce(name, ret, true, current->kmod_owner_hint);	\
} while (0)
#endif
#endif /* RIG_KMOD_C */

#endif /* _RIG_KERNEL_MODULE_INTERNAL_H */
