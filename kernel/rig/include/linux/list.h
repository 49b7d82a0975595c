/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: doubly linked lists with CONFIG_DEBUG_LIST checking.
 *
 * Every add and delete is validated first, as the kernel does with
 * CONFIG_DEBUG_LIST; a corrupted or poisoned list is reported through
 * rig_bug() and the operation is skipped. Deleted entries are poisoned with
 * non-canonical pointers, so a walk through a freed entry faults.
 */
#ifndef _RIG_LINUX_LIST_H
#define _RIG_LINUX_LIST_H

#include <linux/kernel.h>
#include <linux/types.h>
#include <rig/rig.h>

#define POISON_POINTER_DELTA	0xdead000000000000UL
#define LIST_POISON1		((void *)(0x100 + POISON_POINTER_DELTA))
#define LIST_POISON2		((void *)(0x122 + POISON_POINTER_DELTA))

#define LIST_HEAD_INIT(name) { &(name), &(name) }
#define LIST_HEAD(name) struct list_head name = LIST_HEAD_INIT(name)

bool __list_add_valid(struct list_head *new, struct list_head *prev,
		      struct list_head *next);
bool __list_del_entry_valid(struct list_head *entry);

static inline void INIT_LIST_HEAD(struct list_head *list)
{
	WRITE_ONCE(list->next, list);
	list->prev = list;
}

static inline void __list_add(struct list_head *new, struct list_head *prev,
			      struct list_head *next)
{
	if (!__list_add_valid(new, prev, next))
		return;
	next->prev = new;
	new->next = next;
	new->prev = prev;
	WRITE_ONCE(prev->next, new);
}

static inline void list_add(struct list_head *new, struct list_head *head)
{
	rig_perturb(RIG_SITE_LIST);
	__list_add(new, head, head->next);
}

static inline void list_add_tail(struct list_head *new, struct list_head *head)
{
	rig_perturb(RIG_SITE_LIST);
	__list_add(new, head->prev, head);
}

static inline void __list_del(struct list_head *prev, struct list_head *next)
{
	next->prev = prev;
	WRITE_ONCE(prev->next, next);
}

static inline void __list_del_entry(struct list_head *entry)
{
	if (!__list_del_entry_valid(entry))
		return;
	__list_del(entry->prev, entry->next);
}

static inline void list_del(struct list_head *entry)
{
	rig_perturb(RIG_SITE_LIST);
	__list_del_entry(entry);
	entry->next = LIST_POISON1;
	entry->prev = LIST_POISON2;
}

static inline void list_del_init(struct list_head *entry)
{
	__list_del_entry(entry);
	INIT_LIST_HEAD(entry);
}

static inline void list_move_tail(struct list_head *entry, struct list_head *head)
{
	__list_del_entry(entry);
	__list_add(entry, head->prev, head);
}

static inline int list_empty(const struct list_head *head)
{
	return READ_ONCE(head->next) == head;
}

#define list_entry(ptr, type, member)	container_of(ptr, type, member)
#define list_first_entry(ptr, type, member) list_entry((ptr)->next, type, member)
#define list_next_entry(pos, member) list_entry((pos)->member.next, typeof(*(pos)), member)

#define list_for_each_entry(pos, head, member)				\
	for (pos = list_first_entry(head, typeof(*pos), member);	\
	     &pos->member != (head);					\
	     pos = list_next_entry(pos, member))

#define list_for_each_entry_safe(pos, n, head, member)			\
	for (pos = list_first_entry(head, typeof(*pos), member),	\
	     n = list_next_entry(pos, member);				\
	     &pos->member != (head);					\
	     pos = n, n = list_next_entry(n, member))

#endif /* _RIG_LINUX_LIST_H */
