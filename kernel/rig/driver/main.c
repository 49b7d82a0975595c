// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace rig for kernel/module/dups.c: scenarios and checks.
 *
 * Driver threads call request_module() and request_module_nowait() (the
 * model of kmod.c, with the dups.c hooks) on a few shared module names, some
 * of which cannot be loaded, and run load / rmmod / load cycles on names of
 * their own. Every result is checked against what modprobe would have said;
 * the primitives report use of freed memory, list corruption, refcount and
 * lockdep problems on their own. Results go to stdout as "RIG ..." lines.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/jiffies.h>
#include <linux/kmod.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <rig/rig.h>

#include "driver.h"

#ifndef RIG_VARIANT
#define RIG_VARIANT "unknown"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define RIG_SANITIZER "address"
#elif defined(__SANITIZE_THREAD__)
#define RIG_SANITIZER "thread"
#else
#define RIG_SANITIZER "none"
#endif

#define RIG_LINGER_NS		((u64)60 * HZ * RIG_JIFFY_NS)
/* kmod.c's MAX_KMOD_CONCURRENT and MAX_KMOD_ALL_BUSY_TIMEOUT (6.1). */
#define RIG_KMOD_SLOTS		50
#define RIG_SLOT_TIMEOUT_NS	((u64)5 * HZ * RIG_JIFFY_NS)
/* The last threads of "slots" ask with request_module_nowait(). */
#define RIG_SLOTS_NOWAIT	5
#define RIG_PRIVATE_NAMES	2
#define RIG_MAX_THREADS		1024
#define RIG_MAX_DETAILS		16

/* ---- options ----------------------------------------------------------- */

struct rig_opts {
	const char *scenario;
	unsigned int threads;
	unsigned long requests;
	unsigned long seed;
	unsigned int names;
	unsigned int fail_every;
	int fail_ret;
	unsigned int nowait_permille;
	unsigned int nomem_permille;
	unsigned int late_nomem_permille;
	unsigned int reload_permille;
	unsigned int kill_interval_us;
	unsigned int think_us;
	unsigned int workers;
	unsigned int umh_threads;
	unsigned int hang_timeout_s;
	bool serial;			/* --serial: one task at a time, virtual time */
	unsigned int progress_s;
	unsigned int max_details;
	bool slots;
	bool spellings;
	bool recursive;
	bool flood;
	unsigned int rounds;
	const char *params[16];
	unsigned int nr_params;
};

static struct rig_opts opts;

/* ---- checks ------------------------------------------------------------ */

enum rig_check {
	CHECK_UAF,
	CHECK_DUP_VALUE,
	CHECK_RELOAD,
	CHECK_NOMEM,
	CHECK_EARLY,
	CHECK_KILL,
	CHECK_WARN,
	CHECK_LEAK,
	CHECK_LOCKDEP,
	CHECK_MODEL,
	CHECK_HANG,
	CHECK_SANITIZER,
	CHECK_SLOTS,
	CHECK_SPELLING,
	CHECK_NOWAIT_LOST,
	CHECK_RECURSION,
	CHECK_FLOOD,
	NR_CHECKS,
};

static const struct {
	const char *name;
	const char *what;
} rig_checks[NR_CHECKS] = {
	[CHECK_UAF] = { "uaf", "no use of freed memory (poison, double free, list, refcount, debugobjects)" },
	[CHECK_DUP_VALUE] = { "dup-value", "a duplicate request_module() returns the first request's result" },
	[CHECK_RELOAD] = { "reload", "a request after rmmod or after the module got installed runs modprobe again" },
	[CHECK_NOMEM] = { "nomem", "a duplicate gets -ENOMEM only from its first request's own failed allocations" },
	[CHECK_EARLY] = { "early", "no duplicate is woken before the first request's modprobe finished" },
	[CHECK_KILL] = { "kill", "a duplicate that was not killed does not return -ERESTARTSYS" },
	[CHECK_WARN] = { "warn", "duplicate warnings name the module: at most one per duplicate (one per duplicate for API 1), or per fallback" },
	[CHECK_LEAK] = { "leak", "nothing stays allocated once all requests and work are done" },
	[CHECK_LOCKDEP] = { "lockdep", "lockdep assertions and RCU-list conditions hold" },
	[CHECK_MODEL] = { "model", "the rig's model of kmod and modprobe stays consistent" },
	[CHECK_HANG] = { "hang", "every request returns and all work drains" },
	[CHECK_SANITIZER] = { "sanitizer", "ASan / TSan print no report (see stderr for them)" },
	[CHECK_SPELLING] = { "spelling", "requests for one module spelled with '-' and with '_' share one modprobe: never two at once" },
	[CHECK_NOWAIT_LOST] = { "nowait-lost", "a request_module_nowait() that returns 0 gets a modprobe" },
	[CHECK_SLOTS] = { "slots", "with every modprobe slot busy, a request and its duplicates return within 1.2x the slot timeout" },
	[CHECK_RECURSION] = { "recursion", "a module init run by the first request's modprobe that asks for that module gets 0 at once, not a wait for itself" },
	[CHECK_FLOOD] = { "flood", "a burst of duplicates warns once, and its first request reports how many there were" },
};

static struct {
	pthread_mutex_t lock;
	unsigned long failures[NR_CHECKS];
	unsigned int nr_details[NR_CHECKS];
	char details[NR_CHECKS][RIG_MAX_DETAILS][240];
} rig_results = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void rig_print_quoted(const char *key, const char *s);
static void rig_fail(enum rig_check check, const char *fmt, ...) __printf(2, 3);

static void rig_fail(enum rig_check check, const char *fmt, ...)
{
	unsigned int n;
	va_list ap;

	rig_lock(&rig_results.lock);
	rig_results.failures[check]++;
	n = rig_results.nr_details[check];
	if (n < RIG_MAX_DETAILS) {
		va_start(ap, fmt);
		vsnprintf(rig_results.details[check][n], sizeof(rig_results.details[check][n]),
			  fmt, ap);
		va_end(ap);
		rig_results.nr_details[check]++;
		/* Now, in case a sanitizer or a crash ends the run before the summary. */
		if (n < opts.max_details) {
			printf("RIG fail check=%s", rig_checks[check].name);
			rig_print_quoted("msg", rig_results.details[check][n]);
			putchar('\n');
		}
	}
	rig_unlock(&rig_results.lock);
}

/* ---- scenarios --------------------------------------------------------- */


struct rig_scenario {
	const char *name;
	const char *focus;
	const char *help;
	void (*setup)(struct rig_opts *o);
};

static unsigned int rig_linger_us(void)
{
	return RIG_LINGER_NS / 1000;
}

static void setup_uaf(struct rig_opts *o)
{
	/* A waiter stalls at wait_for_completion() for longer than the linger. */
	o->requests = 1000;
	o->names = 4;
	rig_perturb_cfg.stall_permille[RIG_SITE_WAIT] = 50;
	rig_perturb_cfg.stall_us[RIG_SITE_WAIT] = 3 * rig_linger_us();
}

static void setup_dups(struct rig_opts *o)
{
}

static void setup_reload(struct rig_opts *o)
{
	o->requests = 4000;
	o->reload_permille = 1000;
}

static void setup_nomem(struct rig_opts *o)
{
	o->nomem_permille = 100;
}

static void setup_owner_nomem(struct rig_opts *o)
{
	o->late_nomem_permille = 100;
	o->think_us = 100;
}

static void setup_nowait(struct rig_opts *o)
{
	/* Pauses spread the run over many lingers: each expiry opens a window. */
	o->nowait_permille = 500;
	o->think_us = 100;
}

