// SPDX-License-Identifier: GPL-2.0
/*
 * kmod_dups_storm - a storm of concurrent requests for one module
 *
 * On command, one kthread bound to each online CPU (or a given number of
 * them, spread over the online CPUs) parks at a barrier; per round the
 * controller waits until every thread is parked and then releases them
 * all at once, and each asks for the same module with request_module()
 * or request_module_nowait().  What every caller got back is recorded.
 * Optionally one "lead" caller goes first and the others follow once it
 * has returned or after a delay, which shows how the first request of a
 * kind anchors (or does not anchor) its duplicates.
 *
 * The controls live in /sys/kernel/debug/kmod_dups_storm/:
 *
 *   name           module name to request (default kmod_dups_target)
 *   mode           wait | nowait | mix (wait on even CPUs, nowait on odd)
 *   lead           none | wait | nowait: the first thread calls alone,
 *                  with this kind of request, before the others
 *   lead_delay_ms  release the others when the lead returned or after
 *                  this many milliseconds, whichever comes first
 *   rounds         rounds per run
 *   threads        callers; 0 means one per online CPU
 *   inject         N > 0: every Nth call of a run (counted over rounds and
 *                  callers, from the first) is made with the caller's
 *                  fail-nth set to 1, so the first fault-injection point
 *                  it reaches fails (failslab: the first slab allocation
 *                  of the request); 0 (default): none.  Needs
 *                  CONFIG_FAULT_INJECTION.
 *   go             write 1: run the storm; the write returns when every
 *                  caller has finished.  Killable: a fatal signal stops
 *                  the run after the calls in flight return.
 *   results        the last run, one line per call:
 *                  cpu round mode ret latency_us start_us role injected
 *                  start_us is counted from the round's first release;
 *                  injected is 1 when an injected fault was consumed.
 *   summary        the last run: its settings, calls, calls per return
 *                  value, min and max latency, whether it was interrupted
 *   call           write "[wait|nowait] NAME": request NAME from the
 *                  writer's own context, so a signal sent to the writer
 *                  reaches a real waiter; read: the last calls made so,
 *                  one line each: seq pid mode ret latency_us killed name
 *
 * The configuration is copied when a run starts, so changing it during a
 * run only affects the next one.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/kmod.h>
#include <linux/kref.h>
#include <linux/kstrtox.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#define STORM_DEFAULT_NAME	"kmod_dups_target"
#define STORM_MAX_ROUNDS	10000
#define STORM_MAX_THREADS	8192
#define STORM_MAX_RECORDS	SZ_1M
#define STORM_MAX_LEAD_DELAY_MS	60000
#define STORM_CALL_LOG		128
#define STORM_MAX_RETS		32
#define STORM_WAKE_INTERVAL	(10 * HZ)

enum storm_mode {
	STORM_MODE_WAIT,
	STORM_MODE_NOWAIT,
	STORM_MODE_MIX,
};

static const char * const storm_mode_names[] = {
	[STORM_MODE_WAIT] = "wait",
	[STORM_MODE_NOWAIT] = "nowait",
	[STORM_MODE_MIX] = "mix",
};

enum storm_lead {
	STORM_LEAD_NONE,
	STORM_LEAD_WAIT,
	STORM_LEAD_NOWAIT,
};

static const char * const storm_lead_names[] = {
	[STORM_LEAD_NONE] = "none",
	[STORM_LEAD_WAIT] = "wait",
	[STORM_LEAD_NOWAIT] = "nowait",
};

struct storm_config {
	char name[MODULE_NAME_LEN];
	unsigned int mode;
	unsigned int lead;
	unsigned int lead_delay_ms;
	unsigned int rounds;
	unsigned int threads;
	unsigned int inject;
};

/* Protects storm_cfg; held only to copy it. */
static DEFINE_MUTEX(storm_cfg_lock);
static struct storm_config storm_cfg = {
	.name = STORM_DEFAULT_NAME,
	.mode = STORM_MODE_WAIT,
	.lead = STORM_LEAD_NONE,
	.lead_delay_ms = 500,
	.rounds = 1,
	.threads = 0,
};

/* Serializes runs: one storm at a time. */
static DEFINE_MUTEX(storm_run_lock);

