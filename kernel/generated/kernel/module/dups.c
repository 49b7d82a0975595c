// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmod dups - the kernel module autoloader duplicate suppressor
 *
 * Copyright (C) 2023 Luis Chamberlain <mcgrof@kernel.org>
 *
 * A request_module() for a module that another request_module() is
 * already loading waits for that first request and returns its result,
 * so that concurrent requests cost one modprobe instead of one each.
 *
 * Invariants:
 * - An entry is on dup_kmod_reqs from its first request's registration
 *   until that request announces its result, and only then. The list
 *   holds one reference, each waiting duplicate one, and the first
 *   request's modprobe (its subprocess_info) one from the exec on.
 * - Only the first request holds the entry (kmod_dup_request_exists_wait()
 *   hands it out), so only it marks the entry started and announces; it
 *   announces exactly once, on every path out of __request_module().
 * - A duplicate never waits for the modprobe it runs in or was forked by,
 *   and never waits unbounded: a module init, softdep or install command
 *   of that modprobe asking for the module would otherwise wait for itself.
 */

#define pr_fmt(fmt) "module: " fmt

#include <linux/bug.h>
#include <linux/completion.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "internal.h"

#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "module."
static bool enable_dups_trace = IS_ENABLED(CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE);
module_param(enable_dups_trace, bool_enable_only, 0644);

/*
 * How long a duplicate waits for its first request before it stops
 * trusting it and runs modprobe itself: far longer than any module takes
 * to load, short enough that a request waiting on itself in a way
 * kmod_dup_request_from_modprobe() cannot see is reported, not hung.
 */
#define KMOD_DUP_WAIT_TIMEOUT	(120 * HZ)

/*
 * Protects dup_kmod_reqs, the list linkage of its entries, their @started,
 * @modprobe and @dups. No reader walks the list without it, so it needs no RCU.
 */
static DEFINE_MUTEX(kmod_dup_mutex);
static LIST_HEAD(dup_kmod_reqs);

/**
 * struct kmod_dup_req - a request_module() in flight that others may wait on
 * @list: entry in dup_kmod_reqs, only while the first request is running
 * @kref: one reference for the list, one for each waiting duplicate
 * @name: the requested module name, as the first request spelled it
 * @first_req_done: completed once the first request has announced
 * @modprobe: the process of the first request's modprobe, once it runs
 * @dups: the duplicates that found this entry; the first of them warns
 * @dup_ret: the first request's return value, valid after @first_req_done
 * @owner_killed: the first request had a fatal signal pending when it
 *	announced, so @dup_ret is about that task, not about the module
 * @started: the first request has its modprobe slot and is about to exec
 *	modprobe; only from then on does it serve a request_module_nowait()
 */
struct kmod_dup_req {
	struct list_head list;
	struct kref kref;
	char name[MODULE_NAME_LEN];
	struct completion first_req_done;
	struct pid *modprobe;
	unsigned int dups;
	int dup_ret;
	bool owner_killed;
	bool started;
};

static struct kmod_dup_req *kmod_dup_request_lookup(const char *module_name)
{
	struct kmod_dup_req *kmod_req;

	lockdep_assert_held(&kmod_dup_mutex);

	/*
	 * One module, two spellings: modprobe (libkmod) and the module loader
	 * take '-' and '_' as the same, so "snd-dummy" and "snd_dummy" are one
	 * module and one entry. Aliases only userspace resolves ("fs-xfs"
	 * for xfs) stay distinct here.
	 */
	list_for_each_entry(kmod_req, &dup_kmod_reqs, list) {
		if (parameq(kmod_req->name, module_name))
			return kmod_req;
	}

	return NULL;
}

/*
 * Whether current is the first request's modprobe or was forked by it (an
 * install command): a module init or softdep loaded by that modprobe that
 * asks for the module. Waiting would wait for itself, since the first
 * request returns only once its modprobe exits.
 */
