/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel API drift for winvm, kept in one place so that the rest of the
 * driver reads like code for the current kernel. Kbuild probes the headers
 * of the kernel being built against and defines WINVM_HAVE_* accordingly.
 */
#ifndef WINVM_COMPAT_H
#define WINVM_COMPAT_H

#include <linux/mm.h>

/* vm_flags became read-only in 6.3; modifiers took over. */
#ifdef WINVM_HAVE_VM_FLAGS_SET
#define winvm_vm_flags_set	vm_flags_set
#define winvm_vm_flags_clear	vm_flags_clear
#else
static inline void winvm_vm_flags_set(struct vm_area_struct *vma,
				      vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void winvm_vm_flags_clear(struct vm_area_struct *vma,
					vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

#endif /* WINVM_COMPAT_H */
