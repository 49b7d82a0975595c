// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace rig: mutexes, completions, refcounts and RCU.
 */
#include <sched.h>

#include <linux/completion.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <rig/rig.h>

/* ---- mutex ------------------------------------------------------------- */

void __mutex_init(struct mutex *lock, const char *name)
{
	pthread_mutex_init(&lock->lock, NULL);
	lock->owner = NULL;
	lock->name = name;
}

bool rig_mutex_owned(const struct mutex *lock)
{
	return __atomic_load_n(&lock->owner, __ATOMIC_RELAXED) == current;
}

void mutex_lock(struct mutex *lock)
{
	might_sleep();
	rig_perturb(RIG_SITE_MUTEX);
	if (rig_mutex_owned(lock))
		rig_bug(RIG_BUG_LOCKDEP, "recursive mutex_lock(%s)", lock->name);
	if (rig_sched_member) {
		/* serial: the holder is another task, which must run to unlock */
		while (pthread_mutex_trylock(&lock->lock))
			rig_sched_poll();
	} else {
		pthread_mutex_lock(&lock->lock);
	}
	__atomic_store_n(&lock->owner, current, __ATOMIC_RELAXED);
	rig_perturb(RIG_SITE_MUTEX);
}

int mutex_trylock(struct mutex *lock)
{
	if (pthread_mutex_trylock(&lock->lock))
		return 0;
	__atomic_store_n(&lock->owner, current, __ATOMIC_RELAXED);
	return 1;
}

void mutex_unlock(struct mutex *lock)
{
	if (!rig_mutex_owned(lock)) {
		rig_bug(RIG_BUG_LOCKDEP, "mutex_unlock(%s) by a task that does not hold it",
			lock->name);
		return;
	}
	__atomic_store_n(&lock->owner, NULL, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&lock->lock);
	rig_perturb(RIG_SITE_MUTEX);
}

bool mutex_is_locked(struct mutex *lock)
{
	return __atomic_load_n(&lock->owner, __ATOMIC_RELAXED) != NULL;
}

/* ---- completion -------------------------------------------------------- */

unsigned long rig_late_waits;

struct rig_waiter {
	struct list_head node;
	struct task_struct *task;
};

void init_completion(struct completion *x)
{
	x->done = 0;
	pthread_mutex_init(&x->lock, NULL);
	INIT_LIST_HEAD(&x->waiters);
}

void reinit_completion(struct completion *x)
{
	rig_lock(&x->lock);
	x->done = 0;
	rig_unlock(&x->lock);
}

static void rig_wake_waiter(struct completion *x)
{
	struct rig_waiter *w = list_first_entry(&x->waiters, struct rig_waiter, node);

	list_del_init(&w->node);
	wake_up_process(w->task);
}

void complete(struct completion *x)
{
	rig_perturb(RIG_SITE_COMPLETE);
	rig_lock(&x->lock);
	if (x->done != UINT_MAX)
		x->done++;
	if (!list_empty(&x->waiters))
		rig_wake_waiter(x);
	rig_unlock(&x->lock);
}

void complete_all(struct completion *x)
{
	rig_perturb(RIG_SITE_COMPLETE);
	rig_lock(&x->lock);
	x->done = UINT_MAX;
	while (!list_empty(&x->waiters))
		rig_wake_waiter(x);
	rig_unlock(&x->lock);
}

/*
 * The waiter goes back to the completion's lock after it is woken: that is
 * where a completion freed under a slow waiter gets noticed.
 *
 * As the kernel's wait_for_common(): -ERESTARTSYS when a signal the state
 * admits is pending, 0 when @timeout jiffies passed, else the jiffies left
 * (at least 1). MAX_SCHEDULE_TIMEOUT waits without a deadline.
 */
static long rig_do_wait_for_common(struct completion *x, long timeout, unsigned int state)
{
	struct task_struct *tsk = current;
	struct rig_waiter w = { .task = tsk };
	bool timed = timeout != MAX_SCHEDULE_TIMEOUT;
	u64 deadline = timed ? rig_now_ns() + rig_jiffies_to_ns(timeout) : 0;
	long ret = timeout;

	INIT_LIST_HEAD(&w.node);
	might_sleep();
	rig_perturb(RIG_SITE_WAIT);
	rig_lock(&x->lock);
	if (x->done == UINT_MAX)
		__atomic_fetch_add(&rig_late_waits, 1, __ATOMIC_RELAXED);
	while (!x->done) {
		rig_task_prepare_sleep(tsk);
		if (signal_pending_state(state, tsk)) {
			ret = -ERESTARTSYS;
			break;
		}
		if (timed && rig_now_ns() >= deadline) {
			ret = 0;
			break;
		}
		list_add_tail(&w.node, &x->waiters);
		rig_unlock(&x->lock);

		if (timed)
			rig_task_sleep_until(tsk, deadline);
		else
			rig_task_sleep(tsk);
		rig_perturb(RIG_SITE_WAKE);

		rig_lock(&x->lock);
		/* Still queued: woken by a signal or the timeout, not by complete(). */
		if (!list_empty(&w.node))
			list_del_init(&w.node);
	}
	if (ret > 0) {
		if (x->done != UINT_MAX)
			x->done--;
		if (timed)
			ret = rig_jiffies_left(deadline);
	}
	rig_unlock(&x->lock);
	return ret;
}

