/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: the lockdep assertions, for mutexes. A failed assertion is
 * a rig_bug() of kind lockdep, which fails the run.
 */
#ifndef _RIG_LINUX_LOCKDEP_H
#define _RIG_LINUX_LOCKDEP_H

#include <linux/types.h>
#include <rig/rig.h>

struct mutex;
bool rig_mutex_owned(const struct mutex *lock);

#define lockdep_is_held(lock)	rig_mutex_owned(lock)

#define lockdep_assert_held(lock) do {					\
	if (unlikely(!lockdep_is_held(lock)))				\
		rig_bug(RIG_BUG_LOCKDEP,				\
			"lockdep_assert_held(%s) failed at %s:%d",	\
			#lock, __FILE__, __LINE__);			\
} while (0)

#endif /* _RIG_LINUX_LOCKDEP_H */
