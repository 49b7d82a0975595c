/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: timers, run by the rig's timer thread. */
#ifndef _RIG_LINUX_TIMER_H
#define _RIG_LINUX_TIMER_H

#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/types.h>

struct timer_list {
	struct list_head entry;
	unsigned long expires;
	void (*function)(struct timer_list *timer);
	bool pending;
};

#define from_timer(var, callback_timer, timer_fieldname) \
	container_of(callback_timer, typeof(*var), timer_fieldname)

void timer_setup(struct timer_list *timer,
		 void (*func)(struct timer_list *timer), unsigned int flags);
void add_timer(struct timer_list *timer);
int del_timer(struct timer_list *timer);
int timer_pending(const struct timer_list *timer);

#endif /* _RIG_LINUX_TIMER_H */