/**
 * struct storm_record - what one caller got in one round
 * @cpu: the CPU the call was made on
 * @round: the round, from 0
 * @wait: request_module() if true, request_module_nowait() if false
 * @lead: made by the lead caller
 * @done: the call returned (false for calls an interrupted run never made)
 * @injected: the call was made with fail-nth set and a fault was injected
 * @ret: the return value of the call
 * @start_ns: when the call started, after the round's first release
 * @latency_ns: how long the call took
 */
struct storm_record {
	unsigned int cpu;
	unsigned int round;
	bool wait;
	bool lead;
	bool done;
	bool injected;
	int ret;
	u64 start_ns;
	u64 latency_ns;
};

/**
 * struct storm_result - one run, readable from results and summary
 * @kref: one reference for storm_result, one for each open reader
 * @cfg: the configuration the run used
 * @nthreads: number of callers
 * @online: number of online CPUs the callers were spread over
 * @interrupted: the run was stopped by a fatal signal or an error
 * @nrecords: @cfg.rounds * @nthreads
 * @records: indexed by round * @nthreads + caller index
 */
struct storm_result {
	struct kref kref;
	struct storm_config cfg;
	unsigned int nthreads;
	unsigned int online;
	bool interrupted;
	unsigned int nrecords;
	struct storm_record records[];
};

/* Protects the storm_result pointer, not what it points to. */
static DEFINE_SPINLOCK(storm_result_lock);
static struct storm_result *storm_result;

struct storm_run;

/**
 * struct storm_caller - one thread of a run
 * @run: the run
 * @task: the thread, bound to @cpu
 * @index: position in the run, 0 is the lead when there is one
 * @cpu: the CPU the thread is bound to
 * @wait: uses request_module() (true) or request_module_nowait()
 * @lead: calls alone, before the others, in every round
 */
struct storm_caller {
	struct storm_run *run;
	struct task_struct *task;
	unsigned int index;
	unsigned int cpu;
	bool wait;
	bool lead;
};

/**
 * struct storm_run - a run in progress, owned by the writer of go
 * @res: where the callers write their records
 * @callers: @res->nthreads callers
 * @release_wq: the barrier: callers sleep here until their round is released
 * @ctl_wq: the controller sleeps here until callers park or finish
 * @parked: callers that reached the barrier, counted over all rounds
 * @finished: calls that returned, counted over all rounds
 * @lead_gen: rounds whose lead caller was released
 * @rest_gen: rounds whose other callers were released
 * @release: when the current round was first released
 * @abort: the callers must leave without calling again
 */
struct storm_run {
	struct storm_result *res;
	struct storm_caller *callers;
	wait_queue_head_t release_wq;
	wait_queue_head_t ctl_wq;
	atomic_t parked;
	atomic_t finished;
	unsigned int lead_gen;
	unsigned int rest_gen;
	ktime_t release;
	bool abort;
};

/**
 * struct storm_call - a request made from the context of a writer of call
 * @seq: number of the call since the module was loaded, from 1
 * @pid: the writer
 * @wait: request_module() (true) or request_module_nowait()
 * @killed: a fatal signal was pending when the call returned
 * @ret: the return value of the call
 * @latency_ns: how long the call took
 * @name: the requested module
 */
struct storm_call {
	unsigned int seq;
	pid_t pid;
	bool wait;
	bool killed;
	int ret;
	u64 latency_ns;
	char name[MODULE_NAME_LEN];
};

/* Protects storm_calls and storm_nr_calls. */
static DEFINE_SPINLOCK(storm_call_lock);
static struct storm_call storm_calls[STORM_CALL_LOG];
static unsigned int storm_nr_calls;

static struct dentry *storm_dir;

static void storm_result_release(struct kref *kref)
{
	kvfree(container_of(kref, struct storm_result, kref));
}

static void storm_result_put(struct storm_result *res)
{
	if (res)
		kref_put(&res->kref, storm_result_release);
}

static struct storm_result *storm_result_get(void)
{
	struct storm_result *res;

	spin_lock(&storm_result_lock);
	res = storm_result;
	if (res)
		kref_get(&res->kref);
	spin_unlock(&storm_result_lock);

	return res;
}

static void storm_result_publish(struct storm_result *res)
{
	struct storm_result *old;

	spin_lock(&storm_result_lock);
	old = storm_result;
	storm_result = res;
	spin_unlock(&storm_result_lock);

	storm_result_put(old);
}

