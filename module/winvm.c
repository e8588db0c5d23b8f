// SPDX-License-Identifier: GPL-2.0-only
/*
 * winvm - Windows virtual-memory semantics for Linux processes
 *
 * /dev/winvm lets a process reserve, commit, decommit, release and query
 * its own address space with the rules of VirtualAlloc and friends: 64 KiB
 * allocation granularity, page-granular commit and protection, and answers
 * that match VirtualQuery region for region.
 */

#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/log2.h>
#include <linux/maple_tree.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/overflow.h>
#include <linux/pagemap.h>
#include <linux/pagevec.h>
#include <linux/ptrace.h>
#include <linux/rbtree.h>
#include <linux/rwsem.h>
#include <linux/sched/mm.h>
#include <linux/sched/task_stack.h>
#include <linux/shmem_fs.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/winvm.h>

#include "compat.h"

#define WINVM_NAME		"winvm"
#define WINVM_GRANULARITY	SZ_64K
#define WINVM_MIN_ADDR		SZ_64K

/*
 * Small reservations are carved out of shared arenas of this size; larger
 * ones get an arena of their own.
 */
#define WINVM_ARENA_SIZE	SZ_64M
#define WINVM_ARENA_DEDICATED	(WINVM_ARENA_SIZE / 4)

/* The commit ledger grows and shrinks in steps of this many pages. */
#define WINVM_CHARGE_STEP	(SZ_1M >> PAGE_SHIFT)

/* Tries before giving up on a free range another thread keeps taking. */
#define WINVM_MAP_RETRIES	8

/*
 * Object model
 *
 * Each open() of /dev/winvm creates a context bound to the opener's mm; the
 * file is the context's handle and only that mm may use it. The context
 * owns:
 *
 * - a shmem file holding the contents of committed pages, at file offset ==
 *   virtual address, so pages stay swappable and memcg-charged and
 *   unmap_mapping_range() on it reaches exactly this process's mappings.
 *   The /dev/winvm file's f_mapping points at it, so the VMAs winvm maps
 *   (whose vm_file is the /dev/winvm file) sit in its i_mmap tree. It is an
 *   accounted (not VM_NORESERVE) shmem file created empty and then given
 *   the size of the address space directly, so its pages charge nothing
 *   to the overcommit accounting when they are touched: the commit charge
 *   is taken when pages are committed, as on Windows, through
 *
 * - the commit ledger, a second, never mapped, accounted shmem file whose
 *   size is the number of committed pages, in steps of 1 MiB: growing it is
 *   how a commit asks Linux's overcommit policy (vm.overcommit_memory) for
 *   the memory and charges Committed_AS; shrinking it, or closing it with
 *   the context, gives the charge back.
 *
 * - arenas: ranges of address space winvm has mapped, each backed by one or
 *   more VMAs with winvm's vm_operations. A shared arena holds many small
 *   allocations, so reserving and releasing them touches no VMA; a large or
 *   fixed-address reservation gets a dedicated arena. A VMA's protection is
 *   always read+write, plus exec where the committed pages are executable:
 *   the per-page protection is enforced by the fault handlers, and VMAs only
 *   split between executable and non-executable runs.
 *
 * - the allocation tree: a maple tree over the whole address space. An
 *   entry is a struct winvm_alloc covering the allocation's footprint (from
 *   its base to the next 64 KiB boundary after its end; the slack is free
 *   but unusable, as on Windows); NULL is free space inside an arena;
 *   WINVM_NO_ARENA marks everything else. Searching it for a NULL gap finds
 *   room in the arenas in O(log n).
 *
 * - the page tree: a maple tree of runs of committed pages with identical
 *   protection, never crossing an allocation boundary; a page with no entry
 *   inside an allocation is reserved.
 *
 * - the pages locked by WINVM_IOC_LOCK, pinned, in an xarray by index, and
 *   the ranges reset by WINVM_ALLOC_RESET whose loss RESET_UNDO must
 *   report, in a maple tree.
 *
 * - the written pages of write-watched allocations (WINVM_ALLOC_WRITE_WATCH),
 *   in an xarray of bitmaps, one value entry per WINVM_WATCH_BITS pages, so
 *   that only what was written costs memory.
 *
 * Large-page allocations (WINVM_ALLOC_LARGE_PAGES) live in arenas of their
 * own, backed by a second shmem file on a tmpfs mount that always uses huge
 * pages, and mapped through a second file (an anonymous inode whose
 * f_mapping is that backing). A store pairs a backing file with the file
 * its VMAs map: the /dev/winvm file for small pages, that view for large
 * ones. Per-page protection cannot split a PMD mapping, so operations on a
 * large-page allocation must cover whole large pages.
 *
 * The context is reference-counted: the /dev/winvm file holds one
 * reference, the large-page view another (its VMAs keep it open), so the
 * context lives as long as any of its VMAs.
 *
 * VMAs are created and destroyed only by the context itself (the "internal"
 * task below); munmap, mremap and mprotect of winvm VMAs by the program are
 * refused where the kernel offers a hook (splits, moves, mprotect), and a
 * VMA that disappears anyway (munmap of a whole VMA) marks the context
 * "lost" so that the next ioctl retires the arenas it belonged to.
 */

/* Allocation-tree marker for address space outside every arena. */
#define WINVM_NO_ARENA		xa_mk_value(0)

/*
 * Page-tree entry: the run is committed; the low bits are its WINVM_PROT_*
 * (cache attributes belong to the allocation, not to pages).
 */
#define WINVM_PAGE_COMMITTED	BIT(16)
#define WINVM_PAGE_PROT_MASK	(WINVM_PROT_MASK | WINVM_PROT_GUARD)

/**
 * struct winvm_alloc - one allocation (a reservation and its pages)
 * @base: first byte, 64 KiB aligned unless split by a partial release.
 * @end: end of the last page (exclusive).
 * @fp_end: end of the footprint in the allocation tree: @end rounded up to
 *	64 KiB, or @end itself once a partial release freed what followed.
 * @prot: WINVM_PROT_* given at reservation (the allocation protection).
 * @large: made of large pages (the large store).
 * @watch: write-watched: first writes to its pages are recorded.
 *
 * Lives in the allocation tree; changed and freed only with ops_lock and
 * state_lock (write) held, so readers under either lock may use it.
 */
struct winvm_alloc {
	unsigned long base;
	unsigned long end;
	unsigned long fp_end;
	u32 prot;
	bool large;
	bool watch;
};

/**
 * struct winvm_arena - address space winvm has mapped
 * @node: in winvm_ctx.arenas, ordered by @start.
 * @start: first byte, 64 KiB aligned.
 * @end: end (exclusive), 64 KiB aligned.
 * @shared: holds small allocations; otherwise dedicated to one reservation.
 * @top_down: placed and filled from the top of the address space down.
 * @large: holds one large-page allocation (the large store).
 * @exec: has had an executable VMA; while clear, making a range of it
 *	non-executable has nothing to do.
 * @link: transient list membership while a reservation creates arenas.
 *
 * Protected by winvm_ctx.ops_lock.
 */
struct winvm_arena {
	struct rb_node node;
	unsigned long start;
	unsigned long end;
	bool shared;
	bool top_down;
	bool large;
	bool exec;
	struct list_head link;
};

/**
 * struct winvm_store - where the pages of some allocations live
 * @backing: shmem file holding page contents at offset == address.
 * @mapping: @backing's page cache.
 * @view: the file winvm's VMAs for these pages map; its f_mapping is
 *	@mapping, so the VMAs sit in @mapping's i_mmap tree.
 */
struct winvm_store {
	struct file *backing;
	struct address_space *mapping;
	struct file *view;
};

/**
 * struct winvm_ctx - per-open state, bound to one mm
 * @ref: the /dev/winvm file's reference, and the large-page view's.
 * @mm: the address space served; ioctls from any other mm fail with EPERM.
 * @file: the /dev/winvm file of this context.
 * @small: small pages; its view is @file.
 * @large: large pages, set up on first use (under @ops_lock); its view
 *	holds a reference to the context.
 * @ledger: shmem file whose size is @charged pages (the commit charge).
 * @committed: committed pages of the context; under @ops_lock.
 * @charged: size of @ledger in pages: @committed rounded up to a charge
 *	step, plus at most one more step; under @ops_lock.
 * @max_addr: highest user address an allocation may cover (inclusive).
 * @ops_lock: serialises every operation that changes the address space.
 * @state_lock: protects @allocs and @pages; also their maple-tree lock.
 * @allocs: allocation tree (see the object model).
 * @pages: page tree (see the object model).
 * @arenas: struct winvm_arena by address; under @ops_lock.
 * @spare: an empty shared arena kept mapped, or NULL; under @ops_lock.
 * @internal: task running a mmap/munmap on the context's behalf; written
 *	under @ops_lock, read by the VMA hooks of that same task.
 * @internal_exec: whether the VMA being mapped by @internal is executable.
 * @lost: a winvm VMA vanished behind the context's back; the next ioctl
 *	rebuilds the arenas from the VMAs.
 * @exec_changing: a commit is making pages executable: their VMA is
 *	executable before their state is, and a fault on one of them then
 *	waits rather than fails; written under @ops_lock.
 * @locked: pinned struct page of each locked page, by index; under @ops_lock.
 * @resets: ranges reset and not undone since; @ops_lock is its lock.
 * @written: written pages of write-watched allocations (see the object
 *	model); its own lock.
 * @watching: a write-watched allocation has been made; set under @ops_lock,
 *	never cleared.
 * @guard_stack: WINVM_OPTION_GUARD_STACK was asked for.
 */
struct winvm_ctx {
	struct kref ref;
	struct mm_struct *mm;
	struct file *file;
	struct winvm_store small;
	struct winvm_store large;
	struct file *ledger;
	unsigned long committed;
	unsigned long charged;
	unsigned long max_addr;

	struct mutex ops_lock;		/* outermost, see "Lock order" */
	struct rw_semaphore state_lock;	/* innermost of winvm's locks */
	struct maple_tree allocs;
	struct maple_tree pages;

	struct rb_root arenas;
	struct winvm_arena *spare;
	struct task_struct *internal;
	bool internal_exec;
	bool lost;
	bool exec_changing;

	struct xarray locked;
	struct maple_tree resets;
	struct xarray written;
	bool watching;
	bool guard_stack;
};

/*
 * Lock order
 *
 *   ctx->ops_lock
 *     mm->mmap_lock
 *       ctx->state_lock
 *         folio lock (page of the backing file)
 *           i_mmap_rwsem, page-table locks (unmap_mapping_range)
 *           ctx->written's lock
 *
 * The fault path runs with mmap_lock (or, on newer kernels, the VMA lock)
 * held and takes state_lock for read; it holds state_lock from the check of
 * a page's state until the page is locked, and the page stays locked until
 * its PTE is installed. Anything that takes permissions away therefore
 * updates the state under state_lock (write), drops it, zaps the PTEs and
 * then locks every cached page of the range once, which waits out any fault
 * that saw the old state (winvm_zap_sync()).
 *
 * Write watch works the same way: page_mkwrite marks a page written with the
 * page locked, before its writable PTE is installed; a reset clears the
 * marks, then zaps the pages with winvm_zap_sync(), so a fault that marked
 * a page before the clear and maps it after is undone, and the next write
 * marks it again.
 *
 * Operations that change the address space hold ops_lock throughout and
 * call vm_mmap()/vm_munmap() (which take mmap_lock) with state_lock
 * released. Queries take only mmap_lock and state_lock for read.
 */

static struct vfsmount *winvm_mnt, *winvm_huge_mnt;

static const struct vm_operations_struct winvm_vm_ops;

/* End (exclusive) of the range @mas last walked to, capped at @limit. */
static unsigned long winvm_mas_end(struct ma_state *mas, unsigned long limit)
{
	return mas->last >= limit - 1 ? limit : mas->last + 1;
}

static bool winvm_entry_is_alloc(void *entry)
{
	return entry && !xa_is_value(entry);
}

static struct winvm_store *winvm_store(struct winvm_ctx *ctx, bool large)
{
	return large ? &ctx->large : &ctx->small;
}

static void *winvm_page_entry(u32 prot)
{
	return xa_mk_value(WINVM_PAGE_COMMITTED | (prot & WINVM_PAGE_PROT_MASK));
}

static u32 winvm_entry_prot(void *entry)
{
	return entry ? xa_to_value(entry) & WINVM_PAGE_PROT_MASK : 0;
}

/*
 * The Windows rules for protection values: WRITE needs READ; GUARD and the
 * cache attributes need an accessible page, exclude each other, and the two
 * cache attributes exclude each other.
 */
static bool winvm_prot_valid(u32 prot)
{
	u32 access = prot & WINVM_PROT_MASK;
	u32 extra = prot & (WINVM_PROT_GUARD | WINVM_PROT_CACHE_MASK);

	if (prot & ~(WINVM_PROT_MASK | WINVM_PROT_GUARD | WINVM_PROT_CACHE_MASK))
		return false;
	if ((prot & WINVM_PROT_WRITE) && !(prot & WINVM_PROT_READ))
		return false;
	return !extra || (access && is_power_of_2(extra));
}

/*
 * Page range touched by [addr, addr + size); -EINVAL if @size is zero or
 * the range overflows or runs past max_addr.
 */
static int winvm_page_range(struct winvm_ctx *ctx, u64 addr, u64 size,
			    unsigned long *start, unsigned long *end)
{
	u64 last;

	if (!size || check_add_overflow(addr, size - 1, &last) ||
	    last > ctx->max_addr)
		return -EINVAL;
	*start = round_down(addr, PAGE_SIZE);
	*end = round_up(last + 1, PAGE_SIZE);
	return 0;
}

static struct winvm_alloc *winvm_alloc_find(struct winvm_ctx *ctx,
					    unsigned long addr)
{
	MA_STATE(mas, &ctx->allocs, addr, addr);
	struct winvm_alloc *alloc;

	lockdep_assert_held(&ctx->state_lock);

	alloc = mas_walk(&mas);
	if (!winvm_entry_is_alloc(alloc) || addr >= alloc->end)
		return NULL;
	return alloc;
}

