// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace rig: jiffies, timers and workqueues.
 *
 * A single pool of worker threads serves every workqueue (there is only
 * system_wq), and a timer thread fires timers when their expiry in jiffies
 * has passed in real time. The pool lock protects the work list, every
 * worker's state and the timer list.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/sched.h>
#include <linux/timer.h>
#include <linux/workqueue.h>
#include <rig/rig.h>

/* Start near a wrap, as the kernel does, to shake out bad time comparisons. */
#define RIG_INITIAL_JIFFIES	((unsigned long)(unsigned int)(-300 * HZ))

struct workqueue_struct {
	const char *name;
};

static struct workqueue_struct rig_system_wq = { .name = "events" };
struct workqueue_struct *system_wq = &rig_system_wq;

struct rig_worker {
	pthread_t thread;
	unsigned int id;
	struct work_struct *current_work;
	work_func_t current_func;
	struct list_head scheduled;	/* works that must wait for this worker */
};

static struct rig_pool {
	pthread_mutex_t lock;
	pthread_cond_t more_work;
	pthread_cond_t timer_cond;
	struct list_head worklist;
	struct list_head timers;	/* sorted by expiry */
	struct rig_worker *workers;
	unsigned int nr_workers;
	unsigned int nr_running;
	bool started;
	bool stop;
	pthread_t timer_thread;
} pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.more_work = PTHREAD_COND_INITIALIZER,
	.worklist = LIST_HEAD_INIT(pool.worklist),
	.timers = LIST_HEAD_INIT(pool.timers),
};

static u64 rig_boot_ns;

static void __attribute__((__constructor__)) rig_jiffies_init(void)
{
	rig_boot_ns = rig_now_ns();
}

/* --serial: jiffies count from the start of virtual time, the same every run. */
void rig_jiffies_rebase(void)
{
	rig_boot_ns = rig_now_ns();
}

unsigned long rig_jiffies(void)
{
	return RIG_INITIAL_JIFFIES + (rig_now_ns() - rig_boot_ns) / RIG_JIFFY_NS;
}

/* ---- timers ------------------------------------------------------------ */

void timer_setup(struct timer_list *timer,
		 void (*func)(struct timer_list *timer), unsigned int flags)
{
	INIT_LIST_HEAD(&timer->entry);
	timer->function = func;
	timer->expires = 0;
	timer->pending = false;
}

void add_timer(struct timer_list *timer)
{
	struct timer_list *pos;

	rig_lock(&pool.lock);
	if (timer->pending) {
		rig_bug(RIG_BUG_MODEL, "add_timer() on a pending timer %p", timer);
		rig_unlock(&pool.lock);
		return;
	}
	list_for_each_entry(pos, &pool.timers, entry)
		if (time_after(pos->expires, timer->expires))
			break;
	list_add_tail(&timer->entry, &pos->entry);
	timer->pending = true;
	if (pool.timers.next == &timer->entry)
		rig_cond_signal(&pool.timer_cond);
	rig_unlock(&pool.lock);
}

int del_timer(struct timer_list *timer)
{
	int was_pending;

	rig_lock(&pool.lock);
	was_pending = timer->pending;
	if (was_pending) {
		list_del_init(&timer->entry);
		timer->pending = false;
	}
	rig_unlock(&pool.lock);
	return was_pending;
}

int timer_pending(const struct timer_list *timer)
{
	int pending;

	rig_lock(&pool.lock);
	pending = timer->pending;
	rig_unlock(&pool.lock);
	return pending;
}

static void *rig_timer_fn(void *arg)
{
	rig_task_start("ktimer");
	rig_lock(&pool.lock);
	while (!pool.stop) {
		struct timer_list *timer;
		void (*fn)(struct timer_list *timer);
		unsigned long now = jiffies;

		if (list_empty(&pool.timers)) {
			rig_cond_wait(&pool.timer_cond, &pool.lock);
			continue;
		}
		timer = list_first_entry(&pool.timers, struct timer_list, entry);
		if (time_after(timer->expires, now)) {
			u64 when = rig_now_ns() + rig_jiffies_to_ns(timer->expires - now);

			rig_cond_wait_until(&pool.timer_cond, &pool.lock, when);
			continue;
		}
		list_del_init(&timer->entry);
		timer->pending = false;
		fn = timer->function;
		rig_unlock(&pool.lock);
		fn(timer);
		rig_lock(&pool.lock);
	}
	rig_unlock(&pool.lock);
	return NULL;
}

