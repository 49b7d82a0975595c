/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig for kernel/module/dups.c: the runtime under the kernel API.
 *
 * The headers in include/linux/ implement the kernel primitives dups.c uses
 * on top of pthreads. This header is what they, the driver and the model of
 * kmod.c share: the seeded perturbation ("shake the interleavings"), the
 * per-thread task, and the bug counters the driver turns into checks.
 */
#ifndef _RIG_RIG_H
#define _RIG_RIG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>

#include <linux/compiler.h>
#include <linux/types.h>

struct task_struct;

/* Where a primitive calls rig_perturb(); --stall takes these names. */
enum rig_site {
	RIG_SITE_MUTEX,		/* mutex_lock(), mutex_unlock() */
	RIG_SITE_SLAB,		/* kmalloc(), kzalloc(), kfree() */
	RIG_SITE_LIST,		/* list_add*(), list_del*() */
	RIG_SITE_RCU,		/* synchronize_rcu(), rcu_read_lock() */
	RIG_SITE_COMPLETE,	/* complete(), complete_all() */
	RIG_SITE_WAIT,		/* entry of wait_for_completion*() */
	RIG_SITE_WAKE,		/* a waiter woken in wait_for_completion*() */
	RIG_SITE_QUEUE,		/* queue_work(), queue_delayed_work() */
	RIG_SITE_WORKER,	/* a worker about to run a work item */
	RIG_SITE_KREF,		/* kref_*(), refcount_*() */
	RIG_SITE_PRINTK,	/* printk(), WARN() */
	RIG_NR_SITES,
};

/**
 * struct rig_perturb - random delays injected at every primitive
 * @yield_permille: chance of a sched_yield() at any site
 * @sleep_permille: chance of a short sleep at any site
 * @sleep_max_us: the short sleep is uniform in [0, @sleep_max_us]
 * @stall_permille: per site, chance of a long stall
 * @stall_us: per site, the long stall is uniform in [@stall_us / 2, @stall_us]
 */
struct rig_perturb {
	unsigned int yield_permille;
	unsigned int sleep_permille;
	unsigned int sleep_max_us;
	unsigned int stall_permille[RIG_NR_SITES];
	unsigned int stall_us[RIG_NR_SITES];
};

extern struct rig_perturb rig_perturb_cfg;
extern bool rig_perturb_enabled;
extern unsigned long rig_seed;

const char *rig_site_name(enum rig_site site);
int rig_site_lookup(const char *name);
void __rig_perturb(enum rig_site site);

static inline void rig_perturb(enum rig_site site)
{
	if (rig_perturb_enabled)
		__rig_perturb(site);
}

/* Per-task pseudo random numbers, seeded from --seed and the task's id. */
u64 rig_random(void);
u64 rig_random_below(u64 bound);
bool rig_chance_permille(unsigned int permille);

u64 rig_now_ns(void);		/* virtual time under --serial */
void rig_sleep_ns(u64 ns);
u64 rig_real_ns(void);
void rig_real_sleep_ns(u64 ns);
void rig_sleep_random_us(unsigned int max_us);

/* Threads: every rig thread has a task_struct, so "current" works. */
#define RIG_MAX_TASKS	1536
struct task_struct *rig_task_start(const char *fmt, ...) __printf(1, 2);
void rig_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg);
/* A thread outside the serial scheduler (the watchdog): real time, no baton. */
void rig_thread_create_free(pthread_t *thread, void *(*fn)(void *), void *arg);
void rig_thread_join(pthread_t thread);

/*
 * The serial scheduler (lib/serial.c): with --serial one task runs at a
 * time, the next is picked from the seed at every perturbation point and
 * every blocking point, and time is virtual.
 */
extern bool rig_serial;
extern unsigned int rig_serial_switch_permille;
extern unsigned long rig_serial_switches;
extern bool rig_serial_deadlocked;
extern __thread bool rig_sched_member;
extern __thread unsigned int rig_nosched;	/* rig locks held by this thread */
void rig_serial_start(unsigned long seed);
void rig_jiffies_rebase(void);
u64 rig_virtual_ns(void);
void rig_sched_register(struct task_struct *self);
void rig_sched_point(void);
bool rig_sched_block(const void *key, u64 deadline_ns);
void rig_sched_wake(const void *key);
/* Wait for another task to act (a contended lock, a join, a barrier). */
void rig_sched_poll(void);
void rig_sched_poll_ns(u64 ns);

