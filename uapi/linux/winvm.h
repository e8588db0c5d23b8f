/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * winvm: Windows virtual-memory semantics on a Linux process's own
 * address space, driven through /dev/winvm.
 *
 * The kernel side speaks errno and the WINVM_* flags below; the mapping to
 * Win32 names (PAGE_*, MEM_*, ERROR_*) lives in user space (libwinvm).
 *
 * Every ioctl reads its argument and, for those that change anything,
 * writes it back unchanged before it acts: an argument it cannot read or
 * write fails the call with EFAULT and changes nothing.
 *
 * ioctl block: type 'W', numbers 0x80-0x9f (unlisted in
 * Documentation/userspace-api/ioctl/ioctl-number.rst as of 6.1).
 */
#ifndef __LINUX_WINVM_H
#define __LINUX_WINVM_H

#include <linux/types.h>

/* Bumped on incompatible changes; new features add WINVM_FEATURE_* bits. */
#define WINVM_API_VERSION	1

/* Features reported by WINVM_IOC_GET_INFO. */
#define WINVM_FEATURE_PARTIAL_RELEASE	0x1ULL
#define WINVM_FEATURE_LARGE_PAGES	0x2ULL
#define WINVM_FEATURE_WRITE_WATCH	0x4ULL
#define WINVM_FEATURE_ADDRESS_REQUIREMENTS	0x8ULL
#define WINVM_FEATURE_GUARD_STACK	0x10ULL

/*
 * Page protection. A committed page holds a subset of READ, WRITE and EXEC;
 * WRITE requires READ. No bit set means no access. EXEC pages are readable
 * on x86 whatever READ says (the MMU cannot express execute-only).
 *
 * GUARD makes an accessible page a one-shot guard page: the first access
 * from user mode clears the bit and raises a guard signal (see below)
 * instead of completing; accesses from the kernel on the program's behalf
 * (read(2) into the page, process_vm_readv, ptrace) fail with EFAULT and
 * leave the guard armed.
 *
 * NOCACHE and WRITECOMBINE, mutually exclusive and never with GUARD or on
 * inaccessible pages, are cache attributes of a whole allocation: given at
 * reservation they are recorded and reported on every committed page of
 * it; given anywhere else they are ignored. The memory itself stays
 * write-back cached.
 *
 * WINVM_PROT_COPY only appears in WINVM_IOC_QUERY output for memory winvm
 * does not manage: writes to it are copy-on-write (a private file mapping).
 */
#define WINVM_PROT_READ		0x1
#define WINVM_PROT_WRITE	0x2
#define WINVM_PROT_EXEC		0x4
#define WINVM_PROT_GUARD	0x8
#define WINVM_PROT_NOCACHE	0x10
#define WINVM_PROT_WRITECOMBINE	0x20
#define WINVM_PROT_COPY		0x80

#define WINVM_PROT_MASK		(WINVM_PROT_READ | WINVM_PROT_WRITE | \
				 WINVM_PROT_EXEC)
#define WINVM_PROT_CACHE_MASK	(WINVM_PROT_NOCACHE | WINVM_PROT_WRITECOMBINE)

/*
 * A guard-page hit is delivered to the thread that made the access as
 * SIGSEGV with si_code SEGV_ACCERR, si_addr the address accessed, and
 * si_errno WINVM_GUARD_SIGNATURE | WINVM_ACCESS_* (kernel-made faults have
 * si_errno 0). A context that asked for WINVM_OPTION_GUARD_STACK also gets
 * WINVM_GUARD_STACK there when the thread's stack pointer was inside the
 * guard page's allocation (on Windows, that thread's stack growing). The
 * guard bit is already clear when the handler runs, and returning from it
 * retries the access. A thread with SIGSEGV blocked or ignored gets a
 * plain SIGSEGV instead, which kills it as any fault would.
 */
#define WINVM_GUARD_SIGNATURE	0x57470000
#define WINVM_GUARD_ACCESS_MASK	0xff
#define WINVM_GUARD_STACK	0x100
#define WINVM_ACCESS_READ	0
#define WINVM_ACCESS_WRITE	1
#define WINVM_ACCESS_EXEC	8

/*
 * WINVM_IOC_ALLOC flags. RESET and RESET_UNDO stand alone: RESET says the
 * contents of the committed pages in the range are no longer needed (winvm
 * discards them at once, except on locked pages; the pages stay committed
 * and read as zero); RESET_UNDO asks for them back and fails with ENODATA
 * if any page of the range was reset since, i.e. lost its contents.
 */