/* The page-tree entry of the page at @addr: NULL if not committed. */
static void *winvm_page_state(struct winvm_ctx *ctx, unsigned long addr)
{
	MA_STATE(mas, &ctx->pages, addr, addr);

	lockdep_assert_held(&ctx->state_lock);
	return mas_walk(&mas);
}

/**
 * struct winvm_scan - what [start, end) of an allocation holds
 * @all_committed: every page is committed.
 * @first: protection of the first page, if committed.
 * @any: union of the protections of the committed pages (0 if none).
 * @committed: some page is committed.
 * @pages: how many are.
 */
struct winvm_scan {
	bool all_committed;
	u32 first;
	u32 any;
	bool committed;
	unsigned long pages;
};

static void winvm_scan(struct winvm_ctx *ctx, unsigned long start,
		       unsigned long end, struct winvm_scan *scan)
{
	MA_STATE(mas, &ctx->pages, start, start);
	unsigned long pos = start;
	void *entry;

	lockdep_assert_held(&ctx->state_lock);

	memset(scan, 0, sizeof(*scan));
	scan->all_committed = true;
	mas_for_each(&mas, entry, end - 1) {
		if (mas.index > pos)
			scan->all_committed = false;
		else if (pos == start)
			scan->first = winvm_entry_prot(entry);
		scan->any |= winvm_entry_prot(entry);
		scan->committed = true;
		scan->pages += (winvm_mas_end(&mas, end) -
				max(mas.index, start)) >> PAGE_SHIFT;
		pos = winvm_mas_end(&mas, end);
	}
	if (pos < end)
		scan->all_committed = false;
}

/*
 * Whether committed pages holding @scan may have PTEs that give more than
 * @prot allows: then they must be zapped once the new state is stored.
 */
static bool winvm_takes_access(const struct winvm_scan *scan, u32 prot)
{
	if (!scan->committed)
		return false;
	return (prot & WINVM_PROT_GUARD) || (scan->any & ~prot & WINVM_PROT_MASK);
}

/* Resize the commit ledger to @pages pages. */
static int winvm_ledger_resize(struct winvm_ctx *ctx, unsigned long pages)
{
	int ret;

	ret = vfs_truncate(&ctx->ledger->f_path, (loff_t)pages << PAGE_SHIFT);
	if (!ret)
		ctx->charged = pages;
	return ret;
}

/*
 * Change the commit charge by @delta pages. Growing it asks the overcommit
 * policy, and fails with -ENOSPC when the policy says no. The ledger moves
 * in steps, so that a program committing and decommitting a little at a
 * time does not resize it on every call: it grows to the next step (or
 * exactly as far as needed when the policy refuses the step) and shrinks
 * once two steps are unused, keeping one.
 */
static int winvm_charge(struct winvm_ctx *ctx, long delta)
{
	unsigned long want = ctx->committed + delta;

	lockdep_assert_held(&ctx->ops_lock);

	if (want > ctx->charged) {
		if (winvm_ledger_resize(ctx, round_up(want, WINVM_CHARGE_STEP)) &&
		    winvm_ledger_resize(ctx, want))
			return -ENOSPC;
	} else if (ctx->charged - want >= 2 * WINVM_CHARGE_STEP) {
		/* Failing to give back only leaves the charge larger. */
		winvm_ledger_resize(ctx, round_up(want, WINVM_CHARGE_STEP) +
				    WINVM_CHARGE_STEP);
	}
	ctx->committed = want;
	return 0;
}

/*
 * Set the pages [start, end) of @alloc to @entry (NULL: reserved), merging
 * with equal neighbours inside the allocation. Fails only on allocation
 * failure, in which case nothing changed.
 */
static int winvm_pages_set(struct winvm_ctx *ctx, struct winvm_alloc *alloc,
			   unsigned long start, unsigned long end, void *entry,
			   gfp_t gfp)
{
	MA_STATE(mas, &ctx->pages, 0, 0);

	lockdep_assert_held_write(&ctx->state_lock);

	if (entry && start > alloc->base) {
		mas_set(&mas, start - 1);
		if (mas_walk(&mas) == entry)
			start = mas.index;
	}
	if (entry && end < alloc->end) {
		mas_set(&mas, end);
		if (mas_walk(&mas) == entry)
			end = mas.last + 1;
	}
	mas_set_range(&mas, start, end - 1);
	return mas_store_gfp(&mas, entry, gfp);
}

/* Store @entry over [start, end) of the allocation tree. */
static int winvm_allocs_set(struct winvm_ctx *ctx, unsigned long start,
			    unsigned long end, void *entry, gfp_t gfp)
{
	MA_STATE(mas, &ctx->allocs, start, end - 1);

	lockdep_assert_held_write(&ctx->state_lock);
	return mas_store_gfp(&mas, entry, gfp);
}

/*
 * Take away access to [start, end): zap the PTEs, then lock each cached
 * page once so that a fault which checked the old state under state_lock
 * and still holds its page locked finishes first, and zap again what it
 * mapped.
 */
static void winvm_zap_sync(struct winvm_ctx *ctx, struct winvm_store *store,
			   unsigned long start, unsigned long end)
{
	struct address_space *mapping = store->mapping;
	pgoff_t index = start >> PAGE_SHIFT;
	pgoff_t last = (end >> PAGE_SHIFT) - 1;
	struct folio_batch fbatch;
	unsigned int i;

	lockdep_assert_not_held(&ctx->state_lock);

	unmap_mapping_range(mapping, start, end - start, 1);

	folio_batch_init(&fbatch);
	while (filemap_get_folios(mapping, &index, last, &fbatch)) {
		for (i = 0; i < folio_batch_count(&fbatch); i++) {
			struct folio *folio = fbatch.folios[i];

			folio_lock(folio);
			if (folio_mapped(folio))
				unmap_mapping_pages(mapping, folio->index,
						    folio_nr_pages(folio), false);
			folio_unlock(folio);
		}
		folio_batch_release(&fbatch);
		cond_resched();
	}
}

/*
 * Free the memory of [start, end): zap the PTEs and drop the pages from the
 * backing file. Truncation locks each page and unmaps it again if a racing
 * fault mapped it, so no extra synchronisation is needed. A range with no
 * page in the file has nothing mapped either (a fault that saw the pages
 * committed added its page before the state changed): nothing to do, unless
 * some of the file's pages are in swap, which filemap_range_has_page() does
 * not see. (shmem counts a page as swapped before it takes it out of the
 * page cache, so one of the two tests sees it.)
 */
static void winvm_discard(struct winvm_ctx *ctx, struct winvm_store *store,
			  unsigned long start, unsigned long end)
{
	struct inode *inode = file_inode(store->backing);

	lockdep_assert_not_held(&ctx->state_lock);

	if (!filemap_range_has_page(store->mapping, start, end - 1)) {
		smp_rmb();	/* the page cache, then the swap count */
		if (!READ_ONCE(SHMEM_I(inode)->swapped))
			return;
	}
	unmap_mapping_range(store->mapping, start, end - start, 1);
	shmem_truncate_range(inode, start, end - 1);
}

/* Unpin the locked pages of [start, end) and give back their quota. */
static void winvm_unlock_range(struct winvm_ctx *ctx, unsigned long start,
			       unsigned long end)
{
	unsigned long index, unlocked = 0;
	struct page *page;

	lockdep_assert_held(&ctx->ops_lock);

	if (xa_empty(&ctx->locked))
		return;
	xa_for_each_range(&ctx->locked, index, page, start >> PAGE_SHIFT,
			  (end >> PAGE_SHIFT) - 1) {
		xa_erase(&ctx->locked, index);
		unpin_user_page(page);
		unlocked++;
	}
	account_locked_vm(ctx->mm, unlocked, false);
}

/* Forget the resets of [start, end): its pages are gone or new. */
static void winvm_resets_clear(struct winvm_ctx *ctx, unsigned long start,
			       unsigned long end)
{
	MA_STATE(mas, &ctx->resets, start, end - 1);

	lockdep_assert_held(&ctx->ops_lock);

	if (!mtree_empty(&ctx->resets))
		mas_store_gfp(&mas, NULL, GFP_KERNEL | __GFP_NOFAIL);
}

/* Decommitted or released: nothing of [start, end) is locked or reset. */
static void winvm_forget(struct winvm_ctx *ctx, bool large,
			 unsigned long start, unsigned long end)
{
	winvm_unlock_range(ctx, start, end);
	winvm_resets_clear(ctx, start, end);
	winvm_discard(ctx, winvm_store(ctx, large), start, end);
}

/*
 * Write watch: the written pages of write-watched allocations, as bitmaps of
 * WINVM_WATCH_BITS pages in value entries of ctx->written, indexed by page
 * number / WINVM_WATCH_BITS.
 */
#define WINVM_WATCH_BITS	32
#define WINVM_WATCH_BATCH	64	/* pages reported per copy_to_user() */

static unsigned long winvm_watch_index(unsigned long addr)
{
	return (addr >> PAGE_SHIFT) / WINVM_WATCH_BITS;
}

/* Mark the page at @addr written. */
static int winvm_watch_mark(struct winvm_ctx *ctx, unsigned long addr)
{
	XA_STATE(xas, &ctx->written, winvm_watch_index(addr));
	unsigned long bit = BIT((addr >> PAGE_SHIFT) % WINVM_WATCH_BITS);
	unsigned long bits;
	void *entry;

	do {
		xas_lock(&xas);
		entry = xas_load(&xas);
		bits = entry ? xa_to_value(entry) : 0;
		if (!(bits & bit))
			xas_store(&xas, xa_mk_value(bits | bit));
		xas_unlock(&xas);
	} while (xas_nomem(&xas, GFP_KERNEL_ACCOUNT));
	return xas_error(&xas);
}

/* Forget the marks of [start, end). */
static void winvm_watch_clear(struct winvm_ctx *ctx, unsigned long start,
			      unsigned long end)
{
	XA_STATE(xas, &ctx->written, winvm_watch_index(start));
	unsigned long first = start >> PAGE_SHIFT, last = end >> PAGE_SHIFT;
	unsigned long lo, hi, bits;
	void *entry;

	xas_lock(&xas);
	xas_for_each(&xas, entry, winvm_watch_index(end - 1)) {
		lo = max(first, xas.xa_index * WINVM_WATCH_BITS);
		hi = min(last, (xas.xa_index + 1) * WINVM_WATCH_BITS);
		bits = xa_to_value(entry) &
		       ~GENMASK(hi - 1 - xas.xa_index * WINVM_WATCH_BITS,
				lo - xas.xa_index * WINVM_WATCH_BITS);
		xas_store(&xas, bits ? xa_mk_value(bits) : NULL);
		if (need_resched()) {
			xas_pause(&xas);
			xas_unlock(&xas);
			cond_resched();
			xas_lock(&xas);
		}
	}
	xas_unlock(&xas);
}

/*
 * Up to @max written pages of [*pos, end), lowest first, into @addrs;
 * *pos moves past the last one, or to @end when there are no more.
 */
static unsigned int winvm_watch_collect(struct winvm_ctx *ctx,
					unsigned long *pos, unsigned long end,
					u64 *addrs, unsigned int max)
{
	XA_STATE(xas, &ctx->written, winvm_watch_index(*pos));
	unsigned long bits, bit, addr;
	unsigned int n = 0;
	void *entry;

	rcu_read_lock();
	xas_for_each(&xas, entry, winvm_watch_index(end - 1)) {
		if (xas_retry(&xas, entry))
			continue;
		bits = xa_to_value(entry);
		for_each_set_bit(bit, &bits, WINVM_WATCH_BITS) {
			addr = (xas.xa_index * WINVM_WATCH_BITS + bit) <<
			       PAGE_SHIFT;
			if (addr < *pos)
				continue;
			if (addr >= end)
				goto out_end;
			if (n == max)
				goto out;
			addrs[n++] = addr;
			*pos = addr + PAGE_SIZE;
		}
	}
out_end:
	*pos = end;
out:
	rcu_read_unlock();
	return n;
}

/*
 * Reset the @n written pages @addrs (ascending): forget their marks, then
 * take their PTEs away so that the next write to each faults and marks it
 * again. winvm_zap_sync() also waits out a fault that marked a page before
 * the marks went and maps it after.
 */
static void winvm_watch_reset(struct winvm_ctx *ctx, const u64 *addrs,
			      unsigned int n)
{
	unsigned int i, j;

	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n; j++)
			if (addrs[j] != addrs[j - 1] + PAGE_SIZE)
				break;
		winvm_watch_clear(ctx, addrs[i], addrs[j - 1] + PAGE_SIZE);
		winvm_zap_sync(ctx, &ctx->small, addrs[i],
			       addrs[j - 1] + PAGE_SIZE);
	}
}

static struct winvm_arena *winvm_arena_find(struct winvm_ctx *ctx,
					    unsigned long addr)
{
	struct rb_node *node = ctx->arenas.rb_node;

	lockdep_assert_held(&ctx->ops_lock);

	while (node) {
		struct winvm_arena *arena = rb_entry(node, struct winvm_arena,
						     node);

		if (addr < arena->start)
			node = node->rb_left;
		else if (addr >= arena->end)
			node = node->rb_right;
		else
			return arena;
	}
	return NULL;
}

static bool winvm_arena_less(struct rb_node *a, const struct rb_node *b)
{
	return rb_entry(a, struct winvm_arena, node)->start <
	       rb_entry(b, struct winvm_arena, node)->start;
}

static bool winvm_vma_is_ours(struct winvm_ctx *ctx,
			      struct vm_area_struct *vma)
{
	return vma->vm_ops == &winvm_vm_ops &&
	       vma->vm_file->private_data == ctx;
}

/*
 * vm_mmap() a range of a store's view at offset == address. With
 * @replace, the range must already be winvm's and is re-created with the
 * new exec permission; otherwise it must be free. After mlockall(MCL_FUTURE)
 * a map beyond RLIMIT_MEMLOCK fails with -EAGAIN, which to winvm's callers
 * means a guard page: it is reported as the shortage it is.
 */