/*
 * The rig's own pthread locks and condition variables: the serial scheduler
 * never switches away from a task inside rig_lock() and rig_unlock(), and
 * condition waits block in it.
 */
void rig_lock(pthread_mutex_t *m);
void rig_unlock(pthread_mutex_t *m);
void rig_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
/* ETIMEDOUT once rig_now_ns() reaches @deadline_ns (0: no deadline). */
int rig_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, u64 deadline_ns);
void rig_cond_signal(pthread_cond_t *c);
void rig_cond_broadcast(pthread_cond_t *c);

struct rig_barrier {
	pthread_barrier_t barrier;
	pthread_mutex_t lock;
	unsigned int count, arrived;
	unsigned long generation;
};

void rig_barrier_init(struct rig_barrier *b, unsigned int count);
void rig_barrier_wait(struct rig_barrier *b);
struct task_struct *rig_task_by_index(unsigned int index);
unsigned int rig_nr_tasks(void);
void rig_task_set_state(const char *state, const char *arg);

/* Kinds of bugs the primitives detect themselves, as the kernel's debug options do. */
enum rig_bug_kind {
	RIG_BUG_MEMORY,		/* poisoned memory read, double or bad kfree() */
	RIG_BUG_LIST,		/* CONFIG_DEBUG_LIST: corrupted or poisoned list */
	RIG_BUG_REFCOUNT,	/* refcount_t: use-after-free, underflow */
	RIG_BUG_ODEBUG,		/* CONFIG_DEBUG_OBJECTS_FREE: free of a pending work */
	RIG_BUG_LOCKDEP,	/* lockdep_assert_held(), mutex misuse, RCU-list check */
	RIG_BUG_MODEL,		/* the driver's model is inconsistent: a rig bug */
	RIG_NR_BUGS,
};

void rig_bug(enum rig_bug_kind kind, const char *fmt, ...) __printf(2, 3);
unsigned long rig_bug_count(enum rig_bug_kind kind);
const char *rig_bug_first(enum rig_bug_kind kind);
const char *rig_bug_name(enum rig_bug_kind kind);

/* printk() bookkeeping: the driver checks one warning per duplicate. */
extern unsigned int rig_printk_limit;
extern bool rig_verbose;
unsigned long rig_printk_count(int level);
unsigned long rig_printk_suppressed(void);
void rig_warn_slowpath(const char *file, int line, const char *fmt, ...) __printf(3, 4);

/*
 * Windows reached, counted where they open: a wait on a completion that
 * complete_all() had already completed (only dups.c's first_req_done is
 * completed so: a duplicate that found the entry before its first request
 * announced and waited after), and a slot wait that found every modprobe
 * slot of kmod.c busy.
 */
extern unsigned long rig_late_waits;
extern unsigned long rig_slot_waits;

/* Memory: objects still allocated, for the leak check. */
long rig_slab_outstanding(void);
unsigned long rig_slab_failures(void);
void rig_slab_quarantine_flush(void);

/* Workqueue, timers and RCU lifetime. */
void rig_workqueue_start(unsigned int nr_workers);
bool rig_workqueue_drain(u64 timeout_ns);
void rig_workqueue_stop(void);
void rig_workqueue_check_free(const void *obj, size_t size);
extern unsigned int rig_rcu_gp_us;

/* Module parameters registered with module_param(). */
int rig_param_set(const char *name, const char *val);
void rig_param_list(void);

/* The driver's crash / hang reporting; reports counted by the sanitizers' hooks. */
void rig_install_crash_handler(void);
unsigned long rig_sanitizer_report_count(void);

#define RIG_POISON_FREE		0x6b
#define RIG_POISON_FREE_INT	0x6b6b6b6b

#endif /* _RIG_RIG_H */
