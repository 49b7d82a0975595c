// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace rig: tasks, seeded perturbation, time, printk/WARN, bug
 * counters, list debugging, string helpers and module parameters.
 */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <rig/rig.h>

struct rig_perturb rig_perturb_cfg;
bool rig_perturb_enabled;
unsigned long rig_seed = 1;
unsigned int rig_printk_limit = 8;
bool rig_verbose;

__thread struct task_struct *rig_current;

static struct task_struct rig_tasks[RIG_MAX_TASKS];
static unsigned int rig_tasks_used;	/* atomic */

static pthread_mutex_t rig_print_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- random numbers ---------------------------------------------------- */

static u64 rig_mix(u64 x)
{
	/* splitmix64: spreads seed and task id over all 64 bits */
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

u64 rig_random(void)
{
	struct task_struct *tsk = current;
	u64 x = tsk->rng;

	/* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	tsk->rng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

u64 rig_random_below(u64 bound)
{
	return bound ? rig_random() % bound : 0;
}

bool rig_chance_permille(unsigned int permille)
{
	return permille && rig_random_below(1000) < permille;
}

/* ---- time -------------------------------------------------------------- */

u64 rig_now_ns(void)
{
	return rig_serial ? rig_virtual_ns() : rig_real_ns();
}

void rig_sleep_ns(u64 ns)
{
	if (rig_sched_member) {
		u64 deadline = rig_virtual_ns() + (ns ? ns : 1);

		while (rig_virtual_ns() < deadline)
			rig_sched_block(NULL, deadline);
		return;
	}
	rig_real_sleep_ns(ns);
}

void rig_real_sleep_ns(u64 ns)
{
	struct timespec ts = {
		.tv_sec = ns / 1000000000ULL,
		.tv_nsec = ns % 1000000000ULL,
	};

	while (nanosleep(&ts, &ts))
		;
}

void rig_sleep_random_us(unsigned int max_us)
{
	u64 us = rig_random_below((u64)max_us + 1);

	if (us)
		rig_sleep_ns(us * 1000);
}

/* ---- perturbation ------------------------------------------------------ */

static const char * const rig_site_names[RIG_NR_SITES] = {
	[RIG_SITE_MUTEX] = "mutex",
	[RIG_SITE_SLAB] = "slab",
	[RIG_SITE_LIST] = "list",
	[RIG_SITE_RCU] = "rcu",
	[RIG_SITE_COMPLETE] = "complete",
	[RIG_SITE_WAIT] = "wait",
	[RIG_SITE_WAKE] = "wake",
	[RIG_SITE_QUEUE] = "queue",
	[RIG_SITE_WORKER] = "worker",
	[RIG_SITE_KREF] = "kref",
	[RIG_SITE_PRINTK] = "printk",
};

const char *rig_site_name(enum rig_site site)
{
	return site < RIG_NR_SITES ? rig_site_names[site] : "?";
}

int rig_site_lookup(const char *name)
{
	int i;

	for (i = 0; i < RIG_NR_SITES; i++)
		if (!strcmp(name, rig_site_names[i]))
			return i;
	return -1;
}

void __rig_perturb(enum rig_site site)
{
	struct rig_perturb *p = &rig_perturb_cfg;

	/* serial: inside the rig's own locks the holder must run on */
	if (rig_sched_member && rig_nosched)
		return;
	rig_sched_point();
	if (rig_chance_permille(p->stall_permille[site])) {
		unsigned int us = p->stall_us[site];

		rig_sleep_ns(((u64)us / 2 + rig_random_below(us / 2 + 1)) * 1000);
		return;
	}
	if (rig_chance_permille(p->sleep_permille)) {
		rig_sleep_random_us(p->sleep_max_us);
		return;
	}
	if (rig_chance_permille(p->yield_permille) && !rig_serial)
		sched_yield();
}

/* ---- tasks ------------------------------------------------------------- */

struct task_struct *rig_task_start(const char *fmt, ...)
{
	unsigned int id = __atomic_fetch_add(&rig_tasks_used, 1, __ATOMIC_SEQ_CST);
	struct task_struct *tsk;
	va_list ap;

	if (id >= RIG_MAX_TASKS) {
		fprintf(stderr, "rig: too many threads (max %d)\n", RIG_MAX_TASKS);
		exit(2);
	}
	tsk = &rig_tasks[id];
	tsk->pid = (pid_t)id + 1;
	tsk->real_parent = &init_task;
	tsk->tgid_pid = rig_pid_alloc();
	va_start(ap, fmt);
	vsnprintf(tsk->comm, sizeof(tsk->comm), fmt, ap);
	va_end(ap);
	pthread_mutex_init(&tsk->sleep_lock, NULL);
	{
		pthread_condattr_t attr;

		/* Timed sleeps (rig_task_sleep_until()) use rig_now_ns()'s clock. */
		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&tsk->sleep_cond, &attr);
		pthread_condattr_destroy(&attr);
	}
	tsk->rng = rig_mix(rig_seed * 0x100000001b3ULL + id) | 1;
	tsk->alloc_budget = -1;
	__atomic_store_n(&tsk->state, "running", __ATOMIC_RELAXED);
	rig_current = tsk;
	/* Sleeps of a few microseconds should last a few microseconds. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	rig_sched_register(tsk);
	return tsk;
}

struct task_struct init_task = {
	.comm = "swapper",
	.real_parent = &init_task,
};

static int rig_last_pid = RIG_MAX_TASKS;

struct pid *rig_pid_alloc(void)
{
	struct pid *pid = calloc(1, sizeof(*pid));

	if (!pid)
		abort();
	refcount_set(&pid->count, 1);
	pid->nr = __atomic_add_fetch(&rig_last_pid, 1, __ATOMIC_RELAXED);
	return pid;
}

void put_pid(struct pid *pid)
{
	if (pid && refcount_dec_and_test(&pid->count))
		free(pid);
}

void rig_task_new_process(struct task_struct *p)
{
	struct pid *old = p->tgid_pid;

	p->tgid_pid = rig_pid_alloc();
	put_pid(old);
}

struct task_struct *rig_current_slow(void)
{
	return rig_task_start("anon-%lu", (unsigned long)pthread_self() % 10000);
}

struct task_struct *rig_task_by_index(unsigned int index)
{
	return index < rig_nr_tasks() ? &rig_tasks[index] : NULL;
}

unsigned int rig_nr_tasks(void)
{
	unsigned int n = __atomic_load_n(&rig_tasks_used, __ATOMIC_SEQ_CST);

	return n < RIG_MAX_TASKS ? n : RIG_MAX_TASKS;
}

void rig_task_set_state(const char *state, const char *arg)
{
	struct task_struct *tsk = current;

	__atomic_store_n(&tsk->state_arg, arg, __ATOMIC_RELAXED);
	__atomic_store_n(&tsk->state_since, rig_now_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&tsk->state, state, __ATOMIC_RELEASE);
}

void rig_task_prepare_sleep(struct task_struct *p)
{
	pthread_mutex_lock(&p->sleep_lock);
	p->woken = false;
	pthread_mutex_unlock(&p->sleep_lock);
}

void rig_task_sleep(struct task_struct *p)
{
	rig_task_sleep_until(p, 0);
}

bool rig_task_sleep_until(struct task_struct *p, u64 deadline_ns)
{
	struct timespec ts = {
		.tv_sec = deadline_ns / 1000000000ULL,
		.tv_nsec = deadline_ns % 1000000000ULL,
	};
	bool woken;

	pthread_mutex_lock(&p->sleep_lock);
	while (!p->woken) {
		if (rig_sched_member) {
			/* the waker is a member too: it cannot run before we block */
			pthread_mutex_unlock(&p->sleep_lock);
			rig_sched_block(p, deadline_ns);
			pthread_mutex_lock(&p->sleep_lock);
			if (deadline_ns && rig_virtual_ns() >= deadline_ns)
				break;
		} else if (!deadline_ns) {
			pthread_cond_wait(&p->sleep_cond, &p->sleep_lock);
		} else if (pthread_cond_timedwait(&p->sleep_cond, &p->sleep_lock, &ts) == ETIMEDOUT) {
			break;
		}
	}
	woken = p->woken;
	pthread_mutex_unlock(&p->sleep_lock);
	return woken;
}

