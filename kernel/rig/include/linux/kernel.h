/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: the bits of <linux/kernel.h> the rig and dups.c use. */
#ifndef _RIG_LINUX_KERNEL_H
#define _RIG_LINUX_KERNEL_H

#include <limits.h>
#include <stddef.h>
#include <linux/bug.h>
#include <linux/compiler.h>
#include <linux/errno.h>
#include <linux/kconfig.h>
#include <linux/printk.h>
#include <linux/types.h>

#define ARRAY_SIZE(arr)	(sizeof(arr) / sizeof((arr)[0]))

#define min(a, b)	((a) < (b) ? (a) : (b))
#define max(a, b)	((a) > (b) ? (a) : (b))

/*
 * Refuses at compile time to convert a pointer to a member into a pointer
 * to a container that does not have a member of that type.
 */
#define container_of(ptr, type, member) ({				\
	void *__mptr = (void *)(ptr);					\
	_Static_assert(__builtin_types_compatible_p(typeof(*(ptr)),	\
			typeof(((type *)0)->member)) ||			\
		       __builtin_types_compatible_p(typeof(*(ptr)), void), \
		       "pointer type mismatch in container_of()");	\
	((type *)(__mptr - offsetof(type, member)));			\
})

static inline void might_sleep(void)
{
}

#endif /* _RIG_LINUX_KERNEL_H */