static bool storm_mode_waits(unsigned int mode, unsigned int cpu)
{
	switch (mode) {
	case STORM_MODE_NOWAIT:
		return false;
	case STORM_MODE_MIX:
		return !(cpu & 1);
	default:
		return true;
	}
}

/*
 * Make the first fault-injection point this task reaches fail, as a write
 * of 1 to /proc/self/fail-nth does.  Nothing allocates between here and
 * request_module()'s first allocation.
 */
static void storm_inject_arm(void)
{
#ifdef CONFIG_FAULT_INJECTION
	WRITE_ONCE(current->fail_nth, 1);
#endif
}

/* Disarm; true if the armed fault was injected (fail-nth counted down to 0). */
static bool storm_inject_disarm(void)
{
#ifdef CONFIG_FAULT_INJECTION
	bool injected = !READ_ONCE(current->fail_nth);

	WRITE_ONCE(current->fail_nth, 0);
	return injected;
#else
	return false;
#endif
}

static void storm_call_one(struct storm_caller *caller, unsigned int round)
{
	struct storm_run *run = caller->run;
	struct storm_result *res = run->res;
	unsigned int index = round * res->nthreads + caller->index;
	struct storm_record *rec = &res->records[index];
	bool inject = res->cfg.inject && !(index % res->cfg.inject);
	ktime_t start, end;

	rec->cpu = raw_smp_processor_id();
	start = ktime_get();
	if (inject)
		storm_inject_arm();
	if (caller->wait)
		rec->ret = request_module("%s", res->cfg.name);
	else
		rec->ret = request_module_nowait("%s", res->cfg.name);
	if (inject)
		rec->injected = storm_inject_disarm();
	end = ktime_get();

	rec->round = round;
	rec->wait = caller->wait;
	rec->lead = caller->lead;
	rec->start_ns = ktime_to_ns(ktime_sub(start, run->release));
	rec->latency_ns = ktime_to_ns(ktime_sub(end, start));
	rec->done = true;
}

static bool storm_released(unsigned int *gen, unsigned int round)
{
	/* Pairs with storm_release(): run->release is set before. */
	return smp_load_acquire(gen) > round;
}

static int storm_caller_fn(void *data)
{
	struct storm_caller *caller = data;
	struct storm_run *run = caller->run;
	unsigned int *gen = caller->lead ? &run->lead_gen : &run->rest_gen;
	unsigned int round;

	for (round = 0; round < run->res->cfg.rounds; round++) {
		atomic_inc(&run->parked);
		wake_up(&run->ctl_wq);

		/* TASK_IDLE: a long wait here is not a hung task. */
		wait_event_idle(run->release_wq,
				storm_released(gen, round) ||
				READ_ONCE(run->abort));
		if (READ_ONCE(run->abort))
			break;

		storm_call_one(caller, round);

		/* The record is complete before the controller counts it. */
		smp_mb__before_atomic();
		atomic_inc(&run->finished);
		wake_up(&run->ctl_wq);
	}

	/* The controller always ends the thread, so it can stop it safely. */
	wait_event_idle(run->release_wq, kthread_should_stop());

	return 0;
}

static void storm_release(struct storm_run *run, unsigned int *gen,
			  unsigned int round)
{
	/* Pairs with the acquire in storm_caller_fn(). */
	smp_store_release(gen, round + 1);
	wake_up_all(&run->release_wq);
}

/*
 * Wait until @count reaches @target, waking up now and then so that a long
 * storm is not reported as a hung task.
 */
static int storm_wait(struct storm_run *run, atomic_t *count, unsigned int target)
{
	long left;

	do {
		left = wait_event_killable_timeout(run->ctl_wq,
						   atomic_read(count) >= target,
						   STORM_WAKE_INTERVAL);
	} while (!left);

	return left < 0 ? left : 0;
}

static int storm_rounds(struct storm_run *run)
{
	struct storm_result *res = run->res;
	unsigned int n = res->nthreads;
	long lead_delay = msecs_to_jiffies(res->cfg.lead_delay_ms);
	unsigned int round;
	long left;
	int err;

	for (round = 0; round < res->cfg.rounds; round++) {
		err = storm_wait(run, &run->parked, (round + 1) * n);
		if (err)
			return err;

		run->release = ktime_get();
		if (res->cfg.lead != STORM_LEAD_NONE) {
			storm_release(run, &run->lead_gen, round);
			left = wait_event_killable_timeout(run->ctl_wq,
							   atomic_read(&run->finished) > round * n,
							   lead_delay);
			if (left < 0)
				return left;
		}
		storm_release(run, &run->rest_gen, round);

		err = storm_wait(run, &run->finished, (round + 1) * n);
		if (err)
			return err;
	}

	return 0;
}