static void setup_kill(struct rig_opts *o)
{
	o->kill_interval_us = 400;
	o->think_us = 100;
}

static void setup_stress(struct rig_opts *o)
{
	o->threads = 8;
	o->requests = 100000;
	o->names = 8;
	o->nowait_permille = 100;
	o->nomem_permille = 20;
	o->reload_permille = 50;
	o->kill_interval_us = 2000;
	/* A few waiters stall past the linger, as in "uaf". */
	rig_perturb_cfg.stall_permille[RIG_SITE_WAIT] = 1;
	rig_perturb_cfg.stall_us[RIG_SITE_WAIT] = 3 * rig_linger_us();
}

static void setup_slots(struct rig_opts *o)
{
	/* 50 slot holders, the first request, 100 duplicates and 5 nowait ones. */
	o->slots = true;
	o->threads = RIG_KMOD_SLOTS + 1 + 100 + RIG_SLOTS_NOWAIT;
	o->names = 1;
	o->fail_every = 0;
	o->umh_threads = 8;
}

static void setup_spellings(struct rig_opts *o)
{
	/*
	 * Every name has an '_'; only waiting requests with memory, so every
	 * duplicate converges and modprobes of one module never overlap.
	 */
	o->spellings = true;
	o->fail_every = 3;
	o->requests = 20000;
}

static void setup_recursive(struct rig_opts *o)
{
	/*
	 * Every module has a post softdep whose init asks for it; reload
	 * cycles load private modules again and again, each load a window.
	 */
	o->recursive = true;
	o->requests = 2000;
	o->reload_permille = 500;
	o->hang_timeout_s = 5;
}

static void setup_flood(struct rig_opts *o)
{
	/*
	 * 48 callers released at once, 50 times; a slow load keeps them
	 * together. Fewer than kmod.c's 50 slots, so that the posted hooks,
	 * which take a slot before the check, are judged on their warnings.
	 */
	o->flood = true;
	o->threads = 48;
	o->names = 1;
	o->fail_every = 0;
	o->rounds = 50;
	rig_userspace.load_us = 5000;
}

static const struct rig_scenario rig_scenarios[] = {
	{ "uaf", "uaf", "(a) waiters stall past the linger: use of a freed entry", setup_uaf },
	{ "dups", "dup-value", "(b) concurrent waits on modules that load and that fail", setup_dups },
	{ "reload", "reload", "(c) load, rmmod, load again; not installed, installed, load", setup_reload },
	{ "nomem", "nomem", "(d) 10% of requests under memory pressure (kzalloc fails)", setup_nomem },
	{ "nowait", "early", "(e) request_module_nowait() racing request_module()", setup_nowait },
	{ "owner-nomem", "", "10% of first requests fail modprobe for lack of memory; waiters get it", setup_owner_nomem },
	{ "kill", "kill", "SIGKILL to requests while they wait", setup_kill },
	{ "stress", "", "(a)-(e) and kill mixed, for long runs", setup_stress },
	{ "spellings", "spelling", "one module asked for as snd-dummy and as snd_dummy", setup_spellings },
	{ "slots", "slots", "every modprobe slot busy: a request, 100 duplicates and 5 nowait ones time out", setup_slots },
	{ "recursive", "recursion", "a softdep's init asks for the module its modprobe is loading", setup_recursive },
	{ "flood", "flood", "48 callers at once, 50 rounds: one warning per burst and its count", setup_flood },
};

static const struct rig_scenario *rig_scenario_find(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(rig_scenarios); i++)
		if (!strcmp(rig_scenarios[i].name, name))
			return &rig_scenarios[i];
	return NULL;
}

static void rig_defaults(struct rig_opts *o)
{
	o->scenario = "dups";
	o->threads = 4;
	o->requests = 20000;
	o->seed = 1;
	o->names = 6;
	o->fail_every = 2;
	o->fail_ret = 256;
	o->workers = 2;
	o->hang_timeout_s = 30;
	o->progress_s = 5;
	o->max_details = 5;
	rig_perturb_cfg.yield_permille = 20;
	rig_perturb_cfg.sleep_permille = 5;
	rig_perturb_cfg.sleep_max_us = 50;
	rig_rcu_gp_us = 50;
}

enum {
	OPT_SCENARIO = 256, OPT_THREADS, OPT_REQUESTS, OPT_SEED, OPT_NAMES,
	OPT_FAIL_EVERY, OPT_FAIL_RET, OPT_NOWAIT, OPT_NOMEM, OPT_LATE_NOMEM, OPT_RELOAD, OPT_KILL,
	OPT_THINK_US, OPT_EXEC_US, OPT_LOAD_US, OPT_FAIL_US, OPT_YIELD, OPT_SLEEP, OPT_SLEEP_MAX,
	OPT_STALL, OPT_RCU_GP, OPT_WORKERS, OPT_UMH, OPT_PARAM, OPT_HANG,
	OPT_SERIAL, OPT_SWITCH, OPT_DETAILS, OPT_PRINTK, OPT_PROGRESS, OPT_VERBOSE, OPT_LIST, OPT_LIST_CHECKS, OPT_HELP,
};

static const struct option rig_options[] = {
	{ "scenario", required_argument, NULL, OPT_SCENARIO },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "requests", required_argument, NULL, OPT_REQUESTS },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "names", required_argument, NULL, OPT_NAMES },
	{ "fail-every", required_argument, NULL, OPT_FAIL_EVERY },
	{ "fail-ret", required_argument, NULL, OPT_FAIL_RET },
	{ "nowait-permille", required_argument, NULL, OPT_NOWAIT },
	{ "nomem-permille", required_argument, NULL, OPT_NOMEM },
	{ "late-nomem-permille", required_argument, NULL, OPT_LATE_NOMEM },
	{ "reload-permille", required_argument, NULL, OPT_RELOAD },
	{ "kill-interval-us", required_argument, NULL, OPT_KILL },
	{ "think-us", required_argument, NULL, OPT_THINK_US },
	{ "exec-us", required_argument, NULL, OPT_EXEC_US },
	{ "load-us", required_argument, NULL, OPT_LOAD_US },
	{ "fail-us", required_argument, NULL, OPT_FAIL_US },
	{ "yield-permille", required_argument, NULL, OPT_YIELD },
	{ "sleep-permille", required_argument, NULL, OPT_SLEEP },
	{ "sleep-max-us", required_argument, NULL, OPT_SLEEP_MAX },
	{ "stall", required_argument, NULL, OPT_STALL },
	{ "rcu-gp-us", required_argument, NULL, OPT_RCU_GP },
	{ "workers", required_argument, NULL, OPT_WORKERS },
	{ "umh-threads", required_argument, NULL, OPT_UMH },
	{ "param", required_argument, NULL, OPT_PARAM },
	{ "hang-timeout", required_argument, NULL, OPT_HANG },
	{ "serial", no_argument, NULL, OPT_SERIAL },
	{ "switch-permille", required_argument, NULL, OPT_SWITCH },
	{ "max-details", required_argument, NULL, OPT_DETAILS },
	{ "progress", required_argument, NULL, OPT_PROGRESS },
	{ "printk-limit", required_argument, NULL, OPT_PRINTK },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "list-scenarios", no_argument, NULL, OPT_LIST },
	{ "list-checks", no_argument, NULL, OPT_LIST_CHECKS },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static void rig_usage(FILE *f)
{
	fprintf(f,
		"usage: rig-%s [options]\n"
		"  --scenario NAME        uaf, dups, reload, nomem, nowait, owner-nomem,\n"
		"                         kill, stress, spellings, slots, recursive, flood\n"
		"  --threads N --requests N --seed N\n"
		"  --names N              shared module names\n"
		"  --fail-every K         every K-th shared name cannot be loaded (0: none)\n"
		"  --fail-ret V           modprobe's result for those (256)\n"
		"  --nowait-permille P --nomem-permille P --reload-permille P\n"
		"  --late-nomem-permille P  memory runs out after dups.c allocated its entry\n"
		"  --kill-interval-us U   SIGKILL a random waiting request every ~U us\n"
		"  --think-us U           pause up to U us between a thread's requests\n"
		"  --exec-us U --load-us U --fail-us U   modprobe timings\n"
		"  --yield-permille P --sleep-permille P --sleep-max-us U\n"
		"  --stall SITE:PERMILLE:US  long stalls at one site: mutex slab list rcu\n"
		"                         complete wait wake queue worker kref printk\n"
		"  --rcu-gp-us U --workers N --umh-threads N\n"
		"  --param NAME=VALUE     module parameter, e.g. module.enable_dups_trace=1\n"
		"  --hang-timeout S       fail as hung when no request returns for S seconds\n"
		"  --serial               one task at a time, the next picked from the seed at\n"
		"                         every perturbation and blocking point; virtual time:\n"
		"                         a seed replays one interleaving\n"
		"  --switch-permille P    --serial: chance of a switch at a perturbation point (500)\n"
		"  --progress S           print a progress line every S seconds (0: never)\n"
		"  --max-details N --printk-limit N --verbose\n"
		"  --list-scenarios --list-checks\n", RIG_VARIANT);
}

