// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace rig: the world behind call_usermodehelper_exec().
 *
 * A pool of "usermode helper" threads runs modprobe jobs. A job first
 * execs (exec_us), which is all a UMH_WAIT_EXEC caller waits for: that is
 * request_module_nowait(), whose result is 0 while modprobe goes on. Then
 * modprobe runs: a loaded module makes it exit 0 at once; a module that is
 * not installed makes it exit with status 1 (256) after fail_us; otherwise it
 * calls finit_module(), which loads the module in load_us or, if another
 * finit_module() is loading it already, waits for that one and fails with
 * EEXIST, which modprobe treats as success.
 *
 * A UMH_KILLABLE caller that gets SIGKILL stops waiting with -ERESTARTSYS
 * and leaves the job to the helper, which frees it when done, as
 * kernel/umh.c does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/completion.h>
#include <linux/kernel.h>
#include <linux/kmod.h>
#include <linux/list.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/umh.h>
#include <rig/rig.h>

#include "driver.h"

#define RIG_MAX_MODULES		4096

struct rig_userspace rig_userspace = {
	.exec_us = 30,
	.load_us = 300,
	.fail_us = 150,
	.fail_ret = 256,
	.umh_threads = 8,
};

static struct rig_module rig_modules[RIG_MAX_MODULES];
static unsigned int rig_modules_used;

/* ---- modules ----------------------------------------------------------- */

/* Only called before the driver threads start: the table is read-only after. */
struct rig_module *rig_module_add(const char *name, int fail_ret)
{
	struct rig_module *mod;

	if (rig_modules_used >= RIG_MAX_MODULES) {
		fprintf(stderr, "rig: too many modules\n");
		exit(2);
	}
	mod = &rig_modules[rig_modules_used++];
	strscpy(mod->name, name, sizeof(mod->name));
	pthread_mutex_init(&mod->lock, NULL);
	pthread_cond_init(&mod->cond, NULL);
	mod->state = RIG_MOD_UNLOADED;
	mod->fail_ret = fail_ret;
	return mod;
}

struct rig_module *rig_module_find(const char *name)
{
	unsigned int i;

	for (i = 0; i < rig_modules_used; i++)
		if (parameq(rig_modules[i].name, name))	/* libkmod: '-' is '_' */
			return &rig_modules[i];
	return NULL;
}

struct rig_module *rig_module_by_index(unsigned int index)
{
	return index < rig_modules_used ? &rig_modules[index] : NULL;
}

unsigned int rig_nr_modules(void)
{
	return rig_modules_used;
}

bool rig_module_loaded(struct rig_module *mod)
{
	bool loaded;

	rig_lock(&mod->lock);
	loaded = mod->state == RIG_MOD_LOADED;
	rig_unlock(&mod->lock);
	return loaded;
}

unsigned long rig_module_modprobe_runs(struct rig_module *mod)
{
	return __atomic_load_n(&mod->modprobe_runs, __ATOMIC_SEQ_CST);
}

void rig_module_set_fail_next(struct rig_module *mod, unsigned int n)
{
	rig_lock(&mod->lock);
	mod->fail_next = n;
	rig_unlock(&mod->lock);
}

void rig_note_announce(const char *name, int ret, bool done, bool first)
{
	struct rig_module *mod = name ? rig_module_find(name) : NULL;

	if (mod && ret == -ENOMEM && first)
		__atomic_fetch_add(done ? &mod->owner_nomem_done : &mod->owner_nomem, 1,
				   __ATOMIC_SEQ_CST);
}

void rig_module_hold(struct rig_module *mod, bool held)
{
	rig_lock(&mod->lock);
	mod->held = held;
	rig_cond_broadcast(&mod->cond);
	rig_unlock(&mod->lock);
}

/*
 * rmmod: -EBUSY while it is being loaded, -ENOENT if it is not loaded. A
 * module's post softdep goes with it (modprobe -r), so that the next load
 * runs the softdep's init again.
 */
int rig_rmmod(struct rig_module *mod)
{
	int ret = 0;

	rig_lock(&mod->lock);
	if (mod->state == RIG_MOD_LOADED) {
		mod->state = RIG_MOD_UNLOADED;
		mod->unloads++;
	} else {
		ret = mod->state == RIG_MOD_LOADING ? -EBUSY : -ENOENT;
	}
	rig_unlock(&mod->lock);
	if (!ret && mod->softdep_post)
		rig_rmmod(mod->softdep_post);
	return ret;
}

/*
 * The init of @mod asks for the module whose modprobe is loading it (its
 * post softdep). That module is live by now, so request_module() must run
 * its own modprobe and get 0 at once, not wait for the modprobe it runs in.
 */
