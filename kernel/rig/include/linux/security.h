/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: included by the posted dups.c, which uses nothing from it. */
#ifndef _RIG_LINUX_SECURITY_H
#define _RIG_LINUX_SECURITY_H

#include <linux/kernel.h>

static inline int security_kernel_module_request(char *kmod_name)
{
	return 0;
}

#endif /* _RIG_LINUX_SECURITY_H */
