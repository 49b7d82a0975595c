/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: RCU.
 *
 * Readers mark themselves in their task; synchronize_rcu() waits for every
 * reader that was inside a read-side critical section when it started, after
 * a configurable grace-period delay (--rcu-gp-us) that stands in for the
 * milliseconds a real grace period takes.
 */
#ifndef _RIG_LINUX_RCUPDATE_H
#define _RIG_LINUX_RCUPDATE_H

#include <linux/compiler.h>
#include <linux/types.h>

void rcu_read_lock(void);
void rcu_read_unlock(void);
int rcu_read_lock_held(void);
void synchronize_rcu(void);

/* The RCU-list lockdep check: complain unless @cond or inside rcu_read_lock(). */
void rig_rcu_list_check(bool cond);

/* Publishes an initialised object: orders its stores before the pointer's. */
#define rcu_assign_pointer(p, v)		smp_store_release(&(p), (v))
#define RCU_INIT_POINTER(p, v)			WRITE_ONCE(p, v)
#define rcu_dereference(p)			READ_ONCE(p)
#define rcu_dereference_protected(p, c)		(p)

#endif /* _RIG_LINUX_RCUPDATE_H */
