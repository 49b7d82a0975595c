/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace rig: the driver's model of what sits around dups.c.
 *
 * kmod.c models kernel/module/kmod.c (request_module() with the dups.c
 * hooks and call_modprobe()); modprobe.c models everything behind
 * call_usermodehelper_exec(): the usermode helper, modprobe itself,
 * finit_module() and the set of loaded modules; main.c runs the scenarios
 * and checks the results.
 */
#ifndef _RIG_DRIVER_H
#define _RIG_DRIVER_H

#include <pthread.h>
#include <linux/module.h>
#include <linux/types.h>

enum rig_mod_state {
	RIG_MOD_UNLOADED,
	RIG_MOD_LOADING,	/* inside finit_module() */
	RIG_MOD_LOADED,
};

/**
 * struct rig_module - one module as userspace and finit_module() see it
 * @name: module name
 * @lock: protects @state, @fail_next and @unloads
 * @cond: signalled when @state leaves RIG_MOD_LOADING
 * @state: load state
 * @fail_ret: modprobe's result for a module it cannot load (256 is exit
 *	status 1, "module not found"); 0 for a module that loads
 * @fail_next: the next @fail_next modprobe runs fail with the driver's
 *	fail value, as if the module was not installed yet
 * @unloads: number of rmmods
 * @modprobe_runs: modprobe processes run for this module (atomic)
 * @finit_calls: finit_module() calls (atomic); the vmalloc cost dups.c cuts
 * @finit_dups: finit_module() calls that found the module loading (atomic)
 * @held: modprobe of this module does not return until it is cleared
 * @in_flight: modprobe processes running for it now
 * @overlapped: modprobes that started while another one ran for it
 * @softdep_post: a module modprobe loads after this one ("softdep post:")
 * @init_requests: a module this module's init asks for with
 *	request_module(), from the modprobe process that loads it
 * @init_calls: such requests made (atomic); @init_bad: those that did not
 *	return 0 at once as an untracked request (atomic), the last result in
 *	@init_bad_ret
 * @owner_nomem: first requests (whose dups.c entry was allocated) that
 *	began to announce -ENOMEM, their own allocations for modprobe failing
 *	(atomic); @owner_nomem_done: those that had finished announcing
 */
struct rig_module {
	char name[MODULE_NAME_LEN];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum rig_mod_state state;
	int fail_ret;
	unsigned int fail_next;
	unsigned long unloads;
	unsigned long modprobe_runs;
	unsigned long finit_calls;
	unsigned long finit_dups;
	bool held;
	unsigned int in_flight;
	unsigned long overlapped;
	unsigned long owner_nomem;
	unsigned long owner_nomem_done;
	struct rig_module *softdep_post;
	struct rig_module *init_requests;
	unsigned long init_calls;
	unsigned long init_bad;
	int init_bad_ret;
};

struct rig_userspace {
	unsigned int exec_us;	/* fork + exec of modprobe */
	unsigned int load_us;	/* finit_module() of a module that loads */
	unsigned int fail_us;	/* modprobe finding it cannot load the module */
	int fail_ret;		/* result of a module that is not installed yet */
	unsigned int umh_threads;
};

extern struct rig_userspace rig_userspace;

struct rig_module *rig_module_add(const char *name, int fail_ret);
struct rig_module *rig_module_find(const char *name);
struct rig_module *rig_module_by_index(unsigned int index);
unsigned int rig_nr_modules(void);
bool rig_module_loaded(struct rig_module *mod);
unsigned long rig_module_modprobe_runs(struct rig_module *mod);
void rig_module_set_fail_next(struct rig_module *mod, unsigned int n);
void rig_module_hold(struct rig_module *mod, bool held);
int rig_rmmod(struct rig_module *mod);

void rig_umh_start(unsigned int nr_threads);
bool rig_umh_drain(u64 timeout_ns);
void rig_umh_stop(void);
unsigned long rig_umh_jobs(void);

#endif /* _RIG_DRIVER_H */