static int winvm_map(struct winvm_ctx *ctx, struct winvm_store *store,
		     unsigned long start, unsigned long len, bool exec,
		     bool replace)
{
	unsigned long prot = PROT_READ | PROT_WRITE | (exec ? PROT_EXEC : 0);
	unsigned long flags = MAP_SHARED |
			      (replace ? MAP_FIXED : MAP_FIXED_NOREPLACE);
	unsigned long addr;

	lockdep_assert_held(&ctx->ops_lock);

	WRITE_ONCE(ctx->internal, current);
	ctx->internal_exec = exec;
	addr = vm_mmap(store->view, start, len, prot, flags, start);
	WRITE_ONCE(ctx->internal, NULL);

	if ((long)addr == -EAGAIN)
		return -ENOMEM;
	if (IS_ERR_VALUE(addr))
		return (long)addr;
	if (WARN_ON_ONCE(addr != start))
		return -EINVAL;
	return 0;
}

static int winvm_unmap(struct winvm_ctx *ctx, unsigned long start,
		       unsigned long len)
{
	int ret;

	lockdep_assert_held(&ctx->ops_lock);

	WRITE_ONCE(ctx->internal, current);
	ret = vm_munmap(start, len);
	WRITE_ONCE(ctx->internal, NULL);
	return ret;
}

/**
 * struct winvm_place - where a reservation the module places may go
 * @low: lowest base, granularity aligned.
 * @high: highest address it may cover (inclusive), a page's last byte.
 * @align: alignment of the base: a power of two, at least the granularity.
 * @top_down: the highest place that fits rather than the lowest.
 */
struct winvm_place {
	unsigned long low;
	unsigned long high;
	unsigned long align;
	bool top_down;
};

/*
 * Find a free range of @len bytes in the process's address space that
 * @place allows, aligned to @align (at least @place's), below mmap_base so
 * that the main stack keeps its room.
 */
static long winvm_linux_gap(struct winvm_ctx *ctx, unsigned long len,
			    const struct winvm_place *place,
			    unsigned long align)
{
	MA_STATE(mas, &ctx->mm->mm_mt, 0, 0);
	unsigned long length, low, high;
	long addr = -ENOMEM;

	align = max(align, place->align);
	length = len + align - PAGE_SIZE;
	low = max_t(unsigned long, place->low, WINVM_MIN_ADDR);
	high = min(ctx->mm->mmap_base - 1, place->high);
	if (length < len || high < low)
		return -ENOMEM;

	mmap_read_lock(ctx->mm);
	if (place->top_down) {
		if (!mas_empty_area_rev(&mas, low, high, length))
			addr = round_down(mas.last + 1 - len, align);
	} else {
		if (!mas_empty_area(&mas, low, high, length))
			addr = round_up(mas.index, align);
	}
	mmap_read_unlock(ctx->mm);
	return addr;
}

/*
 * Map a new arena. With @start 0 the arena goes to the lowest (or highest)
 * free range of the process that @place allows; otherwise exactly at
 * @start, failing with -EEXIST if anything is mapped there. A @large arena
 * is aligned to a large page and mapped from the large store.
 */
static struct winvm_arena *winvm_arena_create(struct winvm_ctx *ctx,
					      unsigned long start,
					      unsigned long len, bool shared,
					      const struct winvm_place *place,
					      bool large)
{
	unsigned long align = large ? PMD_SIZE : WINVM_GRANULARITY;
	struct winvm_arena *arena;
	int tries = 0;
	long addr;
	int ret;

	lockdep_assert_held(&ctx->ops_lock);

	arena = kzalloc(sizeof(*arena), GFP_KERNEL_ACCOUNT);
	if (!arena)
		return ERR_PTR(-ENOMEM);

	do {
		addr = start ?: winvm_linux_gap(ctx, len, place, align);
		if (addr < 0) {
			ret = addr;
			goto err_free;
		}
		ret = winvm_map(ctx, winvm_store(ctx, large), addr, len, false,
				false);
	} while (ret == -EEXIST && !start && ++tries < WINVM_MAP_RETRIES);
	if (ret)
		goto err_free;

	down_write(&ctx->state_lock);
	ret = winvm_allocs_set(ctx, addr, addr + len, NULL, GFP_KERNEL);
	up_write(&ctx->state_lock);
	if (ret)
		goto err_unmap;

	arena->start = addr;
	arena->end = addr + len;
	arena->shared = shared;
	arena->top_down = place->top_down;
	arena->large = large;
	rb_add(&arena->node, &ctx->arenas, winvm_arena_less);
	return arena;

err_unmap:
	winvm_unmap(ctx, addr, len);
err_free:
	kfree(arena);
	return ERR_PTR(ret);
}

/*
 * Unmap winvm's own VMAs in [start, end), leaving alone anything the program
 * mapped there after unmapping winvm's.
 */
static int winvm_unmap_ours(struct winvm_ctx *ctx, unsigned long start,
			    unsigned long end)
{
	struct vm_area_struct *vma;
	unsigned long from, to;
	int ret;

	lockdep_assert_held(&ctx->ops_lock);

	while (start < end) {
		from = end;
		to = end;
		mmap_read_lock(ctx->mm);
		for (vma = find_vma(ctx->mm, start); vma && vma->vm_start < end;
		     vma = find_vma(ctx->mm, vma->vm_end)) {
			if (winvm_vma_is_ours(ctx, vma)) {
				from = max(vma->vm_start, start);
				to = min(vma->vm_end, end);
				break;
			}
		}
		mmap_read_unlock(ctx->mm);
		if (from == end)
			return 0;
		ret = winvm_unmap(ctx, from, to - from);
		if (ret)
			return ret;
		start = to;
	}
	return 0;
}

/*
 * Unmap an arena and give its range back to the process. Its VMAs go first:
 * if that fails (a fatal signal is pending), the arena stays and false is
 * returned.
 */
static bool winvm_arena_destroy(struct winvm_ctx *ctx,
				struct winvm_arena *arena)
{
	lockdep_assert_held(&ctx->ops_lock);

	if (winvm_unmap_ours(ctx, arena->start, arena->end))
		return false;

	down_write(&ctx->state_lock);
	winvm_allocs_set(ctx, arena->start, arena->end, WINVM_NO_ARENA,
			 GFP_KERNEL | __GFP_NOFAIL);
	up_write(&ctx->state_lock);

	if (ctx->spare == arena)
		ctx->spare = NULL;
	rb_erase(&arena->node, &ctx->arenas);
	kfree(arena);
	return true;
}

static bool winvm_arena_empty(struct winvm_ctx *ctx,
			      struct winvm_arena *arena)
{
	unsigned long index = arena->start;
	bool empty;

	down_read(&ctx->state_lock);
	empty = !mt_find(&ctx->allocs, &index, arena->end - 1);
	up_read(&ctx->state_lock);
	return empty;
}

/*
 * After a release in [start, end): unmap the arenas it emptied, keeping one
 * empty shared arena so that a program allocating and freeing in a loop
 * does not map and unmap an arena every time.
 */
static void winvm_arenas_trim(struct winvm_ctx *ctx, unsigned long start,
			      unsigned long end)
{
	struct winvm_arena *arena;

	lockdep_assert_held(&ctx->ops_lock);

	while (start < end && (arena = winvm_arena_find(ctx, start))) {
		start = arena->end;
		if (!winvm_arena_empty(ctx, arena) || ctx->spare == arena)
			continue;
		if (arena->shared && !ctx->spare) {
			ctx->spare = arena;
			continue;
		}
		winvm_arena_destroy(ctx, arena);
	}
}

static struct winvm_arena *winvm_arena_next(struct winvm_arena *arena)
{
	struct rb_node *node = rb_next(&arena->node);

	return node ? rb_entry(node, struct winvm_arena, node) : NULL;
}

/* Whether any arena from @first to @last has had an executable VMA. */
static bool winvm_arenas_exec(struct winvm_arena *first,
			      struct winvm_arena *last)
{
	struct winvm_arena *arena;

	for (arena = first; arena != last; arena = winvm_arena_next(arena))
		if (arena->exec)
			return true;
	return last->exec;
}

/* A run of VMAs of one exec permission, as winvm_set_exec() found it. */
struct winvm_run {
	unsigned long start;
	unsigned long end;
	bool exec;
};

static void winvm_run_add(struct winvm_run *runs, unsigned int *n,
			  unsigned long start, unsigned long end, bool exec)
{
	struct winvm_run *last = *n ? &runs[*n - 1] : NULL;

	if (last && last->end == start && last->exec == exec) {
		last->end = end;
		return;
	}
	runs[(*n)++] = (struct winvm_run){ start, end, exec };
}

/*
 * A replace map that failed may have unmapped its range already (6.1
 * unmaps, then allocates the new VMA): map the runs back as they were.
 * Where one was never unmapped, vm_mmap() finds it there and maps nothing.
 * Should that fail too, the next ioctl resyncs the arenas.
 */
static void winvm_runs_restore(struct winvm_ctx *ctx,
			       struct winvm_store *store,
			       const struct winvm_run *runs, unsigned int n)
{
	unsigned int i;
	int ret;

	lockdep_assert_held(&ctx->ops_lock);

	for (i = 0; i < n; i++) {
		ret = winvm_map(ctx, store, runs[i].start,
				runs[i].end - runs[i].start, runs[i].exec,
				false);
		if (ret && ret != -EEXIST)
			WRITE_ONCE(ctx->lost, true);
	}
}

/*
 * Make every VMA in [start, end) executable or not. The VMAs are re-created
 * (contents live in the backing file, so nothing is lost); neighbours in
 * the same arena that already have the wanted permission are folded in so
 * that VMAs only ever split between executable and non-executable runs.
 * On failure the VMAs are as they were.
 */
static int winvm_set_exec(struct winvm_ctx *ctx, unsigned long start,
			  unsigned long end, bool exec)
{
	unsigned long lo = start, hi = end, pos;
	struct winvm_arena *first, *last, *arena;
	struct winvm_run *runs = NULL;
	struct vm_area_struct *vma;
	unsigned int nvma = 0, n = 0;
	struct winvm_store *store;
	bool mismatch = false;
	int ret = 0;

	lockdep_assert_held(&ctx->ops_lock);

	first = winvm_arena_find(ctx, start);
	last = winvm_arena_find(ctx, end - 1);
	if (!first || !last)
		return -ENXIO;
	if (!exec && !winvm_arenas_exec(first, last))
		return 0;

	mmap_read_lock(ctx->mm);
	for (pos = start; pos < end; pos = vma->vm_end) {
		vma = find_vma(ctx->mm, pos);
		if (!vma || vma->vm_start > pos || !winvm_vma_is_ours(ctx, vma)) {
			ret = -ENXIO;
			break;
		}
		if (!!(vma->vm_flags & VM_EXEC) != exec)
			mismatch = true;
		nvma++;
	}
	if (ret || !mismatch)
		goto out_unlock;

	vma = find_vma(ctx->mm, start - 1);
	if (start > first->start && vma && vma->vm_end == start &&
	    winvm_vma_is_ours(ctx, vma) && !!(vma->vm_flags & VM_EXEC) == exec)
		lo = max(vma->vm_start, first->start);
	vma = find_vma(ctx->mm, end);
	if (end < last->end && vma && vma->vm_start == end &&
	    winvm_vma_is_ours(ctx, vma) && !!(vma->vm_flags & VM_EXEC) == exec)
		hi = min(vma->vm_end, last->end);

	/* The layout of [lo, hi), to put back if the map fails. */
	runs = kmalloc_array(nvma + 2, sizeof(*runs), GFP_KERNEL);
	if (!runs) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	if (lo < start)
		winvm_run_add(runs, &n, lo, start, exec);
	for (pos = start; pos < end; pos = vma->vm_end) {
		vma = find_vma(ctx->mm, pos);
		winvm_run_add(runs, &n, pos, min(vma->vm_end, end),
			      vma->vm_flags & VM_EXEC);
	}
	if (end < hi)
		winvm_run_add(runs, &n, end, hi, exec);
out_unlock:
	mmap_read_unlock(ctx->mm);

	if (ret || !mismatch)
		return ret;
	if (exec) {
		for (arena = first; arena != last; arena = winvm_arena_next(arena))
			arena->exec = true;
		last->exec = true;
	}
	store = winvm_store(ctx, first->large);
	ret = winvm_map(ctx, store, lo, hi - lo, exec, true);
	if (ret)
		winvm_runs_restore(ctx, store, runs, n);
	kfree(runs);
	return ret;
}

/*
 * Free the large pages of [start, end) that are not committed: undoes
 * winvm_large_populate().
 */
static void winvm_large_unpopulate(struct winvm_ctx *ctx, unsigned long start,
				   unsigned long end)
{
	unsigned long addr;
	bool committed;

	lockdep_assert_held(&ctx->ops_lock);

	for (addr = start; addr < end; addr += PMD_SIZE) {
		down_read(&ctx->state_lock);
		committed = winvm_page_state(ctx, addr);
		up_read(&ctx->state_lock);
		if (!committed)
			winvm_discard(ctx, &ctx->large, addr, addr + PMD_SIZE);
	}
}

/*
 * Allocate the large pages of [start, end) that are not committed yet, as
 * huge pages of the large store: -ENOBUFS if the kernel hands out a small
 * page instead (no huge page free), in which case what this call allocated
 * is freed again.
 */
static int winvm_large_populate(struct winvm_ctx *ctx, unsigned long start,
				unsigned long end)
{
	struct address_space *mapping = ctx->large.mapping;
	gfp_t gfp = mapping_gfp_mask(mapping) | __GFP_NOWARN;
	struct page *page;
	unsigned long addr;
	bool committed;
	int ret = 0;

	lockdep_assert_held(&ctx->ops_lock);

	for (addr = start; addr < end && !ret; addr += PMD_SIZE) {
		down_read(&ctx->state_lock);
		committed = winvm_page_state(ctx, addr);
		up_read(&ctx->state_lock);
		if (committed)
			continue;
		page = shmem_read_mapping_page_gfp(mapping, addr >> PAGE_SHIFT,
						   gfp);
		if (IS_ERR(page)) {
			ret = PTR_ERR(page);
			break;
		}
		if (thp_nr_pages(page) != PMD_SIZE >> PAGE_SHIFT)
			ret = -ENOBUFS;
		put_page(page);
		if (fatal_signal_pending(current))
			ret = -EINTR;
	}
	if (ret)
		winvm_large_unpopulate(ctx, start, min(addr + PMD_SIZE, end));
	return ret;
}