static bool kmod_dup_request_from_modprobe(struct kmod_dup_req *kmod_req)
{
	struct task_struct *task;
	bool ret = false;

	lockdep_assert_held(&kmod_dup_mutex);

	if (!kmod_req->modprobe)
		return false;

	rcu_read_lock();
	for (task = current; task != &init_task; task = rcu_dereference(task->real_parent)) {
		if (task_tgid(task) == kmod_req->modprobe) {
			ret = true;
			break;
		}
	}
	rcu_read_unlock();

	return ret;
}

static void kmod_dup_request_release(struct kref *kref)
{
	struct kmod_dup_req *kmod_req = container_of(kref, struct kmod_dup_req, kref);

	put_pid(kmod_req->modprobe);
	kfree(kmod_req);
}

void kmod_dup_request_put(struct kmod_dup_req *kmod_req)
{
	if (kmod_req)
		kref_put(&kmod_req->kref, kmod_dup_request_release);
}

bool kmod_dup_request_exists_wait(const char *module_name, bool wait, int *dup_ret,
				  struct kmod_dup_req **first)
{
	struct kmod_dup_req *kmod_req, *new_kmod_req;
	bool warned = false, retried = false, first_dup;
	long ret;

	*first = NULL;
again:
	/*
	 * Allocate before taking the mutex so that the allocation does not
	 * serialize all module requests. On failure the request is simply
	 * not tracked: it runs modprobe itself, which is always correct.
	 */
	new_kmod_req = kzalloc(sizeof(*new_kmod_req), GFP_KERNEL);
	if (!new_kmod_req)
		return false;

	mutex_lock(&kmod_dup_mutex);

	kmod_req = kmod_dup_request_lookup(module_name);
	if (!kmod_req) {
		/*
		 * A first request_module_nowait() cannot be an anchor: its
		 * caller does not wait for modprobe, so it has no result that
		 * synchronous callers could share. It stays untracked and a
		 * later request_module() for the same module runs modprobe.
		 */
		if (!wait) {
			mutex_unlock(&kmod_dup_mutex);
			kfree(new_kmod_req);
			pr_debug("New request_module_nowait() for %s -- cannot track duplicates for this request\n",
				 module_name);
			return false;
		}

		strscpy(new_kmod_req->name, module_name, sizeof(new_kmod_req->name));
		kref_init(&new_kmod_req->kref);
		init_completion(&new_kmod_req->first_req_done);
		list_add(&new_kmod_req->list, &dup_kmod_reqs);
		mutex_unlock(&kmod_dup_mutex);
		pr_debug("New request_module() for %s\n", module_name);
		*first = new_kmod_req;
		return false;
	}

	/*
	 * A request_module_nowait() returns as soon as modprobe is exec'ed,
	 * so it may only be folded into a first request that is about to exec
	 * it. Until then the first request can still fail on its own (no
	 * modprobe slot within the timeout, no memory, killed) and nothing
	 * would run modprobe for the nowait caller; it runs its own.
	 */
	if (!wait && !kmod_req->started) {
		mutex_unlock(&kmod_dup_mutex);
		kfree(new_kmod_req);
		pr_debug("request_module_nowait() for %s before its first request started modprobe\n",
			 module_name);
		return false;
	}

	/*
	 * A request_module_nowait() does not wait, so only a waiting request
	 * from the first request's own modprobe would wait for itself.
	 */
	if (wait && kmod_dup_request_from_modprobe(kmod_req)) {
		mutex_unlock(&kmod_dup_mutex);
		kfree(new_kmod_req);
		pr_warn("request for module %s from its own modprobe: running modprobe instead of waiting for itself\n",
			module_name);
		return false;
	}

	first_dup = !kmod_req->dups++;
	/* A waiter holds a reference for as long as it looks at the entry. */
	if (wait)
		kref_get(&kmod_req->kref);
	mutex_unlock(&kmod_dup_mutex);

	/* We are dealing with a duplicate request now */
	kfree(new_kmod_req);