static unsigned long rig_parse_ulong(const char *opt, const char *val, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(val, &end, 0);
	if (errno || *end || !*val || v > max) {
		fprintf(stderr, "rig: --%s: bad value '%s' (0..%lu)\n", opt, val, max);
		exit(2);
	}
	return v;
}

static void rig_parse_stall(const char *val)
{
	char site[32];
	unsigned int permille, us;
	int idx;

	if (sscanf(val, "%31[a-z]:%u:%u", site, &permille, &us) != 3)
		idx = -1;
	else
		idx = rig_site_lookup(site);
	if (idx < 0 || permille > 1000) {
		fprintf(stderr, "rig: --stall: want SITE:PERMILLE:US with a known site, got '%s'\n", val);
		exit(2);
	}
	rig_perturb_cfg.stall_permille[idx] = permille;
	rig_perturb_cfg.stall_us[idx] = us;
}

static void rig_parse(int argc, char **argv, bool apply)
{
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", rig_options, NULL)) != -1) {
		const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "";

		if (!apply && c != OPT_SCENARIO && c != '?')
			continue;
		switch (c) {
		case OPT_SCENARIO:
			opts.scenario = optarg;
			break;
		case OPT_THREADS:
			opts.threads = rig_parse_ulong(name, optarg, RIG_MAX_THREADS);
			break;
		case OPT_REQUESTS:
			opts.requests = rig_parse_ulong(name, optarg, ULONG_MAX / 2);
			break;
		case OPT_SEED:
			opts.seed = rig_parse_ulong(name, optarg, ULONG_MAX);
			break;
		case OPT_SERIAL:
			opts.serial = true;
			break;
		case OPT_SWITCH:
			rig_serial_switch_permille = rig_parse_ulong(name, optarg, 1000);
			break;
		case OPT_NAMES:
			opts.names = rig_parse_ulong(name, optarg, 1000);
			break;
		case OPT_FAIL_EVERY:
			opts.fail_every = rig_parse_ulong(name, optarg, 1000);
			break;
		case OPT_FAIL_RET:
			opts.fail_ret = (int)rig_parse_ulong(name, optarg, INT_MAX);
			break;
		case OPT_NOWAIT:
			opts.nowait_permille = rig_parse_ulong(name, optarg, 1000);
			break;
		case OPT_NOMEM:
			opts.nomem_permille = rig_parse_ulong(name, optarg, 1000);
			break;
		case OPT_LATE_NOMEM:
			opts.late_nomem_permille = rig_parse_ulong(name, optarg, 1000);
			break;
		case OPT_RELOAD:
			opts.reload_permille = rig_parse_ulong(name, optarg, 1000);
			break;
		case OPT_KILL:
			opts.kill_interval_us = rig_parse_ulong(name, optarg, 10000000);
			break;
		case OPT_THINK_US:
			opts.think_us = rig_parse_ulong(name, optarg, 10000000);
			break;
		case OPT_EXEC_US:
			rig_userspace.exec_us = rig_parse_ulong(name, optarg, 10000000);
			break;
		case OPT_LOAD_US:
			rig_userspace.load_us = rig_parse_ulong(name, optarg, 10000000);
			break;
		case OPT_FAIL_US:
			rig_userspace.fail_us = rig_parse_ulong(name, optarg, 10000000);
			break;
		case OPT_YIELD:
			rig_perturb_cfg.yield_permille = rig_parse_ulong(name, optarg, 1000);
			break;
		case OPT_SLEEP:
			rig_perturb_cfg.sleep_permille = rig_parse_ulong(name, optarg, 1000);
			break;
		case OPT_SLEEP_MAX:
			rig_perturb_cfg.sleep_max_us = rig_parse_ulong(name, optarg, 10000000);
			break;
		case OPT_STALL:
			rig_parse_stall(optarg);
			break;
		case OPT_RCU_GP:
			rig_rcu_gp_us = rig_parse_ulong(name, optarg, 10000000);
			break;
		case OPT_WORKERS:
			opts.workers = rig_parse_ulong(name, optarg, 64);
			break;
		case OPT_UMH:
			opts.umh_threads = rig_parse_ulong(name, optarg, RIG_MAX_THREADS);
			break;
		case OPT_PARAM:
			if (opts.nr_params >= ARRAY_SIZE(opts.params)) {
				fprintf(stderr, "rig: too many --param\n");
				exit(2);
			}
			opts.params[opts.nr_params++] = optarg;
			break;
		case OPT_HANG:
			opts.hang_timeout_s = rig_parse_ulong(name, optarg, 86400);
			break;
		case OPT_PROGRESS:
			opts.progress_s = rig_parse_ulong(name, optarg, 86400);
			break;
		case OPT_DETAILS:
			opts.max_details = rig_parse_ulong(name, optarg, RIG_MAX_DETAILS);
			break;
		case OPT_PRINTK:
			rig_printk_limit = rig_parse_ulong(name, optarg, UINT_MAX);
			break;
		case OPT_VERBOSE:
			rig_verbose = true;
			break;
		case OPT_LIST:
			for (c = 0; c < (int)ARRAY_SIZE(rig_scenarios); c++)
				printf("RIG scenario name=%s focus=%s help=\"%s\"\n",
				       rig_scenarios[c].name, rig_scenarios[c].focus,
				       rig_scenarios[c].help);
			exit(0);
		case OPT_LIST_CHECKS:
			for (c = 0; c < NR_CHECKS; c++)
				printf("RIG checkdef name=%s what=\"%s\"\n",
				       rig_checks[c].name, rig_checks[c].what);
			exit(0);
		case OPT_HELP:
			rig_usage(stdout);
			exit(0);
		default:
			rig_usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rig: unexpected argument '%s'\n", argv[optind]);
		exit(2);
	}
}

/* ---- driver threads ---------------------------------------------------- */

struct rig_stats {
	unsigned long requests;
	unsigned long wait;
	unsigned long nowait;
	unsigned long first;
	unsigned long dup_wait;
	unsigned long dup_nowait;
	unsigned long untracked;
	unsigned long killed;
	unsigned long reload_cycles;
	unsigned long fallback;
	unsigned long dup_owner_nomem;
};

