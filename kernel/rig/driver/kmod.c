// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace rig: a model of kernel/module/kmod.c with the dups.c hooks
 * placed where the patch puts them: after the module name is formatted,
 * before call_modprobe(), and the announcement right after it.
 *
 * It leaves a note in current (kmod_dup, kmod_ran_modprobe) of what it did,
 * as a tracepoint would, for the driver's checks.
 */
#include <stdarg.h>
#include <stdio.h>

#include <linux/kmod.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/umh.h>

#include "internal.h"
#include "driver.h"

static char modprobe_path[256] = "/sbin/modprobe";

static int call_modprobe(char *orig_module_name, int wait)
{
	char *module_name;
	char **argv;
	int ret;

	/* Under memory pressure these fail like dups.c's own kzalloc(). */
	argv = kcalloc(5, sizeof(*argv), GFP_KERNEL);
	if (!argv)
		goto out;

	module_name = kstrdup(orig_module_name, GFP_KERNEL);
	if (!module_name)
		goto free_argv;

	argv[0] = modprobe_path;
	argv[1] = "-q";
	argv[2] = "--";
	argv[3] = module_name;
	argv[4] = NULL;

	current->kmod_ran_modprobe = true;
	ret = rig_call_modprobe_helper(argv[3], wait | UMH_KILLABLE);
	kfree(module_name);
	kfree(argv);
	return ret;

free_argv:
	kfree(argv);
out:
	return -ENOMEM;
}

int __request_module(bool wait, const char *fmt, ...)
{
	char module_name[MODULE_NAME_LEN];
	int ret, dup_ret;
	va_list args;

	current->kmod_dup = false;
	current->kmod_ran_modprobe = false;

	va_start(args, fmt);
	ret = vsnprintf(module_name, MODULE_NAME_LEN, fmt, args);
	va_end(args);
	if (ret >= MODULE_NAME_LEN)
		return -ENAMETOOLONG;

	if (kmod_dup_request_exists_wait(module_name, wait, &dup_ret)) {
		current->kmod_dup = true;
		return dup_ret;
	}

	ret = call_modprobe(module_name, wait ? UMH_WAIT_PROC : UMH_WAIT_EXEC);

	kmod_dup_request_announce(module_name, ret);

	return ret;
}
