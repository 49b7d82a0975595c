// SPDX-License-Identifier: GPL-2.0
/*
 * kmod_dups_crashtest - make the kernel report a failure on purpose, so the
 * kmod-dups boot harness can be tested (and its console classifier fed) on
 * real kernel reports.  Loaded with insmod crash=WHAT:
 *
 *   oops   NULL pointer write: "BUG: kernel NULL pointer dereference", Oops
 *   bug    BUG(): "kernel BUG at ...", invalid opcode
 *   warn   WARN(): "WARNING: CPU: ..." with a stack
 *   hung   sleep uninterruptibly for hang_secs: "INFO: task ... blocked"
 *          once hung_task_timeout_secs is below hang_secs
 *   stall  spin with preemption off for stall_secs: an RCU CPU stall once
 *          rcupdate.rcu_cpu_stall_timeout is below stall_secs
 *   dups   start nr_threads kthreads that all request_module(dups_module)
 *          at once: the dups warnings of CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS
 *
 * With crash=dups, splat=WHAT raises one more report from the middle caller
 * just before its request, so a console has it interleaved with the dups
 * warnings (the console classifier must still find it):
 *
 *   lockdep   take two mutexes in both orders: lockdep's "possible circular
 *             locking dependency" (CONFIG_PROVE_LOCKING), no real deadlock
 *   refcount  decrement a refcount_t that is 0: "refcount_t: underflow"
 *   list      list_del() an entry twice: "list_del corruption"
 *             (CONFIG_DEBUG_LIST; the check stops the second unlink)
 *
 * Anything else (or nothing) loads and does nothing.  Init fails on purpose
 * after hung, stall and dups so the module can be loaded again.
 */

#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/kmod.h>
#include <linux/kthread.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/string.h>

static char *crash = "";
module_param(crash, charp, 0444);
MODULE_PARM_DESC(crash, "oops, bug, warn, hung, stall or dups");

static unsigned int hang_secs = 30;
module_param(hang_secs, uint, 0444);
MODULE_PARM_DESC(hang_secs, "seconds to sleep uninterruptibly (hung)");

static unsigned int stall_secs = 15;
module_param(stall_secs, uint, 0444);
MODULE_PARM_DESC(stall_secs, "seconds to spin with preemption off (stall)");

static unsigned int nr_threads = 8;
module_param(nr_threads, uint, 0444);
MODULE_PARM_DESC(nr_threads, "concurrent request_module() callers (dups)");

static char *dups_module = "test_module";
module_param(dups_module, charp, 0444);
MODULE_PARM_DESC(dups_module, "module the dups threads request");

static char *splat = "";
module_param(splat, charp, 0444);
MODULE_PARM_DESC(splat, "lockdep, refcount or list: a report among the dups warnings");

/* Read through READ_ONCE() so the compiler cannot see it stays NULL. */
static int *crashtest_null;

static DECLARE_COMPLETION(dups_go);
static atomic_t dups_left;
static DECLARE_COMPLETION(dups_done);

static DEFINE_MUTEX(splat_a);
static DEFINE_MUTEX(splat_b);

static void crashtest_splat(void)
{
	refcount_t ref = REFCOUNT_INIT(0);
	LIST_HEAD(head);
	struct list_head entry;

	if (!strcmp(splat, "lockdep")) {
		/* A then B, later B then A: an inversion lockdep reports at once. */
		mutex_lock(&splat_a);
		mutex_lock(&splat_b);
		mutex_unlock(&splat_b);
		mutex_unlock(&splat_a);
		mutex_lock(&splat_b);
		mutex_lock(&splat_a);
		mutex_unlock(&splat_a);
		mutex_unlock(&splat_b);
	} else if (!strcmp(splat, "refcount")) {
		refcount_dec(&ref);
	} else if (!strcmp(splat, "list")) {
		list_add(&entry, &head);
		list_del(&entry);
		list_del(&entry);
	}
}

static int crashtest_dups_thread(void *data)
{
	unsigned long index = (unsigned long)data;
	int ret;

	wait_for_completion(&dups_go);
	/*
	 * The middle caller raises the splat just before its own request, so
	 * that half the dups warnings are printed before it and half after.
	 */
	if (index == nr_threads / 2)
		crashtest_splat();
	ret = request_module("%s", dups_module);
	pr_info("kmod_dups_crashtest: request_module(%s) = %d\n", dups_module, ret);
	if (atomic_dec_and_test(&dups_left))
		complete(&dups_done);
	return 0;
}

static int crashtest_dups(void)
{
	struct task_struct *task;
	unsigned int i;

	/* With no callers nothing would ever complete dups_done. */
	if (!nr_threads)
		return -EINVAL;
	atomic_set(&dups_left, nr_threads);
	for (i = 0; i < nr_threads; i++) {
		task = kthread_run(crashtest_dups_thread, (void *)(unsigned long)i,
				   "kmod_dups_crash/%u", i);
		if (IS_ERR(task)) {
			/* Keep the count right for the threads that do run. */
			if (atomic_dec_and_test(&dups_left))
				complete(&dups_done);
		}
	}
	complete_all(&dups_go);
	wait_for_completion(&dups_done);
	return 0;
}

static void crashtest_stall(void)
{
	unsigned long end = jiffies + stall_secs * HZ;

	preempt_disable();
	while (time_before(jiffies, end))
		cpu_relax();
	preempt_enable();
}

static int __init crashtest_init(void)
{
	pr_info("kmod_dups_crashtest: crash=%s\n", crash);

	if (!strcmp(crash, "oops")) {
		int *p = READ_ONCE(crashtest_null);

		*p = 1;
	} else if (!strcmp(crash, "bug")) {
		BUG();
	} else if (!strcmp(crash, "warn")) {
		WARN(1, "kmod_dups_crashtest: warning on purpose\n");
	} else if (!strcmp(crash, "hung")) {
		schedule_timeout_uninterruptible(hang_secs * HZ);
		return -EAGAIN;
	} else if (!strcmp(crash, "stall")) {
		crashtest_stall();
		return -EAGAIN;
	} else if (!strcmp(crash, "dups")) {
		crashtest_dups();
		return -EAGAIN;
	}
	return 0;
}

static void __exit crashtest_exit(void)
{
}

module_init(crashtest_init);
module_exit(crashtest_exit);
MODULE_DESCRIPTION("Provoke kernel failure reports for the kmod-dups boot harness");
MODULE_LICENSE("GPL");