struct rig_thread {
	pthread_t thread;
	unsigned int id;
	struct task_struct *task;	/* atomic */
	pthread_mutex_t kill_lock;	/* @killable against the killer */
	bool killable;
	struct rig_module *private[RIG_PRIVATE_NAMES];
	struct rig_stats stats;
};

struct rig_req {
	bool dup;
	bool fallback;
	bool killed;
	bool ran_modprobe;
};

static struct rig_thread *rig_threads;
static struct rig_module **rig_shared;
static unsigned long rig_tickets;	/* atomic */
static unsigned long rig_progress;	/* atomic */
static unsigned long rig_kills;		/* atomic */
static bool rig_stop_helpers;		/* atomic */
static bool rig_watchdog_armed;		/* atomic */
static struct rig_barrier rig_start_barrier;

static bool rig_take_ticket(void)
{
	return __atomic_fetch_add(&rig_tickets, 1, __ATOMIC_RELAXED) < opts.requests;
}

/* Printable results; the last few stay valid, enough for one message. */
static const char *rig_errname(int ret)
{
	static __thread char bufs[4][24];
	static __thread unsigned int next;
	char *buf;

	switch (ret) {
	case -ENOMEM:
		return "-ENOMEM";
	case -ERESTARTSYS:
		return "-ERESTARTSYS";
	case RIG_POISON_FREE_INT:
		return "0x6b6b6b6b (POISON_FREE)";
	}
	buf = bufs[next++ % ARRAY_SIZE(bufs)];
	snprintf(buf, sizeof(bufs[0]), "%d", ret);
	return buf;
}

/* Windows and reports across the run (atomic). */
static unsigned long rig_dup_warnings;	/* duplicates that printed the warning */
static unsigned long rig_bursts;	/* first requests that reported duplicates */
static unsigned long rig_burst_dups;	/* the duplicates they reported */

/* "... duplicate requests for module <name>: <n>, ...": a burst's report */
static void rig_note_burst_report(const struct task_struct *tsk)
{
	const char *p = strstr(tsk->last_info, "duplicate requests for module ");
	unsigned int n;

	if (p && sscanf(p, "duplicate requests for module %*[^:]: %u", &n) == 1) {
		__atomic_fetch_add(&rig_bursts, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&rig_burst_dups, n, __ATOMIC_RELAXED);
	}
}

/* "... module <name>" then the end, ':' or ' ', in either spelling */
static bool rig_warned_about(const struct task_struct *tsk, const char *name)
{
	size_t nl = strlen(name);
	const char *p;

	for (p = tsk->last_warn; (p = strstr(p, "module ")); p++) {
		const char *n = p + strlen("module ");

		if (strlen(n) > nl && parameqn(n, name, nl) && strchr("\n: ", n[nl]))
			return true;
	}
	return false;
}

/*
 * @budget: allocations the request may make before memory runs out (0: none
 * at all, 1: only dups.c's own; negative: no limit).
 */
static int rig_request(struct rig_thread *t, struct rig_module *mod, bool wait,
		       int budget, bool killable, struct rig_req *req)
{
	struct task_struct *tsk = current;
	unsigned long warns = tsk->nr_warn, infos = tsk->nr_info;
	bool bad_warns;
	char spelled[MODULE_NAME_LEN], *p;
	int ret;

	rig_task_set_state(wait ? "request_module" : "request_module_nowait", mod->name);
	tsk->alloc_budget = budget;
	tsk->kmod_dup = false;
	tsk->kmod_ran_modprobe = false;
	tsk->kmod_owner_hint = wait && budget == 1;
	if (killable) {
		rig_lock(&t->kill_lock);
		t->killable = true;
		rig_unlock(&t->kill_lock);
	}

	/* "spellings": '-' for '_' at random, one module to modprobe either way */
	strscpy(spelled, mod->name, sizeof(spelled));
	for (p = spelled; opts.spellings && *p; p++)
		if (*p == '_' && rig_random_below(2))
			*p = '-';
	if (wait)
		ret = request_module("%s", spelled);
	else
		ret = request_module_nowait("%s", spelled);

	req->killed = false;
	if (killable) {
		rig_lock(&t->kill_lock);
		t->killable = false;
		req->killed = rig_clear_sigkill(tsk);
		rig_unlock(&t->kill_lock);
	}
	tsk->alloc_budget = -1;
	req->dup = tsk->kmod_dup;
	req->ran_modprobe = tsk->kmod_ran_modprobe;
	rig_task_set_state("driver", NULL);

	/*
	 * A duplicate warns once; from API 2 on it may be that only the first
	 * of a burst does (today's, and a fix-up series from its warn-once
	 * patch on, while its hooks are still API 2). A request that warned
	 * and then went on as a first request fell back: it found an entry
	 * whose result it could not use (from API 3 on also its own
	 * modprobe's, or one that did not return in time, a second warning).
	 * Its own modprobe may still fail before it runs.
	 */
	warns = tsk->nr_warn - warns;
#if RIG_DUPS_API >= 2
	req->fallback = !req->dup && warns >= 1;
	bad_warns = warns > (req->dup ? 1 : 2);
#else
	req->fallback = !req->dup && warns == 1;
	bad_warns = !req->fallback && warns != (req->dup ? 1 : 0);
#endif
	if (req->dup && warns == 1)
		__atomic_fetch_add(&rig_dup_warnings, 1, __ATOMIC_RELAXED);
	if (tsk->nr_info != infos)
		rig_note_burst_report(tsk);

	t->stats.requests++;
	if (wait)
		t->stats.wait++;
	else
		t->stats.nowait++;
	if (req->dup)
		wait ? t->stats.dup_wait++ : t->stats.dup_nowait++;
	else if (req->fallback)
		t->stats.fallback++;
	else if (wait)
		t->stats.first++;
	if (!budget && !req->dup)
		t->stats.untracked++;
	if (req->killed)
		t->stats.killed++;

	if (bad_warns)
		rig_fail(CHECK_WARN, "%s: %s(%s) %s and printed %lu warnings, the last: %s",
			 tsk->comm, wait ? "request_module" : "request_module_nowait",
			 mod->name, req->dup ? "was a duplicate" : "was not a duplicate",
			 warns, tsk->last_warn);
	if (warns && !rig_warned_about(tsk, mod->name))
		rig_fail(CHECK_WARN, "%s: duplicate warning for %s does not name it: %s",
			 tsk->comm, mod->name, tsk->last_warn);

	__atomic_fetch_add(&rig_progress, 1, __ATOMIC_RELAXED);
	return ret;
}

/* 0x6b: kfree()d (POISON_FREE); 0xa5: kmalloc()ed but never written */
static bool rig_poisoned(int ret)
{
	return (unsigned int)ret == 0x6b6b6b6bU || (unsigned int)ret == 0xa5a5a5a5U;
}