	/*
	 * To fix these try to use try_then_request_module() instead as that
	 * will check if the component you are looking for is present or not.
	 * You could also just queue a single request to load the module once,
	 * instead of having each and everything you need try to request for
	 * the module.
	 *
	 * Duplicate request_module() calls can cause quite a bit of wasted
	 * vmalloc() space when racing with userspace.
	 *
	 * Only the first duplicate of a burst warns (with a stack trace when
	 * tracing); the first request reports how many there were.
	 */
	if (first_dup && !warned) {
		if (enable_dups_trace)
			WARN(1, pr_fmt("duplicate request for module %s\n"), module_name);
		else
			pr_warn("duplicate request for module %s\n", module_name);
		warned = true;
	}

	/*
	 * A duplicate request_module_nowait() does not care for the result,
	 * and a request for the same module is already on its way.
	 */
	if (!wait) {
		*dup_ret = 0;
		return true;
	}

	/* A duplicate request_module() gets the first request's result. */
	ret = wait_for_completion_killable_timeout(&kmod_req->first_req_done,
						   KMOD_DUP_WAIT_TIMEOUT);
	if (!ret) {
		kmod_dup_request_put(kmod_req);
		pr_warn("duplicate request for module %s: no result after %d s, running modprobe\n",
			module_name, KMOD_DUP_WAIT_TIMEOUT / HZ);
		return false;
	}
	if (ret > 0 && kmod_req->owner_killed && !fatal_signal_pending(current)) {
		/*
		 * Only a killed first request leaves a result that says
		 * nothing about the module. Start over once: the first
		 * waiter back becomes the new first request. A waiter whose
		 * second first request was killed too runs modprobe itself,
		 * untracked, so that kills cannot keep it waiting. Every
		 * other result, -ETIME with every modprobe slot busy,
		 * -ENOMEM, -ENOENT or -EBUSY from the usermode helper
		 * included, would come back to each waiter in turn (one slot
		 * timeout each for -ETIME), so it is every waiter's result.
		 */
		kmod_dup_request_put(kmod_req);
		if (retried)
			return false;
		retried = true;
		goto again;
	}
	*dup_ret = ret < 0 ? ret : kmod_req->dup_ret;
	kmod_dup_request_put(kmod_req);

	return true;
}

/*
 * The first request's modprobe is about to be exec'ed: its subprocess_info
 * takes a reference, dropped with kmod_dup_request_put() when the info is
 * freed, which kmod_dup_request_exec() needs in the new process.
 */
void kmod_dup_request_started(struct kmod_dup_req *first)
{
	if (!first)
		return;

	kref_get(&first->kref);
	mutex_lock(&kmod_dup_mutex);
	first->started = true;
	mutex_unlock(&kmod_dup_mutex);
}

/* In the new process, before the exec: this is the first request's modprobe. */
void kmod_dup_request_exec(struct kmod_dup_req *first)
{
	if (!first)
		return;

	mutex_lock(&kmod_dup_mutex);
	first->modprobe = get_pid(task_tgid(current));
	mutex_unlock(&kmod_dup_mutex);
}

void kmod_dup_request_announce(struct kmod_dup_req *first, int ret)
{
	unsigned int dups;

	/* An untracked request has nothing to announce and takes no lock. */
	if (!first)
		return;

	/*
	 * Tracking ends with the first request: a later request runs
	 * modprobe, which returns at once for a module that is loaded by now
	 * and loads one that was unloaded since.
	 */
	mutex_lock(&kmod_dup_mutex);
	list_del(&first->list);
	dups = first->dups;
	mutex_unlock(&kmod_dup_mutex);

	/*
	 * The first request is on its way back to its caller, so it completes
	 * the waiters itself; complete_all() orders the stores of dup_ret and
	 * owner_killed before any waiter wakes up and reads them.
	 */
	first->dup_ret = ret;
	first->owner_killed = fatal_signal_pending(current);
	if (dups && !first->owner_killed)
		pr_info("duplicate requests for module %s: %u, served by its first request (%d)\n",
			first->name, dups, ret);
	complete_all(&first->first_req_done);
	kmod_dup_request_put(first);
}
