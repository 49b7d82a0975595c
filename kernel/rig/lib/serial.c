// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace rig: the serial scheduler (--serial).
 *
 * One rig task runs at a time. The running task holds the baton; at every
 * perturbation point it may hand it to another runnable task, picked by a
 * generator seeded from --seed, and every blocking primitive of the rig
 * (task sleeps, condition variables, contended mutexes, barriers, sleeps)
 * blocks on a key and hands the baton on. Time is virtual: when no task is
 * runnable the clock jumps to the earliest deadline of a blocked task. So a
 * seed replays one interleaving exactly, and the 5 s slot timeout or the
 * 60 s linger cost no real time.
 *
 * Invariants: rig_sched_running is the only member task outside
 * rig_sched_wait_turn(); a member hands the baton on only when it holds no
 * rig-internal pthread mutex (rig_lock() counts them), so the task it hands
 * to never blocks on one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/sched.h>
#include <rig/rig.h>

enum { RIG_SCHED_RUNNABLE, RIG_SCHED_BLOCKED, RIG_SCHED_DEAD };

bool rig_serial;
unsigned int rig_serial_switch_permille = 500;
unsigned long rig_serial_switches;
bool rig_serial_deadlocked;		/* atomic: read by the watchdog */
__thread bool rig_sched_member;
__thread unsigned int rig_nosched;
static __thread bool rig_sched_free;

static pthread_mutex_t rig_sched_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rig_sched_started_cond = PTHREAD_COND_INITIALIZER;
static unsigned long rig_sched_started;
static struct task_struct *rig_sched_running;
static struct task_struct *rig_sched_tasks[RIG_MAX_TASKS];
static unsigned int rig_sched_nr;
static u64 rig_vclock;			/* atomic */
static u64 rig_sched_rng;
/*
 * Polls (a contended mutex, a join, a barrier) wait for another task to
 * act. When only pollers' deadlines move time for this many jumps in a row
 * while every other task stays blocked, nobody can act: a deadlock.
 */
static const char rig_poll_key;
static unsigned long rig_sched_idle_polls;
#define RIG_SCHED_DEADLOCK_POLLS	10000

/* Each scheduling point costs this much virtual time, so that time moves. */
#define RIG_SCHED_QUANTUM_NS	100
#define RIG_VIRTUAL_EPOCH_NS	(1000 * 1000000000ULL)

u64 rig_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

u64 rig_virtual_ns(void)
{
	return __atomic_load_n(&rig_vclock, __ATOMIC_ACQUIRE);
}

static u64 rig_sched_random_below(u64 bound)
{
	/* xorshift64*: the scheduler's own stream, so tasks' draws do not shift it */
	rig_sched_rng ^= rig_sched_rng >> 12;
	rig_sched_rng ^= rig_sched_rng << 25;
	rig_sched_rng ^= rig_sched_rng >> 27;
	return (rig_sched_rng * 0x2545f4914f6cdd1dULL) % bound;
}

void rig_serial_start(unsigned long seed)
{
	rig_serial = true;
	rig_sched_rng = seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
	if (!rig_sched_rng)
		rig_sched_rng = 1;
	/* a fixed origin: a run's times and jiffy boundaries do not depend on when it started */
	__atomic_store_n(&rig_vclock, RIG_VIRTUAL_EPOCH_NS, __ATOMIC_RELEASE);
	rig_jiffies_rebase();
}

static void rig_sched_wait_turn(struct task_struct *self)
{
	while (rig_sched_running != self)
		pthread_cond_wait(&self->sched_cond, &rig_sched_lock);
}

static void rig_sched_run(struct task_struct *next)
{
	rig_sched_running = next;
	if (next)
		pthread_cond_signal(&next->sched_cond);
}

/* A runnable task other than @exclude, uniformly; NULL if there is none. */
static struct task_struct *rig_sched_pick(struct task_struct *exclude)
{
	struct task_struct *cand[RIG_MAX_TASKS];
	unsigned int i, n = 0;

	for (i = 0; i < rig_sched_nr; i++)
		if (rig_sched_tasks[i]->sched_state == RIG_SCHED_RUNNABLE &&
		    rig_sched_tasks[i] != exclude)
			cand[n++] = rig_sched_tasks[i];
	return n ? cand[n == 1 ? 0 : rig_sched_random_below(n)] : NULL;
}

/*
 * Blocked tasks whose deadline passed become runnable: their timer fired.
 * True when only pollers woke.
 */
static bool rig_sched_expire(void)
{
	u64 now = rig_virtual_ns();
	bool only_polls = true;
	unsigned int i;

	for (i = 0; i < rig_sched_nr; i++) {
		struct task_struct *t = rig_sched_tasks[i];

		if (t->sched_state == RIG_SCHED_BLOCKED && t->sched_deadline &&
		    t->sched_deadline <= now) {
			t->sched_state = RIG_SCHED_RUNNABLE;
			t->sched_timed_out = true;
			only_polls &= t->sched_key == &rig_poll_key;
		}
	}
	return only_polls;
}