static void rig_shared_request(struct rig_thread *t, struct rig_module *mod,
			       bool wait, int budget)
{
	const char *comm = current->comm;
	/* -ENOMEM announces that could still reach this request */
	unsigned long nomem_done = __atomic_load_n(&mod->owner_nomem_done, __ATOMIC_SEQ_CST);
	struct rig_req req;
	int ret, expected;

	ret = rig_request(t, mod, wait, budget, wait, &req);
	if (rig_poisoned(ret)) {
		rig_fail(CHECK_UAF, "%s: request_module(%s) returned %#x: a result read from freed memory",
			 comm, mod->name, ret);
		return;
	}
	if (!wait) {
		if (req.dup && ret)
			rig_fail(CHECK_DUP_VALUE, "%s: duplicate request_module_nowait(%s) returned %s, not 0",
				 comm, mod->name, rig_errname(ret));
		return;
	}
	/* A killed request may return whatever its interrupted wait gave it. */
	if (req.killed)
		return;

	if (!req.dup) {
		/* Its own modprobe: no memory left for call_modprobe() (budget 0 or 1) */
		expected = budget >= 0 ? -ENOMEM : mod->fail_ret;
		if (ret != expected)
			rig_fail(CHECK_MODEL, "%s: first request_module(%s) returned %s, its modprobe gives %s",
				 comm, mod->name, rig_errname(ret), rig_errname(expected));
		return;
	}

	expected = mod->fail_ret;
	if (ret == expected) {
		if (!ret && !rig_module_loaded(mod))
			rig_fail(CHECK_EARLY, "%s: duplicate request_module(%s) returned 0 while %s was not loaded yet",
				 comm, mod->name, mod->name);
		return;
	}
	if (ret == -ENOMEM && __atomic_load_n(&mod->owner_nomem, __ATOMIC_SEQ_CST) > nomem_done) {
		/* its first request's own allocations failed: every waiter's result */
		t->stats.dup_owner_nomem++;
		return;
	}
	if (ret == -ENOMEM)
		rig_fail(CHECK_NOMEM, "%s: duplicate request_module(%s) returned -ENOMEM, the result of another request whose allocations failed; %s gives %s",
			 comm, mod->name, mod->name, rig_errname(expected));
	else if (ret == -ERESTARTSYS)
		rig_fail(CHECK_KILL, "%s: duplicate request_module(%s) returned -ERESTARTSYS without being killed (the first request was); %s gives %s",
			 comm, mod->name, mod->name, rig_errname(expected));
	else if (!ret)
		rig_fail(CHECK_EARLY, "%s: duplicate request_module(%s) returned 0, but %s cannot be loaded (modprobe gives %s): woken by a result that is not its modprobe's",
			 comm, mod->name, mod->name, rig_errname(expected));
	else
		rig_fail(CHECK_DUP_VALUE, "%s: duplicate request_module(%s) returned %s, modprobe gives %s",
			 comm, mod->name, rig_errname(ret), rig_errname(expected));
}

/* One wait request of a reload cycle: it must run modprobe and get @expected. */
static void rig_reload_step(struct rig_thread *t, struct rig_module *mod,
			    int expected, const char *after)
{
	unsigned long runs = rig_module_modprobe_runs(mod);
	const char *comm = current->comm;
	struct rig_req req;
	int ret;

	ret = rig_request(t, mod, true, -1, false, &req);
	if (rig_poisoned(ret)) {
		rig_fail(CHECK_UAF, "%s: request_module(%s) returned %#x: a result read from freed memory",
			 comm, mod->name, ret);
		return;
	}
	if (rig_module_modprobe_runs(mod) == runs)
		rig_fail(CHECK_RELOAD, "%s: request_module(%s) %s returned %s without running modprobe (%s); %s is %sloaded",
			 comm, mod->name, after, rig_errname(ret),
			 req.dup ? "handled as a duplicate of an earlier request" : "no modprobe",
			 mod->name, rig_module_loaded(mod) ? "" : "not ");
	else if (ret != expected)
		rig_fail(CHECK_RELOAD, "%s: request_module(%s) %s returned %s, expected %s",
			 comm, mod->name, after, rig_errname(ret), rig_errname(expected));
	else if (!ret && !rig_module_loaded(mod))
		rig_fail(CHECK_MODEL, "%s: request_module(%s) ran modprobe and returned 0 but it is not loaded",
			 comm, mod->name);
}

/*
 * Private module, so nothing else races: (maybe not installed yet) load,
 * rmmod, load again. Every request must run modprobe.
 */
static void rig_reload_cycle(struct rig_thread *t, struct rig_module *mod)
{
	bool not_installed = rig_random_below(2);

	t->stats.reload_cycles++;
	if (not_installed) {
		rig_module_set_fail_next(mod, 1);
		rig_reload_step(t, mod, rig_userspace.fail_ret, "for a module not installed yet");
		rig_reload_step(t, mod, 0, "after it got installed");
	} else {
		rig_reload_step(t, mod, 0, "to load it");
		rig_rmmod(mod);
		rig_reload_step(t, mod, 0, "after rmmod");
	}
	rig_module_set_fail_next(mod, 0);
	rig_rmmod(mod);
}

/*
 * "slots": threads 0..49 request modules whose modprobe does not return
 * until the end, so they hold all of kmod.c's slots. Then thread 50 asks
 * for mod0 and waits for a slot, and the others ask for mod0 too. Without
 * a free slot the first request fails with -ETIME after the slot timeout;
 * each duplicate should get that result then, not take its own turn.
 */
static struct rig_module *rig_slot_holders[RIG_KMOD_SLOTS];
static u64 rig_slots_start;		/* atomic: the first request's start */
static unsigned long rig_slots_done;	/* atomic: first and duplicates returned */
static u64 rig_slots_max_ns;		/* atomic */
static unsigned long rig_slots_etime;	/* atomic */

static void rig_store_max(u64 *max, u64 v)
{
	u64 old = __atomic_load_n(max, __ATOMIC_RELAXED);

	while (v > old && !__atomic_compare_exchange_n(max, &old, v, false, __ATOMIC_RELAXED,
						       __ATOMIC_RELAXED))
		;
}

static void rig_slots_request(struct rig_thread *t, bool wait)
{
	struct rig_module *mod = rig_shared[0];
	struct rig_req req;
	u64 took;
	int ret;

	ret = rig_request(t, mod, wait, -1, false, &req);
	took = rig_now_ns() - __atomic_load_n(&rig_slots_start, __ATOMIC_ACQUIRE);
	if (!wait && !ret)
		/* its modprobe can only be the first request's, which fails */
		rig_fail(CHECK_NOWAIT_LOST, "%s: request_module_nowait(%s) returned 0 %s, with every slot busy: nothing runs modprobe for it",
			 current->comm, mod->name, req.dup ? "as a duplicate" : "");
	else if (ret == -ETIME)
		__atomic_fetch_add(&rig_slots_etime, 1, __ATOMIC_RELAXED);
	else
		rig_fail(CHECK_SLOTS, "%s: request_module(%s) returned %s with every slot busy, not -ETIME",
			 current->comm, mod->name, rig_errname(ret));
	if (took * 10 > RIG_SLOT_TIMEOUT_NS * 12)
		rig_fail(CHECK_SLOTS, "%s: request_module(%s) %sreturned after %.0f ms, the slot timeout is %.0f ms",
			 current->comm, mod->name, req.dup ? "(a duplicate) " : "",
			 took / 1e6, RIG_SLOT_TIMEOUT_NS / 1e6);
	rig_store_max(&rig_slots_max_ns, took);
	__atomic_fetch_add(&rig_slots_done, 1, __ATOMIC_RELEASE);
}

