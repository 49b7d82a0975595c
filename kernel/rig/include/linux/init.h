/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: included by the posted dups.c, which uses nothing from it. */
#ifndef _RIG_LINUX_INIT_H
#define _RIG_LINUX_INIT_H

#include <linux/kernel.h>

#endif /* _RIG_LINUX_INIT_H */