/*
 * Nothing runnable: jump to the earliest deadline and wake who has it.
 * Polls that keep finding nothing while no other task has a deadline (a
 * timed sleep or stall would end and act) mean nobody can act: a deadlock.
 */
static bool rig_sched_advance(void)
{
	bool timed_other = false;
	u64 first = 0;
	unsigned int i;

	for (i = 0; i < rig_sched_nr; i++) {
		struct task_struct *t = rig_sched_tasks[i];

		if (t->sched_state != RIG_SCHED_BLOCKED || !t->sched_deadline)
			continue;
		if (!first || t->sched_deadline < first)
			first = t->sched_deadline;
		timed_other |= t->sched_key != &rig_poll_key;
	}
	if (!first)
		return false;
	if (first > rig_virtual_ns())
		__atomic_store_n(&rig_vclock, first, __ATOMIC_RELEASE);
	if (!rig_sched_expire() || timed_other)
		rig_sched_idle_polls = 0;
	else if (++rig_sched_idle_polls == RIG_SCHED_DEADLOCK_POLLS)
		__atomic_store_n(&rig_serial_deadlocked, true, __ATOMIC_RELEASE);
	return true;
}

/* Hand the baton on from a task that cannot go on: blocked or dead. */
static void rig_sched_handoff(struct task_struct *self)
{
	struct task_struct *next;
	unsigned int i;

	rig_sched_expire();
	next = rig_sched_pick(NULL);
	if (!next && rig_sched_advance())
		next = rig_sched_pick(NULL);
	if (next) {
		if (next != self)
			rig_serial_switches++;
		rig_sched_run(next);
		return;
	}
	rig_sched_run(NULL);
	for (i = 0; i < rig_sched_nr; i++)
		if (rig_sched_tasks[i]->sched_state != RIG_SCHED_DEAD) {
			/* every live task waits for another without a deadline */
			__atomic_store_n(&rig_serial_deadlocked, true, __ATOMIC_RELEASE);
			break;
		}
}

void rig_sched_register(struct task_struct *self)
{
	pthread_mutex_lock(&rig_sched_lock);
	rig_sched_started++;
	pthread_cond_broadcast(&rig_sched_started_cond);
	if (!rig_serial || rig_sched_free) {
		pthread_mutex_unlock(&rig_sched_lock);
		return;
	}
	pthread_cond_init(&self->sched_cond, NULL);
	self->thread = pthread_self();
	self->sched_state = RIG_SCHED_RUNNABLE;
	rig_sched_tasks[rig_sched_nr++] = self;
	rig_sched_member = true;
	if (!rig_sched_running)
		rig_sched_running = self;	/* the first task: main */
	rig_sched_wait_turn(self);
	pthread_mutex_unlock(&rig_sched_lock);
}

void rig_sched_point(void)
{
	struct task_struct *self = rig_current, *next;

	if (!rig_sched_member || rig_nosched)
		return;
	pthread_mutex_lock(&rig_sched_lock);
	__atomic_store_n(&rig_vclock, rig_virtual_ns() + RIG_SCHED_QUANTUM_NS, __ATOMIC_RELEASE);
	rig_sched_expire();
	if (rig_sched_random_below(1000) < rig_serial_switch_permille) {
		next = rig_sched_pick(self);
		if (next) {
			rig_serial_switches++;
			rig_sched_run(next);
			rig_sched_wait_turn(self);
		}
	}
	pthread_mutex_unlock(&rig_sched_lock);
}

bool rig_sched_block(const void *key, u64 deadline_ns)
{
	struct task_struct *self = rig_current;
	bool timed_out;

	if (rig_nosched || !rig_sched_member) {
		/* the next task would block on the lock, or two would run */
		fprintf(stderr, "rig: %s blocks in the serial scheduler %s\n", self->comm,
			rig_nosched ? "holding a rig lock" : "without being a member");
		abort();
	}
	pthread_mutex_lock(&rig_sched_lock);
	self->sched_state = RIG_SCHED_BLOCKED;
	self->sched_key = key;
	self->sched_deadline = deadline_ns;
	self->sched_timed_out = false;
	rig_sched_handoff(self);
	rig_sched_wait_turn(self);
	timed_out = self->sched_timed_out;
	pthread_mutex_unlock(&rig_sched_lock);
	return !timed_out;
}

void rig_sched_wake(const void *key)
{
	unsigned int i;

	if (!rig_serial)
		return;
	pthread_mutex_lock(&rig_sched_lock);
	for (i = 0; i < rig_sched_nr; i++) {
		struct task_struct *t = rig_sched_tasks[i];

		if (t->sched_state == RIG_SCHED_BLOCKED && t->sched_key == key) {
			t->sched_state = RIG_SCHED_RUNNABLE;
			t->sched_timed_out = false;
		}
	}
	pthread_mutex_unlock(&rig_sched_lock);
}

static void rig_sched_exit(void)
{
	struct task_struct *self = rig_current;

	pthread_mutex_lock(&rig_sched_lock);
	self->sched_state = RIG_SCHED_DEAD;
	rig_sched_handoff(self);
	pthread_mutex_unlock(&rig_sched_lock);
}