static void rig_slots_thread(struct rig_thread *t)
{
	struct rig_req req;
	unsigned int i;

	if (t->id < RIG_KMOD_SLOTS) {
		rig_request(t, rig_slot_holders[t->id], true, -1, false, &req);
		return;
	}
	if (t->id == RIG_KMOD_SLOTS) {
		/* every holder is past its slot once its modprobe job exists */
		while (rig_umh_jobs() < RIG_KMOD_SLOTS)
			rig_sched_poll_ns(100000);
		__atomic_store_n(&rig_slots_start, rig_now_ns(), __ATOMIC_RELEASE);
		rig_slots_request(t, true);
		/* the duplicates have all returned: let the holders go */
		while (__atomic_load_n(&rig_slots_done, __ATOMIC_ACQUIRE) < opts.threads - RIG_KMOD_SLOTS)
			rig_sched_poll_ns(100000);
		for (i = 0; i < RIG_KMOD_SLOTS; i++)
			rig_module_hold(rig_slot_holders[i], false);
		printf("RIG slots timeout_ms=%.1f requests=%u etime=%lu max_ms=%.1f modprobe=%lu\n",
		       RIG_SLOT_TIMEOUT_NS / 1e6, opts.threads - RIG_KMOD_SLOTS,
		       __atomic_load_n(&rig_slots_etime, __ATOMIC_RELAXED),
		       __atomic_load_n(&rig_slots_max_ns, __ATOMIC_RELAXED) / 1e6,
		       rig_module_modprobe_runs(rig_shared[0]));
		return;
	}
	/* a duplicate: after the first request has had a moment to register */
	while (!__atomic_load_n(&rig_slots_start, __ATOMIC_ACQUIRE))
		rig_sched_poll_ns(100000);
	rig_sleep_ns(RIG_SLOT_TIMEOUT_NS / 20);
	rig_slots_request(t, t->id < opts.threads - RIG_SLOTS_NOWAIT);
}

/*
 * "flood": all threads ask for mod0 at once, then thread 0 unloads it, in
 * rounds. Each round is one burst or a few (callers that come after the
 * first request announced start a new one).
 */
static struct rig_barrier rig_round_barrier;

static void rig_flood_thread(struct rig_thread *t)
{
	unsigned int round;

	for (round = 0; round < opts.rounds; round++) {
		rig_barrier_wait(&rig_round_barrier);
		rig_shared_request(t, rig_shared[0], true, -1);
		rig_barrier_wait(&rig_round_barrier);
		if (!t->id)
			rig_rmmod(rig_shared[0]);
	}
}

static void rig_ticket_thread(struct rig_thread *t)
{
	while (rig_take_ticket()) {
		struct rig_module *mod;
		int budget = -1;
		bool wait;

		if (rig_chance_permille(opts.reload_permille)) {
			rig_take_ticket();	/* two requests */
			rig_reload_cycle(t, t->private[rig_random_below(RIG_PRIVATE_NAMES)]);
			continue;
		}
		if (opts.think_us)
			rig_sleep_random_us(opts.think_us);
		mod = rig_shared[rig_random_below(opts.names)];
		wait = !rig_chance_permille(opts.nowait_permille);
		if (rig_chance_permille(opts.nomem_permille))
			budget = 0;
		else if (rig_chance_permille(opts.late_nomem_permille))
			budget = 1;
		rig_shared_request(t, mod, wait, budget);
	}
}

static void *rig_driver_thread(void *arg)
{
	struct rig_thread *t = arg;

	__atomic_store_n(&t->task, rig_task_start("rig-%u", t->id), __ATOMIC_RELEASE);
	rig_barrier_wait(&rig_start_barrier);
	if (opts.slots)
		rig_slots_thread(t);
	else if (opts.flood)
		rig_flood_thread(t);
	else
		rig_ticket_thread(t);
	rig_task_set_state("done", NULL);
	return NULL;
}

/* ---- helpers: killer and watchdog -------------------------------------- */

static void *rig_killer_thread(void *arg)
{
	rig_task_start("killer");
	while (!__atomic_load_n(&rig_stop_helpers, __ATOMIC_RELAXED)) {
		struct rig_thread *t = &rig_threads[rig_random_below(opts.threads)];
		struct task_struct *tsk = __atomic_load_n(&t->task, __ATOMIC_ACQUIRE);

		rig_sleep_random_us(opts.kill_interval_us * 2);
		if (!tsk)
			continue;
		rig_lock(&t->kill_lock);
		if (t->killable) {
			rig_send_sigkill(tsk);
			__atomic_fetch_add(&rig_kills, 1, __ATOMIC_RELAXED);
		}
		rig_unlock(&t->kill_lock);
	}
	return NULL;
}

static void rig_print_checks(void);

static void rig_report_hang(const char *what)
{
	unsigned int i, n = rig_nr_tasks();
	u64 now = rig_now_ns();

	rig_fail(CHECK_HANG, "%s", what);
	for (i = 0; i < n; i++) {
		struct task_struct *tsk = rig_task_by_index(i);
		const char *state = __atomic_load_n(&tsk->state, __ATOMIC_ACQUIRE);
		const char *arg = __atomic_load_n(&tsk->state_arg, __ATOMIC_RELAXED);
		u64 since = __atomic_load_n(&tsk->state_since, __ATOMIC_RELAXED);

		if (!state || !strcmp(state, "idle") || !strcmp(state, "done") ||
		    !strcmp(state, "running"))
			continue;
		rig_fail(CHECK_HANG, "%s: %s%s%s%s for %.1f s", tsk->comm, state,
			 arg ? "(" : "", arg ? arg : "", arg ? ")" : "",
			 (now - since) / 1e9);
	}
	rig_print_checks();
	printf("RIG result status=fail\n");
	fflush(stdout);
	_exit(3);
}

static void *rig_watchdog_thread(void *arg)
{
	u64 start = rig_real_ns(), last_change = start, last_print = start;
	unsigned long last = 0;

	/* real time: under --serial the watchdog is outside the scheduler */
	rig_task_start("watchdog");
	while (!__atomic_load_n(&rig_stop_helpers, __ATOMIC_RELAXED)) {
		unsigned long now_progress = __atomic_load_n(&rig_progress, __ATOMIC_RELAXED);
		u64 now = rig_real_ns();

		if (__atomic_load_n(&rig_serial_deadlocked, __ATOMIC_ACQUIRE))
			rig_report_hang("serial: every task waits for another and none has a deadline");
		if (opts.progress_s && now - last_print >= opts.progress_s * 1000000000ULL) {
			printf("RIG progress requests=%lu elapsed_ms=%.0f\n", now_progress,
			       (now - start) / 1e6);
			last_print = now;
		}
		rig_real_sleep_ns(50 * 1000 * 1000);
		if (now_progress != last || !__atomic_load_n(&rig_watchdog_armed, __ATOMIC_RELAXED)) {
			last = now_progress;
			last_change = now;
			continue;
		}
		if (now - last_change > (u64)opts.hang_timeout_s * 1000000000ULL) {
			char what[96];

			snprintf(what, sizeof(what), "no request returned for %u s", opts.hang_timeout_s);
			rig_report_hang(what);
		}
	}
	return NULL;
}

/* ---- results ----------------------------------------------------------- */

static void rig_print_quoted(const char *key, const char *s)
{
	printf(" %s=\"", key);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s == '\n' ? ' ' : *s);
	}
	putchar('"');
}

static void rig_print_checks(void)
{
	unsigned int i, j;

	rig_lock(&rig_results.lock);
	for (i = 0; i < NR_CHECKS; i++) {
		unsigned long n = rig_results.failures[i];

		printf("RIG check name=%s status=%s failures=%lu", rig_checks[i].name,
		       n ? "fail" : "pass", n);
		rig_print_quoted("what", rig_checks[i].what);
		putchar('\n');
		for (j = 0; j < rig_results.nr_details[i] && j < opts.max_details; j++) {
			printf("RIG detail check=%s", rig_checks[i].name);
			rig_print_quoted("msg", rig_results.details[i][j]);
			putchar('\n');
		}
	}
	rig_unlock(&rig_results.lock);
	fflush(stdout);
}

