/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: workqueues.
 *
 * One pool of worker threads serves every workqueue. As in the kernel, a
 * work item is pending from queue_work() until a worker picks it up, its
 * PENDING bit is cleared before its function runs (so it may requeue or
 * free itself), and a work item never runs on two workers at once. Delayed
 * work arms a timer that the timer thread fires after the delay in jiffies.
 */
#ifndef _RIG_LINUX_WORKQUEUE_H
#define _RIG_LINUX_WORKQUEUE_H

#include <linux/kernel.h>
#include <linux/timer.h>
#include <linux/types.h>

struct work_struct;
typedef void (*work_func_t)(struct work_struct *work);

#define WORK_STRUCT_PENDING	1UL

struct work_struct {
	unsigned long data;		/* atomic: WORK_STRUCT_PENDING */
	struct list_head entry;
	work_func_t func;
};

struct delayed_work {
	struct work_struct work;
	struct timer_list timer;
	struct workqueue_struct *wq;
};

struct workqueue_struct;
extern struct workqueue_struct *system_wq;
/* Linux 7.0's name for the unbound default workqueue; one pool here */
#define system_dfl_wq	system_wq

void rig_init_work(struct work_struct *work, work_func_t func);
void rig_init_delayed_work(struct delayed_work *dwork, work_func_t func);

#define INIT_WORK(_work, _func)		rig_init_work((_work), (_func))
#define INIT_DELAYED_WORK(_work, _func)	rig_init_delayed_work((_work), (_func))

static inline struct delayed_work *to_delayed_work(struct work_struct *work)
{
	return container_of(work, struct delayed_work, work);
}

#define work_pending(work) \
	(__atomic_load_n(&(work)->data, __ATOMIC_ACQUIRE) & WORK_STRUCT_PENDING)
#define delayed_work_pending(w)	work_pending(&(w)->work)

bool queue_work(struct workqueue_struct *wq, struct work_struct *work);
bool queue_delayed_work(struct workqueue_struct *wq, struct delayed_work *dwork,
			unsigned long delay);
bool cancel_delayed_work(struct delayed_work *dwork);
void flush_workqueue(struct workqueue_struct *wq);

static inline bool schedule_work(struct work_struct *work)
{
	return queue_work(system_wq, work);
}

static inline bool schedule_delayed_work(struct delayed_work *dwork,
					 unsigned long delay)
{
	return queue_delayed_work(system_wq, dwork, delay);
}

#endif /* _RIG_LINUX_WORKQUEUE_H */