/*
 * Set [start, end) of @alloc to committed with @prot. Pages already
 * committed keep their contents and take the new protection; if they may
 * lose access, their PTEs go.
 */
static int winvm_commit(struct winvm_ctx *ctx, struct winvm_alloc *alloc,
			unsigned long start, unsigned long end, u32 prot)
{
	struct winvm_scan scan;
	long charge;
	int ret;

	lockdep_assert_held(&ctx->ops_lock);

	down_read(&ctx->state_lock);
	winvm_scan(ctx, start, end, &scan);
	up_read(&ctx->state_lock);
	charge = ((end - start) >> PAGE_SHIFT) - scan.pages;
	ret = winvm_charge(ctx, charge);
	if (ret)
		return ret;

	if (alloc->large) {
		ret = winvm_large_populate(ctx, start, end);
		if (ret)
			goto err_uncharge;
	}

	/* Faults between the VMA change and the state change wait. */
	WRITE_ONCE(ctx->exec_changing, prot & WINVM_PROT_EXEC);
	ret = winvm_set_exec(ctx, start, end, prot & WINVM_PROT_EXEC);
	if (ret)
		goto err_exec;

	down_write(&ctx->state_lock);
	ret = winvm_pages_set(ctx, alloc, start, end, winvm_page_entry(prot),
			      GFP_KERNEL);
	WRITE_ONCE(ctx->exec_changing, false);
	up_write(&ctx->state_lock);
	if (ret)
		goto err_unpopulate;

	if (winvm_takes_access(&scan, prot))
		winvm_zap_sync(ctx, winvm_store(ctx, alloc->large), start, end);
	return 0;

err_exec:
	WRITE_ONCE(ctx->exec_changing, false);
err_unpopulate:
	if (alloc->large)
		winvm_large_unpopulate(ctx, start, end);
err_uncharge:
	winvm_charge(ctx, -charge);
	return ret;
}

/* Decommit [start, end) of @alloc; cannot fail. */
static void winvm_decommit(struct winvm_ctx *ctx, struct winvm_alloc *alloc,
			   unsigned long start, unsigned long end)
{
	struct winvm_scan scan;

	lockdep_assert_held(&ctx->ops_lock);

	down_write(&ctx->state_lock);
	winvm_scan(ctx, start, end, &scan);
	winvm_pages_set(ctx, alloc, start, end, NULL,
			GFP_KERNEL | __GFP_NOFAIL);
	up_write(&ctx->state_lock);

	winvm_forget(ctx, alloc->large, start, end);
	winvm_charge(ctx, -scan.pages);
}

/*
 * Release [start, end) of @alloc. The pieces left on either side become
 * allocations of their own, based at their first page. Arena trimming is
 * left to the caller.
 */
static int winvm_release(struct winvm_ctx *ctx, struct winvm_alloc *alloc,
			 unsigned long start, unsigned long end)
{
	const gfp_t nofail = GFP_KERNEL | __GFP_NOFAIL;
	struct winvm_alloc *tail = NULL;
	bool large = alloc->large, watch = alloc->watch;
	struct winvm_scan scan;

	lockdep_assert_held(&ctx->ops_lock);

	if (start > alloc->base && end < alloc->end) {
		tail = kmalloc(sizeof(*tail), GFP_KERNEL_ACCOUNT);
		if (!tail)
			return -ENOMEM;
		*tail = *alloc;
		tail->base = end;
	}

	/* From here on nothing may fail: the state only moves forward. */
	down_write(&ctx->state_lock);
	winvm_scan(ctx, start, end, &scan);
	winvm_pages_set(ctx, alloc, start, end, NULL, nofail);
	if (start == alloc->base && end == alloc->end) {
		winvm_allocs_set(ctx, alloc->base, alloc->fp_end, NULL, nofail);
	} else if (start == alloc->base) {
		winvm_allocs_set(ctx, start, end, NULL, nofail);
		alloc->base = end;
		alloc = NULL;
	} else {
		winvm_allocs_set(ctx, start, tail ? end : alloc->fp_end, NULL,
				 nofail);
		if (tail)
			winvm_allocs_set(ctx, end, tail->fp_end, tail, nofail);
		alloc->end = start;
		alloc->fp_end = start;
		alloc = NULL;
	}
	up_write(&ctx->state_lock);

	kfree(alloc);
	winvm_forget(ctx, large, start, end);
	if (watch)
		winvm_watch_clear(ctx, start, end);
	winvm_charge(ctx, -scan.pages);
	return 0;
}

/*
 * Insert a reservation of [base, end) with footprint [base, fp_end) in free
 * arena space, committing it at once if @commit; @watch makes it
 * write-watched.
 */
static int winvm_insert(struct winvm_ctx *ctx, unsigned long base,
			unsigned long end, unsigned long fp_end, u32 prot,
			bool commit, bool large, bool watch)
{
	struct winvm_alloc *alloc;
	int ret;

	lockdep_assert_held(&ctx->ops_lock);

	alloc = kmalloc(sizeof(*alloc), GFP_KERNEL_ACCOUNT);
	if (!alloc)
		return -ENOMEM;
	alloc->base = base;
	alloc->end = end;
	alloc->fp_end = fp_end;
	alloc->prot = prot;
	alloc->large = large;
	alloc->watch = watch;
	if (watch)
		WRITE_ONCE(ctx->watching, true);

	down_write(&ctx->state_lock);
	ret = winvm_allocs_set(ctx, base, alloc->fp_end, alloc, GFP_KERNEL);
	up_write(&ctx->state_lock);
	if (ret) {
		kfree(alloc);
		return ret;
	}

	if (commit) {
		ret = winvm_commit(ctx, alloc, base, end, prot);
		if (ret)
			winvm_release(ctx, alloc, base, end);
	}
	return ret;
}

/*
 * Free space for a reservation with footprint @len inside one existing
 * arena of the wanted direction, where @place allows: 0 if there is none.
 * Holes in arenas of the other direction (unless @place has bounds or an
 * alignment of its own, which the arena's direction must not defeat) or of
 * large pages, holes too small once cut at an arena boundary, and holes
 * with no block of @len at the alignment (free space starts and ends on
 * page boundaries: a partial release leaves such holes) are skipped, a few
 * of them at most before giving up (the caller then maps a new arena).
 */
static unsigned long winvm_arena_space(struct winvm_ctx *ctx,
				       unsigned long len,
				       const struct winvm_place *place)
{
	MA_STATE(mas, &ctx->allocs, 0, 0);
	unsigned long low = max_t(unsigned long, place->low, WINVM_MIN_ADDR);
	unsigned long high = min(place->high, ctx->max_addr);
	bool top_down = place->top_down;
	bool any_direction = low > WINVM_MIN_ADDR || high < ctx->max_addr ||
			     place->align != WINVM_GRANULARITY;
	unsigned long addr, hole_start, hole_end;
	struct winvm_arena *arena;
	int tries, ret;

	lockdep_assert_held(&ctx->ops_lock);

	for (tries = 0; tries < WINVM_MAP_RETRIES && low < high; tries++) {
		mas_reset(&mas);
		down_read(&ctx->state_lock);
		if (top_down)
			ret = mas_empty_area_rev(&mas, low, high, len);
		else
			ret = mas_empty_area(&mas, low, high, len);
		/* The whole hole, within the bounds. */
		if (!ret) {
			addr = mas.index;
			mas_set(&mas, addr);
			mas_walk(&mas);
		}
		up_read(&ctx->state_lock);
		if (ret)
			return 0;
		hole_start = max(mas.index, low);
		hole_end = min(mas.last, high);

		addr = top_down ? round_down(hole_end + 1 - len, place->align) :
				  round_up(hole_start, place->align);
		if (addr < hole_start || addr + len - 1 > hole_end ||
		    addr + len < addr) {
			if (top_down)
				high = hole_start - 1;
			else
				low = hole_end + 1;
			continue;
		}
		arena = winvm_arena_find(ctx, addr);
		if (!arena)
			return 0;
		/* Free space running on into the next arena: not all usable. */
		if (addr + len > arena->end) {
			if (top_down)
				high = arena->end - 1;
			else
				low = arena->end;
			continue;
		}
		if ((arena->top_down == top_down || any_direction) &&
		    !arena->large) {
			if (ctx->spare == arena)
				ctx->spare = NULL;
			return addr;
		}
		if (top_down)
			high = arena->start - 1;
		else
			low = arena->end;
	}
	return 0;
}

/*
 * Reserve @len bytes wherever @place allows; returns the base. Large-page
 * allocations, and those aligned beyond the granularity, always get an
 * arena of their own.
 */
static long winvm_reserve_any(struct winvm_ctx *ctx, unsigned long len,
			      u32 prot, bool commit, bool large, bool watch,
			      const struct winvm_place *place)
{
	unsigned long fp = round_up(len, WINVM_GRANULARITY);
	struct winvm_arena *arena;
	unsigned long base = 0;
	int ret;

	lockdep_assert_held(&ctx->ops_lock);

	if (fp < len || fp > ctx->max_addr + 1 - WINVM_MIN_ADDR)
		return -EINVAL;

	if (!large)
		base = winvm_arena_space(ctx, fp, place);
	if (!base) {
		bool shared = !large && fp <= WINVM_ARENA_DEDICATED &&
			      place->align == WINVM_GRANULARITY;

		arena = winvm_arena_create(ctx, 0,
					   shared ? WINVM_ARENA_SIZE : fp,
					   shared, place, large);
		/*
		 * Short of address space (RLIMIT_AS), or of room where @place
		 * allows: just what is needed.
		 */
		if (shared && PTR_ERR_OR_ZERO(arena) == -ENOMEM)
			arena = winvm_arena_create(ctx, 0, fp, false, place,
						   false);
		if (IS_ERR(arena))
			return PTR_ERR(arena);
		base = place->top_down ? arena->end - fp : arena->start;
	}

	ret = winvm_insert(ctx, base, base + len, base + fp, prot, commit,
			   large, watch);
	if (ret) {
		winvm_arenas_trim(ctx, base, base + fp);
		return ret;
	}
	return base;
}

/*
 * Reserve exactly [base, end), which must hold no allocation. The footprint
 * runs on to the next 64 KiB boundary or the next allocation, whichever
 * comes first; the parts of it outside every arena get dedicated arenas,
 * which fails with -EEXIST where the program has mapped something.
 */
static int winvm_reserve_at(struct winvm_ctx *ctx, unsigned long base,
			    unsigned long end, u32 prot, bool commit,
			    bool large, bool watch)
{
	MA_STATE(mas, &ctx->allocs, base, base);
	unsigned long fp_end = round_up(end, WINVM_GRANULARITY);
	const struct winvm_place fixed = { .top_down = false };
	struct winvm_arena *arena, *tmp;
	unsigned long pos = base;
	LIST_HEAD(created);
	void *entry;
	int ret = 0;

	lockdep_assert_held(&ctx->ops_lock);

	down_read(&ctx->state_lock);
	mas_for_each(&mas, entry, fp_end - 1) {
		if (!winvm_entry_is_alloc(entry))
			continue;
		if (mas.index < end)
			ret = -EEXIST;
		else
			fp_end = mas.index;
		break;
	}
	up_read(&ctx->state_lock);
	if (ret)
		return ret;

	while (pos < fp_end) {
		unsigned long hole_end;

		arena = winvm_arena_find(ctx, pos);
		if (arena && (large || arena->large)) {
			/* Large pages and small ones never share an arena. */
			ret = -EEXIST;
			goto err_destroy;
		}
		if (arena) {
			pos = arena->end;
			continue;
		}
		/* Up to the next arena or the end of the footprint. */
		down_read(&ctx->state_lock);
		mas_set(&mas, pos);
		mas_walk(&mas);
		hole_end = winvm_mas_end(&mas, fp_end);
		up_read(&ctx->state_lock);

		arena = winvm_arena_create(ctx, pos, hole_end - pos, false,
					   &fixed, large);
		if (IS_ERR(arena)) {
			ret = PTR_ERR(arena);
			goto err_destroy;
		}
		list_add(&arena->link, &created);
		pos = hole_end;
	}

	ret = winvm_insert(ctx, base, end, fp_end, prot, commit, large,
			   watch);
	if (ret)
		goto err_destroy;
	return 0;

err_destroy:
	list_for_each_entry_safe(arena, tmp, &created, link)
		winvm_arena_destroy(ctx, arena);
	return ret;
}

/* Release whole allocations overlapping [start, end). */
static void winvm_release_overlapping(struct winvm_ctx *ctx,
				      unsigned long start, unsigned long end)
{
	struct winvm_alloc *alloc;
	unsigned long index;
	void *entry;

	lockdep_assert_held(&ctx->ops_lock);

	for (;;) {
		index = start;
		down_read(&ctx->state_lock);
		do {
			entry = mt_find(&ctx->allocs, &index, end - 1);
		} while (entry && !winvm_entry_is_alloc(entry));
		up_read(&ctx->state_lock);
		if (!entry)
			break;
		alloc = entry;
		winvm_release(ctx, alloc, alloc->base, alloc->end);
	}
}

static bool winvm_arena_intact(struct winvm_ctx *ctx,
			       struct winvm_arena *arena)
{
	unsigned long pos = arena->start;
	struct vm_area_struct *vma;

	mmap_read_lock(ctx->mm);
	while (pos < arena->end) {
		vma = find_vma(ctx->mm, pos);
		if (!vma || vma->vm_start > pos || !winvm_vma_is_ours(ctx, vma))
			break;
		pos = vma->vm_end;
	}
	mmap_read_unlock(ctx->mm);
	return pos >= arena->end;
}

