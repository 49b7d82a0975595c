/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: atomic_t on the compiler's sequentially consistent atomics. */
#ifndef _RIG_LINUX_ATOMIC_H
#define _RIG_LINUX_ATOMIC_H

#include <linux/compiler.h>

typedef struct {
	int counter;
} atomic_t;

#define ATOMIC_INIT(i)	{ (i) }

static inline int atomic_read(const atomic_t *v)
{
	return __atomic_load_n(&v->counter, __ATOMIC_SEQ_CST);
}

static inline void atomic_inc(atomic_t *v)
{
	__atomic_fetch_add(&v->counter, 1, __ATOMIC_SEQ_CST);
}

/* Decrements unless that makes it negative; returns the old value minus 1. */
static inline int atomic_dec_if_positive(atomic_t *v)
{
	int c = atomic_read(v);

	do {
		if (c <= 0)
			return c - 1;
	} while (!__atomic_compare_exchange_n(&v->counter, &c, c - 1, false,
					      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
	return c - 1;
}

#endif /* _RIG_LINUX_ATOMIC_H */