void rig_sched_poll_ns(u64 ns)
{
	u64 deadline;

	if (!rig_sched_member) {
		rig_sleep_ns(ns);
		return;
	}
	deadline = rig_virtual_ns() + ns;
	while (rig_virtual_ns() < deadline)
		rig_sched_block(&rig_poll_key, deadline);
}

void rig_sched_poll(void)
{
	rig_sched_poll_ns(1000);
}

/* ---- threads ----------------------------------------------------------- */

struct rig_thread_start {
	void *(*fn)(void *);
	void *arg;
	bool free;
};

static void *rig_thread_trampoline(void *p)
{
	struct rig_thread_start start = *(struct rig_thread_start *)p;
	void *ret;

	free(p);
	rig_sched_free = start.free;
	ret = start.fn(start.arg);
	if (rig_sched_member)
		rig_sched_exit();
	return ret;
}

static void rig_thread_create_common(pthread_t *thread, void *(*fn)(void *), void *arg,
				     bool free_running)
{
	struct rig_thread_start *start = malloc(sizeof(*start));
	pthread_attr_t attr;
	unsigned long before;
	int err;

	if (!start)
		abort();
	*start = (struct rig_thread_start){ .fn = fn, .arg = arg, .free = free_running };
	pthread_mutex_lock(&rig_sched_lock);
	before = rig_sched_started;
	pthread_mutex_unlock(&rig_sched_lock);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	err = pthread_create(thread, &attr, rig_thread_trampoline, start);
	pthread_attr_destroy(&attr);
	if (err) {
		fprintf(stderr, "rig: pthread_create: %s\n", strerror(err));
		exit(2);
	}
	if (!rig_serial)
		return;
	/* Task ids and the order of the runnable set follow creation order. */
	pthread_mutex_lock(&rig_sched_lock);
	while (rig_sched_started == before)
		pthread_cond_wait(&rig_sched_started_cond, &rig_sched_lock);
	pthread_mutex_unlock(&rig_sched_lock);
}

void rig_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	rig_thread_create_common(thread, fn, arg, false);
}

void rig_thread_create_free(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	rig_thread_create_common(thread, fn, arg, true);
}

void rig_thread_join(pthread_t thread)
{
	struct task_struct *t = NULL;
	unsigned int i;

	if (rig_sched_member) {
		pthread_mutex_lock(&rig_sched_lock);
		for (i = 0; i < rig_sched_nr; i++)
			if (pthread_equal(rig_sched_tasks[i]->thread, thread))
				t = rig_sched_tasks[i];
		pthread_mutex_unlock(&rig_sched_lock);
		/* polling in virtual time keeps the interleaving a function of the seed */
		while (t && __atomic_load_n(&t->sched_state, __ATOMIC_ACQUIRE) != RIG_SCHED_DEAD)
			rig_sched_poll_ns(1000000);
	}
	pthread_join(thread, NULL);
}

/* ---- condition variables, barriers and locks -------------------------- */

void rig_lock(pthread_mutex_t *m)
{
	pthread_mutex_lock(m);
	rig_nosched++;
}

void rig_unlock(pthread_mutex_t *m)
{
	rig_nosched--;
	pthread_mutex_unlock(m);
}

int rig_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, u64 deadline_ns)
{
	struct timespec ts;
	int ret;

	if (rig_sched_member) {
		bool woken;

		rig_unlock(m);
		woken = rig_sched_block(c, deadline_ns);
		rig_lock(m);
		return woken ? 0 : ETIMEDOUT;
	}
	rig_nosched--;
	if (!deadline_ns) {
		ret = pthread_cond_wait(c, m);
	} else {
		ts.tv_sec = deadline_ns / 1000000000ULL;
		ts.tv_nsec = deadline_ns % 1000000000ULL;
		ret = pthread_cond_timedwait(c, m, &ts);
	}
	rig_nosched++;
	return ret;
}

void rig_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	rig_cond_wait_until(c, m, 0);
}

void rig_cond_signal(pthread_cond_t *c)
{
	pthread_cond_signal(c);
	rig_sched_wake(c);	/* serial: all of them; condition waits loop */
}

void rig_cond_broadcast(pthread_cond_t *c)
{
	pthread_cond_broadcast(c);
	rig_sched_wake(c);
}

void rig_barrier_init(struct rig_barrier *b, unsigned int count)
{
	pthread_barrier_init(&b->barrier, NULL, count);
	pthread_mutex_init(&b->lock, NULL);
	b->count = count;
	b->arrived = 0;
	b->generation = 0;
}

void rig_barrier_wait(struct rig_barrier *b)
{
	unsigned long gen;

	if (!rig_sched_member) {
		pthread_barrier_wait(&b->barrier);
		return;
	}
	rig_lock(&b->lock);
	gen = b->generation;
	if (++b->arrived == b->count) {
		b->arrived = 0;
		__atomic_store_n(&b->generation, gen + 1, __ATOMIC_RELEASE);
		rig_unlock(&b->lock);
		return;
	}
	rig_unlock(&b->lock);
	while (__atomic_load_n(&b->generation, __ATOMIC_ACQUIRE) == gen)
		rig_sched_poll();
}