#define WINVM_ALLOC_RESERVE	0x1
#define WINVM_ALLOC_COMMIT	0x2
#define WINVM_ALLOC_TOP_DOWN	0x4
#define WINVM_ALLOC_RESET	0x8
#define WINVM_ALLOC_RESET_UNDO	0x10
#define WINVM_ALLOC_LARGE_PAGES	0x20
#define WINVM_ALLOC_WRITE_WATCH	0x40

#define WINVM_ALLOC_MASK	(WINVM_ALLOC_RESERVE | WINVM_ALLOC_COMMIT | \
				 WINVM_ALLOC_TOP_DOWN | WINVM_ALLOC_RESET | \
				 WINVM_ALLOC_RESET_UNDO | \
				 WINVM_ALLOC_LARGE_PAGES | WINVM_ALLOC_WRITE_WATCH)

/* WINVM_IOC_SET_OPTIONS options. */
#define WINVM_OPTION_GUARD_STACK	0x1	/* WINVM_FEATURE_GUARD_STACK */

#define WINVM_OPTION_MASK	WINVM_OPTION_GUARD_STACK

/* WINVM_IOC_WATCH flags: one or both. */
#define WINVM_WATCH_REPORT	0x1
#define WINVM_WATCH_RESET	0x2

#define WINVM_WATCH_MASK	(WINVM_WATCH_REPORT | WINVM_WATCH_RESET)

/* WINVM_IOC_FREE flags: exactly one must be given. */
#define WINVM_FREE_DECOMMIT	0x1
#define WINVM_FREE_RELEASE	0x2

/* WINVM_IOC_QUERY: state of the queried region. */
#define WINVM_STATE_FREE	0
#define WINVM_STATE_RESERVE	1
#define WINVM_STATE_COMMIT	2

/* WINVM_IOC_QUERY: what backs the queried region. */
#define WINVM_TYPE_NONE		0	/* free */
#define WINVM_TYPE_PRIVATE	1	/* winvm allocation, anonymous memory */
#define WINVM_TYPE_MAPPED	2	/* file or shared mapping */
#define WINVM_TYPE_IMAGE	3	/* mapping of an executable file */

/* WINVM_IOC_QUERY out_flags. */
#define WINVM_QUERY_WINVM	0x1	/* a winvm allocation */

/**
 * struct winvm_info - module version and address-space parameters
 * @api_version: WINVM_API_VERSION of the running module.
 * @page_size: size of a page in bytes.
 * @features: WINVM_FEATURE_* bits the module implements.
 * @granularity: alignment of reservation bases, in bytes (64 KiB).
 * @min_address: lowest address an allocation may start at.
 * @max_address: highest address an allocation may cover (inclusive): the
 *	end of the last whole granule of user space, as on Windows
 *	(0x7ffffffeffff on x86-64).
 * @large_page_size: size of a large page in bytes (the PMD size, 2 MiB on
 *	x86_64) when WINVM_FEATURE_LARGE_PAGES is set, else 0.
 *
 * Filled by WINVM_IOC_GET_INFO. Every field is output.
 */
struct winvm_info {
	__u32 api_version;
	__u32 page_size;
	__u64 features;
	__u64 granularity;
	__u64 min_address;
	__u64 max_address;
	__u64 large_page_size;
};

