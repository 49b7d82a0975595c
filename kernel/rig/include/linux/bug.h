/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: WARN() prints a cut-here splat with a backtrace and goes on. */
#ifndef _RIG_LINUX_BUG_H
#define _RIG_LINUX_BUG_H

#include <stdlib.h>
#include <linux/compiler.h>
#include <rig/rig.h>

#define WARN(condition, format...) ({					\
	int __ret_warn_on = !!(condition);				\
	if (unlikely(__ret_warn_on))					\
		rig_warn_slowpath(__FILE__, __LINE__, format);		\
	unlikely(__ret_warn_on);					\
})

#define WARN_ON(condition) ({						\
	int __ret_warn_on = !!(condition);				\
	if (unlikely(__ret_warn_on))					\
		rig_warn_slowpath(__FILE__, __LINE__, "%s\n",		\
				  "WARN_ON(" #condition ")");		\
	unlikely(__ret_warn_on);					\
})

#define WARN_ONCE(condition, format...) ({				\
	static bool __warned;						\
	int __ret_warn_once = !!(condition);				\
	if (unlikely(__ret_warn_once) &&				\
	    !__atomic_exchange_n(&__warned, true, __ATOMIC_RELAXED))	\
		rig_warn_slowpath(__FILE__, __LINE__, format);		\
	unlikely(__ret_warn_once);					\
})

#define WARN_ON_ONCE(condition)	WARN_ONCE(condition, "%s\n", "WARN_ON_ONCE(" #condition ")")

#define BUG() do {							\
	rig_bug(RIG_BUG_MODEL, "kernel BUG at %s:%d!", __FILE__, __LINE__); \
	abort();							\
} while (0)

#define BUG_ON(condition) do { if (unlikely(condition)) BUG(); } while (0)

#endif /* _RIG_LINUX_BUG_H */