static int storm_start_callers(struct storm_run *run)
{
	struct storm_result *res = run->res;
	unsigned int *cpus, cpu, i, online = 0;
	int err = 0;

	cpus = kmalloc_array(nr_cpu_ids, sizeof(*cpus), GFP_KERNEL);
	if (!cpus)
		return -ENOMEM;

	cpus_read_lock();
	for_each_online_cpu(cpu)
		cpus[online++] = cpu;

	res->online = online;
	if (!res->nthreads)
		res->nthreads = online;
	res->nrecords = res->cfg.rounds * res->nthreads;

	for (i = 0; i < res->nthreads; i++) {
		struct storm_caller *caller = &run->callers[i];
		struct task_struct *task;

		cpu = cpus[i % online];
		caller->run = run;
		caller->index = i;
		caller->cpu = cpu;
		caller->lead = i == 0 && res->cfg.lead != STORM_LEAD_NONE;
		if (caller->lead)
			caller->wait = res->cfg.lead == STORM_LEAD_WAIT;
		else
			caller->wait = storm_mode_waits(res->cfg.mode, cpu);

		task = kthread_create_on_node(storm_caller_fn, caller,
					      cpu_to_node(cpu), "kdstorm/%u", i);
		if (IS_ERR(task)) {
			err = PTR_ERR(task);
			break;
		}
		kthread_bind(task, cpu);
		caller->task = task;
	}

	/* Woken under the hotplug lock so that no CPU goes away before. */
	for (i = 0; i < res->nthreads && run->callers[i].task; i++)
		wake_up_process(run->callers[i].task);
	cpus_read_unlock();

	kfree(cpus);
	return err;
}

static void storm_stop_callers(struct storm_run *run, bool abort)
{
	unsigned int i;

	if (abort) {
		WRITE_ONCE(run->abort, true);
		wake_up_all(&run->release_wq);
	}

	/* Waits for calls in flight: request_module() cannot be cancelled. */
	for (i = 0; i < run->res->nthreads; i++) {
		if (run->callers[i].task)
			kthread_stop(run->callers[i].task);
	}
}

static int storm_run(void)
{
	struct storm_config cfg;
	struct storm_result *res;
	struct storm_run *run;
	unsigned int nthreads, nrecords;
	int err;

	mutex_lock(&storm_cfg_lock);
	cfg = storm_cfg;
	mutex_unlock(&storm_cfg_lock);

	/* The worst case: as many threads as CPUs could be online. */
	nthreads = cfg.threads ? cfg.threads : num_possible_cpus();
	if (check_mul_overflow(cfg.rounds, nthreads, &nrecords) ||
	    nrecords > STORM_MAX_RECORDS)
		return -E2BIG;

	res = kvzalloc(struct_size(res, records, nrecords), GFP_KERNEL);
	if (!res)
		return -ENOMEM;
	kref_init(&res->kref);
	res->cfg = cfg;
	res->nthreads = cfg.threads;

	run = kzalloc(sizeof(*run), GFP_KERNEL);
	if (!run) {
		err = -ENOMEM;
		goto out_res;
	}
	run->callers = kvcalloc(nthreads, sizeof(*run->callers), GFP_KERNEL);
	if (!run->callers) {
		err = -ENOMEM;
		goto out_run;
	}
	run->res = res;
	init_waitqueue_head(&run->release_wq);
	init_waitqueue_head(&run->ctl_wq);
	atomic_set(&run->parked, 0);
	atomic_set(&run->finished, 0);

	err = storm_start_callers(run);
	if (!err)
		err = storm_rounds(run);
	storm_stop_callers(run, err);

	if (err) {
		res->interrupted = true;
		pr_info("run for %s interrupted: %d\n", cfg.name, err);
		if (err == -ERESTARTSYS)
			err = -EINTR;
	}
	storm_result_publish(res);
	res = NULL;

	kvfree(run->callers);
out_run:
	kfree(run);
out_res:
	storm_result_put(res);
	return err;
}

