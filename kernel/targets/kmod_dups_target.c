// SPDX-License-Identifier: GPL-2.0
/*
 * kmod_dups_target - a module that is slow to load, on purpose
 *
 * Its init sleeps for init_delay_ms and then succeeds; it carries 512 KiB
 * of ballast (see kmod_dups_slow.h).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "kmod_dups_slow.h"

MODULE_PARM_DESC(init_delay_ms, "Time the module init sleeps before it succeeds (default 2000)");

static int __init kmod_dups_target_init(void)
{
	return kmod_dups_slow_init("loaded");
}

static void __exit kmod_dups_target_exit(void)
{
}

module_init(kmod_dups_target_init);
module_exit(kmod_dups_target_exit);

MODULE_DESCRIPTION("Slow-loading target for duplicate module request tests");
MODULE_AUTHOR("kmod-dups project");
MODULE_LICENSE("GPL");
