/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: IS_ENABLED() and friends.
 *
 * A Kconfig symbol is "enabled" when it is defined to 1 (pass
 * -DCONFIG_FOO=1 to the compiler). The probe turns "1" into a comma, which
 * shifts the second argument of the selector, so an undefined symbol or one
 * defined to anything else selects 0. The result is an integer constant
 * expression that also works in #if.
 */
#ifndef _RIG_LINUX_KCONFIG_H
#define _RIG_LINUX_KCONFIG_H

#define __rig_kconfig_probe_1			,
#define __rig_kconfig_pick(skip, val, ...)	val
#define __rig_kconfig_test(probe)		__rig_kconfig_pick(probe 1, 0, 0)
#define __rig_kconfig_cat(val)			__rig_kconfig_test(__rig_kconfig_probe_##val)
#define __rig_kconfig_set(sym)			__rig_kconfig_cat(sym)

#define IS_BUILTIN(option)	__rig_kconfig_set(option)
#define IS_MODULE(option)	__rig_kconfig_set(option##_MODULE)
#define IS_ENABLED(option)	(IS_BUILTIN(option) || IS_MODULE(option))

#endif /* _RIG_LINUX_KCONFIG_H */