/* ---- work items -------------------------------------------------------- */

static void rig_delayed_work_timer_fn(struct timer_list *timer);

void rig_init_work(struct work_struct *work, work_func_t func)
{
	__atomic_store_n(&work->data, 0, __ATOMIC_RELAXED);
	INIT_LIST_HEAD(&work->entry);
	work->func = func;
}

void rig_init_delayed_work(struct delayed_work *dwork, work_func_t func)
{
	rig_init_work(&dwork->work, func);
	timer_setup(&dwork->timer, rig_delayed_work_timer_fn, 0);
	dwork->wq = NULL;
}

static bool rig_test_and_set_pending(struct work_struct *work)
{
	return __atomic_fetch_or(&work->data, WORK_STRUCT_PENDING,
				 __ATOMIC_ACQ_REL) & WORK_STRUCT_PENDING;
}

static void rig_clear_pending(struct work_struct *work)
{
	__atomic_fetch_and(&work->data, ~WORK_STRUCT_PENDING, __ATOMIC_RELEASE);
}

static void __queue_work(struct workqueue_struct *wq, struct work_struct *work)
{
	rig_lock(&pool.lock);
	if (!pool.started)
		rig_bug(RIG_BUG_MODEL, "work queued on %s before the workers started", wq->name);
	list_add_tail(&work->entry, &pool.worklist);
	rig_cond_signal(&pool.more_work);
	rig_unlock(&pool.lock);
}

bool queue_work(struct workqueue_struct *wq, struct work_struct *work)
{
	rig_perturb(RIG_SITE_QUEUE);
	if (rig_test_and_set_pending(work))
		return false;
	__queue_work(wq, work);
	return true;
}

static void rig_delayed_work_timer_fn(struct timer_list *timer)
{
	struct delayed_work *dwork = from_timer(dwork, timer, timer);

	__queue_work(dwork->wq, &dwork->work);
}

bool queue_delayed_work(struct workqueue_struct *wq, struct delayed_work *dwork,
			unsigned long delay)
{
	rig_perturb(RIG_SITE_QUEUE);
	if (rig_test_and_set_pending(&dwork->work))
		return false;
	dwork->wq = wq;
	if (!delay) {
		__queue_work(wq, &dwork->work);
		return true;
	}
	dwork->timer.expires = jiffies + delay;
	add_timer(&dwork->timer);
	return true;
}

bool cancel_delayed_work(struct delayed_work *dwork)
{
	struct work_struct *work = &dwork->work;
	bool cancelled = false;

	rig_lock(&pool.lock);
	if (dwork->timer.pending) {
		list_del_init(&dwork->timer.entry);
		dwork->timer.pending = false;
		cancelled = true;
	} else if (work_pending(work) && !list_empty(&work->entry)) {
		list_del_init(&work->entry);
		cancelled = true;
	}
	if (cancelled)
		rig_clear_pending(work);
	rig_unlock(&pool.lock);
	return cancelled;
}

static struct rig_worker *rig_find_worker_executing(struct work_struct *work)
{
	unsigned int i;

	for (i = 0; i < pool.nr_workers; i++) {
		struct rig_worker *worker = &pool.workers[i];

		if (worker->current_work == work && worker->current_func == work->func)
			return worker;
	}
	return NULL;
}

/* The next work item @worker may run; called with the pool lock held. */
static struct work_struct *rig_next_work(struct rig_worker *worker)
{
	struct rig_worker *collision;
	struct work_struct *work;

	if (!list_empty(&worker->scheduled)) {
		work = list_first_entry(&worker->scheduled, struct work_struct, entry);
		list_del_init(&work->entry);
		return work;
	}
	while (!list_empty(&pool.worklist)) {
		work = list_first_entry(&pool.worklist, struct work_struct, entry);
		list_del_init(&work->entry);
		/* Non-reentrant: it runs after the worker already running it. */
		collision = rig_find_worker_executing(work);
		if (!collision)
			return work;
		list_add_tail(&work->entry, &collision->scheduled);
	}
	return NULL;
}