/*
 * A winvm VMA was unmapped behind the context's back: retire every arena
 * that lost address space, releasing the allocations that touch it.
 */
static void winvm_resync(struct winvm_ctx *ctx)
{
	struct winvm_arena *arena;
	struct rb_node *node;

	lockdep_assert_held(&ctx->ops_lock);

	if (!READ_ONCE(ctx->lost))
		return;
	WRITE_ONCE(ctx->lost, false);

	for (node = rb_first(&ctx->arenas); node; ) {
		arena = rb_entry(node, struct winvm_arena, node);
		node = rb_next(node);
		if (winvm_arena_intact(ctx, arena))
			continue;
		winvm_release_overlapping(ctx, arena->start, arena->end);
		if (!winvm_arena_destroy(ctx, arena))
			WRITE_ONCE(ctx->lost, true);
	}
}

/*
 * MEM_RESET: the contents of [start, end) are no longer needed. They go at
 * once, except on locked pages; the pages stay committed and read as zero.
 * The range is remembered, so that MEM_RESET_UNDO can tell of the loss.
 */
static int winvm_reset(struct winvm_ctx *ctx, struct winvm_alloc *alloc,
		       unsigned long start, unsigned long end)
{
	MA_STATE(mas, &ctx->resets, start, end - 1);
	struct winvm_store *store = winvm_store(ctx, alloc->large);
	unsigned long index, pos = start;
	struct page *page;
	int ret;

	lockdep_assert_held(&ctx->ops_lock);

	ret = mas_store_gfp(&mas, xa_mk_value(0), GFP_KERNEL);
	if (ret)
		return ret;

	xa_for_each_range(&ctx->locked, index, page, start >> PAGE_SHIFT,
			  (end >> PAGE_SHIFT) - 1) {
		if (index << PAGE_SHIFT > pos)
			winvm_discard(ctx, store, pos, index << PAGE_SHIFT);
		pos = (index + 1) << PAGE_SHIFT;
	}
	if (pos < end)
		winvm_discard(ctx, store, pos, end);
	return 0;
}

/*
 * MEM_RESET_UNDO: the contents of [start, end) are wanted again. -ENODATA
 * if any of it was reset (and so lost) since; either way it is no longer
 * reset.
 */
static int winvm_reset_undo(struct winvm_ctx *ctx, unsigned long start,
			    unsigned long end)
{
	unsigned long index = start;
	bool lost;

	lockdep_assert_held(&ctx->ops_lock);

	lost = mt_find(&ctx->resets, &index, end - 1);
	winvm_resets_clear(ctx, start, end);
	return lost ? -ENODATA : 0;
}

/*
 * Probe [start, end) of @alloc as VirtualLock does, in order: a page not
 * committed or without access fails with -EFAULT; an armed guard page is
 * disarmed and fails with -EAGAIN.
 */
static int winvm_lock_probe(struct winvm_ctx *ctx, struct winvm_alloc *alloc,
			    unsigned long start, unsigned long end)
{
	MA_STATE(mas, &ctx->pages, start, start);
	unsigned long pos = start, guard = 0;
	void *entry;
	u32 prot;
	int ret = 0;

	lockdep_assert_held(&ctx->ops_lock);

	down_read(&ctx->state_lock);
	mas_for_each(&mas, entry, end - 1) {
		prot = winvm_entry_prot(entry);
		if (mas.index > pos ||
		    !(prot & (WINVM_PROT_READ | WINVM_PROT_EXEC)))
			break;
		if (prot & WINVM_PROT_GUARD) {
			guard = pos;
			break;
		}
		pos = winvm_mas_end(&mas, end);
	}
	up_read(&ctx->state_lock);
	if (!guard)
		return pos < end ? -EFAULT : 0;

	down_write(&ctx->state_lock);
	prot = winvm_entry_prot(winvm_page_state(ctx, guard));
	if (prot & WINVM_PROT_GUARD)
		ret = winvm_pages_set(ctx, alloc, guard, guard + PAGE_SIZE,
				      winvm_page_entry(prot & ~WINVM_PROT_GUARD),
				      GFP_KERNEL);
	up_write(&ctx->state_lock);
	return ret ?: -EAGAIN;
}

/* Pin and record the pages of [start, end) that are not locked yet. */
static int winvm_lock(struct winvm_ctx *ctx, struct winvm_alloc *alloc,
		      unsigned long start, unsigned long end)
{
	unsigned long first = start >> PAGE_SHIFT, last = (end >> PAGE_SHIFT) - 1;
	unsigned long index, todo, addr;
	struct page *pages[64], *page;
	int ret, nr, i;

	lockdep_assert_held(&ctx->ops_lock);

	ret = winvm_lock_probe(ctx, alloc, start, end);
	if (ret)
		return ret;

	todo = last - first + 1;
	xa_for_each_range(&ctx->locked, index, page, first, last)
		todo--;
	if (account_locked_vm(ctx->mm, todo, true))
		return -EDQUOT;

	for (addr = start; addr < end && todo; addr += nr << PAGE_SHIFT) {
		nr = min_t(unsigned long, ARRAY_SIZE(pages),
			   (end - addr) >> PAGE_SHIFT);
		nr = pin_user_pages_fast(addr, nr, FOLL_LONGTERM, pages);
		if (nr <= 0) {
			ret = nr ?: -EFAULT;
			break;
		}
		for (i = 0; i < nr; i++) {
			index = (addr >> PAGE_SHIFT) + i;
			if (xa_load(&ctx->locked, index)) {
				unpin_user_page(pages[i]);
				continue;
			}
			ret = xa_err(xa_store(&ctx->locked, index, pages[i],
					      GFP_KERNEL_ACCOUNT));
			if (ret) {
				unpin_user_pages(pages + i, nr - i);
				break;
			}
			todo--;
		}
		if (ret)
			break;
	}
	/* What could not be locked is not charged. */
	account_locked_vm(ctx->mm, todo, false);
	return ret;
}

/* Unlock [start, end), every page of which must be locked. */
static int winvm_unlock(struct winvm_ctx *ctx, unsigned long start,
			unsigned long end)
{
	unsigned long index;

	lockdep_assert_held(&ctx->ops_lock);

	for (index = start >> PAGE_SHIFT; index < end >> PAGE_SHIFT; index++)
		if (!xa_load(&ctx->locked, index))
			return -ENOLCK;
	winvm_unlock_range(ctx, start, end);
	return 0;
}

/*
 * Describe the free range starting at @addr: it ends at the next allocation
 * or at the next mapping that is not winvm's.
 */
static void winvm_query_free(struct winvm_ctx *ctx, unsigned long addr,
			     unsigned long from, struct winvm_query_args *args)
{
	unsigned long end = ctx->max_addr + 1;
	unsigned long index = from;
	struct vm_area_struct *vma;
	void *entry;

	lockdep_assert_held(&ctx->mm->mmap_lock);
	lockdep_assert_held(&ctx->state_lock);

	do {
		entry = mt_find(&ctx->allocs, &index, ctx->max_addr);
	} while (entry && !winvm_entry_is_alloc(entry));
	if (entry)
		end = min(end, ((struct winvm_alloc *)entry)->base);

	for (vma = find_vma(ctx->mm, addr); vma && vma->vm_start < end;
	     vma = find_vma(ctx->mm, vma->vm_end)) {
		if (!winvm_vma_is_ours(ctx, vma)) {
			end = max(vma->vm_start, addr);
			break;
		}
	}

	args->out_state = WINVM_STATE_FREE;
	args->out_type = WINVM_TYPE_NONE;
	args->out_region_size = end - addr;
}

static u32 winvm_vma_prot(struct vm_area_struct *vma)
{
	u32 prot = 0;

	if (vma->vm_flags & VM_READ)
		prot |= WINVM_PROT_READ;
	if (vma->vm_flags & VM_WRITE)
		prot |= WINVM_PROT_WRITE;
	if (vma->vm_flags & VM_EXEC)
		prot |= WINVM_PROT_EXEC;
	if ((prot & WINVM_PROT_WRITE) && vma->vm_file &&
	    !(vma->vm_flags & VM_SHARED))
		prot |= WINVM_PROT_COPY;
	return prot;
}

/* Adjacent VMA mapping the same file: part of the same image or view. */
static bool winvm_vma_same_file(struct vm_area_struct *a,
				struct vm_area_struct *b)
{
	return a && b && a->vm_file && a->vm_file == b->vm_file &&
	       (a->vm_end == b->vm_start || b->vm_end == a->vm_start);
}

/*
 * Describe a mapping winvm did not make, in the terms of the query: a file
 * mapping is an image if any VMA of the contiguous run mapping that file is
 * executable, a view otherwise; anonymous memory is private.
 */
static void winvm_query_vma(struct winvm_ctx *ctx, struct vm_area_struct *vma,
			    unsigned long addr, struct winvm_query_args *args)
{
	struct vm_area_struct *first = vma, *next, *prev;
	bool exec = vma->vm_flags & VM_EXEC;
	unsigned long end = vma->vm_end;
	u32 prot = winvm_vma_prot(vma);
	u32 state = WINVM_STATE_COMMIT;
	u32 type;

	lockdep_assert_held(&ctx->mm->mmap_lock);

	if (vma->vm_file) {
		while (first->vm_start &&
		       (prev = vma_lookup(ctx->mm, first->vm_start - 1)) &&
		       winvm_vma_same_file(prev, first)) {
			first = prev;
			exec |= first->vm_flags & VM_EXEC;
		}
		for (next = find_vma(ctx->mm, vma->vm_end);
		     !exec && winvm_vma_same_file(vma, next);
		     next = find_vma(ctx->mm, next->vm_end))
			exec |= next->vm_flags & VM_EXEC;
		if (exec && !(vma->vm_flags & VM_SHARED))
			type = WINVM_TYPE_IMAGE;
		else
			type = WINVM_TYPE_MAPPED;
	} else {
		type = WINVM_TYPE_PRIVATE;
		if (!prot)
			state = WINVM_STATE_RESERVE;
	}

	/* The region runs on over adjacent VMAs that look the same. */
	for (next = find_vma(ctx->mm, end); next && next->vm_start == end &&
	     next->vm_file == vma->vm_file && winvm_vma_prot(next) == prot &&
	     end <= ctx->max_addr;
	     next = find_vma(ctx->mm, end))
		end = next->vm_end;

	args->out_alloc_base = first->vm_start;
	if (type == WINVM_TYPE_IMAGE)
		args->out_alloc_prot = WINVM_PROT_READ | WINVM_PROT_WRITE |
				       WINVM_PROT_EXEC | WINVM_PROT_COPY;
	else
		args->out_alloc_prot = winvm_vma_prot(first);
	args->out_prot = state == WINVM_STATE_COMMIT ? prot : 0;
	args->out_state = state;
	args->out_type = type;
	args->out_region_size = min(end, ctx->max_addr + 1) - addr;
}

/* Describe a page of a winvm allocation. */
static void winvm_query_alloc(struct winvm_ctx *ctx, struct winvm_alloc *alloc,
			      unsigned long addr, struct winvm_query_args *args)
{
	MA_STATE(mas, &ctx->pages, addr, addr);
	unsigned long end;
	void *entry;

	lockdep_assert_held(&ctx->state_lock);

	entry = mas_walk(&mas);
	end = winvm_mas_end(&mas, alloc->end);
	/* Runs are merged when stored; follow any that were not. */
	while (entry && end < alloc->end) {
		mas_set(&mas, end);
		if (mas_walk(&mas) != entry)
			break;
		end = winvm_mas_end(&mas, alloc->end);
	}

	args->out_flags = WINVM_QUERY_WINVM;
	args->out_alloc_base = alloc->base;
	args->out_alloc_prot = alloc->prot;
	if (entry)
		args->out_prot = winvm_entry_prot(entry) |
				 (alloc->prot & WINVM_PROT_CACHE_MASK);
	args->out_state = entry ? WINVM_STATE_COMMIT : WINVM_STATE_RESERVE;
	args->out_type = WINVM_TYPE_PRIVATE;
	args->out_region_size = end - addr;
}

static void winvm_query(struct winvm_ctx *ctx, unsigned long addr,
			struct winvm_query_args *args)
{
	MA_STATE(mas, &ctx->allocs, addr, addr);
	struct vm_area_struct *vma;
	unsigned long from = addr;
	void *entry;

	args->out_base = addr;

	/* Allocations need only the state lock. */
	down_read(&ctx->state_lock);
	entry = mas_walk(&mas);
	if (winvm_entry_is_alloc(entry) &&
	    addr < ((struct winvm_alloc *)entry)->end) {
		winvm_query_alloc(ctx, entry, addr, args);
		up_read(&ctx->state_lock);
		return;
	}
	up_read(&ctx->state_lock);

	mmap_read_lock(ctx->mm);
	down_read(&ctx->state_lock);
	mas_set(&mas, addr);
	entry = mas_walk(&mas);
	if (winvm_entry_is_alloc(entry)) {
		if (addr < ((struct winvm_alloc *)entry)->end) {
			winvm_query_alloc(ctx, entry, addr, args);
			goto out;
		}
		from = mas.last + 1;	/* past the slack of the footprint */
	}
	vma = vma_lookup(ctx->mm, addr);
	if (vma && !winvm_vma_is_ours(ctx, vma))
		winvm_query_vma(ctx, vma, addr, args);
	else
		winvm_query_free(ctx, addr, from, args);
out:
	up_read(&ctx->state_lock);
	mmap_read_unlock(ctx->mm);
}

/*
 * The fault path. A fault on a winvm VMA maps the page from the backing
 * file if the page is committed with the access asked for; an armed guard
 * page takes its one-shot exception; anything else gets SIGSEGV. A page that
 * is not executable is never mapped into an executable VMA (that only
 * happens for an instant while winvm_set_exec() moves a range), so the VMA
 * never grants more than the page allows.
 */
enum winvm_verdict {
	WINVM_MAP,
	WINVM_DENY,
	WINVM_GUARD,
	WINVM_WAIT,
};