static void rig_module_init(struct rig_module *mod)
{
	struct task_struct *tsk = current;
	int ret;

	if (!mod->init_requests)
		return;
	tsk->kmod_dup = false;
	ret = request_module("%s", mod->init_requests->name);
	__atomic_fetch_add(&mod->init_calls, 1, __ATOMIC_RELAXED);
	if (ret || tsk->kmod_dup) {
		__atomic_store_n(&mod->init_bad_ret, ret, __ATOMIC_RELAXED);
		__atomic_fetch_add(&mod->init_bad, 1, __ATOMIC_RELAXED);
	}
}

static int rig_modprobe_module(struct rig_module *mod)
{
	int ret = 0;

	rig_lock(&mod->lock);
	while (mod->held)
		rig_cond_wait(&mod->cond, &mod->lock);
	if (mod->state == RIG_MOD_LOADED)
		goto out;	/* /sys/module/<name> exists */
	if (mod->fail_ret || mod->fail_next) {
		ret = mod->fail_ret ? mod->fail_ret : rig_userspace.fail_ret;
		if (mod->fail_next)
			mod->fail_next--;
		rig_unlock(&mod->lock);
		rig_sleep_random_us(rig_userspace.fail_us);
		return ret;
	}
	__atomic_fetch_add(&mod->finit_calls, 1, __ATOMIC_RELAXED);
	if (mod->state == RIG_MOD_LOADING) {
		/* finit_module() waits for the other load, then says EEXIST */
		__atomic_fetch_add(&mod->finit_dups, 1, __ATOMIC_RELAXED);
		while (mod->state == RIG_MOD_LOADING)
			rig_cond_wait(&mod->cond, &mod->lock);
		goto out;
	}
	mod->state = RIG_MOD_LOADING;
	rig_unlock(&mod->lock);

	rig_sleep_random_us(rig_userspace.load_us);
	rig_module_init(mod);

	rig_lock(&mod->lock);
	mod->state = RIG_MOD_LOADED;
	rig_cond_broadcast(&mod->cond);
	rig_unlock(&mod->lock);
	/* libkmod: post softdeps after the module, only by the modprobe that loaded it */
	if (mod->softdep_post)
		rig_modprobe_module(mod->softdep_post);
	return 0;
out:
	rig_unlock(&mod->lock);
	return ret;
}

/* modprobe -q -- name, from exec to exit; returns the wait status. */
static int rig_modprobe(const char *name)
{
	struct rig_module *mod = rig_module_find(name);
	int ret;

	if (!mod)
		return 256;	/* FATAL: Module not found */
	__atomic_fetch_add(&mod->modprobe_runs, 1, __ATOMIC_SEQ_CST);
	rig_lock(&mod->lock);
	if (mod->in_flight++)
		mod->overlapped++;
	rig_unlock(&mod->lock);

	ret = rig_modprobe_module(mod);

	rig_lock(&mod->lock);
	mod->in_flight--;
	rig_unlock(&mod->lock);
	return ret;
}

/* ---- usermode helper --------------------------------------------------- */

/*
 * A job owns the caller's subprocess_info, as kernel/umh.c's work item
 * does: the info (and with its cleanup kmod.c's argv and whatever its data
 * holds) is freed by whoever is last, the caller once the helper completed,
 * or the helper if a killed caller left. The helper runs the info's init in
 * the new process before the exec.
 */
struct rig_umh_job {
	struct list_head node;
	struct subprocess_info *info;
	char name[MODULE_NAME_LEN];
	int wait;
	struct completion *complete;	/* NULL once a killed caller left */
	int retval;
};

static struct rig_umh {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct list_head jobs;
	unsigned int busy;
	unsigned long nr_jobs;
	bool stop;
	pthread_t *threads;
	unsigned int nr_threads;
} umh = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.jobs = LIST_HEAD_INIT(umh.jobs),
};

static void rig_umh_free(struct rig_umh_job *job)
{
	if (job->info->cleanup)
		job->info->cleanup(job->info);
	kfree(job->info);
	kfree(job);
}

/* Tells the caller, or frees the job if the caller gave up waiting. */
static void rig_umh_complete(struct rig_umh_job *job)
{
	struct completion *comp = __atomic_exchange_n(&job->complete, NULL,
						      __ATOMIC_ACQ_REL);

	if (comp)
		complete(comp);
	else
		rig_umh_free(job);
}

static void rig_umh_run(struct rig_umh_job *job)
{
	struct subprocess_info *info = job->info;
	char name[MODULE_NAME_LEN];

	/* The new process runs the info's init, then execs modprobe. */
	rig_task_new_process(current);
	if (info->init)
		info->init(info, NULL);
	rig_sleep_random_us(rig_userspace.exec_us);
	if (job->wait == UMH_WAIT_EXEC) {
		/* exec succeeded: the caller goes, modprobe goes on */
		strscpy(name, job->name, sizeof(name));
		job->retval = 0;
		rig_umh_complete(job);
		rig_modprobe(name);
		return;
	}
	job->retval = rig_modprobe(job->name);
	rig_umh_complete(job);
}

