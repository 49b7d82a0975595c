// SPDX-License-Identifier: GPL-2.0
/*
 * kmod_dups_recurse - a module whose init asks for another module
 *
 * Loaded as a post softdep of kmod_dups_target ("softdep kmod_dups_target
 * post: kmod_dups_recurse"), its init runs in the modprobe process that
 * loads kmod_dups_target and asks for kmod_dups_target again. Without a
 * duplicate suppressor that modprobe finds the module live and returns 0;
 * a suppressor that makes the request wait for the first request, which
 * waits for this modprobe, deadlocks.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/init.h>
#include <linux/kmod.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

static char *request = "kmod_dups_target";
module_param(request, charp, 0444);
MODULE_PARM_DESC(request, "The module the init asks for (default kmod_dups_target)");

static int __init kmod_dups_recurse_init(void)
{
	int ret = request_module("%s", request);

	pr_info("request_module(%s) returned %d\n", request, ret);
	return 0;
}

static void __exit kmod_dups_recurse_exit(void)
{
}

module_init(kmod_dups_recurse_init);
module_exit(kmod_dups_recurse_exit);

MODULE_DESCRIPTION("Module whose init requests a module, for recursive request tests");
MODULE_AUTHOR("kmod-dups project");
MODULE_LICENSE("GPL");
