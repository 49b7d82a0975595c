/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: counting semaphores, as far as kmod.c's modprobe throttle
 * uses them from Linux 6.4 on: DEFINE_SEMAPHORE(name, n), down_timeout()
 * and up(). A down_timeout() that finds no slot counts as a slot wait
 * (rig_slot_waits), as the wait-queue throttle of 6.1 does.
 */
#ifndef _RIG_LINUX_SEMAPHORE_H
#define _RIG_LINUX_SEMAPHORE_H

#include <linux/wait.h>

struct semaphore {
	pthread_mutex_t lock;
	unsigned int count;
	struct wait_queue_head wait;
};

#define DEFINE_SEMAPHORE(name, n)					\
	struct semaphore name = {					\
		.lock = PTHREAD_MUTEX_INITIALIZER,			\
		.count = (n),						\
		.wait = {						\
			.lock = PTHREAD_MUTEX_INITIALIZER,		\
			.head = LIST_HEAD_INIT((name).wait.head),	\
		},							\
	}

/* 0 with a slot taken, -ETIME after @timeout jiffies without one. */
int down_timeout(struct semaphore *sem, long timeout);
void up(struct semaphore *sem);

#endif /* _RIG_LINUX_SEMAPHORE_H */
