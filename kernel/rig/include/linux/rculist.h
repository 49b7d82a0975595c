/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: RCU-protected lists, with the lockdep condition checked. */
#ifndef _RIG_LINUX_RCULIST_H
#define _RIG_LINUX_RCULIST_H

#include <linux/list.h>
#include <linux/rcupdate.h>

#define list_next_rcu(list)	(*((struct list_head __rcu **)(&(list)->next)))

static inline void __list_add_rcu(struct list_head *new, struct list_head *prev,
				  struct list_head *next)
{
	if (!__list_add_valid(new, prev, next))
		return;
	new->next = next;
	new->prev = prev;
	rcu_assign_pointer(list_next_rcu(prev), new);
	next->prev = new;
}

static inline void list_add_rcu(struct list_head *new, struct list_head *head)
{
	rig_perturb(RIG_SITE_LIST);
	__list_add_rcu(new, head, head->next);
}

static inline void list_add_tail_rcu(struct list_head *new, struct list_head *head)
{
	rig_perturb(RIG_SITE_LIST);
	__list_add_rcu(new, head->prev, head);
}

/* Readers may still be on @entry: keep ->next, poison only ->prev. */
static inline void list_del_rcu(struct list_head *entry)
{
	rig_perturb(RIG_SITE_LIST);
	__list_del_entry(entry);
	entry->prev = LIST_POISON2;
}

#define list_entry_rcu(ptr, type, member) container_of(READ_ONCE(ptr), type, member)

/* With no condition given the walk must be inside rcu_read_lock(). */
#define __rig_list_rcu_cond(dummy, cond, extra...)	rig_rcu_list_check(!!(cond))

/**
 * list_for_each_entry_rcu - walk an RCU list
 * @pos: the entry cursor
 * @head: the list
 * @member: the list_head in the entry
 * @cond: optional lockdep expression under which a walk is legal without
 *	rcu_read_lock(), e.g. lockdep_is_held(&lock)
 */
#define list_for_each_entry_rcu(pos, head, member, cond...)		\
	for (__rig_list_rcu_cond(0, ## cond, 0),			\
	     pos = list_entry_rcu((head)->next, typeof(*pos), member);	\
	     &pos->member != (head);					\
	     pos = list_entry_rcu(pos->member.next, typeof(*(pos)), member))

#endif /* _RIG_LINUX_RCULIST_H */