static ssize_t storm_go_write(struct file *file, const char __user *ubuf,
			      size_t count, loff_t *ppos)
{
	bool go;
	int err;

	err = kstrtobool_from_user(ubuf, count, &go);
	if (err)
		return err;
	if (!go)
		return count;

	err = mutex_lock_killable(&storm_run_lock);
	if (err)
		return err;
	err = storm_run();
	mutex_unlock(&storm_run_lock);

	return err ? err : count;
}

static const struct file_operations storm_go_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = storm_go_write,
	.llseek = noop_llseek,
};

/* Copy a user write into buf, NUL-terminated and without surrounding space. */
static char *storm_strip_user(char *buf, size_t size, const char __user *ubuf,
			      size_t count)
{
	if (!count || count >= size)
		return ERR_PTR(-EINVAL);
	if (copy_from_user(buf, ubuf, count))
		return ERR_PTR(-EFAULT);
	buf[count] = '\0';

	return strim(buf);
}

static bool storm_valid_name(const char *name)
{
	size_t len = strlen(name);
	size_t i;

	if (!len || len >= MODULE_NAME_LEN)
		return false;
	for (i = 0; i < len; i++) {
		if (name[i] <= ' ' || name[i] > '~' || name[i] == '/')
			return false;
	}

	return true;
}

static int storm_name_show(struct seq_file *m, void *v)
{
	mutex_lock(&storm_cfg_lock);
	seq_printf(m, "%s\n", storm_cfg.name);
	mutex_unlock(&storm_cfg_lock);

	return 0;
}

static int storm_name_open(struct inode *inode, struct file *file)
{
	return single_open(file, storm_name_show, NULL);
}

static ssize_t storm_name_write(struct file *file, const char __user *ubuf,
				size_t count, loff_t *ppos)
{
	char buf[MODULE_NAME_LEN + 2];
	char *name;

	name = storm_strip_user(buf, sizeof(buf), ubuf, count);
	if (IS_ERR(name))
		return PTR_ERR(name);
	if (!storm_valid_name(name))
		return -EINVAL;

	mutex_lock(&storm_cfg_lock);
	strscpy(storm_cfg.name, name, sizeof(storm_cfg.name));
	mutex_unlock(&storm_cfg_lock);

	return count;
}

static const struct file_operations storm_name_fops = {
	.owner = THIS_MODULE,
	.open = storm_name_open,
	.read = seq_read,
	.write = storm_name_write,
	.llseek = seq_lseek,
	.release = single_release,
};

/**
 * struct storm_choice - a setting that takes one of a few words
 * @val: the setting in storm_cfg
 * @names: the words, indexed by value
 * @count: number of words
 */
struct storm_choice {
	unsigned int *val;
	const char * const *names;
	unsigned int count;
};

static const struct storm_choice storm_mode_choice = {
	.val = &storm_cfg.mode,
	.names = storm_mode_names,
	.count = ARRAY_SIZE(storm_mode_names),
};

static const struct storm_choice storm_lead_choice = {
	.val = &storm_cfg.lead,
	.names = storm_lead_names,
	.count = ARRAY_SIZE(storm_lead_names),
};

static int storm_choice_show(struct seq_file *m, void *v)
{
	const struct storm_choice *choice = m->private;

	mutex_lock(&storm_cfg_lock);
	seq_printf(m, "%s\n", choice->names[*choice->val]);
	mutex_unlock(&storm_cfg_lock);

	return 0;
}

static int storm_choice_open(struct inode *inode, struct file *file)
{
	return single_open(file, storm_choice_show, inode->i_private);
}

static ssize_t storm_choice_write(struct file *file, const char __user *ubuf,
				  size_t count, loff_t *ppos)
{
	const struct storm_choice *choice = file_inode(file)->i_private;
	char buf[16];
	char *word;
	int i;

	word = storm_strip_user(buf, sizeof(buf), ubuf, count);
	if (IS_ERR(word))
		return PTR_ERR(word);
	i = match_string(choice->names, choice->count, word);
	if (i < 0)
		return i;

	mutex_lock(&storm_cfg_lock);
	*choice->val = i;
	mutex_unlock(&storm_cfg_lock);

	return count;
}

