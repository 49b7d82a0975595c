/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: the uapi errno values plus the kernel-internal ones.
 *
 * glibc's <errno.h> includes <linux/errno.h> as well, so this header must
 * stay a superset of the system one.
 */
#ifndef _RIG_LINUX_ERRNO_H
#define _RIG_LINUX_ERRNO_H

#include_next <linux/errno.h>

#define ERESTARTSYS	512
#define ERESTARTNOINTR	513
#define ERESTARTNOHAND	514
#define ENOIOCTLCMD	515
#define ENOTSUPP	524

#endif /* _RIG_LINUX_ERRNO_H */
