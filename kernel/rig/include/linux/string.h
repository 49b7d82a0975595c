/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: libc's string functions plus the kernel's own. */
#ifndef _RIG_LINUX_STRING_H
#define _RIG_LINUX_STRING_H

#include <string.h>
#include <linux/types.h>

ssize_t strscpy(char *dest, const char *src, size_t count);
int kstrtobool(const char *s, bool *res);

#endif /* _RIG_LINUX_STRING_H */