/**
 * struct winvm_alloc_args - reserve and/or commit address space
 * @addr: in: start address, or 0 to let the module choose (reserve only).
 * @size: in: size in bytes, not zero.
 * @flags: in: WINVM_ALLOC_* bits; RESERVE, COMMIT or both.
 * @prot: in: WINVM_PROT_* for the committed pages (READ, WRITE, EXEC,
 *	GUARD); for a reservation it is also recorded, cache attributes
 *	included, as the allocation protection.
 * @out_addr: out: start of the range acted on.
 * @out_size: out: size of the range acted on, in bytes.
 *
 * With WINVM_ALLOC_RESERVE, a non-zero @addr is rounded down to the
 * granularity and the range must be entirely free; with @addr 0 the module
 * picks the lowest free, granularity-aligned range (the highest with
 * WINVM_ALLOC_TOP_DOWN). The range always ends at the end of the page
 * holding @addr + @size - 1. WINVM_ALLOC_COMMIT alone with @addr 0 behaves
 * as RESERVE | COMMIT. WINVM_ALLOC_COMMIT alone with a non-zero @addr
 * commits the pages touched by [@addr, @addr + @size), which must lie in one
 * allocation; already committed pages keep their content and take @prot,
 * newly committed pages read as zero.
 *
 * Committing charges the pages to the commit charge (Committed_AS) at once,
 * as Windows charges its commit limit, and Linux's overcommit policy
 * (vm.overcommit_memory) decides whether the charge may be taken;
 * decommitting and releasing give it back. Touching committed pages later
 * charges nothing more.
 *
 * WINVM_ALLOC_LARGE_PAGES (with RESERVE | COMMIT, and @addr 0 or aligned
 * to a large page) reserves and commits whole large pages: @size must be a
 * multiple of winvm_info.large_page_size and @prot a plain READ/WRITE/EXEC
 * combination. Every page is allocated at once, as huge pages, and mapped
 * by PMD on first access; if the kernel cannot supply huge pages right now
 * the call fails with ENOBUFS and changes nothing. Later operations on the
 * allocation (commit, decommit, partial release, protection changes,
 * RESET, RESET_UNDO) must cover whole large pages, and GUARD is refused.
 * Like any shmem huge page, an idle large page may still be split and
 * swapped out under memory pressure (WINVM_IOC_LOCK keeps it resident).
 *
 * WINVM_ALLOC_WRITE_WATCH (with RESERVE, not with LARGE_PAGES) makes the
 * reservation write-watched: the pages written since the last reset are
 * reported by WINVM_IOC_WATCH. Decommitting a written page does not clear
 * its mark; releasing it does.
 *
 * With WINVM_ALLOC_RESET or WINVM_ALLOC_RESET_UNDO (alone), @prot is
 * ignored and the pages touched by [@addr, @addr + @size) must lie in one
 * allocation; RESET_UNDO also needs them all committed.
 *
 * Errors: EINVAL for unknown flags, RESET or RESET_UNDO with other flags,
 * WRITE_WATCH without RESERVE or with LARGE_PAGES,
 * an invalid protection (unknown bits, WRITE without READ, GUARD or a cache
 * attribute on an inaccessible page, GUARD with a cache attribute, both
 * cache attributes), a zero or overflowing size, an address outside
 * [min_address, max_address], a large-page request breaking the rules
 * above, or a range of a large-page allocation not made of whole large
 * pages; EOPNOTSUPP for WINVM_ALLOC_LARGE_PAGES when the kernel has no huge
 * pages for shmem (WINVM_FEATURE_LARGE_PAGES clear); ENOBUFS when it has
 * none free; EEXIST when a range to reserve is not free;
 * ENXIO when pages to commit are not all inside one allocation; ENOMEM when
 * no free range is large enough or memory is short; ENOSPC when the
 * overcommit policy refuses the commit charge; ENODATA when RESET_UNDO
 * finds pages that lost their contents; EFAULT; EPERM.
 */
struct winvm_alloc_args {
	__u64 addr;
	__u64 size;
	__u32 flags;
	__u32 prot;
	__u64 out_addr;
	__u64 out_size;
};

/**
 * struct winvm_alloc_ex_args - reserve where the caller's requirements allow
 * @alloc: as for WINVM_IOC_ALLOC, with WINVM_ALLOC_RESERVE, without RESET
 *	or RESET_UNDO, and @alloc.addr 0: the module picks the place.
 * @align: in: alignment of the base, a power of two not below
 *	winvm_info.granularity; 0 for the granularity.
 * @lowest: in: lowest base, aligned to the granularity and not below
 *	winvm_info.min_address; 0 for min_address.
 * @highest: in: highest address the reservation's footprint (its size
 *	rounded up to the granularity) may cover (inclusive), the last byte of
 *	a page, not above winvm_info.max_address; 0 for max_address.
 *
 * WINVM_IOC_ALLOC_EX (WINVM_FEATURE_ADDRESS_REQUIREMENTS) is VirtualAlloc2's
 * MEM_ADDRESS_REQUIREMENTS: the reservation goes to a place in [@lowest,
 * @highest] with the alignment asked for, picked as WINVM_IOC_ALLOC picks
 * one (free room in the address space winvm already holds first, lowest
 * first, or highest first with WINVM_ALLOC_TOP_DOWN). Everything else is
 * as for WINVM_IOC_ALLOC, which is this with all three requirements 0.
 *
 * Errors: those of WINVM_IOC_ALLOC; EINVAL also for requirements breaking
 * the rules above or @highest below @lowest; ENOMEM when nothing fits.
 */
