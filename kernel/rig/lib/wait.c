// SPDX-License-Identifier: GPL-2.0
/* Userspace rig: wait queues (see include/linux/wait.h). */
#include <linux/jiffies.h>
#include <linux/semaphore.h>
#include <linux/wait.h>

void rig_wq_prepare(struct wait_queue_head *wq_head, struct rig_wq_entry *e)
{
	e->task = current;
	rig_task_prepare_sleep(e->task);
	rig_lock(&wq_head->lock);
	list_add_tail(&e->node, &wq_head->head);
	rig_unlock(&wq_head->lock);
}

void rig_wq_finish(struct wait_queue_head *wq_head, struct rig_wq_entry *e)
{
	rig_lock(&wq_head->lock);
	if (e->node.next && !list_empty(&e->node))
		list_del_init(&e->node);
	rig_unlock(&wq_head->lock);
}

void wake_up(struct wait_queue_head *wq_head)
{
	struct rig_wq_entry *e;

	rig_perturb(RIG_SITE_COMPLETE);
	rig_lock(&wq_head->lock);
	list_for_each_entry(e, &wq_head->head, node)
		wake_up_process(e->task);
	rig_unlock(&wq_head->lock);
}

bool rig_wq_sleep(struct rig_wq_entry *e, u64 deadline_ns)
{
	bool woken = rig_task_sleep_until(e->task, deadline_ns);

	rig_perturb(RIG_SITE_WAKE);
	return woken;
}

long rig_jiffies_left(u64 deadline_ns)
{
	u64 now = rig_now_ns();
	long left = now >= deadline_ns ? 0 : (long)((deadline_ns - now) / RIG_JIFFY_NS);

	return left > 0 ? left : 1;
}

unsigned long rig_slot_waits;

static bool rig_down_try(struct semaphore *sem)
{
	bool taken;

	rig_lock(&sem->lock);
	taken = sem->count > 0;
	if (taken)
		sem->count--;
	rig_unlock(&sem->lock);
	return taken;
}

int down_timeout(struct semaphore *sem, long timeout)
{
	u64 deadline = rig_now_ns() + rig_jiffies_to_ns(timeout);
	struct rig_wq_entry e;

	might_sleep();
	rig_perturb(RIG_SITE_WAIT);
	if (rig_down_try(sem))
		return 0;
	__atomic_fetch_add(&rig_slot_waits, 1, __ATOMIC_RELAXED);
	for (;;) {
		/* queued and marked asleep before the look: an up() is not lost */
		rig_wq_prepare(&sem->wait, &e);
		if (rig_down_try(sem))
			break;
		if (!rig_wq_sleep(&e, deadline)) {
			rig_wq_finish(&sem->wait, &e);
			return rig_down_try(sem) ? 0 : -ETIME;
		}
		rig_wq_finish(&sem->wait, &e);
	}
	rig_wq_finish(&sem->wait, &e);
	return 0;
}

void up(struct semaphore *sem)
{
	rig_lock(&sem->lock);
	sem->count++;
	rig_unlock(&sem->lock);
	wake_up(&sem->wait);
}