int wake_up_process(struct task_struct *p)
{
	int was_sleeping;

	pthread_mutex_lock(&p->sleep_lock);
	was_sleeping = !p->woken;
	p->woken = true;
	pthread_cond_signal(&p->sleep_cond);
	pthread_mutex_unlock(&p->sleep_lock);
	rig_sched_wake(p);
	return was_sleeping;
}

void rig_send_sigkill(struct task_struct *p)
{
	__atomic_store_n(&p->sigkill, 1, __ATOMIC_SEQ_CST);
	wake_up_process(p);
}

bool rig_clear_sigkill(struct task_struct *p)
{
	return __atomic_exchange_n(&p->sigkill, 0, __ATOMIC_SEQ_CST);
}

/* ---- bugs the primitives detect -------------------------------------- */

static const char * const rig_bug_names[RIG_NR_BUGS] = {
	[RIG_BUG_MEMORY] = "memory",
	[RIG_BUG_LIST] = "list",
	[RIG_BUG_REFCOUNT] = "refcount",
	[RIG_BUG_ODEBUG] = "odebug",
	[RIG_BUG_LOCKDEP] = "lockdep",
	[RIG_BUG_MODEL] = "model",
};

static unsigned long rig_bug_counts[RIG_NR_BUGS];
static char rig_bug_firsts[RIG_NR_BUGS][256];

