/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: module parameters.
 *
 * module_param() registers the variable by name (with MODULE_PARAM_PREFIX
 * as it is at the point of use) from a constructor; the driver sets it with
 * --param name=value through the type's kernel_param_ops, so bool_enable_only
 * refuses to be cleared once set, as in the kernel.
 */
#ifndef _RIG_LINUX_MODULEPARAM_H
#define _RIG_LINUX_MODULEPARAM_H

#include <linux/compiler.h>
#include <linux/types.h>

#define MAX_PARAM_PREFIX_LEN (64 - sizeof(unsigned long))

#ifndef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "rig."
#endif

struct kernel_param_ops {
	int (*set)(const char *val, void *arg);
	int (*get)(char *buffer, size_t size, const void *arg);
};

extern const struct kernel_param_ops param_ops_bool;
extern const struct kernel_param_ops param_ops_bool_enable_only;
extern const struct kernel_param_ops param_ops_int;
extern const struct kernel_param_ops param_ops_uint;

/* kernel/params.c: names match with '-' and '_' taken as the same. */
static inline bool parameqn(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char ca = a[i] == '-' ? '_' : a[i];
		char cb = b[i] == '-' ? '_' : b[i];

		if (ca != cb)
			return false;
	}
	return true;
}

static inline bool parameq(const char *a, const char *b)
{
	size_t la = __builtin_strlen(a);

	return la == __builtin_strlen(b) && parameqn(a, b, la + 1);
}

void rig_param_register(const char *name, const struct kernel_param_ops *ops,
			void *arg, unsigned short perm);

#define __rig_param_check(name, p, type) \
	static inline type __always_unused *__check_##name(void) { return (p); }

#define param_check_bool(name, p)		__rig_param_check(name, p, bool)
#define param_check_bool_enable_only(name, p)	__rig_param_check(name, p, bool)
#define param_check_int(name, p)		__rig_param_check(name, p, int)
#define param_check_uint(name, p)		__rig_param_check(name, p, unsigned int)

#define module_param_named(name, value, type, perm)			\
	param_check_##type(name, &(value));				\
	static const char __rig_param_name_##name[] =			\
		MODULE_PARAM_PREFIX #name;				\
	static void __attribute__((__constructor__))			\
	__rig_param_register_##name(void)				\
	{								\
		rig_param_register(__rig_param_name_##name,		\
				   &param_ops_##type, &(value), (perm)); \
	}								\
	static const char __maybe_unused __rig_param_type_##name[] = #type

#define module_param(name, type, perm)	module_param_named(name, name, type, perm)

#endif /* _RIG_LINUX_MODULEPARAM_H */
