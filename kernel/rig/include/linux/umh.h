/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: usermode helper wait modes. */
#ifndef _RIG_LINUX_UMH_H
#define _RIG_LINUX_UMH_H

#define UMH_NO_WAIT	0x00	/* don't wait at all */
#define UMH_WAIT_EXEC	0x01	/* wait for the exec, but not the process */
#define UMH_WAIT_PROC	0x02	/* wait for the process to complete */
#define UMH_KILLABLE	0x04	/* wait for EXEC/PROC killable */

#include <linux/types.h>

struct cred;

/*
 * The usermode helper as kmod.c's call_modprobe() uses it; the driver
 * (driver/modprobe.c) runs "modprobe -q -- argv[3]" on its helper
 * threads. Setup allocates like the kernel's, so it fails under the
 * request's allocation budget; exec frees the info with the cleanup.
 */
struct subprocess_info {
	const char *path;
	char **argv;
	char **envp;
	int wait;
	int retval;
	int (*init)(struct subprocess_info *info, struct cred *new);
	void (*cleanup)(struct subprocess_info *info);
	void *data;
};

struct subprocess_info *call_usermodehelper_setup(const char *path, char **argv, char **envp,
						  gfp_t gfp_mask,
						  int (*init)(struct subprocess_info *info, struct cred *new),
						  void (*cleanup)(struct subprocess_info *info),
						  void *data);
int call_usermodehelper_exec(struct subprocess_info *info, int wait);

#endif /* _RIG_LINUX_UMH_H */
