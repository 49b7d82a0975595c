/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: libc's string functions plus the kernel's own. */
#ifndef _RIG_LINUX_STRING_H
#define _RIG_LINUX_STRING_H

#include <string.h>
#include <linux/types.h>

ssize_t rig_strscpy(char *dest, const char *src, size_t count);

/* strscpy(dst, src) on an array (Linux 6.8), or with its size */
#define __rig_strscpy2(dst, src)	rig_strscpy(dst, src, sizeof(dst))
#define __rig_strscpy3(dst, src, n)	rig_strscpy(dst, src, n)
#define __rig_strscpy_pick(_1, _2, _3, name, ...)	name
#define strscpy(...)	__rig_strscpy_pick(__VA_ARGS__, __rig_strscpy3, __rig_strscpy2, )(__VA_ARGS__)
int kstrtobool(const char *s, bool *res);

#endif /* _RIG_LINUX_STRING_H */