static void *rig_worker_fn(void *arg)
{
	struct rig_worker *worker = arg;

	rig_task_start("kworker/%u", worker->id);
	rig_lock(&pool.lock);
	for (;;) {
		struct work_struct *work = rig_next_work(worker);

		if (!work) {
			if (pool.stop)
				break;
			rig_cond_wait(&pool.more_work, &pool.lock);
			continue;
		}

		worker->current_work = work;
		worker->current_func = work->func;
		pool.nr_running++;
		rig_clear_pending(work);
		rig_unlock(&pool.lock);

		rig_task_set_state("running work", NULL);
		rig_perturb(RIG_SITE_WORKER);
		/* @work may be freed by its function: use the saved pointer. */
		worker->current_func(work);
		rig_task_set_state("idle", NULL);

		rig_lock(&pool.lock);
		worker->current_work = NULL;
		worker->current_func = NULL;
		pool.nr_running--;
	}
	rig_unlock(&pool.lock);
	return NULL;
}

static bool rig_pool_idle(bool with_timers)
{
	unsigned int i;

	if (!list_empty(&pool.worklist) || pool.nr_running)
		return false;
	if (with_timers && !list_empty(&pool.timers))
		return false;
	for (i = 0; i < pool.nr_workers; i++)
		if (!list_empty(&pool.workers[i].scheduled))
			return false;
	return true;
}

void flush_workqueue(struct workqueue_struct *wq)
{
	rig_lock(&pool.lock);
	while (!rig_pool_idle(false)) {
		rig_unlock(&pool.lock);
		rig_sched_poll_ns(100000);
		rig_lock(&pool.lock);
	}
	rig_unlock(&pool.lock);
}

/* CONFIG_DEBUG_OBJECTS_FREE for work items and timers. */
void rig_workqueue_check_free(const void *obj, size_t size)
{
	const char *lo = obj, *hi = lo + size;
	struct timer_list *timer;
	struct work_struct *work;
	unsigned int i;

#define INSIDE(p)	((const char *)(p) >= lo && (const char *)(p) < hi)
	rig_lock(&pool.lock);
	list_for_each_entry(work, &pool.worklist, entry)
		if (INSIDE(work))
			rig_bug(RIG_BUG_ODEBUG, "ODEBUG: free active (active state 0) object: %p object type: work_struct hint: %p",
				work, work->func);
	for (i = 0; i < pool.nr_workers; i++)
		list_for_each_entry(work, &pool.workers[i].scheduled, entry)
			if (INSIDE(work))
				rig_bug(RIG_BUG_ODEBUG, "ODEBUG: free active (active state 0) object: %p object type: work_struct hint: %p",
					work, work->func);
	list_for_each_entry(timer, &pool.timers, entry)
		if (INSIDE(timer))
			rig_bug(RIG_BUG_ODEBUG, "ODEBUG: free active (active state 0) object: %p object type: timer_list hint: %p",
				timer, timer->function);
	rig_unlock(&pool.lock);
#undef INSIDE
}

void rig_workqueue_start(unsigned int nr_workers)
{
	pthread_condattr_t attr;
	unsigned int i;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool.timer_cond, &attr);
	pthread_condattr_destroy(&attr);

	pool.workers = calloc(nr_workers, sizeof(*pool.workers));
	if (!pool.workers)
		abort();
	rig_lock(&pool.lock);
	pool.nr_workers = nr_workers;
	pool.started = true;
	for (i = 0; i < nr_workers; i++) {
		pool.workers[i].id = i;
		INIT_LIST_HEAD(&pool.workers[i].scheduled);
	}
	rig_unlock(&pool.lock);
	for (i = 0; i < nr_workers; i++)
		rig_thread_create(&pool.workers[i].thread, rig_worker_fn, &pool.workers[i]);
	rig_thread_create(&pool.timer_thread, rig_timer_fn, NULL);
}

/* Waits until no work is queued or running and no timer is armed. */
bool rig_workqueue_drain(u64 timeout_ns)
{
	u64 deadline = rig_now_ns() + timeout_ns;
	bool idle;

	for (;;) {
		rig_lock(&pool.lock);
		idle = rig_pool_idle(true);
		rig_unlock(&pool.lock);
		if (idle || rig_now_ns() > deadline)
			return idle;
		rig_sched_poll_ns(200000);
	}
}

void rig_workqueue_stop(void)
{
	unsigned int i;

	rig_lock(&pool.lock);
	pool.stop = true;
	rig_cond_broadcast(&pool.more_work);
	rig_cond_broadcast(&pool.timer_cond);
	rig_unlock(&pool.lock);
	for (i = 0; i < pool.nr_workers; i++)
		rig_thread_join(pool.workers[i].thread);
	rig_thread_join(pool.timer_thread);
	free(pool.workers);
}
