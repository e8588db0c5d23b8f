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

/*
 * winvm_get_page() creates a page through write_begin and write_end on
 * what 6.1 does underneath: shmem_write_begin() leaves a new folio as the
 * page allocator handed it out, and post_alloc_hook() clears it under
 * init_on_alloc. That was checked against 6.1's sources only, and
 * write_begin takes a folio from 6.12 on: Kbuild defines
 * WINVM_HAVE_WRITE_BEGIN_PAGE for 6.1 alone; other kernels keep shmem's
 * fault path and never call these.
 */
#ifdef WINVM_HAVE_WRITE_BEGIN_PAGE
#define WINVM_WRITE_BEGIN_PAGE	true

static inline int winvm_write_begin(struct file *file,
				    struct address_space *mapping,
				    loff_t pos, struct page **pagep,
				    void **fsdata)
{
	return mapping->a_ops->write_begin(file, mapping, pos, PAGE_SIZE,
					   pagep, fsdata);
}

static inline void winvm_write_end(struct file *file,
				   struct address_space *mapping, loff_t pos,
				   struct page *page, void *fsdata)
{
	mapping->a_ops->write_end(file, mapping, pos, PAGE_SIZE, PAGE_SIZE,
				  page, fsdata);
}
#else
#define WINVM_WRITE_BEGIN_PAGE	false

static inline int winvm_write_begin(struct file *file,
				    struct address_space *mapping,
				    loff_t pos, struct page **pagep,
				    void **fsdata)
{
	return -EOPNOTSUPP;
}

static inline void winvm_write_end(struct file *file,
				   struct address_space *mapping, loff_t pos,
				   struct page *page, void *fsdata)
{
}
#endif

#endif /* WINVM_COMPAT_H */