/* The untimed waits return 0 or -ERESTARTSYS, never the jiffies left. */
static int rig_wait_untimed(struct completion *x, unsigned int state)
{
	return rig_do_wait_for_common(x, MAX_SCHEDULE_TIMEOUT, state) < 0 ? -ERESTARTSYS : 0;
}

void wait_for_completion(struct completion *x)
{
	rig_wait_untimed(x, TASK_UNINTERRUPTIBLE);
}

int wait_for_completion_interruptible(struct completion *x)
{
	return rig_wait_untimed(x, TASK_INTERRUPTIBLE);
}

int wait_for_completion_killable(struct completion *x)
{
	return rig_wait_untimed(x, TASK_KILLABLE);
}

int wait_for_completion_state(struct completion *x, unsigned int state)
{
	return rig_wait_untimed(x, state);
}

long wait_for_completion_killable_timeout(struct completion *x, unsigned long timeout)
{
	return rig_do_wait_for_common(x, (long)timeout, TASK_KILLABLE);
}

bool try_wait_for_completion(struct completion *x)
{
	bool ret = true;

	rig_lock(&x->lock);
	if (!x->done)
		ret = false;
	else if (x->done != UINT_MAX)
		x->done--;
	rig_unlock(&x->lock);
	return ret;
}

bool completion_done(struct completion *x)
{
	bool done;

	rig_lock(&x->lock);
	done = x->done;
	rig_unlock(&x->lock);
	return done;
}

/* ---- refcount_t -------------------------------------------------------- */

void refcount_inc(refcount_t *r)
{
	int old;

	rig_perturb(RIG_SITE_KREF);
	old = __atomic_fetch_add(&r->refs, 1, __ATOMIC_RELAXED);
	if (unlikely(old <= 0)) {
		if (!old)
			rig_bug(RIG_BUG_REFCOUNT, "refcount_t: addition on 0; use-after-free");
		else
			rig_bug(RIG_BUG_REFCOUNT, "refcount_t: saturated (%d); leaking memory", old);
		refcount_set(r, REFCOUNT_SATURATED);
	}
}

bool refcount_inc_not_zero(refcount_t *r)
{
	int old = __atomic_load_n(&r->refs, __ATOMIC_RELAXED);

	rig_perturb(RIG_SITE_KREF);
	do {
		if (!old)
			return false;
	} while (!__atomic_compare_exchange_n(&r->refs, &old, old + 1, false,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	if (unlikely(old < 0)) {
		rig_bug(RIG_BUG_REFCOUNT, "refcount_t: saturated (%d); leaking memory", old);
		refcount_set(r, REFCOUNT_SATURATED);
	}
	return true;
}

bool refcount_dec_and_test(refcount_t *r)
{
	int old;

	rig_perturb(RIG_SITE_KREF);
	/* release our stores, and acquire everyone's if we drop the last one */
	old = __atomic_fetch_sub(&r->refs, 1, __ATOMIC_ACQ_REL);
	if (old == 1)
		return true;
	if (unlikely(old <= 0)) {
		rig_bug(RIG_BUG_REFCOUNT, "refcount_t: underflow; use-after-free (was %d)", old);
		refcount_set(r, REFCOUNT_SATURATED);
	}
	return false;
}

void refcount_dec(refcount_t *r)
{
	if (refcount_dec_and_test(r))
		rig_bug(RIG_BUG_REFCOUNT, "refcount_t: decrement hit 0; leaking memory");
}

/* ---- RCU --------------------------------------------------------------- */

unsigned int rig_rcu_gp_us;

void rcu_read_lock(void)
{
	struct task_struct *tsk = current;

	rig_perturb(RIG_SITE_RCU);
	__atomic_fetch_add(&tsk->rcu_nesting, 1, __ATOMIC_SEQ_CST);
}

void rcu_read_unlock(void)
{
	struct task_struct *tsk = current;

	if (__atomic_sub_fetch(&tsk->rcu_nesting, 1, __ATOMIC_SEQ_CST) == 0)
		__atomic_fetch_add(&tsk->rcu_seq, 1, __ATOMIC_SEQ_CST);
	rig_perturb(RIG_SITE_RCU);
}

int rcu_read_lock_held(void)
{
	return __atomic_load_n(&current->rcu_nesting, __ATOMIC_RELAXED) != 0;
}

void rig_rcu_list_check(bool cond)
{
	if (!cond && !rcu_read_lock_held())
		rig_bug(RIG_BUG_LOCKDEP, "suspicious RCU usage: RCU-list traversed in non-reader section");
}

/* Waits for every read-side critical section that had begun when it was called. */
void synchronize_rcu(void)
{
	unsigned int i, n;

	might_sleep();
	if (rcu_read_lock_held())
		rig_bug(RIG_BUG_LOCKDEP, "synchronize_rcu() inside rcu_read_lock()");
	rig_perturb(RIG_SITE_RCU);
	if (rig_rcu_gp_us)
		rig_sleep_random_us(rig_rcu_gp_us);

	n = rig_nr_tasks();
	for (i = 0; i < n; i++) {
		struct task_struct *tsk = rig_task_by_index(i);
		unsigned long seq = __atomic_load_n(&tsk->rcu_seq, __ATOMIC_SEQ_CST);

		while (__atomic_load_n(&tsk->rcu_nesting, __ATOMIC_SEQ_CST) &&
		       __atomic_load_n(&tsk->rcu_seq, __ATOMIC_SEQ_CST) == seq) {
			if (rig_sched_member)
				rig_sched_poll();
			else
				sched_yield();
		}
	}
}