static const struct file_operations storm_choice_fops = {
	.owner = THIS_MODULE,
	.open = storm_choice_open,
	.read = seq_read,
	.write = storm_choice_write,
	.llseek = seq_lseek,
	.release = single_release,
};

/**
 * struct storm_number - a numeric setting with its range
 * @val: the setting in storm_cfg
 * @min: smallest value accepted
 * @max: largest value accepted
 */
struct storm_number {
	unsigned int *val;
	unsigned int min;
	unsigned int max;
};

static const struct storm_number storm_rounds_number = {
	.val = &storm_cfg.rounds,
	.min = 1,
	.max = STORM_MAX_ROUNDS,
};

static const struct storm_number storm_threads_number = {
	.val = &storm_cfg.threads,
	.min = 0,
	.max = STORM_MAX_THREADS,
};

static const struct storm_number storm_inject_number = {
	.val = &storm_cfg.inject,
	.min = 0,
	.max = STORM_MAX_RECORDS,
};

static const struct storm_number storm_lead_delay_number = {
	.val = &storm_cfg.lead_delay_ms,
	.min = 0,
	.max = STORM_MAX_LEAD_DELAY_MS,
};

static int storm_number_show(struct seq_file *m, void *v)
{
	const struct storm_number *number = m->private;

	mutex_lock(&storm_cfg_lock);
	seq_printf(m, "%u\n", *number->val);
	mutex_unlock(&storm_cfg_lock);

	return 0;
}

static int storm_number_open(struct inode *inode, struct file *file)
{
	return single_open(file, storm_number_show, inode->i_private);
}

static ssize_t storm_number_write(struct file *file, const char __user *ubuf,
				  size_t count, loff_t *ppos)
{
	const struct storm_number *number = file_inode(file)->i_private;
	unsigned int val;
	int err;

	err = kstrtouint_from_user(ubuf, count, 0, &val);
	if (err)
		return err;
	if (val < number->min || val > number->max)
		return -ERANGE;
	if (number == &storm_inject_number && val &&
	    !IS_ENABLED(CONFIG_FAULT_INJECTION))
		return -EOPNOTSUPP;

	mutex_lock(&storm_cfg_lock);
	*number->val = val;
	mutex_unlock(&storm_cfg_lock);

	return count;
}

static const struct file_operations storm_number_fops = {
	.owner = THIS_MODULE,
	.open = storm_number_open,
	.read = seq_read,
	.write = storm_number_write,
	.llseek = seq_lseek,
	.release = single_release,
};

static void *storm_results_start(struct seq_file *m, loff_t *pos)
{
	struct storm_result *res = m->private;

	if (!*pos)
		return SEQ_START_TOKEN;
	if (!res || *pos > res->nrecords)
		return NULL;

	return &res->records[*pos - 1];
}

static void *storm_results_next(struct seq_file *m, void *v, loff_t *pos)
{
	++*pos;

	return storm_results_start(m, pos);
}

static void storm_results_stop(struct seq_file *m, void *v)
{
}

static int storm_results_show(struct seq_file *m, void *v)
{
	const struct storm_record *rec = v;

	if (v == SEQ_START_TOKEN) {
		seq_puts(m, "# cpu round mode ret latency_us start_us role injected\n");
		return 0;
	}
	if (!rec->done)
		return 0;

	seq_printf(m, "%u %u %s %d %llu %llu %s %d\n", rec->cpu, rec->round,
		   rec->wait ? "wait" : "nowait", rec->ret,
		   div_u64(rec->latency_ns, NSEC_PER_USEC),
		   div_u64(rec->start_ns, NSEC_PER_USEC),
		   rec->lead ? "lead" : "rest", rec->injected);

	return 0;
}

static const struct seq_operations storm_results_sops = {
	.start = storm_results_start,
	.next = storm_results_next,
	.stop = storm_results_stop,
	.show = storm_results_show,
};

static int storm_results_open(struct inode *inode, struct file *file)
{
	struct storm_result *res = storm_result_get();
	int err;

	err = seq_open(file, &storm_results_sops);
	if (err) {
		storm_result_put(res);
		return err;
	}
	((struct seq_file *)file->private_data)->private = res;

	return 0;
}

static int storm_results_release(struct inode *inode, struct file *file)
{
	storm_result_put(((struct seq_file *)file->private_data)->private);

	return seq_release(inode, file);
}

