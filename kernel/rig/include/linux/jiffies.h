/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: jiffies.
 *
 * HZ keeps its kernel meaning (jiffies per second of kernel time), but a
 * jiffy lasts RIG_JIFFY_NS nanoseconds of real time. Build with a short
 * jiffy to shrink kernel timeouts: with HZ=250 and RIG_JIFFY_NS=2000 the
 * 60 * HZ linger of the posted dups.c lasts 30 ms.
 */
#ifndef _RIG_LINUX_JIFFIES_H
#define _RIG_LINUX_JIFFIES_H

#include <linux/types.h>

#ifndef RIG_HZ
#define RIG_HZ		250
#endif
#define HZ		RIG_HZ

#ifndef RIG_JIFFY_NS
#define RIG_JIFFY_NS	(1000000000UL / HZ)
#endif

unsigned long rig_jiffies(void);
#define jiffies		rig_jiffies()

#define time_after(a, b)	((long)((b) - (a)) < 0)
#define time_before(a, b)	time_after(b, a)
#define time_after_eq(a, b)	((long)((a) - (b)) >= 0)

static inline unsigned long msecs_to_jiffies(unsigned int m)
{
	return (unsigned long)m * HZ / 1000;
}

static inline u64 rig_jiffies_to_ns(unsigned long j)
{
	return (u64)j * RIG_JIFFY_NS;
}

/* The jiffies left until @deadline_ns (rig_now_ns()), at least 1: a timed wait's success. */
long rig_jiffies_left(u64 deadline_ns);

#endif /* _RIG_LINUX_JIFFIES_H */