static enum winvm_verdict winvm_access(struct vm_area_struct *vma,
				       void *entry, unsigned int fault_flags)
{
	struct winvm_ctx *ctx = vma->vm_file->private_data;
	u32 prot = winvm_entry_prot(entry);
	bool ok;

	if (!entry)
		return WINVM_DENY;
	/* Only the program's own accesses trip a guard page. */
	if (prot & WINVM_PROT_GUARD)
		return fault_flags & FAULT_FLAG_USER ? WINVM_GUARD : WINVM_DENY;
	/*
	 * Not yet executable in an executable VMA: never mapped there, but
	 * while a commit is making it executable (the VMA changes first)
	 * the access is retried until the state catches up.
	 */
	if ((vma->vm_flags & VM_EXEC) && !(prot & WINVM_PROT_EXEC))
		return READ_ONCE(ctx->exec_changing) ? WINVM_WAIT : WINVM_DENY;
	if (fault_flags & FAULT_FLAG_WRITE)
		ok = prot & WINVM_PROT_WRITE;
	else if (fault_flags & FAULT_FLAG_INSTRUCTION)
		ok = prot & WINVM_PROT_EXEC;
	else
		ok = prot & (WINVM_PROT_READ | WINVM_PROT_EXEC);
	return ok ? WINVM_MAP : WINVM_DENY;
}

/*
 * Whether the page allocator hands out zeroed pages for @gfp: init_on_alloc,
 * the default of Debian's kernel and of most distributions', clears every
 * page it allocates (init_on_free clears them at free instead, which this
 * does not count on).
 */
static bool winvm_alloc_zeroes(gfp_t gfp)
{
	return want_init_on_alloc(gfp) && !want_init_on_free();
}

/*
 * The page of the small store at @index, referenced, for a fault (@write:
 * a write fault). shmem clears every page it creates for a read or a
 * fault, after the allocator has cleared it already when it zeroes pages
 * (winvm_alloc_zeroes()): two clears of 4 KiB on every first touch, over a
 * quarter of its cost in the test VM (18.2 against 13.3 us). Then a write
 * fault creates a missing page through the file's write_begin and
 * write_end, shmem's path for a write, which leaves the page to the writer,
 * and tells write_end the whole page was written: what it holds are the
 * allocator's zeros. shmem_write_begin() expects the caller to hold the
 * inode lock, which a fault cannot take (writes take it before mmap_lock);
 * what the lock guards there does not apply to the store: it has no seals,
 * nothing else writes to it, and its size never changes, the page lying
 * within it. (i915 also calls the two on its private shmem files without
 * the lock, with the data it copies in between.) write_end marks the page
 * dirty, as the write fault does anyway; a page first read stays clean, so
 * that reclaim may drop it rather than swap it out, and is created by
 * shmem's fault path, as it is without a zeroing allocator or on a kernel
 * other than 6.1 (see compat.h).
 */
static struct page *winvm_get_page(struct winvm_ctx *ctx, pgoff_t index,
				   bool write)
{
	struct address_space *mapping = ctx->small.mapping;
	struct file *backing = ctx->small.backing;
	loff_t pos = (loff_t)index << PAGE_SHIFT;
	gfp_t gfp = mapping_gfp_mask(mapping);
	struct page *page;
	void *fsdata;
	int err;

	if (!write || !WINVM_WRITE_BEGIN_PAGE || !winvm_alloc_zeroes(gfp) ||
	    pos + PAGE_SIZE > i_size_read(file_inode(backing)))
		return shmem_read_mapping_page_gfp(mapping, index, gfp);

	page = find_get_page(mapping, index);
	if (page && PageUptodate(page))
		return page;
	if (page)
		put_page(page);
	err = winvm_write_begin(backing, mapping, pos, &page, &fsdata);
	if (err)
		return ERR_PTR(err);
	get_page(page);
	winvm_write_end(backing, mapping, pos, page, fsdata);
	return page;
}

/*
 * Lock @page for the fault; VM_FAULT_NOPAGE (retry) if it was truncated
 * meanwhile.
 */
static vm_fault_t winvm_lock_page(struct address_space *mapping,
				  struct page *page)
{
	struct folio *folio = page_folio(page);

	folio_lock(folio);
	if (unlikely(folio->mapping != mapping)) {
		folio_unlock(folio);
		return VM_FAULT_NOPAGE;
	}
	return VM_FAULT_LOCKED;
}

/* Whether a SIGSEGV sent to current would reach a handler. */
static bool winvm_sigsegv_deliverable(void)
{
	/* Only current itself replaces its sighand (at exec). */
	struct sighand_struct *sighand =
		rcu_dereference_protected(current->sighand, true);

	return !sigismember(&current->blocked, SIGSEGV) &&
	       READ_ONCE(sighand->action[SIGSEGV - 1].sa.sa_handler) != SIG_IGN;
}

/*
 * A user access hit an armed guard page: disarm it and send the guard
 * signal to the faulting thread, saying (if asked to) whether its stack
 * pointer is in the page's allocation (its stack growing, to Windows); the
 * access is retried once its handler returns. If another thread disarmed
 * the page first, just retry: exactly one access per arming takes the
 * exception.
 */
static vm_fault_t winvm_guard_hit(struct winvm_ctx *ctx, struct vm_fault *vmf)
{
	unsigned long sp = current_user_stack_pointer();
	unsigned long addr = vmf->address;
	struct kernel_siginfo info;
	struct winvm_alloc *alloc;
	bool hit = false, stack;
	u32 prot, access;

	/* A thread that cannot take the signal dies of the fault instead. */
	if (!winvm_sigsegv_deliverable())
		return VM_FAULT_SIGSEGV;

	down_write(&ctx->state_lock);
	prot = winvm_entry_prot(winvm_page_state(ctx, addr));
	alloc = winvm_alloc_find(ctx, addr);
	if ((prot & WINVM_PROT_GUARD) && alloc) {
		if (winvm_pages_set(ctx, alloc, addr, addr + PAGE_SIZE,
				    winvm_page_entry(prot & ~WINVM_PROT_GUARD),
				    GFP_KERNEL)) {
			up_write(&ctx->state_lock);
			return VM_FAULT_OOM;
		}
		hit = true;
		stack = READ_ONCE(ctx->guard_stack) && sp >= alloc->base &&
			sp < alloc->end;
	}
	up_write(&ctx->state_lock);
	if (!hit)
		return VM_FAULT_NOPAGE;

	if (vmf->flags & FAULT_FLAG_WRITE)
		access = WINVM_ACCESS_WRITE;
	else if (vmf->flags & FAULT_FLAG_INSTRUCTION)
		access = WINVM_ACCESS_EXEC;
	else
		access = WINVM_ACCESS_READ;

	clear_siginfo(&info);
	info.si_signo = SIGSEGV;
	info.si_errno = WINVM_GUARD_SIGNATURE | access |
			(stack ? WINVM_GUARD_STACK : 0);
	info.si_code = SEGV_ACCERR;
	info.si_addr = (void __user *)vmf->real_address;
	send_sig_info(SIGSEGV, &info, current);
	return VM_FAULT_NOPAGE;
}

static vm_fault_t winvm_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct winvm_ctx *ctx = vma->vm_file->private_data;
	struct address_space *mapping = vma->vm_file->f_mapping;
	enum winvm_verdict verdict;
	struct page *page;
	vm_fault_t ret;

	if (unlikely(vma->vm_mm != ctx->mm))
		return VM_FAULT_SIGSEGV;

	down_read(&ctx->state_lock);
	verdict = winvm_access(vma, winvm_page_state(ctx, vmf->address),
			       vmf->flags);
	if (verdict == WINVM_GUARD) {
		up_read(&ctx->state_lock);
		ret = winvm_guard_hit(ctx, vmf);
		if (ret != VM_FAULT_NOPAGE)
			return ret;
		/*
		 * The page is disarmed: map it now if the access is allowed,
		 * so that the access retried after the handler does not fault
		 * again. If it is not, the retry faults afresh (and, after a
		 * guard signal, must: one fault, one signal).
		 */
		down_read(&ctx->state_lock);
		verdict = winvm_access(vma, winvm_page_state(ctx, vmf->address),
				       vmf->flags);
		if (verdict != WINVM_MAP) {
			up_read(&ctx->state_lock);
			return VM_FAULT_NOPAGE;
		}
	} else if (verdict == WINVM_WAIT) {
		up_read(&ctx->state_lock);
		return VM_FAULT_NOPAGE;
	} else if (verdict != WINVM_MAP) {
		up_read(&ctx->state_lock);
		return VM_FAULT_SIGSEGV;
	}

	if (vma->vm_file == ctx->file)
		page = winvm_get_page(ctx, vmf->pgoff,
				      vmf->flags & FAULT_FLAG_WRITE);
	else
		page = shmem_read_mapping_page_gfp(mapping, vmf->pgoff,
						   mapping_gfp_mask(mapping));
	if (IS_ERR(page)) {
		ret = vmf_error(PTR_ERR(page));
		goto out;
	}
	/*
	 * A huge page in the small store (shmem_enabled=force overrides the
	 * mount) would be mapped by PMD, past the protection of its pages.
	 */
	if (unlikely(PageTransCompound(page) && vma->vm_file == ctx->file)) {
		put_page(page);
		ret = VM_FAULT_SIGBUS;
		goto out;
	}
	ret = winvm_lock_page(mapping, page);
	if (ret & VM_FAULT_LOCKED)
		vmf->page = page;
	else
		put_page(page);
out:
	up_read(&ctx->state_lock);
	return ret;
}

/*
 * The first write to a page of a write-watched allocation since it was
 * mapped: mark it, with the page still locked (see "Lock order").
 */
static vm_fault_t winvm_watch_fault(struct winvm_ctx *ctx,
				    struct vm_fault *vmf)
{
	struct winvm_alloc *alloc = winvm_alloc_find(ctx, vmf->address);

	if (!alloc || !alloc->watch || !winvm_watch_mark(ctx, vmf->address))
		return VM_FAULT_LOCKED;
	unlock_page(vmf->page);
	return VM_FAULT_OOM;
}

/*
 * First write to a page mapped read-only: allowed if the page is writable.
 * A page armed as a guard page while mapped is being zapped by the arming
 * call: retry, so that the access faults afresh (the fault flags here no
 * longer tell a user access from a kernel one).
 */
static vm_fault_t winvm_page_mkwrite(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct winvm_ctx *ctx = vma->vm_file->private_data;
	enum winvm_verdict verdict;
	vm_fault_t ret;
	void *entry;

	if (unlikely(vma->vm_mm != ctx->mm))
		return VM_FAULT_SIGSEGV;

	down_read(&ctx->state_lock);
	entry = winvm_page_state(ctx, vmf->address);
	verdict = winvm_access(vma, entry, vmf->flags | FAULT_FLAG_USER);
	if (verdict == WINVM_MAP) {
		ret = winvm_lock_page(vma->vm_file->f_mapping, vmf->page);
		if (ret == VM_FAULT_LOCKED && READ_ONCE(ctx->watching))
			ret = winvm_watch_fault(ctx, vmf);
	} else if (verdict == WINVM_GUARD || verdict == WINVM_WAIT) {
		ret = VM_FAULT_NOPAGE;
	} else {
		ret = VM_FAULT_SIGSEGV;
	}
	up_read(&ctx->state_lock);
	return ret;
}

static bool winvm_vma_internal(struct vm_area_struct *vma)
{
	struct winvm_ctx *ctx = vma->vm_file->private_data;

	return vma->vm_mm != ctx->mm || READ_ONCE(ctx->internal) == current;
}

/* A winvm VMA is gone; if the program did it, rebuild on the next ioctl. */
static void winvm_vma_close(struct vm_area_struct *vma)
{
	struct winvm_ctx *ctx = vma->vm_file->private_data;

	if (winvm_vma_internal(vma) || !atomic_read(&vma->vm_mm->mm_users))
		return;
	WRITE_ONCE(ctx->lost, true);
}

/* Partial munmap, mremap shrink and the like: winvm's own changes only. */
static int winvm_vma_may_split(struct vm_area_struct *vma, unsigned long addr)
{
	return winvm_vma_internal(vma) ? 0 : -EINVAL;
}

static int winvm_vma_mremap(struct vm_area_struct *vma)
{
	return -EINVAL;
}

static int winvm_vma_mprotect(struct vm_area_struct *vma, unsigned long start,
			      unsigned long end, unsigned long newflags)
{
	return -EACCES;
}

static const struct vm_operations_struct winvm_vm_ops = {
	.fault		= winvm_fault,
	.page_mkwrite	= winvm_page_mkwrite,
	.close		= winvm_vma_close,
	.may_split	= winvm_vma_may_split,
	.mremap		= winvm_vma_mremap,
	.mprotect	= winvm_vma_mprotect,
};

/*
 * Only winvm itself maps its file (winvm_map()); a program's mmap() of
 * /dev/winvm is refused.
 */
static int winvm_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct winvm_ctx *ctx = file->private_data;

	if (READ_ONCE(ctx->internal) != current || vma->vm_mm != ctx->mm)
		return -ENODEV;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;

	/* READ_IMPLIES_EXEC must not make non-executable pages executable. */
	if (!ctx->internal_exec)
		winvm_vm_flags_clear(vma, VM_EXEC);
	/*
	 * khugepaged stays out: small pages must never be collapsed into a
	 * PMD mapping, and large pages are huge from the start (the fault
	 * path maps them by PMD).
	 */
	winvm_vm_flags_set(vma, VM_DONTCOPY | VM_DONTEXPAND | VM_NOHUGEPAGE);
	vma->vm_ops = &winvm_vm_ops;
	return 0;
}

/*
 * A backing file: an accounted shmem file (its pages charge nothing when
 * touched, the ledger charged them at commit) given the size of the address
 * space without going through shmem's accounting. Its size must go back to
 * 0 before it is closed, or shmem would give back a charge it never took.
 */
/*
 * An unlinked shmem file on winvm's mount. shmem reports any failure to
 * get an inode as -ENOSPC, as for a full tmpfs; winvm's mounts have no
 * inode limit, so here it can only be a failed allocation.
 */
