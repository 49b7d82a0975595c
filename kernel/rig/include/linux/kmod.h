/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: request_module(), implemented by the rig's model of
 * kernel/module/kmod.c (kmod.c in the rig), which calls the dups.c hooks.
 */
#ifndef _RIG_LINUX_KMOD_H
#define _RIG_LINUX_KMOD_H

#include <linux/compiler.h>
#include <linux/types.h>
#include <linux/umh.h>

#include <linux/atomic.h>
#include <linux/semaphore.h>
#include <linux/wait.h>

#define KMOD_PATH_LEN 256

int __request_module(bool wait, const char *fmt, ...) __printf(2, 3);

#define request_module(mod...)		__request_module(true, mod)
#define request_module_nowait(mod...)	__request_module(false, mod)

#endif /* _RIG_LINUX_KMOD_H */
