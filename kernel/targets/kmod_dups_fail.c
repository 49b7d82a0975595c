// SPDX-License-Identifier: GPL-2.0
/*
 * kmod_dups_fail - a module whose init fails, slowly, on purpose
 *
 * Like kmod_dups_target, its init sleeps for init_delay_ms, with the same
 * ballast (see kmod_dups_slow.h), so a failed load costs as much memory as
 * a successful one.  Then it returns -ENODEV, so every request for it
 * fails: the first one and, with duplicate suppression, the duplicates
 * that waited for it, with the same error.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "kmod_dups_slow.h"

MODULE_PARM_DESC(init_delay_ms, "Time the module init sleeps before it fails (default 2000)");

static int __init kmod_dups_fail_init(void)
{
	int err;

	err = kmod_dups_slow_init("failing on purpose");
	if (err)
		return err;

	return -ENODEV;
}

module_init(kmod_dups_fail_init);

MODULE_DESCRIPTION("Target whose init fails, for duplicate module request tests");
MODULE_AUTHOR("kmod-dups project");
MODULE_LICENSE("GPL");