static bool rig_all_passed(void)
{
	unsigned int i;
	bool ok = true;

	rig_lock(&rig_results.lock);
	for (i = 0; i < NR_CHECKS; i++)
		if (rig_results.failures[i])
			ok = false;
	rig_unlock(&rig_results.lock);
	return ok;
}

/* Folds what the primitives noticed on their own into the checks. */
static void rig_collect_bugs(void)
{
	static const struct {
		enum rig_bug_kind kind;
		enum rig_check check;
	} map[] = {
		{ RIG_BUG_MEMORY, CHECK_UAF },
		{ RIG_BUG_LIST, CHECK_UAF },
		{ RIG_BUG_REFCOUNT, CHECK_UAF },
		{ RIG_BUG_ODEBUG, CHECK_UAF },
		{ RIG_BUG_LOCKDEP, CHECK_LOCKDEP },
		{ RIG_BUG_MODEL, CHECK_MODEL },
	};
	unsigned long n;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(map); i++) {
		n = rig_bug_count(map[i].kind);
		if (n)
			rig_fail(map[i].check, "%lu %s bug(s), first: %s", n,
				 rig_bug_name(map[i].kind), rig_bug_first(map[i].kind));
	}
	n = rig_sanitizer_report_count();
	if (n)
		rig_fail(CHECK_SANITIZER, "%lu %s report(s) on stderr", n,
			 !strcmp(RIG_SANITIZER, "thread") ? "ThreadSanitizer" : "AddressSanitizer");
}

static unsigned long rig_recursive_inits(void)
{
	unsigned long n = 0;
	unsigned int i;

	for (i = 0; i < rig_nr_modules(); i++)
		n += __atomic_load_n(&rig_module_by_index(i)->init_calls, __ATOMIC_RELAXED);
	return n;
}

static void rig_check_recursion(void)
{
	unsigned int i;

	if (!rig_recursive_inits())
		rig_fail(CHECK_RECURSION, "no module init asked for the module being loaded: the window was not reached");
	for (i = 0; i < rig_nr_modules(); i++) {
		struct rig_module *mod = rig_module_by_index(i);
		unsigned long bad = __atomic_load_n(&mod->init_bad, __ATOMIC_RELAXED);

		if (bad)
			rig_fail(CHECK_RECURSION, "%s: %lu of its init's requests for %s were duplicates or failed (last %d)",
				 mod->name, bad, mod->init_requests->name,
				 __atomic_load_n(&mod->init_bad_ret, __ATOMIC_RELAXED));
	}
}

static void rig_check_flood(unsigned long dups)
{
	unsigned long warned = __atomic_load_n(&rig_dup_warnings, __ATOMIC_RELAXED);
	unsigned long bursts = __atomic_load_n(&rig_bursts, __ATOMIC_RELAXED);
	unsigned long reported = __atomic_load_n(&rig_burst_dups, __ATOMIC_RELAXED);

	if (!dups)
		rig_fail(CHECK_FLOOD, "no duplicates in %u rounds: the window was not reached", opts.rounds);
	if (warned > bursts)
		rig_fail(CHECK_FLOOD, "%lu duplicates printed the warning for %lu bursts: one per duplicate, not per burst",
			 warned, bursts);
	if (reported != dups)
		rig_fail(CHECK_FLOOD, "the first requests reported %lu duplicates (%lu reports), there were %lu",
			 reported, bursts, dups);
}

static struct rig_stats rig_sum_stats(void)
{
	struct rig_stats sum = { 0 };
	unsigned int i;

	for (i = 0; i < opts.threads; i++) {
		struct rig_stats *s = &rig_threads[i].stats;

		sum.requests += s->requests;
		sum.wait += s->wait;
		sum.nowait += s->nowait;
		sum.first += s->first;
		sum.dup_wait += s->dup_wait;
		sum.dup_nowait += s->dup_nowait;
		sum.untracked += s->untracked;
		sum.killed += s->killed;
		sum.reload_cycles += s->reload_cycles;
		sum.fallback += s->fallback;
		sum.dup_owner_nomem += s->dup_owner_nomem;
	}
	return sum;
}

static void rig_print_stats(struct rig_stats sum, u64 elapsed_ns)
{
	unsigned long runs = 0, finits = 0, finit_dups = 0, unloads = 0;
	unsigned int i;

	for (i = 0; i < rig_nr_modules(); i++) {
		struct rig_module *mod = rig_module_by_index(i);

		runs += rig_module_modprobe_runs(mod);
		finits += __atomic_load_n(&mod->finit_calls, __ATOMIC_RELAXED);
		finit_dups += __atomic_load_n(&mod->finit_dups, __ATOMIC_RELAXED);
		rig_lock(&mod->lock);
		unloads += mod->unloads;
		rig_unlock(&mod->lock);
	}
	printf("RIG stats requests=%lu threads=%u wall_ms=%.1f req_per_s=%.0f wait=%lu nowait=%lu first=%lu dup_wait=%lu dup_nowait=%lu dup_fallback=%lu dup_owner_nomem=%lu untracked=%lu killed=%lu kills_sent=%lu reload_cycles=%lu modprobe=%lu finit=%lu finit_eexist=%lu rmmod=%lu alloc_failures=%lu warnings=%lu printk_suppressed=%lu dup_warnings=%lu bursts=%lu burst_dups=%lu recursive_inits=%lu late_waits=%lu slot_waits=%lu serial=%d switches=%lu\n",
	       sum.requests, opts.threads, elapsed_ns / 1e6,
	       elapsed_ns ? sum.requests / (elapsed_ns / 1e9) : 0.0,
	       sum.wait, sum.nowait, sum.first, sum.dup_wait, sum.dup_nowait, sum.fallback,
	       sum.dup_owner_nomem, sum.untracked, sum.killed, __atomic_load_n(&rig_kills, __ATOMIC_RELAXED),
	       sum.reload_cycles, runs, finits, finit_dups, unloads,
	       rig_slab_failures(), rig_printk_count(LOGLEVEL_WARNING),
	       rig_printk_suppressed(), __atomic_load_n(&rig_dup_warnings, __ATOMIC_RELAXED),
	       __atomic_load_n(&rig_bursts, __ATOMIC_RELAXED),
	       __atomic_load_n(&rig_burst_dups, __ATOMIC_RELAXED), rig_recursive_inits(),
	       __atomic_load_n(&rig_late_waits, __ATOMIC_RELAXED),
	       __atomic_load_n(&rig_slot_waits, __ATOMIC_RELAXED), rig_serial, rig_serial_switches);
}

/* ---- main -------------------------------------------------------------- */

static void rig_make_modules(void)
{
	static const char long_name[] =
		"mod_with_the_longest_name_a_module_can_have_55_chars_xx";
	char name[MODULE_NAME_LEN];
	unsigned int i, j;

	_Static_assert(sizeof(long_name) == MODULE_NAME_LEN, "long_name must fill MODULE_NAME_LEN");
	rig_shared = calloc(opts.names, sizeof(*rig_shared));
	if (!rig_shared)
		abort();
	for (i = 0; i < opts.names; i++) {
		bool fails = opts.fail_every && i % opts.fail_every == opts.fail_every - 1;

		/* mod1 and mod10 both exist with 11 names or more: prefixes must not match */
		if (i == opts.names - 1 && opts.names >= 3)
			strscpy(name, long_name, sizeof(name));
		else
			snprintf(name, sizeof(name), opts.spellings ? "snd_mod_%u" : "mod%u", i);
		rig_shared[i] = rig_module_add(name, fails ? opts.fail_ret : 0);
	}
	if (opts.slots)
		for (i = 0; i < RIG_KMOD_SLOTS; i++) {
			snprintf(name, sizeof(name), "slot%u", i);
			rig_slot_holders[i] = rig_module_add(name, 0);
			rig_module_hold(rig_slot_holders[i], true);
		}
	for (i = 0; i < opts.threads; i++)
		for (j = 0; j < RIG_PRIVATE_NAMES; j++) {
			snprintf(name, sizeof(name), "priv%u_%u", i, j);
			rig_threads[i].private[j] = rig_module_add(name, 0);
		}
	/* "recursive": a post softdep for every module, whose init asks for it */
	for (i = 0, j = rig_nr_modules(); opts.recursive && i < j; i++) {
		struct rig_module *mod = rig_module_by_index(i), *dep;

		snprintf(name, sizeof(name), "rec%u", i);
		dep = rig_module_add(name, 0);
		dep->init_requests = mod;
		mod->softdep_post = dep;
	}
}