const char *rig_bug_name(enum rig_bug_kind kind)
{
	return rig_bug_names[kind];
}

void rig_bug(enum rig_bug_kind kind, const char *fmt, ...)
{
	unsigned long nr = __atomic_fetch_add(&rig_bug_counts[kind], 1, __ATOMIC_SEQ_CST);
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	rig_lock(&rig_print_lock);
	if (!nr)
		memcpy(rig_bug_firsts[kind], msg, sizeof(msg));
	if (nr < rig_printk_limit || rig_verbose) {
		fprintf(stderr, "[rig] BUG: %s: %s (task %s)\n",
			rig_bug_names[kind], msg, current->comm);
		if (!nr) {
			void *frames[16];
			int n = backtrace(frames, ARRAY_SIZE(frames));

			backtrace_symbols_fd(frames, n, STDERR_FILENO);
		}
	}
	rig_unlock(&rig_print_lock);
}

unsigned long rig_bug_count(enum rig_bug_kind kind)
{
	return __atomic_load_n(&rig_bug_counts[kind], __ATOMIC_SEQ_CST);
}

const char *rig_bug_first(enum rig_bug_kind kind)
{
	const char *msg;

	rig_lock(&rig_print_lock);
	msg = rig_bug_firsts[kind];
	rig_unlock(&rig_print_lock);
	return msg;
}

/* ---- printk ------------------------------------------------------------ */

static unsigned long rig_printk_counts[8];
static unsigned long rig_printk_dropped;

unsigned long rig_printk_count(int level)
{
	return __atomic_load_n(&rig_printk_counts[level & 7], __ATOMIC_RELAXED);
}

unsigned long rig_printk_suppressed(void)
{
	return __atomic_load_n(&rig_printk_dropped, __ATOMIC_RELAXED);
}

static void rig_note_warning(const char *text)
{
	struct task_struct *tsk = current;

	tsk->nr_warn++;
	strscpy(tsk->last_warn, text, sizeof(tsk->last_warn));
}

/* Set around kmod.c's own messages: the warn check counts dups.c's only. */
static __thread bool rig_printk_kmod;

int rig_printk_from_kmod(const char *fmt, ...)
{
	va_list ap;
	int ret;

	rig_printk_kmod = true;
	va_start(ap, fmt);
	ret = vprintk(fmt, ap);
	va_end(ap);
	rig_printk_kmod = false;
	return ret;
}

int vprintk(const char *fmt, va_list args)
{
	int level = 4;
	unsigned long nr;
	char text[512];
	int len;

	rig_perturb(RIG_SITE_PRINTK);
	if (fmt[0] == KERN_SOH[0] && fmt[1]) {
		if (fmt[1] >= '0' && fmt[1] <= '7')
			level = fmt[1] - '0';
		fmt += 2;
	}
	len = vsnprintf(text, sizeof(text), fmt, args);
	nr = __atomic_fetch_add(&rig_printk_counts[level], 1, __ATOMIC_RELAXED);
	if (level <= LOGLEVEL_WARNING && !rig_printk_kmod)
		rig_note_warning(text);
	if (level == LOGLEVEL_INFO) {
		current->nr_info++;
		strscpy(current->last_info, text, sizeof(current->last_info));
	}

	if (rig_verbose || (level < LOGLEVEL_DEBUG && nr < rig_printk_limit)) {
		rig_lock(&rig_print_lock);
		fprintf(stderr, "[%s] <%d>%s%s", current->comm, level, text,
			len > 0 && text[len - 1] == '\n' ? "" : "\n");
		rig_unlock(&rig_print_lock);
	} else {
		__atomic_fetch_add(&rig_printk_dropped, 1, __ATOMIC_RELAXED);
	}
	return len;
}

int printk(const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vprintk(fmt, ap);
	va_end(ap);
	return ret;
}

