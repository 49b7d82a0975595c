/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: refcount_t, saturating, with the kernel's warnings on
 * increment from zero and on underflow (both reported as rig bugs).
 */
#ifndef _RIG_LINUX_REFCOUNT_H
#define _RIG_LINUX_REFCOUNT_H

#include <limits.h>
#include <linux/types.h>

typedef struct refcount_struct {
	int refs;
} refcount_t;

#define REFCOUNT_INIT(n)	{ .refs = (n), }
#define REFCOUNT_SATURATED	(INT_MIN / 2)

static inline void refcount_set(refcount_t *r, int n)
{
	__atomic_store_n(&r->refs, n, __ATOMIC_RELAXED);
}

static inline unsigned int refcount_read(const refcount_t *r)
{
	return __atomic_load_n(&r->refs, __ATOMIC_RELAXED);
}

void refcount_inc(refcount_t *r);
bool refcount_inc_not_zero(refcount_t *r);
bool refcount_dec_and_test(refcount_t *r);
void refcount_dec(refcount_t *r);

#endif /* _RIG_LINUX_REFCOUNT_H */