struct winvm_alloc_ex_args {
	struct winvm_alloc_args alloc;
	__u64 align;
	__u64 lowest;
	__u64 highest;
};

/**
 * struct winvm_options - behaviours a context asks for
 * @options: in: WINVM_OPTION_* bits, which replace the context's; unknown
 *	bits are refused.
 *
 * Set with WINVM_IOC_SET_OPTIONS; a context starts with none, so a program
 * written before an option existed sees no change.
 *
 * Errors: EINVAL for unknown bits; EFAULT; EPERM.
 */
struct winvm_options {
	__u64 options;
};

/**
 * struct winvm_free_args - decommit pages or release an allocation
 * @addr: in: address inside the allocation; not zero.
 * @size: in: size in bytes; 0 means the whole allocation, in which case
 *	@addr rounded down to a page must be the allocation's base.
 * @flags: in: WINVM_FREE_DECOMMIT or WINVM_FREE_RELEASE.
 * @pad: must be zero.
 * @out_addr: out: start of the range acted on.
 * @out_size: out: size of the range acted on, in bytes.
 *
 * DECOMMIT returns the pages touched by [@addr, @addr + @size) to the
 * reserved state and frees their memory at once; reserved pages in the
 * range are left alone. RELEASE frees the range's address space; releasing
 * part of an allocation (WINVM_FEATURE_PARTIAL_RELEASE) leaves each
 * remaining piece as an allocation of its own, based at its first page.
 *
 * Errors: EINVAL for bad flags, a non-zero @pad, @addr 0, an overflowing
 * size, or a range running past the end of its allocation; ENXIO when
 * @addr is not inside an allocation or, with @size 0, not at its base;
 * EFAULT; EPERM.
 */
struct winvm_free_args {
	__u64 addr;
	__u64 size;
	__u32 flags;
	__u32 pad;
	__u64 out_addr;
	__u64 out_size;
};

/**
 * struct winvm_query_args - describe the region holding an address
 * @addr: in: any address up to info.max_address.
 * @flags: in: must be zero.
 * @out_flags: out: WINVM_QUERY_* bits.
 * @out_base: out: @addr rounded down to a page.
 * @out_alloc_base: out: base of the allocation holding @addr (0 if free).
 * @out_region_size: out: bytes from @out_base to the end of the run of pages
 *	that share state, protection and allocation with @addr's page.
 * @out_alloc_prot: out: WINVM_PROT_* given when the allocation was made.
 * @out_prot: out: WINVM_PROT_* of the page (0 unless committed), with the
 *	allocation's cache attribute.
 * @out_state: out: WINVM_STATE_*.
 * @out_type: out: WINVM_TYPE_*.
 *
 * Memory winvm did not allocate is described from its Linux mapping: a
 * hole is WINVM_STATE_FREE up to the next mapping or allocation, an
 * anonymous PROT_NONE mapping is WINVM_STATE_RESERVE, any other mapping is
 * WINVM_STATE_COMMIT with the protection of its VMA.
 *
 * Errors: EINVAL for non-zero @flags or an address above max_address;
 * EFAULT; EPERM.
 */
struct winvm_query_args {
	__u64 addr;
	__u32 flags;
	__u32 out_flags;
	__u64 out_base;
	__u64 out_alloc_base;
	__u64 out_region_size;
	__u32 out_alloc_prot;
	__u32 out_prot;
	__u32 out_state;
	__u32 out_type;
};

/**
 * struct winvm_protect_args - change the protection of committed pages
 * @addr: in: start address.
 * @size: in: size in bytes, not zero.
 * @prot: in: new WINVM_PROT_* (READ, WRITE, EXEC, GUARD); cache attributes
 *	are accepted and ignored.
 * @flags: in: must be zero.
 * @out_addr: out: start of the range acted on.
 * @out_size: out: size of the range acted on, in bytes.
 * @out_old_prot: out: protection the first page had, as WINVM_IOC_QUERY
 *	reports it.
 * @out_reserved: out: zero.
 *
 * The pages touched by [@addr, @addr + @size) must lie in one allocation
 * and all be committed; their contents survive.
 *
 * Errors: EINVAL for non-zero @flags, an invalid protection or a zero,
 * overflowing or out-of-range size; ENXIO when a page is not committed or
 * not in the allocation of the first; EFAULT; EPERM.
 */
