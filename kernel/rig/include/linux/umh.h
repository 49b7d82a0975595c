/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: usermode helper wait modes. */
#ifndef _RIG_LINUX_UMH_H
#define _RIG_LINUX_UMH_H

#define UMH_NO_WAIT	0x00	/* don't wait at all */
#define UMH_WAIT_EXEC	0x01	/* wait for the exec, but not the process */
#define UMH_WAIT_PROC	0x02	/* wait for the process to complete */
#define UMH_KILLABLE	0x04	/* wait for EXEC/PROC killable */

#endif /* _RIG_LINUX_UMH_H */