static void *rig_umh_thread(void *arg)
{
	rig_task_start("umh/%lu", (unsigned long)arg);
	rig_lock(&umh.lock);
	for (;;) {
		struct rig_umh_job *job;

		if (list_empty(&umh.jobs)) {
			if (umh.stop)
				break;
			rig_cond_wait(&umh.cond, &umh.lock);
			continue;
		}
		job = list_first_entry(&umh.jobs, struct rig_umh_job, node);
		list_del_init(&job->node);
		umh.busy++;
		rig_unlock(&umh.lock);

		rig_task_set_state("modprobe", job->name);
		rig_umh_run(job);
		rig_task_set_state("idle", NULL);

		rig_lock(&umh.lock);
		umh.busy--;
	}
	rig_unlock(&umh.lock);
	return NULL;
}

struct subprocess_info *call_usermodehelper_setup(const char *path, char **argv, char **envp,
						  gfp_t gfp_mask,
						  int (*init)(struct subprocess_info *info, struct cred *new),
						  void (*cleanup)(struct subprocess_info *info),
						  void *data)
{
	struct subprocess_info *info = kzalloc(sizeof(*info), gfp_mask);

	if (!info)
		return NULL;
	info->path = path;
	info->argv = argv;
	info->envp = envp;
	info->init = init;
	info->cleanup = cleanup;
	info->data = data;
	return info;
}

/*
 * kernel/umh.c frees the info on every path, here in rig_umh_free(); the
 * helper keeps its own copy of the module name.
 */
int call_usermodehelper_exec(struct subprocess_info *info, int wait)
{
	DECLARE_COMPLETION_ONSTACK(done);
	unsigned int state = TASK_UNINTERRUPTIBLE;
	struct rig_umh_job *job;
	int retval;

	current->kmod_ran_modprobe = true;
	/* kernel/umh.c needs no allocation here; the rig's may fail. */
	job = kzalloc(sizeof(*job), GFP_KERNEL);
	if (!job) {
		if (info->cleanup)
			info->cleanup(info);
		kfree(info);
		return -ENOMEM;
	}
	job->info = info;
	strscpy(job->name, info->argv[3], sizeof(job->name));
	job->wait = wait & ~UMH_KILLABLE;
	job->complete = &done;

	rig_lock(&umh.lock);
	list_add_tail(&job->node, &umh.jobs);
	umh.nr_jobs++;
	rig_cond_signal(&umh.cond);
	rig_unlock(&umh.lock);

	if (wait & UMH_KILLABLE)
		state |= TASK_KILLABLE;
	retval = wait_for_completion_state(&done, state);
	if (!retval)
		goto done;
	/* Killed: if the helper has not finished yet, it frees the job. */
	if (__atomic_exchange_n(&job->complete, NULL, __ATOMIC_ACQ_REL))
		return retval;
	wait_for_completion(&done);
done:
	retval = job->retval;
	rig_umh_free(job);
	return retval;
}

void rig_umh_start(unsigned int nr_threads)
{
	unsigned long i;

	umh.threads = calloc(nr_threads, sizeof(*umh.threads));
	if (!umh.threads)
		abort();
	umh.nr_threads = nr_threads;
	for (i = 0; i < nr_threads; i++)
		rig_thread_create(&umh.threads[i], rig_umh_thread, (void *)i);
}

/* Waits until every modprobe, including those of nowait requests, exited. */
bool rig_umh_drain(u64 timeout_ns)
{
	u64 deadline = rig_now_ns() + timeout_ns;
	bool idle;

	for (;;) {
		rig_lock(&umh.lock);
		idle = list_empty(&umh.jobs) && !umh.busy;
		rig_unlock(&umh.lock);
		if (idle || rig_now_ns() > deadline)
			return idle;
		rig_sched_poll_ns(200000);
	}
}

void rig_umh_stop(void)
{
	unsigned int i;

	rig_lock(&umh.lock);
	umh.stop = true;
	rig_cond_broadcast(&umh.cond);
	rig_unlock(&umh.lock);
	for (i = 0; i < umh.nr_threads; i++)
		rig_thread_join(umh.threads[i]);
	free(umh.threads);
}

unsigned long rig_umh_jobs(void)
{
	unsigned long n;

	rig_lock(&umh.lock);
	n = umh.nr_jobs;
	rig_unlock(&umh.lock);
	return n;
}
