/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: sleeping mutexes that know their owner, for lockdep. */
#ifndef _RIG_LINUX_MUTEX_H
#define _RIG_LINUX_MUTEX_H

#include <pthread.h>
#include <linux/lockdep.h>
#include <linux/types.h>

struct task_struct;

struct mutex {
	pthread_mutex_t lock;
	struct task_struct *owner;	/* atomic: read by lockdep_is_held() */
	const char *name;
};

#define __MUTEX_INITIALIZER(lockname) {					\
	.lock = PTHREAD_MUTEX_INITIALIZER,				\
	.owner = NULL,							\
	.name = #lockname,						\
}

#define DEFINE_MUTEX(mutexname) \
	struct mutex mutexname = __MUTEX_INITIALIZER(mutexname)

#define mutex_init(mutex) __mutex_init((mutex), #mutex)

void __mutex_init(struct mutex *lock, const char *name);
void mutex_lock(struct mutex *lock);
int mutex_trylock(struct mutex *lock);
void mutex_unlock(struct mutex *lock);
bool mutex_is_locked(struct mutex *lock);

#endif /* _RIG_LINUX_MUTEX_H */