struct winvm_protect_args {
	__u64 addr;
	__u64 size;
	__u32 prot;
	__u32 flags;
	__u64 out_addr;
	__u64 out_size;
	__u32 out_old_prot;
	__u32 out_reserved;
};

/**
 * struct winvm_lock_args - lock pages in memory, or unlock them
 * @addr: in: start address.
 * @size: in: size in bytes, not zero.
 * @out_addr: out: start of the range acted on.
 * @out_size: out: size of the range acted on, in bytes.
 *
 * The pages touched by [@addr, @addr + @size) must lie in one allocation.
 * WINVM_IOC_LOCK makes them resident and keeps them so (pinned) until
 * they are unlocked, decommitted, released or the context goes away; pages
 * already locked stay locked, and locked pages count against
 * RLIMIT_MEMLOCK. The pages are probed in order: a page that is not
 * committed or has no access fails the call with EFAULT; an armed guard
 * page is disarmed, as an access would, and fails the call with EAGAIN, so
 * a retry goes further. WINVM_IOC_UNLOCK needs every page locked.
 *
 * Errors: EINVAL for a zero, overflowing or out-of-range size; ENXIO when
 * the pages are not inside one allocation; EFAULT and EAGAIN as above;
 * EDQUOT when RLIMIT_MEMLOCK would be exceeded; ENOLCK when unlocking a
 * page that is not locked; ENOMEM; EPERM.
 */
struct winvm_lock_args {
	__u64 addr;
	__u64 size;
	__u64 out_addr;
	__u64 out_size;
};

/**
 * struct winvm_watch_args - report and reset the written pages of a range
 * @addr: in: start address.
 * @size: in: size in bytes, not zero.
 * @buf: in: user address of an array of @count __u64 that receives the
 *	addresses of written pages (WINVM_WATCH_REPORT).
 * @count: in: capacity of @buf in entries; not zero with
 *	WINVM_WATCH_REPORT, ignored without.
 * @flags: in: WINVM_WATCH_REPORT, WINVM_WATCH_RESET or both.
 * @pad: must be zero.
 * @out_count: out: number of pages reported, or with WINVM_WATCH_RESET
 *	alone, reset.
 *
 * The pages touched by [@addr, @addr + @size) must lie in one allocation
 * made with WINVM_ALLOC_WRITE_WATCH. A page is written once anything
 * writes to it, the program or the kernel on its behalf (read(2) into it),
 * after its allocation was made or its mark was last reset.
 *
 * REPORT stores the addresses of the range's written pages, lowest first,
 * in @buf, at most @count of them. RESET clears the marks of the pages
 * reported, or without REPORT, of every page in the range. The pages
 * behind the last one reported are left as they are; a write that races
 * with the call is either reported by it or marks its page afresh, except
 * one the kernel makes through a page it pinned before the reset (O_DIRECT,
 * io_uring fixed buffers), which is not seen. Every
 * entry of @buf the call may store (@count, or the pages of the range if
 * fewer) is checked writable before anything is done.
 *
 * Errors: EINVAL for no or unknown flags, a non-zero @pad, @count 0 with
 * REPORT, a zero, overflowing or out-of-range size, or a range that is not
 * inside one write-watched allocation; EFAULT (also for @buf); EINTR;
 * EPERM.
 */
struct winvm_watch_args {
	__u64 addr;
	__u64 size;
	__u64 buf;
	__u64 count;
	__u32 flags;
	__u32 pad;
	__u64 out_count;
};

#define WINVM_IOC_GET_INFO	_IOR('W', 0x80, struct winvm_info)
#define WINVM_IOC_ALLOC		_IOWR('W', 0x81, struct winvm_alloc_args)
#define WINVM_IOC_FREE		_IOWR('W', 0x82, struct winvm_free_args)
#define WINVM_IOC_QUERY		_IOWR('W', 0x83, struct winvm_query_args)
#define WINVM_IOC_PROTECT	_IOWR('W', 0x84, struct winvm_protect_args)
#define WINVM_IOC_LOCK		_IOWR('W', 0x85, struct winvm_lock_args)
#define WINVM_IOC_UNLOCK	_IOWR('W', 0x86, struct winvm_lock_args)
#define WINVM_IOC_WATCH		_IOWR('W', 0x87, struct winvm_watch_args)
#define WINVM_IOC_ALLOC_EX	_IOWR('W', 0x88, struct winvm_alloc_ex_args)
#define WINVM_IOC_SET_OPTIONS	_IOW('W', 0x89, struct winvm_options)

#endif /* __LINUX_WINVM_H */
