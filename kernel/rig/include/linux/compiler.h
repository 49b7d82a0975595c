/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: compiler attributes and one-shot memory accessors. */
#ifndef _RIG_LINUX_COMPILER_H
#define _RIG_LINUX_COMPILER_H

#define likely(x)		__builtin_expect(!!(x), 1)
#define unlikely(x)		__builtin_expect(!!(x), 0)
#define __always_unused		__attribute__((__unused__))
#define __maybe_unused		__attribute__((__unused__))
#define __must_check		__attribute__((__warn_unused_result__))
#define __printf(a, b)		__attribute__((__format__(printf, a, b)))
#define __noreturn		__attribute__((__noreturn__))
#define __cold			__attribute__((__cold__))
#define __malloc		__attribute__((__malloc__))
#define _RET_IP_		((unsigned long)__builtin_return_address(0))
#define __aligned(x)		__attribute__((__aligned__(x)))
#define __init
#define __exit
#define __user
#define __rcu
#define __force

#define barrier()		__asm__ __volatile__("" : : : "memory")

/*
 * The kernel's READ_ONCE()/WRITE_ONCE() are volatile accesses; here they are
 * relaxed atomics so that ThreadSanitizer knows they are meant to race.
 */
#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, val)	__atomic_store_n(&(x), (val), __ATOMIC_RELAXED)
/* Acquire / release: pair with each other, as in the kernel. */
#define smp_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define smp_store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)

#endif /* _RIG_LINUX_COMPILER_H */