int main(int argc, char **argv)
{
	const struct rig_scenario *scn;
	struct rig_stats sum;
	pthread_t watchdog, killer;
	u64 start, elapsed, drain_ns;
	unsigned int i;
	bool drained;

	setvbuf(stdout, NULL, _IOLBF, 0);
	rig_defaults(&opts);
	rig_parse(argc, argv, false);
	scn = rig_scenario_find(opts.scenario);
	if (!scn) {
		fprintf(stderr, "rig: unknown scenario '%s'\n", opts.scenario);
		rig_usage(stderr);
		return 2;
	}
	scn->setup(&opts);
	rig_parse(argc, argv, true);
	if (!opts.threads || !opts.names) {
		fprintf(stderr, "rig: --threads and --names must be at least 1\n");
		return 2;
	}
	if (!opts.umh_threads)
		/* "recursive": a helper in a softdep's init waits for another */
		opts.umh_threads = (opts.recursive ? 2 : 1) * opts.threads + 4;

	rig_seed = opts.seed;
	rig_perturb_enabled = rig_perturb_cfg.yield_permille || rig_perturb_cfg.sleep_permille;
	for (i = 0; i < RIG_NR_SITES; i++)
		if (rig_perturb_cfg.stall_permille[i])
			rig_perturb_enabled = true;
	if (opts.serial) {
		rig_serial_start(opts.seed);
		rig_perturb_enabled = true;
	}
	rig_task_start("rig-main");
	rig_install_crash_handler();

	for (i = 0; i < opts.nr_params; i++) {
		char name[64];
		const char *eq = strchr(opts.params[i], '=');
		int err;

		snprintf(name, sizeof(name), "%.*s",
			 eq ? (int)(eq - opts.params[i]) : (int)strlen(opts.params[i]),
			 opts.params[i]);
		err = rig_param_set(name, eq ? eq + 1 : NULL);
		if (err) {
			fprintf(stderr, "rig: --param %s: %s\n", opts.params[i],
				err == -ENOENT ? "no such parameter" : strerror(-err));
			return 2;
		}
	}

	rig_threads = calloc(opts.threads, sizeof(*rig_threads));
	if (!rig_threads)
		abort();
	rig_make_modules();

	printf("RIG config variant=%s sanitizer=%s scenario=%s focus=%s threads=%u requests=%lu seed=%lu names=%u fail_every=%u fail_ret=%d nowait_permille=%u nomem_permille=%u late_nomem_permille=%u reload_permille=%u kill_interval_us=%u think_us=%u exec_us=%u load_us=%u fail_us=%u yield_permille=%u sleep_permille=%u sleep_max_us=%u rcu_gp_us=%u workers=%u umh_threads=%u hang_timeout_s=%u hz=%d jiffy_ns=%lu linger_ms=%.3f",
	       RIG_VARIANT, RIG_SANITIZER, scn->name, scn->focus[0] ? scn->focus : "-",
	       opts.threads, opts.requests, opts.seed, opts.names, opts.fail_every,
	       opts.fail_ret, opts.nowait_permille, opts.nomem_permille, opts.late_nomem_permille,
	       opts.reload_permille, opts.kill_interval_us, opts.think_us, rig_userspace.exec_us,
	       rig_userspace.load_us, rig_userspace.fail_us,
	       rig_perturb_cfg.yield_permille, rig_perturb_cfg.sleep_permille,
	       rig_perturb_cfg.sleep_max_us, rig_rcu_gp_us, opts.workers,
	       opts.umh_threads, opts.hang_timeout_s, HZ, (unsigned long)RIG_JIFFY_NS,
	       RIG_LINGER_NS / 1e6);
	for (i = 0; i < RIG_NR_SITES; i++)
		if (rig_perturb_cfg.stall_permille[i])
			printf(" stall_%s=%u:%u", rig_site_name(i),
			       rig_perturb_cfg.stall_permille[i], rig_perturb_cfg.stall_us[i]);
	putchar('\n');
	rig_param_list();

	rig_workqueue_start(opts.workers);
	rig_umh_start(opts.umh_threads);
	__atomic_store_n(&rig_watchdog_armed, true, __ATOMIC_RELAXED);
	rig_thread_create_free(&watchdog, rig_watchdog_thread, NULL);
	if (opts.kill_interval_us)
		rig_thread_create(&killer, rig_killer_thread, NULL);

	rig_barrier_init(&rig_start_barrier, opts.threads + 1);
	rig_barrier_init(&rig_round_barrier, opts.threads);
	for (i = 0; i < opts.threads; i++) {
		rig_threads[i].id = i;
		pthread_mutex_init(&rig_threads[i].kill_lock, NULL);
		rig_thread_create(&rig_threads[i].thread, rig_driver_thread, &rig_threads[i]);
	}
	rig_barrier_wait(&rig_start_barrier);
	start = rig_now_ns();
	for (i = 0; i < opts.threads; i++)
		rig_thread_join(rig_threads[i].thread);
	elapsed = rig_now_ns() - start;

	/* Let every modprobe exit and every work item and timer run. */
	__atomic_store_n(&rig_watchdog_armed, false, __ATOMIC_RELAXED);
	__atomic_store_n(&rig_stop_helpers, true, __ATOMIC_RELAXED);
	if (opts.kill_interval_us)
		rig_thread_join(killer);
	drain_ns = (u64)opts.hang_timeout_s * 1000000000ULL;
	drained = rig_umh_drain(drain_ns) && rig_workqueue_drain(drain_ns);
	sum = rig_sum_stats();
	rig_print_stats(sum, elapsed);
	if (!drained)
		rig_report_hang("modprobe helpers or work items still busy after all requests returned");
	for (i = 0; opts.spellings && i < opts.names; i++) {
		struct rig_module *mod = rig_shared[i];
		unsigned long overlapped;

		rig_lock(&mod->lock);
		overlapped = mod->overlapped;
		rig_unlock(&mod->lock);
		if (overlapped)
			rig_fail(CHECK_SPELLING, "%s: %lu modprobe runs started while another ran for it: one per spelling",
				 mod->name, overlapped);
	}

	if (opts.recursive)
		rig_check_recursion();
	if (opts.flood)
		rig_check_flood(sum.dup_wait + sum.dup_nowait);
	if (rig_slab_outstanding())
		rig_fail(CHECK_LEAK, "%ld kmalloc() objects still allocated after all requests returned and all work ran",
			 rig_slab_outstanding());
	rig_collect_bugs();
	rig_print_checks();
	printf("RIG result status=%s\n", rig_all_passed() ? "pass" : "fail");
	fflush(stdout);

	rig_thread_join(watchdog);
	rig_umh_stop();
	rig_workqueue_stop();
	rig_slab_quarantine_flush();
	free(rig_shared);
	free(rig_threads);
	return rig_all_passed() ? 0 : 1;
}
