/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: kmalloc() and friends.
 *
 * Allocation fails when the calling task is under simulated memory pressure:
 * the driver gives a request a budget of allocations (task->alloc_budget)
 * after which they fail. kfree() checks for double
 * and bad frees, refuses to free a pending work item (debugobjects), and
 * poisons the object with 0x6b before handing it back.
 */
#ifndef _RIG_LINUX_SLAB_H
#define _RIG_LINUX_SLAB_H

#include <linux/compiler.h>
#include <linux/gfp.h>
#include <linux/types.h>

void *kmalloc(size_t size, gfp_t flags) __malloc;
void *kzalloc(size_t size, gfp_t flags) __malloc;
void *kcalloc(size_t n, size_t size, gfp_t flags) __malloc;
char *kstrdup(const char *s, gfp_t flags) __malloc;
void kfree(const void *objp);

/* Linux 7.0: an object of the pointed-to type, zeroed; GFP_KERNEL unless given. */
#define __rig_kzalloc_obj1(obj)		kzalloc(sizeof(obj), GFP_KERNEL)
#define __rig_kzalloc_obj2(obj, gfp)	kzalloc(sizeof(obj), gfp)
#define __rig_kzalloc_obj_pick(_1, _2, name, ...)	name
#define kzalloc_obj(...)	\
	__rig_kzalloc_obj_pick(__VA_ARGS__, __rig_kzalloc_obj2, __rig_kzalloc_obj1, )(__VA_ARGS__)

#endif /* _RIG_LINUX_SLAB_H */