static const struct file_operations storm_results_fops = {
	.owner = THIS_MODULE,
	.open = storm_results_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = storm_results_release,
};

struct storm_ret_count {
	int ret;
	unsigned int count;
};

static int storm_summary_show(struct seq_file *m, void *v)
{
	struct storm_result *res = m->private;
	struct storm_ret_count rets[STORM_MAX_RETS];
	unsigned int nrets = 0, calls = 0, waits = 0, other = 0, injected = 0;
	u64 min_ns = U64_MAX, max_ns = 0;
	unsigned int i, j;

	if (!res) {
		seq_puts(m, "runs 0\n");
		return 0;
	}

	for (i = 0; i < res->nrecords; i++) {
		const struct storm_record *rec = &res->records[i];

		if (!rec->done)
			continue;
		calls++;
		if (rec->wait)
			waits++;
		if (rec->injected)
			injected++;
		min_ns = min(min_ns, rec->latency_ns);
		max_ns = max(max_ns, rec->latency_ns);

		for (j = 0; j < nrets && rets[j].ret != rec->ret; j++)
			;
		if (j == nrets) {
			if (nrets == STORM_MAX_RETS) {
				other++;
				continue;
			}
			rets[nrets].ret = rec->ret;
			rets[nrets++].count = 0;
		}
		rets[j].count++;
	}

	seq_puts(m, "runs 1\n");
	seq_printf(m, "name %s\n", res->cfg.name);
	seq_printf(m, "mode %s\n", storm_mode_names[res->cfg.mode]);
	seq_printf(m, "lead %s\n", storm_lead_names[res->cfg.lead]);
	seq_printf(m, "lead_delay_ms %u\n", res->cfg.lead_delay_ms);
	seq_printf(m, "rounds %u\n", res->cfg.rounds);
	seq_printf(m, "threads %u\n", res->nthreads);
	seq_printf(m, "online_cpus %u\n", res->online);
	seq_printf(m, "interrupted %d\n", res->interrupted);
	seq_printf(m, "calls %u\n", calls);
	seq_printf(m, "wait_calls %u\n", waits);
	seq_printf(m, "nowait_calls %u\n", calls - waits);
	seq_printf(m, "inject %u\n", res->cfg.inject);
	seq_printf(m, "injected %u\n", injected);
	for (j = 0; j < nrets; j++)
		seq_printf(m, "ret %d %u\n", rets[j].ret, rets[j].count);
	if (other)
		seq_printf(m, "ret_other %u\n", other);
	if (calls) {
		seq_printf(m, "min_latency_us %llu\n", div_u64(min_ns, NSEC_PER_USEC));
		seq_printf(m, "max_latency_us %llu\n", div_u64(max_ns, NSEC_PER_USEC));
	}

	return 0;
}

static int storm_summary_open(struct inode *inode, struct file *file)
{
	struct storm_result *res = storm_result_get();
	int err;

	err = single_open(file, storm_summary_show, res);
	if (err)
		storm_result_put(res);

	return err;
}

static int storm_summary_release(struct inode *inode, struct file *file)
{
	storm_result_put(((struct seq_file *)file->private_data)->private);

	return single_release(inode, file);
}

static const struct file_operations storm_summary_fops = {
	.owner = THIS_MODULE,
	.open = storm_summary_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = storm_summary_release,
};

static void storm_call_log(const struct storm_call *call)
{
	unsigned int seq;

	spin_lock(&storm_call_lock);
	seq = ++storm_nr_calls;
	storm_calls[(seq - 1) % STORM_CALL_LOG] = *call;
	storm_calls[(seq - 1) % STORM_CALL_LOG].seq = seq;
	spin_unlock(&storm_call_lock);

	pr_info("call %u: %s %s by pid %d returned %d after %llu us%s\n",
		seq, call->wait ? "wait" : "nowait", call->name, call->pid,
		call->ret, div_u64(call->latency_ns, NSEC_PER_USEC),
		call->killed ? " (killed)" : "");
}

