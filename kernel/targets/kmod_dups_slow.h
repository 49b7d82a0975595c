/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What kmod_dups_target and kmod_dups_fail share: an init that is slow on
 * purpose, and a ballast that makes each load cost memory.
 *
 * The init sleeps for init_delay_ms, so that requests that arrive while
 * the first one is loading the module find the load in progress, at any
 * number of CPUs.  modprobe passes the parameter from the kernel command
 * line (<module>.init_delay_ms=N) or from a modprobe.d "options" line.  A
 * fatal signal sent to the loading modprobe ends the sleep and the load
 * fails with -EINTR.
 *
 * The ballast is KMOD_DUPS_BALLAST_SIZE read-only bytes (kept in .rodata,
 * so in the .ko file and in the module's core memory).  On 6.1 a duplicate
 * finit_module() reads the whole file into vmalloc space and lays the
 * module out in fresh module memory before it finds that the module
 * already exists, so each duplicate load wastes about twice this size: big
 * enough to measure, small enough for many CPUs.
 *
 * Include it once, from the module's only source file, after pr_fmt.
 */
#ifndef KMOD_DUPS_SLOW_H
#define KMOD_DUPS_SLOW_H

#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>

#define KMOD_DUPS_BALLAST_SIZE	SZ_512K

static unsigned int init_delay_ms = 2000;
module_param(init_delay_ms, uint, 0444);

/* Non-zero at both ends so the compiler cannot move it to .bss. */
static const u8 kmod_dups_ballast[KMOD_DUPS_BALLAST_SIZE] = {
	[0] = 0x6b,
	[KMOD_DUPS_BALLAST_SIZE - 1] = 0x64,
};

/**
 * kmod_dups_slow_init() - sleep for init_delay_ms, then say so
 * @outcome: what the init does next, for the message
 *
 * Return: 0, or -EINTR if a fatal signal ended the sleep.
 */
static int __init kmod_dups_slow_init(const char *outcome)
{
	unsigned long left = msecs_to_jiffies(init_delay_ms);

	while (left && !fatal_signal_pending(current))
		left = schedule_timeout_killable(left);
	if (fatal_signal_pending(current))
		return -EINTR;

	pr_info("%s after %u ms, %zu bytes of ballast (%02x..%02x)\n",
		outcome, init_delay_ms, sizeof(kmod_dups_ballast),
		kmod_dups_ballast[0],
		READ_ONCE(kmod_dups_ballast[KMOD_DUPS_BALLAST_SIZE - 1]));

	return 0;
}

#endif /* KMOD_DUPS_SLOW_H */
