/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: what dups.c takes from <linux/module.h>. */
#ifndef _RIG_LINUX_MODULE_H
#define _RIG_LINUX_MODULE_H

#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/kmod.h>
#include <linux/list.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/rculist.h>
#include <linux/string.h>

#define MODULE_NAME_LEN		MAX_PARAM_PREFIX_LEN

#define MODULE_LICENSE(x)
#define MODULE_AUTHOR(x)
#define MODULE_DESCRIPTION(x)
#define EXPORT_SYMBOL(sym)	extern typeof(sym) sym
#define EXPORT_SYMBOL_GPL(sym)	extern typeof(sym) sym

#endif /* _RIG_LINUX_MODULE_H */