void rig_warn_slowpath(const char *file, int line, const char *fmt, ...)
{
	unsigned long nr;
	char text[512];
	va_list ap;

	rig_perturb(RIG_SITE_PRINTK);
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);

	nr = __atomic_fetch_add(&rig_printk_counts[LOGLEVEL_WARNING], 1, __ATOMIC_RELAXED);
	rig_note_warning(text);
	if (!rig_verbose && nr >= rig_printk_limit) {
		__atomic_fetch_add(&rig_printk_dropped, 1, __ATOMIC_RELAXED);
		return;
	}

	rig_lock(&rig_print_lock);
	fprintf(stderr, "------------[ cut here ]------------\n");
	fprintf(stderr, "WARNING: task %s at %s:%d\n%s", current->comm, file, line, text);
	if (nr < 2) {
		void *frames[16];
		int n = backtrace(frames, ARRAY_SIZE(frames));

		fprintf(stderr, "Call Trace:\n");
		backtrace_symbols_fd(frames, n, STDERR_FILENO);
	}
	fprintf(stderr, "---[ end trace ]---\n");
	rig_unlock(&rig_print_lock);
}

/* ---- CONFIG_DEBUG_LIST ------------------------------------------------ */

bool __list_add_valid(struct list_head *new, struct list_head *prev,
		      struct list_head *next)
{
	if (prev == LIST_POISON2 || next == LIST_POISON1 ||
	    prev == LIST_POISON1 || next == LIST_POISON2) {
		rig_bug(RIG_BUG_LIST, "list_add corruption: poisoned neighbour (prev=%p next=%p)",
			prev, next);
		return false;
	}
	if (next->prev != prev) {
		rig_bug(RIG_BUG_LIST, "list_add corruption: next->prev should be prev (%p), but was %p (next=%p)",
			prev, next->prev, next);
		return false;
	}
	if (prev->next != next) {
		rig_bug(RIG_BUG_LIST, "list_add corruption: prev->next should be next (%p), but was %p (prev=%p)",
			next, prev->next, prev);
		return false;
	}
	if (new == prev || new == next) {
		rig_bug(RIG_BUG_LIST, "list_add double add: new=%p, prev=%p, next=%p",
			new, prev, next);
		return false;
	}
	return true;
}

bool __list_del_entry_valid(struct list_head *entry)
{
	struct list_head *prev = entry->prev, *next = entry->next;

	if (next == LIST_POISON1) {
		rig_bug(RIG_BUG_LIST, "list_del corruption, %p->next is LIST_POISON1", entry);
		return false;
	}
	if (prev == LIST_POISON2) {
		rig_bug(RIG_BUG_LIST, "list_del corruption, %p->prev is LIST_POISON2", entry);
		return false;
	}
	if (prev->next != entry) {
		rig_bug(RIG_BUG_LIST, "list_del corruption. prev->next should be %p, but was %p",
			entry, prev->next);
		return false;
	}
	if (next->prev != entry) {
		rig_bug(RIG_BUG_LIST, "list_del corruption. next->prev should be %p, but was %p",
			entry, next->prev);
		return false;
	}
	return true;
}

/* ---- strings ----------------------------------------------------------- */

ssize_t rig_strscpy(char *dest, const char *src, size_t count)
{
	size_t len;

	if (!count)
		return -E2BIG;
	len = strnlen(src, count);
	if (len == count) {
		memcpy(dest, src, count - 1);
		dest[count - 1] = '\0';
		return -E2BIG;
	}
	memcpy(dest, src, len + 1);
	return len;
}

int kstrtobool(const char *s, bool *res)
{
	if (!s)
		return -EINVAL;
	switch (s[0]) {
	case 'y': case 'Y': case 't': case 'T': case '1':
		*res = true;
		return 0;
	case 'n': case 'N': case 'f': case 'F': case '0':
		*res = false;
		return 0;
	case 'o': case 'O':
		if (s[1] == 'n' || s[1] == 'N') {
			*res = true;
			return 0;
		}
		if (s[1] == 'f' || s[1] == 'F') {
			*res = false;
			return 0;
		}
		break;
	}
	return -EINVAL;
}

/* ---- module parameters ------------------------------------------------- */

struct rig_param {
	const char *name;
	const struct kernel_param_ops *ops;
	void *arg;
	unsigned short perm;
};

static struct rig_param rig_params[32];
static unsigned int rig_nr_params;