static struct file *winvm_shmem_file(struct vfsmount *mnt)
{
	struct file *file = shmem_file_setup_with_mnt(mnt, WINVM_NAME, 0, 0);

	if (IS_ERR(file) && PTR_ERR(file) == -ENOSPC)
		return ERR_PTR(-ENOMEM);
	return file;
}

static struct file *winvm_backing_create(struct vfsmount *mnt, loff_t size)
{
	struct file *backing;
	struct inode *inode;

	backing = winvm_shmem_file(mnt);
	if (IS_ERR(backing))
		return backing;
	inode = file_inode(backing);
	inode_lock(inode);
	i_size_write(inode, size);
	inode_unlock(inode);
	return backing;
}

static void winvm_backing_put(struct file *backing)
{
	struct inode *inode = file_inode(backing);

	inode_lock(inode);
	i_size_write(inode, 0);
	inode_unlock(inode);
	fput(backing);
}

/*
 * The last reference is gone: the /dev/winvm file and every VMA (each held
 * the file it maps, and so a reference) are gone; no fault or ioctl can
 * reach the context any more.
 */
static void winvm_ctx_free(struct kref *ref)
{
	struct winvm_ctx *ctx = container_of(ref, struct winvm_ctx, ref);
	struct winvm_arena *arena, *tmp;
	void *entry;

	MA_STATE(mas, &ctx->allocs, 0, 0);

	mutex_lock(&ctx->ops_lock);
	winvm_unlock_range(ctx, 0, ctx->max_addr + 1);
	__mt_destroy(&ctx->resets);
	mutex_unlock(&ctx->ops_lock);

	down_write(&ctx->state_lock);
	mas_for_each(&mas, entry, ULONG_MAX) {
		if (winvm_entry_is_alloc(entry))
			kfree(entry);
	}
	__mt_destroy(&ctx->allocs);
	__mt_destroy(&ctx->pages);
	up_write(&ctx->state_lock);

	rbtree_postorder_for_each_entry_safe(arena, tmp, &ctx->arenas, node)
		kfree(arena);
	xa_destroy(&ctx->written);

	fput(ctx->ledger);
	if (ctx->large.backing)
		winvm_backing_put(ctx->large.backing);
	winvm_backing_put(ctx->small.backing);
	mmdrop(ctx->mm);
	kfree(ctx);
}

static int winvm_view_release(struct inode *inode, struct file *file)
{
	struct winvm_ctx *ctx = file->private_data;

	file->f_mapping = inode->i_mapping;
	kref_put(&ctx->ref, winvm_ctx_free);
	return 0;
}

static const struct file_operations winvm_view_fops = {
	.owner		= THIS_MODULE,
	.release	= winvm_view_release,
	.mmap		= winvm_mmap,
	.llseek		= no_llseek,
};

/*
 * The large store, made on first use: a backing file on the huge-page
 * mount and a view for its VMAs, which holds a reference to the context.
 */
static int winvm_large_setup(struct winvm_ctx *ctx)
{
	struct winvm_store *store = &ctx->large;
	struct file *backing, *view;

	lockdep_assert_held(&ctx->ops_lock);

	if (store->view)
		return 0;
	if (!winvm_huge_mnt)
		return -EOPNOTSUPP;

	backing = winvm_backing_create(winvm_huge_mnt, ctx->max_addr + 1);
	if (IS_ERR(backing))
		return PTR_ERR(backing);
	view = anon_inode_getfile("[winvm-large]", &winvm_view_fops, ctx,
				  O_RDWR);
	if (IS_ERR(view)) {
		winvm_backing_put(backing);
		return PTR_ERR(view);
	}
	view->f_mapping = backing->f_mapping;
	kref_get(&ctx->ref);
	store->backing = backing;
	store->mapping = backing->f_mapping;
	store->view = view;
	return 0;
}

/*
 * ioctl handlers: copy in, validate, lock, act, unlock, copy out.
 */

/*
 * The rules of a large-page allocation: reserve and commit at once, whole
 * large pages, a plain protection.
 */
static bool winvm_large_args_valid(const struct winvm_alloc_args *args)
{
	u32 both = WINVM_ALLOC_RESERVE | WINVM_ALLOC_COMMIT;

	return (args->flags & both) == both &&
	       IS_ALIGNED(args->addr, PMD_SIZE) &&
	       IS_ALIGNED(args->size, PMD_SIZE) &&
	       !(args->prot & ~WINVM_PROT_MASK);
}

/*
 * Whether [start, end) of @alloc may be given @prot (0 when no protection
 * is set): in a large-page allocation only whole large pages, never GUARD.
 */
static bool winvm_large_range_ok(const struct winvm_alloc *alloc,
				 unsigned long start, unsigned long end,
				 u32 prot)
{
	return !alloc->large ||
	       (IS_ALIGNED(start, PMD_SIZE) && IS_ALIGNED(end, PMD_SIZE) &&
		!(prot & WINVM_PROT_GUARD));
}

/* Take ops_lock and catch up with VMAs the program unmapped. */
static int winvm_lock_ops(struct winvm_ctx *ctx)
{
	if (mutex_lock_killable(&ctx->ops_lock))
		return -EINTR;
	winvm_resync(ctx);
	return 0;
}

static int winvm_ioctl_get_info(struct winvm_ctx *ctx, void __user *argp)
{
	struct winvm_info info = {
		.api_version	= WINVM_API_VERSION,
		.page_size	= PAGE_SIZE,
		.features	= WINVM_FEATURE_PARTIAL_RELEASE |
			  WINVM_FEATURE_WRITE_WATCH |
			  WINVM_FEATURE_ADDRESS_REQUIREMENTS |
			  WINVM_FEATURE_GUARD_STACK,
		.granularity	= WINVM_GRANULARITY,
		.min_address	= WINVM_MIN_ADDR,
		.max_address	= ctx->max_addr,
	};

	if (winvm_huge_mnt) {
		info.features |= WINVM_FEATURE_LARGE_PAGES;
		info.large_page_size = PMD_SIZE;
	}

	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

/* The WINVM_ALLOC_RESET and WINVM_ALLOC_RESET_UNDO forms of the ioctl. */
static int winvm_ioctl_reset(struct winvm_ctx *ctx, void __user *argp,
			     struct winvm_alloc_args *args)
{
	unsigned long start, end;
	struct winvm_alloc *alloc;
	struct winvm_scan scan;
	int ret;

	if (args->flags != WINVM_ALLOC_RESET &&
	    args->flags != WINVM_ALLOC_RESET_UNDO)
		return -EINVAL;
	if (!args->addr)
		return -EINVAL;
	ret = winvm_page_range(ctx, args->addr, args->size, &start, &end);
	if (ret)
		return ret;
	/* Fail on an unwritable argument before anything changes. */
	if (copy_to_user(argp, args, sizeof(*args)))
		return -EFAULT;

	ret = winvm_lock_ops(ctx);
	if (ret)
		return ret;

	down_read(&ctx->state_lock);
	alloc = winvm_alloc_find(ctx, start);
	if (alloc && end <= alloc->end)
		winvm_scan(ctx, start, end, &scan);
	up_read(&ctx->state_lock);
	if (!alloc || end > alloc->end)
		ret = -ENXIO;
	else if (!winvm_large_range_ok(alloc, start, end, 0))
		ret = -EINVAL;
	else if (args->flags == WINVM_ALLOC_RESET)
		ret = winvm_reset(ctx, alloc, start, end);
	else if (!scan.all_committed)
		ret = -ENXIO;
	else
		ret = winvm_reset_undo(ctx, start, end);
	mutex_unlock(&ctx->ops_lock);
	if (ret)
		return ret;

	args->out_addr = start;
	args->out_size = end - start;
	if (copy_to_user(argp, args, sizeof(*args)))
		return -EFAULT;
	return 0;
}

/*
 * WINVM_IOC_ALLOC and WINVM_IOC_ALLOC_EX once @args (at @argp) is read:
 * @place says where a reservation the module places may go.
 */
static int winvm_alloc(struct winvm_ctx *ctx, void __user *argp,
		       struct winvm_alloc_args *args,
		       struct winvm_place *place)
{
	bool reserve, commit, large, watch;
	unsigned long start, end;
	struct winvm_alloc *alloc;
	long base;
	int ret;

	commit = args->flags & WINVM_ALLOC_COMMIT;
	reserve = (args->flags & WINVM_ALLOC_RESERVE) || (commit && !args->addr);
	place->top_down = args->flags & WINVM_ALLOC_TOP_DOWN;
	large = args->flags & WINVM_ALLOC_LARGE_PAGES;
	watch = args->flags & WINVM_ALLOC_WRITE_WATCH;
	if ((!reserve && !commit) || !args->size ||
	    !winvm_prot_valid(args->prot))
		return -EINVAL;
	if (watch && (!(args->flags & WINVM_ALLOC_RESERVE) || large))
		return -EINVAL;
	if (large && !winvm_large_args_valid(args))
		return -EINVAL;
	if (args->addr) {
		ret = winvm_page_range(ctx, args->addr, args->size, &start,
				       &end);
		if (ret || args->addr < WINVM_MIN_ADDR)
			return -EINVAL;
		if (reserve)
			start = round_down(args->addr, WINVM_GRANULARITY);
	} else {
		if (args->size > ctx->max_addr + 1 - WINVM_MIN_ADDR)
			return -EINVAL;
		start = 0;
		end = PAGE_ALIGN(args->size);
	}
	/* Fail on an unwritable argument before anything is allocated. */
	if (copy_to_user(argp, args, sizeof(*args)))
		return -EFAULT;

	ret = winvm_lock_ops(ctx);
	if (ret)
		return ret;

	if (large) {
		ret = winvm_large_setup(ctx);
		if (ret)
			goto out_unlock;
	}
	if (reserve && !start) {
		base = winvm_reserve_any(ctx, end, args->prot, commit, large,
					 watch, place);
		ret = base < 0 ? base : 0;
		if (!ret) {
			start = base;
			end += base;
		}
	} else if (reserve) {
		ret = winvm_reserve_at(ctx, start, end, args->prot, commit,
				       large, watch);
	} else {
		down_read(&ctx->state_lock);
		alloc = winvm_alloc_find(ctx, start);
		up_read(&ctx->state_lock);
		if (!alloc || end > alloc->end)
			ret = -ENXIO;
		else if (!winvm_large_range_ok(alloc, start, end, args->prot))
			ret = -EINVAL;
		else
			ret = winvm_commit(ctx, alloc, start, end, args->prot);
	}

out_unlock:
	mutex_unlock(&ctx->ops_lock);
	if (ret)
		return ret;

	args->out_addr = start;
	args->out_size = end - start;
	if (copy_to_user(argp, args, sizeof(*args)))
		return -EFAULT;
	return 0;
}

static int winvm_ioctl_alloc(struct winvm_ctx *ctx, void __user *argp)
{
	struct winvm_place place = {
		.low = WINVM_MIN_ADDR,
		.high = ctx->max_addr,
		.align = WINVM_GRANULARITY,
	};
	struct winvm_alloc_args args;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~WINVM_ALLOC_MASK)
		return -EINVAL;
	if (args.flags & (WINVM_ALLOC_RESET | WINVM_ALLOC_RESET_UNDO))
		return winvm_ioctl_reset(ctx, argp, &args);
	return winvm_alloc(ctx, argp, &args, &place);
}

static int winvm_ioctl_alloc_ex(struct winvm_ctx *ctx, void __user *argp)
{
	struct winvm_alloc_ex_args ex;
	struct winvm_place place;

	if (copy_from_user(&ex, argp, sizeof(ex)))
		return -EFAULT;
	if ((ex.alloc.flags & ~WINVM_ALLOC_MASK) ||
	    (ex.alloc.flags & (WINVM_ALLOC_RESET | WINVM_ALLOC_RESET_UNDO)) ||
	    !(ex.alloc.flags & WINVM_ALLOC_RESERVE) || ex.alloc.addr)
		return -EINVAL;
	place.align = ex.align ?: WINVM_GRANULARITY;
	place.low = ex.lowest ?: WINVM_MIN_ADDR;
	place.high = ex.highest ?: ctx->max_addr;
	if (!is_power_of_2(place.align) || place.align < WINVM_GRANULARITY ||
	    !IS_ALIGNED(place.low, WINVM_GRANULARITY) ||
	    place.low < WINVM_MIN_ADDR || place.high > ctx->max_addr ||
	    !IS_ALIGNED(place.high + 1, PAGE_SIZE) || place.high < place.low)
		return -EINVAL;
	return winvm_alloc(ctx, argp, &ex.alloc, &place);
}

static int winvm_ioctl_free(struct winvm_ctx *ctx, void __user *argp)
{
	struct winvm_free_args args;
	unsigned long start, end;
	struct winvm_alloc *alloc;
	int ret = 0;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;

	if (args.pad || (args.flags != WINVM_FREE_DECOMMIT &&
			 args.flags != WINVM_FREE_RELEASE))
		return -EINVAL;
	if (!args.addr || args.addr > ctx->max_addr)
		return -EINVAL;
	if (args.size) {
		ret = winvm_page_range(ctx, args.addr, args.size, &start, &end);
		if (ret)
			return ret;
	} else {
		start = round_down(args.addr, PAGE_SIZE);
	}
	/* Fail on an unwritable argument before anything changes. */
	if (copy_to_user(argp, &args, sizeof(args)))
		return -EFAULT;

	ret = winvm_lock_ops(ctx);
	if (ret)
		return ret;

	down_read(&ctx->state_lock);
	alloc = winvm_alloc_find(ctx, start);
	up_read(&ctx->state_lock);
	if (!alloc || (!args.size && start != alloc->base)) {
		ret = -ENXIO;
		goto out_unlock;
	}
	if (!args.size) {
		end = alloc->end;
	} else if (end > alloc->end ||
		   !winvm_large_range_ok(alloc, start, end, 0)) {
		ret = -EINVAL;
		goto out_unlock;
	}

	if (args.flags == WINVM_FREE_DECOMMIT) {
		winvm_decommit(ctx, alloc, start, end);
	} else {
		unsigned long fp_end = alloc->fp_end;

		ret = winvm_release(ctx, alloc, start, end);
		if (!ret)
			winvm_arenas_trim(ctx, start, fp_end);
	}

out_unlock:
	mutex_unlock(&ctx->ops_lock);
	if (ret)
		return ret;

	args.out_addr = start;
	args.out_size = end - start;
	if (copy_to_user(argp, &args, sizeof(args)))
		return -EFAULT;
	return 0;
}