static ssize_t storm_call_write(struct file *file, const char __user *ubuf,
				size_t count, loff_t *ppos)
{
	struct storm_call call = { .wait = true };
	char buf[MODULE_NAME_LEN + 16];
	char *name, *word;
	ktime_t start;

	name = storm_strip_user(buf, sizeof(buf), ubuf, count);
	if (IS_ERR(name))
		return PTR_ERR(name);

	word = strsep(&name, " \t");
	if (name) {
		if (!strcmp(word, "nowait"))
			call.wait = false;
		else if (strcmp(word, "wait"))
			return -EINVAL;
		name = skip_spaces(name);
	} else {
		name = word;
	}
	if (!storm_valid_name(name))
		return -EINVAL;
	strscpy(call.name, name, sizeof(call.name));
	call.pid = task_pid_nr(current);

	start = ktime_get();
	if (call.wait)
		call.ret = request_module("%s", call.name);
	else
		call.ret = request_module_nowait("%s", call.name);
	call.latency_ns = ktime_to_ns(ktime_sub(ktime_get(), start));
	call.killed = fatal_signal_pending(current);

	storm_call_log(&call);

	return count;
}

static int storm_call_show(struct seq_file *m, void *v)
{
	struct storm_call *calls;
	unsigned int first, last, seq;

	calls = kmalloc_array(STORM_CALL_LOG, sizeof(*calls), GFP_KERNEL);
	if (!calls)
		return -ENOMEM;

	spin_lock(&storm_call_lock);
	memcpy(calls, storm_calls, sizeof(storm_calls));
	last = storm_nr_calls;
	spin_unlock(&storm_call_lock);

	first = last > STORM_CALL_LOG ? last - STORM_CALL_LOG + 1 : 1;
	seq_puts(m, "# seq pid mode ret latency_us killed name\n");
	for (seq = first; seq <= last; seq++) {
		const struct storm_call *call = &calls[(seq - 1) % STORM_CALL_LOG];

		seq_printf(m, "%u %d %s %d %llu %d %s\n", call->seq, call->pid,
			   call->wait ? "wait" : "nowait", call->ret,
			   div_u64(call->latency_ns, NSEC_PER_USEC),
			   call->killed, call->name);
	}

	kfree(calls);
	return 0;
}

static int storm_call_open(struct inode *inode, struct file *file)
{
	return single_open(file, storm_call_show, NULL);
}

static const struct file_operations storm_call_fops = {
	.owner = THIS_MODULE,
	.open = storm_call_open,
	.read = seq_read,
	.write = storm_call_write,
	.llseek = seq_lseek,
	.release = single_release,
};

static int __init kmod_dups_storm_init(void)
{
	storm_dir = debugfs_create_dir("kmod_dups_storm", NULL);
	if (IS_ERR(storm_dir))
		return PTR_ERR(storm_dir);

	debugfs_create_file("name", 0600, storm_dir, NULL, &storm_name_fops);
	debugfs_create_file("mode", 0600, storm_dir,
			    (void *)&storm_mode_choice, &storm_choice_fops);
	debugfs_create_file("lead", 0600, storm_dir,
			    (void *)&storm_lead_choice, &storm_choice_fops);
	debugfs_create_file("lead_delay_ms", 0600, storm_dir,
			    (void *)&storm_lead_delay_number, &storm_number_fops);
	debugfs_create_file("rounds", 0600, storm_dir,
			    (void *)&storm_rounds_number, &storm_number_fops);
	debugfs_create_file("threads", 0600, storm_dir,
			    (void *)&storm_threads_number, &storm_number_fops);
	debugfs_create_file("inject", 0600, storm_dir,
			    (void *)&storm_inject_number, &storm_number_fops);
	debugfs_create_file("go", 0200, storm_dir, NULL, &storm_go_fops);
	debugfs_create_file("results", 0400, storm_dir, NULL,
			    &storm_results_fops);
	debugfs_create_file("summary", 0400, storm_dir, NULL,
			    &storm_summary_fops);
	debugfs_create_file("call", 0600, storm_dir, NULL, &storm_call_fops);

	return 0;
}

static void __exit kmod_dups_storm_exit(void)
{
	/* Open files hold a module reference: no run or call is in progress. */
	debugfs_remove_recursive(storm_dir);
	storm_result_publish(NULL);
}

module_init(kmod_dups_storm_init);
module_exit(kmod_dups_storm_exit);

MODULE_DESCRIPTION("Concurrent request_module() storms for testing duplicate request handling");
MODULE_AUTHOR("kmod-dups project");
MODULE_LICENSE("GPL");