void rig_param_register(const char *name, const struct kernel_param_ops *ops,
			void *arg, unsigned short perm)
{
	if (rig_nr_params >= ARRAY_SIZE(rig_params)) {
		fprintf(stderr, "rig: too many module parameters\n");
		exit(2);
	}
	rig_params[rig_nr_params++] = (struct rig_param) {
		.name = name, .ops = ops, .arg = arg, .perm = perm,
	};
}

int rig_param_set(const char *name, const char *val)
{
	unsigned int i;

	for (i = 0; i < rig_nr_params; i++)
		if (!strcmp(rig_params[i].name, name))
			return rig_params[i].ops->set(val, rig_params[i].arg);
	return -ENOENT;
}

void rig_param_list(void)
{
	unsigned int i;
	char buf[64];

	for (i = 0; i < rig_nr_params; i++) {
		rig_params[i].ops->get(buf, sizeof(buf), rig_params[i].arg);
		printf("RIG param name=%s value=%s perm=%04o\n", rig_params[i].name,
		       buf, rig_params[i].perm);
	}
}

static int param_set_bool(const char *val, void *arg)
{
	/* "module.flag" alone on the command line means "=1" */
	return kstrtobool(val ? val : "1", arg);
}

static int param_get_bool(char *buffer, size_t size, const void *arg)
{
	return snprintf(buffer, size, "%c", *(const bool *)arg ? 'Y' : 'N');
}

static int param_set_bool_enable_only(const char *val, void *arg)
{
	bool *flag = arg;
	bool new;
	int err;

	err = param_set_bool(val, &new);
	if (err)
		return err;
	/* Once enabled it stays enabled. */
	if (*flag && !new)
		return -EROFS;
	*flag = new;
	return 0;
}

static int param_set_int(const char *val, void *arg)
{
	char *end;
	long v = strtol(val ? val : "", &end, 0);

	if (!val || *end || v < INT_MIN || v > INT_MAX)
		return -EINVAL;
	*(int *)arg = (int)v;
	return 0;
}

static int param_get_int(char *buffer, size_t size, const void *arg)
{
	return snprintf(buffer, size, "%d", *(const int *)arg);
}

static int param_set_uint(const char *val, void *arg)
{
	char *end;
	unsigned long v = strtoul(val ? val : "", &end, 0);

	if (!val || *end || v > UINT_MAX)
		return -EINVAL;
	*(unsigned int *)arg = (unsigned int)v;
	return 0;
}

static int param_get_uint(char *buffer, size_t size, const void *arg)
{
	return snprintf(buffer, size, "%u", *(const unsigned int *)arg);
}

const struct kernel_param_ops param_ops_bool = {
	.set = param_set_bool, .get = param_get_bool,
};

const struct kernel_param_ops param_ops_bool_enable_only = {
	.set = param_set_bool_enable_only, .get = param_get_bool,
};

const struct kernel_param_ops param_ops_int = {
	.set = param_set_int, .get = param_get_int,
};

const struct kernel_param_ops param_ops_uint = {
	.set = param_set_uint, .get = param_get_uint,
};

/* ---- sanitizer reports ------------------------------------------------- */

static unsigned long rig_sanitizer_reports;

unsigned long rig_sanitizer_report_count(void)
{
	return __atomic_load_n(&rig_sanitizer_reports, __ATOMIC_SEQ_CST);
}

/*
 * The sanitizers call these weak hooks for every report they print, so the
 * run's own result can say that there were reports (the reports themselves
 * are on stderr).
 */
#ifdef __SANITIZE_ADDRESS__
void __asan_on_error(void);
void __asan_on_error(void)
{
	__atomic_fetch_add(&rig_sanitizer_reports, 1, __ATOMIC_SEQ_CST);
}
#endif

#ifdef __SANITIZE_THREAD__
void __tsan_on_report(void *report);
void __tsan_on_report(void *report)
{
	__atomic_fetch_add(&rig_sanitizer_reports, 1, __ATOMIC_SEQ_CST);
}
#endif

/* ---- crashes ----------------------------------------------------------- */

static void __maybe_unused rig_crash(int sig)
{
	static const char msg[] = "\nRIG crash signal=";
	char num[4] = { '0' + sig / 10, '0' + sig % 10, '\n', 0 };

	/* async-signal-safe only */
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0 ||
	    write(STDOUT_FILENO, num, 3) < 0)
		_exit(4);
	_exit(4);
}

void rig_install_crash_handler(void)
{
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	/* The sanitizers have their own, better reports. */
	signal(SIGSEGV, rig_crash);
	signal(SIGBUS, rig_crash);
	signal(SIGILL, rig_crash);
#endif
}