static int winvm_ioctl_query(struct winvm_ctx *ctx, void __user *argp)
{
	struct winvm_query_args args;
	u64 addr;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.addr > ctx->max_addr)
		return -EINVAL;

	/* Queries take no ops_lock, unless the VMAs must be caught up with. */
	if (READ_ONCE(ctx->lost)) {
		if (winvm_lock_ops(ctx))
			return -EINTR;
		mutex_unlock(&ctx->ops_lock);
	}

	addr = args.addr;
	memset(&args, 0, sizeof(args));
	args.addr = addr;
	winvm_query(ctx, round_down(addr, PAGE_SIZE), &args);

	if (copy_to_user(argp, &args, sizeof(args)))
		return -EFAULT;
	return 0;
}

static int winvm_ioctl_protect(struct winvm_ctx *ctx, void __user *argp)
{
	struct winvm_protect_args args;
	unsigned long start, end;
	struct winvm_alloc *alloc;
	struct winvm_scan scan;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || !winvm_prot_valid(args.prot))
		return -EINVAL;
	ret = winvm_page_range(ctx, args.addr, args.size, &start, &end);
	if (ret)
		return ret;
	/* Fail on an unwritable argument before anything changes. */
	if (copy_to_user(argp, &args, sizeof(args)))
		return -EFAULT;

	ret = winvm_lock_ops(ctx);
	if (ret)
		return ret;

	down_read(&ctx->state_lock);
	alloc = winvm_alloc_find(ctx, start);
	if (alloc && end <= alloc->end)
		winvm_scan(ctx, start, end, &scan);
	up_read(&ctx->state_lock);
	if (!alloc || end > alloc->end || !scan.all_committed) {
		ret = -ENXIO;
		goto out_unlock;
	}
	if (!winvm_large_range_ok(alloc, start, end, args.prot)) {
		ret = -EINVAL;
		goto out_unlock;
	}
	args.out_old_prot = scan.first | (alloc->prot & WINVM_PROT_CACHE_MASK);
	ret = winvm_commit(ctx, alloc, start, end, args.prot);

out_unlock:
	mutex_unlock(&ctx->ops_lock);
	if (ret)
		return ret;

	args.out_addr = start;
	args.out_size = end - start;
	args.out_reserved = 0;
	if (copy_to_user(argp, &args, sizeof(args)))
		return -EFAULT;
	return 0;
}

static int winvm_ioctl_lock(struct winvm_ctx *ctx, void __user *argp,
			    bool lock)
{
	struct winvm_lock_args args;
	unsigned long start, end;
	struct winvm_alloc *alloc;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	ret = winvm_page_range(ctx, args.addr, args.size, &start, &end);
	if (ret)
		return ret;
	/* Fail on an unwritable argument before anything changes. */
	if (copy_to_user(argp, &args, sizeof(args)))
		return -EFAULT;

	ret = winvm_lock_ops(ctx);
	if (ret)
		return ret;

	down_read(&ctx->state_lock);
	alloc = winvm_alloc_find(ctx, start);
	up_read(&ctx->state_lock);
	if (!alloc || end > alloc->end)
		ret = -ENXIO;
	else if (lock)
		ret = winvm_lock(ctx, alloc, start, end);
	else
		ret = winvm_unlock(ctx, start, end);
	mutex_unlock(&ctx->ops_lock);
	if (ret)
		return ret;

	args.out_addr = start;
	args.out_size = end - start;
	if (copy_to_user(argp, &args, sizeof(args)))
		return -EFAULT;
	return 0;
}

/*
 * Whether @len bytes at @uaddr can be written, found the way a write would
 * find them (faulting pages in) but left as they are.
 */
static int winvm_probe_user(u64 uaddr, u64 len)
{
	u64 pos;
	u8 byte;

	if (!access_ok(u64_to_user_ptr(uaddr), len))
		return -EFAULT;
	for (pos = uaddr; pos < uaddr + len;
	     pos = round_down(pos, PAGE_SIZE) + PAGE_SIZE) {
		u8 __user *p = u64_to_user_ptr(pos);

		if (get_user(byte, p) || put_user(byte, p))
			return -EFAULT;
	}
	return 0;
}

static int winvm_ioctl_watch(struct winvm_ctx *ctx, void __user *argp)
{
	u64 addrs[WINVM_WATCH_BATCH];
	struct winvm_watch_args args;
	unsigned long start, end, pos;
	struct winvm_alloc *alloc;
	bool report, reset;
	u64 left, len;
	unsigned int n;
	int ret;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (!args.flags || (args.flags & ~WINVM_WATCH_MASK) || args.pad)
		return -EINVAL;
	report = args.flags & WINVM_WATCH_REPORT;
	reset = args.flags & WINVM_WATCH_RESET;
	if (report && !args.count)
		return -EINVAL;
	ret = winvm_page_range(ctx, args.addr, args.size, &start, &end);
	if (ret)
		return ret;
	/* Nothing changes unless every entry that may be written can be. */
	if (report) {
		len = min_t(u64, args.count, (end - start) >> PAGE_SHIFT) *
		      sizeof(u64);
		ret = winvm_probe_user(args.buf, len);
		if (ret)
			return ret;
	}
	if (copy_to_user(argp, &args, sizeof(args)))
		return -EFAULT;

	ret = winvm_lock_ops(ctx);
	if (ret)
		return ret;

	down_read(&ctx->state_lock);
	alloc = winvm_alloc_find(ctx, start);
	if (!alloc || !alloc->watch || end > alloc->end)
		ret = -EINVAL;
	up_read(&ctx->state_lock);
	if (ret)
		goto out_unlock;

	args.out_count = 0;
	left = report ? args.count : U64_MAX;
	for (pos = start; pos < end && left; left -= n) {
		n = winvm_watch_collect(ctx, &pos, end, addrs,
					min_t(u64, left, WINVM_WATCH_BATCH));
		if (!n)
			break;
		if (report &&
		    copy_to_user(u64_to_user_ptr(args.buf +
						 args.out_count * sizeof(u64)),
				 addrs, n * sizeof(u64))) {
			ret = -EFAULT;
			break;
		}
		if (reset)
			winvm_watch_reset(ctx, addrs, n);
		args.out_count += n;
	}

out_unlock:
	mutex_unlock(&ctx->ops_lock);
	if (ret)
		return ret;

	if (copy_to_user(argp, &args, sizeof(args)))
		return -EFAULT;
	return 0;
}

static int winvm_ioctl_set_options(struct winvm_ctx *ctx, void __user *argp)
{
	struct winvm_options args;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.options & ~WINVM_OPTION_MASK)
		return -EINVAL;
	WRITE_ONCE(ctx->guard_stack, args.options & WINVM_OPTION_GUARD_STACK);
	return 0;
}

static long winvm_ioctl(struct file *file, unsigned int cmd, unsigned long parm)
{
	struct winvm_ctx *ctx = file->private_data;
	void __user *argp = (void __user *)parm;

	if (current->mm != ctx->mm)
		return -EPERM;

	switch (cmd) {
	case WINVM_IOC_GET_INFO:
		return winvm_ioctl_get_info(ctx, argp);
	case WINVM_IOC_ALLOC:
		return winvm_ioctl_alloc(ctx, argp);
	case WINVM_IOC_ALLOC_EX:
		return winvm_ioctl_alloc_ex(ctx, argp);
	case WINVM_IOC_SET_OPTIONS:
		return winvm_ioctl_set_options(ctx, argp);
	case WINVM_IOC_FREE:
		return winvm_ioctl_free(ctx, argp);
	case WINVM_IOC_QUERY:
		return winvm_ioctl_query(ctx, argp);
	case WINVM_IOC_PROTECT:
		return winvm_ioctl_protect(ctx, argp);
	case WINVM_IOC_LOCK:
		return winvm_ioctl_lock(ctx, argp, true);
	case WINVM_IOC_UNLOCK:
		return winvm_ioctl_lock(ctx, argp, false);
	case WINVM_IOC_WATCH:
		return winvm_ioctl_watch(ctx, argp);
	default:
		return -ENOIOCTLCMD;
	}
}

/*
 * The highest address an allocation may cover: as on Windows, the end of
 * the last whole 64 KiB block of user space (0x7ffffffeffff on x86-64),
 * so that every reservation's footprint fits below the top.
 */
static unsigned long winvm_max_addr(struct mm_struct *mm)
{
	unsigned long top = mm->task_size;

#ifdef DEFAULT_MAP_WINDOW
	top = min_t(unsigned long, top, DEFAULT_MAP_WINDOW);
#endif
	return round_down(top, WINVM_GRANULARITY) - 1;
}

static int winvm_open(struct inode *inode, struct file *file)
{
	struct winvm_ctx *ctx;
	int ret;

	if (!current->mm)
		return -EPERM;
	/* The VMAs winvm maps are shared and writable: it needs both modes. */
	if ((file->f_mode & (FMODE_READ | FMODE_WRITE)) !=
	    (FMODE_READ | FMODE_WRITE))
		return -EACCES;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL_ACCOUNT);
	if (!ctx)
		return -ENOMEM;

	ctx->max_addr = winvm_max_addr(current->mm);
	ctx->small.backing = winvm_backing_create(winvm_mnt,
						  ctx->max_addr + 1);
	if (IS_ERR(ctx->small.backing)) {
		ret = PTR_ERR(ctx->small.backing);
		goto err_free_ctx;
	}
	ctx->small.mapping = ctx->small.backing->f_mapping;
	ctx->small.view = file;

	ctx->ledger = winvm_shmem_file(winvm_mnt);
	if (IS_ERR(ctx->ledger)) {
		ret = PTR_ERR(ctx->ledger);
		goto err_put_backing;
	}

	kref_init(&ctx->ref);
	mutex_init(&ctx->ops_lock);
	init_rwsem(&ctx->state_lock);
	mt_init_flags(&ctx->allocs, MT_FLAGS_ALLOC_RANGE | MT_FLAGS_LOCK_EXTERN);
	mt_set_external_lock(&ctx->allocs, &ctx->state_lock);
	mt_init_flags(&ctx->pages, MT_FLAGS_LOCK_EXTERN);
	mt_set_external_lock(&ctx->pages, &ctx->state_lock);
	ctx->arenas = RB_ROOT;
	xa_init(&ctx->locked);
	xa_init(&ctx->written);
	mt_init_flags(&ctx->resets, MT_FLAGS_LOCK_EXTERN);
	mt_set_external_lock(&ctx->resets, &ctx->ops_lock);

	down_write(&ctx->state_lock);
	ret = winvm_allocs_set(ctx, 0, ULONG_MAX, WINVM_NO_ARENA, GFP_KERNEL);
	up_write(&ctx->state_lock);
	if (ret)
		goto err_put_ledger;

	mmgrab(current->mm);
	ctx->mm = current->mm;
	ctx->file = file;
	file->private_data = ctx;
	file->f_mapping = ctx->small.mapping;
	return 0;

err_put_ledger:
	fput(ctx->ledger);
err_put_backing:
	winvm_backing_put(ctx->small.backing);
err_free_ctx:
	kfree(ctx);
	return ret;
}

static int winvm_release_file(struct inode *inode, struct file *file)
{
	struct winvm_ctx *ctx = file->private_data;

	file->f_mapping = inode->i_mapping;
	/* The view stays while its VMAs do; the context with it. */
	if (ctx->large.view)
		fput(ctx->large.view);
	kref_put(&ctx->ref, winvm_ctx_free);
	return 0;
}

static const struct file_operations winvm_fops = {
	.owner		= THIS_MODULE,
	.open		= winvm_open,
	.release	= winvm_release_file,
	.mmap		= winvm_mmap,
	.unlocked_ioctl	= winvm_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= no_llseek,
};

static struct miscdevice winvm_misc = {
	.minor		= MISC_DYNAMIC_MINOR,
	.name		= WINVM_NAME,
	.fops		= &winvm_fops,
	.mode		= 0666,
};

static int __init winvm_init(void)
{
	char huge_opts[] = "huge=always";
	struct file_system_type *tmpfs;
	int ret;

	/*
	 * A private tmpfs mount: no size limit, and huge pages stay off
	 * whatever the global shmem setting says, since a PMD mapping would
	 * bypass per-page protection.
	 */
	tmpfs = get_fs_type("tmpfs");
	if (!tmpfs)
		return -ENODEV;
	winvm_mnt = vfs_kern_mount(tmpfs, SB_KERNMOUNT, WINVM_NAME, NULL);
	if (IS_ERR(winvm_mnt))
		return PTR_ERR(winvm_mnt);
	/* Large pages: a second mount that always uses huge pages, if any. */
	winvm_huge_mnt = vfs_kern_mount(tmpfs, SB_KERNMOUNT, WINVM_NAME,
					huge_opts);
	if (IS_ERR(winvm_huge_mnt))
		winvm_huge_mnt = NULL;

	ret = misc_register(&winvm_misc);
	if (ret) {
		if (winvm_huge_mnt)
			kern_unmount(winvm_huge_mnt);
		kern_unmount(winvm_mnt);
	}
	return ret;
}

static void __exit winvm_exit(void)
{
	misc_deregister(&winvm_misc);
	if (winvm_huge_mnt)
		kern_unmount(winvm_huge_mnt);
	kern_unmount(winvm_mnt);
}

module_init(winvm_init);
module_exit(winvm_exit);

MODULE_DESCRIPTION("Windows virtual-memory semantics for Linux processes");
MODULE_LICENSE("GPL");
