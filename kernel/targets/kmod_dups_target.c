// SPDX-License-Identifier: GPL-2.0
/*
 * kmod_dups_target - a module that is slow to load, on purpose
 *
 * Its init sleeps for init_delay_ms and then succeeds, so that requests
 * for it that arrive while the first one is loading it find the load in
 * progress, at any number of CPUs.  modprobe passes the parameter from the
 * kernel command line (kmod_dups_target.init_delay_ms=N) or from a
 * modprobe.d "options" line.  A fatal signal sent to the loading modprobe
 * ends the sleep and the load fails with -EINTR.
 *
 * The module carries a read-only ballast of KMOD_DUPS_BALLAST_SIZE bytes
 * (kept in .rodata, so in the .ko file and in the module's core memory).
 * On 6.1 a duplicate finit_module() reads the whole file into vmalloc
 * space and lays the module out in fresh module memory before it finds
 * that the module already exists, so each duplicate load wastes about
 * twice this size: big enough to measure, small enough for many CPUs.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>

#define KMOD_DUPS_BALLAST_SIZE	SZ_512K

static unsigned int init_delay_ms = 2000;
module_param(init_delay_ms, uint, 0444);
MODULE_PARM_DESC(init_delay_ms, "Time the module init sleeps before it succeeds (default 2000)");

/* Non-zero at both ends so the compiler cannot move it to .bss. */
static const u8 kmod_dups_ballast[KMOD_DUPS_BALLAST_SIZE] = {
	[0] = 0x6b,
	[KMOD_DUPS_BALLAST_SIZE - 1] = 0x64,
};

static int kmod_dups_sleep(unsigned int ms)
{
	unsigned long left = msecs_to_jiffies(ms);

	while (left && !fatal_signal_pending(current))
		left = schedule_timeout_killable(left);

	return fatal_signal_pending(current) ? -EINTR : 0;
}

static int __init kmod_dups_target_init(void)
{
	int err;

	err = kmod_dups_sleep(init_delay_ms);
	if (err)
		return err;

	pr_info("loaded after %u ms, %zu bytes of ballast (%02x..%02x)\n",
		init_delay_ms, sizeof(kmod_dups_ballast), kmod_dups_ballast[0],
		READ_ONCE(kmod_dups_ballast[KMOD_DUPS_BALLAST_SIZE - 1]));

	return 0;
}

static void __exit kmod_dups_target_exit(void)
{
}

module_init(kmod_dups_target_init);
module_exit(kmod_dups_target_exit);

MODULE_DESCRIPTION("Slow-loading target for duplicate module request tests");
MODULE_AUTHOR("kmod-dups project");
MODULE_LICENSE("GPL");
