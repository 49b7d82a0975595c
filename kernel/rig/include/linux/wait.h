/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: wait queues, as far as kmod.c's modprobe throttle uses
 * them: DECLARE_WAIT_QUEUE_HEAD(), wake_up() and
 * wait_event_killable_timeout().
 *
 * A waiter queues itself and marks itself asleep before it evaluates the
 * condition, so a wake_up() between the check and the sleep is not lost.
 * Every waiter is non-exclusive, so wake_up() wakes them all, and each
 * evaluates the condition again (kmod.c's takes a slot as it succeeds).
 */
#ifndef _RIG_LINUX_WAIT_H
#define _RIG_LINUX_WAIT_H

#include <pthread.h>
#include <linux/jiffies.h>
#include <linux/list.h>
#include <linux/sched.h>
#include <rig/rig.h>

struct wait_queue_head {
	pthread_mutex_t lock;
	struct list_head head;
};

struct rig_wq_entry {
	struct task_struct *task;
	struct list_head node;
};

#define DECLARE_WAIT_QUEUE_HEAD(name)					\
	struct wait_queue_head name = {					\
		.lock = PTHREAD_MUTEX_INITIALIZER,			\
		.head = LIST_HEAD_INIT((name).head),			\
	}

void wake_up(struct wait_queue_head *wq_head);
void rig_wq_prepare(struct wait_queue_head *wq_head, struct rig_wq_entry *e);
void rig_wq_finish(struct wait_queue_head *wq_head, struct rig_wq_entry *e);
/* Sleeps until woken or @deadline_ns (rig_now_ns()); false on timeout. */
bool rig_wq_sleep(struct rig_wq_entry *e, u64 deadline_ns);

/*
 * 0 when @condition is still false after @timeout jiffies, -ERESTARTSYS
 * on a fatal signal, else the jiffies left (at least 1), as in the kernel.
 * kmod.c is its only user: a false first look is a wait for a slot
 * (rig_slot_waits).
 */
#define wait_event_killable_timeout(wq_head, condition, timeout) ({	\
	long __ret = (timeout);						\
	u64 __deadline = rig_now_ns() + rig_jiffies_to_ns(__ret);	\
	struct rig_wq_entry __e;					\
									\
	if (!(condition)) {						\
		__atomic_fetch_add(&rig_slot_waits, 1, __ATOMIC_RELAXED); \
		for (;;) {						\
			rig_wq_prepare(&(wq_head), &__e);		\
			if (condition) {				\
				__ret = rig_jiffies_left(__deadline);	\
				break;					\
			}						\
			if (fatal_signal_pending(current)) {		\
				__ret = -ERESTARTSYS;			\
				break;					\
			}						\
			if (!rig_wq_sleep(&__e, __deadline)) {		\
				__ret = (condition) ? 1 : 0;		\
				break;					\
			}						\
			rig_wq_finish(&(wq_head), &__e);		\
		}							\
		rig_wq_finish(&(wq_head), &__e);			\
	}								\
	__ret;								\
})

#endif /* _RIG_LINUX_WAIT_H */
