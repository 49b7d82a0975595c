/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: kernel integer types on top of the uapi ones. */
#ifndef _RIG_LINUX_TYPES_H
#define _RIG_LINUX_TYPES_H

/* The system's uapi header: __u8 .. __u64 for any uapi header that wants them. */
#include_next <linux/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s8 s8;
typedef __s16 s16;
typedef __s32 s32;
typedef __s64 s64;

typedef unsigned int gfp_t;

struct list_head {
	struct list_head *next, *prev;
};

#endif /* _RIG_LINUX_TYPES_H */
