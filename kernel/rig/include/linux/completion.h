/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: completions.
 *
 * Waiters queue themselves on the completion and sleep in their task; a
 * waiter retakes the completion's lock after it is woken, exactly like the
 * kernel's swait-based completion, so freeing a completion right after
 * complete_all() while waiters have not run yet is a use-after-free here as
 * it is there.
 */
#ifndef _RIG_LINUX_COMPLETION_H
#define _RIG_LINUX_COMPLETION_H

#include <pthread.h>
#include <linux/list.h>
#include <linux/sched.h>

struct completion {
	unsigned int done;
	pthread_mutex_t lock;
	struct list_head waiters;
};

#define COMPLETION_INITIALIZER(work) {					\
	.done = 0,							\
	.lock = PTHREAD_MUTEX_INITIALIZER,				\
	.waiters = LIST_HEAD_INIT((work).waiters),			\
}

#define DECLARE_COMPLETION(work) \
	struct completion work = COMPLETION_INITIALIZER(work)
#define DECLARE_COMPLETION_ONSTACK(work) DECLARE_COMPLETION(work)

void init_completion(struct completion *x);
void reinit_completion(struct completion *x);
void complete(struct completion *x);
void complete_all(struct completion *x);
void wait_for_completion(struct completion *x);
int wait_for_completion_interruptible(struct completion *x);
int wait_for_completion_killable(struct completion *x);
int wait_for_completion_state(struct completion *x, unsigned int state);
long wait_for_completion_killable_timeout(struct completion *x, unsigned long timeout);
bool try_wait_for_completion(struct completion *x);
bool completion_done(struct completion *x);

#endif /* _RIG_LINUX_COMPLETION_H */
