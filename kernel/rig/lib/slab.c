// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace rig: kmalloc() and kfree().
 *
 * Each object carries a small header with its size and a magic that says
 * whether it is live, so kfree() can catch double and bad frees. Then, per
 * build:
 *
 * - no sanitizer: the object is poisoned with 0x6b (POISON_FREE) and sits
 *   in a quarantine for a while before going back to libc, so a
 *   use-after-free reads the poison or faults on a poisoned pointer
 *   instead of seeing a recycled object;
 * - ASan: its shadow poisoning and its own quarantine report the first
 *   access to freed memory, with the stacks of the free and the allocation;
 * - TSan: the object goes straight back to libc unpoisoned: TSan marks it
 *   freed and reports any later access as heap-use-after-free, and the run
 *   goes on to show what the stale values do.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/kernel.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <rig/rig.h>

#define RIG_SLAB_LIVE	0x51ab1e5bUL
#define RIG_SLAB_FREE	0xdeadf7eeUL

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RIG_QUARANTINE	0
#else
#define RIG_QUARANTINE	4096
#endif

struct rig_slab_hdr {
	size_t size;
	unsigned long magic;
} __aligned(16);

static long rig_outstanding;		/* atomic */
static unsigned long rig_failures;	/* atomic */

#if RIG_QUARANTINE
static pthread_mutex_t rig_quarantine_lock = PTHREAD_MUTEX_INITIALIZER;
static void *rig_quarantine[RIG_QUARANTINE];
static unsigned int rig_quarantine_next;
#endif

static void *rig_alloc(size_t size, gfp_t flags)
{
	struct task_struct *tsk = current;
	struct rig_slab_hdr *hdr;

	rig_perturb(RIG_SITE_SLAB);
	if (tsk->alloc_budget == 0) {
		tsk->nr_alloc_fail++;
		__atomic_fetch_add(&rig_failures, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	if (tsk->alloc_budget > 0)
		tsk->alloc_budget--;
	hdr = malloc(sizeof(*hdr) + size);
	if (!hdr) {
		fprintf(stderr, "rig: out of memory\n");
		abort();
	}
	hdr->size = size;
	hdr->magic = RIG_SLAB_LIVE;
	if (flags & __GFP_ZERO)
		memset(hdr + 1, 0, size);
	else
		memset(hdr + 1, 0xa5, size);	/* uninitialised, visibly */
	__atomic_fetch_add(&rig_outstanding, 1, __ATOMIC_RELAXED);
	return hdr + 1;
}

void *kmalloc(size_t size, gfp_t flags)
{
	return rig_alloc(size, flags);
}

void *kzalloc(size_t size, gfp_t flags)
{
	return rig_alloc(size, flags | __GFP_ZERO);
}

void *kcalloc(size_t n, size_t size, gfp_t flags)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return rig_alloc(n * size, flags | __GFP_ZERO);
}

char *kstrdup(const char *s, gfp_t flags)
{
	size_t len = strlen(s) + 1;
	char *p = kmalloc(len, flags);

	if (p)
		memcpy(p, s, len);
	return p;
}

void kfree(const void *objp)
{
	struct rig_slab_hdr *hdr;
	void *victim;

	if (!objp)
		return;
	rig_perturb(RIG_SITE_SLAB);
	hdr = (struct rig_slab_hdr *)objp - 1;
	if (hdr->magic != RIG_SLAB_LIVE) {
		rig_bug(RIG_BUG_MEMORY, "kfree(%p): %s", objp,
			hdr->magic == RIG_SLAB_FREE ? "double free" :
			"not a live kmalloc() object");
		return;
	}
	/* CONFIG_DEBUG_OBJECTS_FREE: no pending work or timer inside. */
	rig_workqueue_check_free(objp, hdr->size);

	hdr->magic = RIG_SLAB_FREE;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	memset((void *)objp, RIG_POISON_FREE, hdr->size);
#endif
	__atomic_fetch_sub(&rig_outstanding, 1, __ATOMIC_RELAXED);

	victim = hdr;
#if RIG_QUARANTINE
	rig_lock(&rig_quarantine_lock);
	victim = rig_quarantine[rig_quarantine_next];
	rig_quarantine[rig_quarantine_next] = hdr;
	rig_quarantine_next = (rig_quarantine_next + 1) % RIG_QUARANTINE;
	rig_unlock(&rig_quarantine_lock);
#endif
	free(victim);
}

void rig_slab_quarantine_flush(void)
{
#if RIG_QUARANTINE
	unsigned int i;

	rig_lock(&rig_quarantine_lock);
	for (i = 0; i < RIG_QUARANTINE; i++) {
		free(rig_quarantine[i]);
		rig_quarantine[i] = NULL;
	}
	rig_unlock(&rig_quarantine_lock);
#endif
}

long rig_slab_outstanding(void)
{
	return __atomic_load_n(&rig_outstanding, __ATOMIC_RELAXED);
}

unsigned long rig_slab_failures(void)
{
	return __atomic_load_n(&rig_failures, __ATOMIC_RELAXED);
}
