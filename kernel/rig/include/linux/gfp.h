/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace rig: allocation flags. Only __GFP_ZERO changes behaviour. */
#ifndef _RIG_LINUX_GFP_H
#define _RIG_LINUX_GFP_H

#include <linux/types.h>

#define __GFP_DIRECT_RECLAIM	0x01u
#define __GFP_IO		0x02u
#define __GFP_FS		0x04u
#define __GFP_NOWARN		0x08u
#define __GFP_ZERO		0x100u

#define GFP_ATOMIC		(__GFP_NOWARN)
#define GFP_NOWAIT		(__GFP_NOWARN)
#define GFP_KERNEL		(__GFP_DIRECT_RECLAIM | __GFP_IO | __GFP_FS)

#endif /* _RIG_LINUX_GFP_H */
