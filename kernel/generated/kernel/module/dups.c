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
 *   holds one reference and each waiting duplicate one.
 * - Only the first request holds the entry (kmod_dup_request_exists_wait()
 *   hands it out), so only it marks the entry started and announces; it
 *   announces exactly once, on every path out of __request_module().
 */

#define pr_fmt(fmt) "module: " fmt

#include <linux/bug.h>
#include <linux/completion.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "internal.h"

#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "module."
static bool enable_dups_trace = IS_ENABLED(CONFIG_MODULE_DEBUG_AUTOLOAD_DUPS_TRACE);
module_param(enable_dups_trace, bool_enable_only, 0644);

/*
 * Protects dup_kmod_reqs, the list linkage of its entries and their
 * @started flags. No reader walks the list without it, so it needs no RCU.
 */
static DEFINE_MUTEX(kmod_dup_mutex);
static LIST_HEAD(dup_kmod_reqs);

/**
 * struct kmod_dup_req - a request_module() in flight that others may wait on
 * @list: entry in dup_kmod_reqs, only while the first request is running
 * @kref: one reference for the list, one for each waiting duplicate
 * @name: the requested module name, as the first request spelled it
 * @first_req_done: completed once the first request has announced
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

static void kmod_dup_request_release(struct kref *kref)
{
	kfree(container_of(kref, struct kmod_dup_req, kref));
}

static void kmod_dup_request_put(struct kmod_dup_req *kmod_req)
{
	kref_put(&kmod_req->kref, kmod_dup_request_release);
}

bool kmod_dup_request_exists_wait(const char *module_name, bool wait, int *dup_ret,
				  struct kmod_dup_req **first)
{
	struct kmod_dup_req *kmod_req, *new_kmod_req;
	bool warned = false, retried = false;
	int ret;

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
	 * so it may only be folded into a first request that is sure to exec
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
	 */
	if (!warned) {
		if (enable_dups_trace)
			WARN(1, "module-autoload: duplicate request for module %s\n", module_name);
		else
			pr_warn("module-autoload: duplicate request for module %s\n", module_name);
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
	ret = wait_for_completion_killable(&kmod_req->first_req_done);
	if (!ret && kmod_req->owner_killed && !fatal_signal_pending(current)) {
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
	*dup_ret = ret ? ret : kmod_req->dup_ret;
	kmod_dup_request_put(kmod_req);

	return true;
}

void kmod_dup_request_started(struct kmod_dup_req *first)
{
	if (!first)
		return;

	mutex_lock(&kmod_dup_mutex);
	first->started = true;
	mutex_unlock(&kmod_dup_mutex);
}

void kmod_dup_request_announce(struct kmod_dup_req *first, int ret)
{
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
	mutex_unlock(&kmod_dup_mutex);

	/*
	 * The first request is on its way back to its caller, so it completes
	 * the waiters itself; complete_all() orders the stores of dup_ret and
	 * owner_killed before any waiter wakes up and reads them.
	 */
	first->dup_ret = ret;
	first->owner_killed = fatal_signal_pending(current);
	complete_all(&first->first_req_done);
	kmod_dup_request_put(first);
}
