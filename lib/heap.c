// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libwinvm heaps: HeapCreate, HeapAlloc and the rest of the Win32 heap API,
 * with Windows' observable behaviour, on top of VirtualAlloc.
 *
 * Segments. A heap is a list of segments ("sub-heaps"), each one winvm
 * reservation that VirtualQuery reports as Windows would: reserved, then
 * committed on demand at its top. The heap handle is the 64 KiB aligned base
 * of the first segment, which starts with struct heap (HEAP_HDR bytes, the
 * PROCESS_HEAP_REGION entry of HeapWalk). A growable heap (maximum 0)
 * reserves its initial size plus 64 KiB and commits at least 8 KiB; when
 * full it adds segments of 1 MiB, 2 MiB, ... up to 0xfd0000 bytes each. A
 * fixed heap reserves its maximum rounded up to 8 KiB and never grows: so
 * HeapCreate(0, A, A) with A = 0x40000 holds one block of at most
 * A - HEAP_HDR - 2 * HDR = A - 0x820 bytes, which is why A - 0xc00 fits and
 * A - 0x600 does not (cases 92-94). Memory is reserved ahead and committed
 * in steps of 1/16 of a segment (64 KiB to 1 MiB), so that heap work rarely
 * enters the kernel. Memory that stays idle for PURGE_DELAY heap operations
 * goes back (heap_purge): free segment tops are decommitted, empty
 * sub-heaps released, the pages of big free blocks reset; the delay, as
 * mimalloc's purge delay, spares a program that frees and allocates again
 * the page faults of memory it had just given back.
 *
 * Blocks. Every back-end block starts with a 16-byte header: its size and
 * the previous block's (boundary tags, for coalescing in both directions),
 * the unused bytes at its end (so HeapSize is the exact size asked for),
 * flags, and a 16-bit check computed from all of them, the block's address
 * and a per-process secret. A header that does not match its check was
 * overwritten; a busy flag that is clear on HeapFree is a double free: both
 * are heap corruption, which HeapValidate reports and which, once
 * HeapEnableTerminationOnCorruption is set, raises STATUS_HEAP_CORRUPTION.
 * Blocks tile each segment up to an end marker, the last 16 committed
 * bytes. Free blocks are kept in bins: one per size up to 1 KiB, four per
 * power of two above, found through a bitmap. Requests of 0xff000 bytes or
 * more (growable heaps only, as on Windows) are large blocks: a VirtualAlloc
 * of their own with a 64-byte header, so they are 64-aligned (case 89),
 * released when freed; one that HeapReAlloc moves there gets room to grow
 * in place (large_room()). A block of 64 KiB or more that HeapReAlloc
 * moves in the back end gets a sub-heap of its own, with the room a large
 * block would get (solo_alloc()): a buffer grown step by step then grows in
 * place and, when it crosses 0xff000 bytes, its sub-heap becomes its large
 * block without a copy (seg_to_large(): a sub-heap's first block and a
 * large block both start 0x40 bytes into their reservation). Sub-heaps
 * take the lowest iRegionIndex free, as on Windows.
 *
 * The front end. As with Windows' low-fragmentation heap, a size class is
 * served by the front end once 0x12 blocks of it were allocated from the
 * heap (case 96); HEAP_NO_SERIALIZE and fixed heaps never use it. It has 36
 * classes of 16 bytes to 16 KiB, whose blocks live in runs: 64, 128 or 256
 * KiB blocks of the back end aligned to their size, so that a block finds
 * its run by masking its address. A run keeps no header in its blocks: its
 * per-block byte (a 16-bit word for classes above 1 KiB) says whether the
 * block is free and otherwise how many of its bytes are unused, which gives
 * HeapSize, HeapValidate and double-free detection for 1/16 of a byte of
 * overhead per byte at the smallest class, less above. A run keeps these
 * bytes not after its header but on the page of the run that its 1 MiB
 * window picks (run_meta()), over blocks it never hands out: runs are
 * aligned to 64 KiB or more, and bytes at the same offset in every run
 * would share a sixteenth of the sets of a TLB or a cache, where the
 * metadata pages of a scattered working set, touched on every allocation
 * and free, would evict one another. A run's free blocks are linked
 * through their first word, encoded with their address and the secret: a
 * use after free that overwrites one is caught when the run hands it out
 * again.
 *
 * Thread caches. Each thread has, in each heap, a cache per class: an array
 * of free blocks. HeapAlloc and HeapFree of a front-end class take and put
 * there with no lock and no atomic operation, and touch nothing of the block
 * but its metadata byte; the thread's caches in the process heap, where most
 * allocations go, are a thread-local pointer away. A block freed by a thread
 * other than the one that allocated it goes to the freeing thread's cache:
 * the cross-thread free path is the same lock-free path. A cache overflows
 * into, and refills from, its class's depot, batches of pointers copied in
 * and out under the class's lock without touching the blocks, and behind it
 * the runs; runs go back to the back end once entirely free. Every few
 * slow-path events one cache of the thread is visited, and what stayed in it
 * unused since the last visit goes back to the runs (with the class's
 * depot), so that a class a program has moved on from does not hold memory.
 * Caches live in a per-heap metadata reservation, so HeapDestroy frees them
 * with everything else and a thread never sees a cache of a destroyed heap;
 * a thread's slot, and with it its caches, pass to the next thread once it
 * exits, after it emptied them.
 *
 * Locking. The back end, large blocks and segments are under the heap lock,
 * a recursive mutex: HeapLock takes it, so HeapLock blocks other threads'
 * HeapAlloc and HeapFree that reach the back end, except those passing
 * HEAP_NO_SERIALIZE, and other HeapLock callers; front-end allocations are
 * not blocked, a class getting its first run when it is turned on (case
 * 97). A heap created with HEAP_NO_SERIALIZE takes no lock at all, HeapLock
 * included. The process heap's lock also guards global.c's handle table.
 * Lock order: a heap lock, then the registry lock (calls made under
 * HeapLock look their heap up) or the metadata lock; a class lock is never
 * held while taking any other.
 *
 * Pointer validation. A segment map, a two-level table indexed by 64 KiB
 * granule, says for every granule of every heap whether it is back-end
 * memory (and of which segment), a front-end run (and of which class), or
 * the start of a large block. HeapFree, HeapSize and HeapValidate look a
 * pointer up there before touching memory, so a pointer that is not a heap
 * block is reported, not dereferenced (cases 86, 95).
 *
 * The process heap (GetProcessHeap) is created on first use; a forked child,
 * which has none of its parent's winvm memory, forgets every heap and starts
 * again.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "internal.h"
#include "winvm.h"

#define noinline	__attribute__((noinline))
#define __aligned(x)	__attribute__((aligned(x)))

/*
 * The entry points with a fast path (HeapAlloc, HeapFree and the fixed
 * blocks' GlobalAlloc, LocalAlloc, GlobalFree, LocalFree) start on a
 * 512-byte boundary and are shorter than that, so that no fast path
 * straddles a page, whatever the rest of the library's layout. Under QEMU's
 * TCG (the test VM) a jump from one page of code into the next is not
 * chained: the fall-through costs a trip through the translation-block
 * lookup, which made a HeapAlloc and HeapFree pair in small_st cost 54 ns
 * instead of 45 ns (median of 20 processes each) in a build where HeapFree's
 * fast path happened to cross a page. On hardware it keeps each fast path
 * on one page of the instruction TLB and starts it on a cache line.
 */
#define __fastpath	__attribute__((aligned(512)))

#define GRAN		0x10000UL	/* VirtualAlloc's granularity */
#define UNIT		16UL		/* block size unit and alignment */
#define HDR		16UL		/* block header */
#define MIN_BLOCK	32UL		/* a header and two free-list links */
#define MAX_UNITS	UINT32_MAX	/* block size limit, in units */

#define HEAP_HDR	0x800UL		/* struct heap, in the first segment */
#define SEG_HDR		0x30UL		/* struct seg, in the others */
#define MIN_COMMIT	0x2000UL	/* committed at creation, at least */
#define FIXED_ROUND	0x2000UL	/* fixed heaps reserve their maximum rounded up to this */
#define GROW_EXTRA	0x10000UL	/* growable heaps reserve their initial size plus this */
#define SUBHEAP_MIN	0x100000UL	/* the first sub-heap added; each next one doubles */
#define SUBHEAP_MAX	0xfd0000UL
#define TRIM_KEEP	0x10000UL	/* free bytes left committed at a segment's top */
#define TRIM_MIN	0x20000UL	/* decommit only when at least this much can go */
#define RESET_MIN	0x40000UL	/* free blocks this big give their pages back */
#define PURGE_EVERY	64		/* heap operations between purges */
#define PURGE_DELAY	4096		/* heap operations memory stays idle first */

#define LARGE_MIN	0xff000UL	/* requests from here on are large blocks */
#define LARGE_HDR	0x40UL
#define LARGE_ROOM	0x4000000UL	/* a reallocated large block reserves up to this */
#define SOLO_MIN	0x10000UL	/* moved blocks this big get a sub-heap (solo_alloc) */
#define MAX_REQUEST	(~(SIZE_T)0 - 2 * GRAN)

#define LFH_THRESHOLD	0x12		/* allocations of a class that enable the front end */
#define LFH_MAX		16384UL		/* largest front-end class */
#define NCLASS		36
#define NSMALL		(1024 / 16 + 1)	/* classes looked up by table */
#define MAX_TSLOTS	512		/* threads with caches; more use the class lists */
#define DEPOT_BATCHES	4
#define GC_EVERY	4		/* cache slow paths between collections */
#define TCACHE_BYTES	0x10000		/* a thread cache holds this much of a class */
#define META_RESERVE	0x2000000UL	/* per-heap front-end metadata */

#define NBINS		168
#define NBITMAP		((NBINS + 63) / 64)

#define HEAP_MAGIC	0x50414548U	/* "HEAP" */
#define SEG_MAGIC	0x47455348U	/* "HSEG" */
#define SOLO_MAGIC	0x4c4f5348U	/* "HSOL": a sub-heap held by one block */
#define RUN_MAGIC	0x4e555248U	/* "HRUN" */
#define LARGE_MAGIC	0x47524c48U	/* "HLRG" */

/* Heap flags kept from HeapCreate, and those HeapAlloc and friends take. */
#define CREATE_FLAGS	(HEAP_NO_SERIALIZE | HEAP_GENERATE_EXCEPTIONS | \
			 HEAP_CREATE_ENABLE_EXECUTE)
#define CALL_FLAGS	(HEAP_NO_SERIALIZE | HEAP_GENERATE_EXCEPTIONS)

/* Block header flags. */
#define BLK_BUSY	0x01
#define BLK_RUN		0x02	/* a front-end run */
#define BLK_USER	0x04	/* carries a user value in its last 8 bytes */
#define BLK_END		0x08	/* a segment's end marker */
#define BLK_CLEAN	0x10	/* free, its pages reset since it last changed */

struct blk {
	uint32_t size;		/* in units, header included */
	uint32_t prev;		/* the previous block's size; 0 for the first */
	uint32_t unused;	/* busy: capacity minus the bytes asked for */
	uint8_t flags;
	uint8_t pad;
	uint16_t check;
};

struct fblk {
	struct blk h;
	struct fblk *next, *prev;
	uint64_t stamp;		/* heap->epoch when it became free, if it fits */
};

struct heap;

/* A segment, at the base of its reservation. */
struct seg {
	uint32_t magic;		/* HEAP_MAGIC for the first, SEG_ or SOLO_MAGIC */
	uint32_t index;		/* PROCESS_HEAP_ENTRY.iRegionIndex */
	struct heap *heap;
	struct seg *next;
	char *commit;		/* end of the committed part */
	char *end;		/* end of the reservation */
};

/* A large block, at the base of its reservation. */
struct large {
	uint32_t magic;
	uint32_t check;
	struct heap *heap;
	struct large *next, *prev;
	size_t size;		/* bytes asked for */
	size_t commit;		/* committed, from the base */
	size_t reserve;
	void *user;
};

/* A front-end run, at the start of its back-end block. */
struct run {
	uint32_t magic;
	uint8_t cls;
	uint8_t listed;		/* on its class's partial list */
	struct heap *heap;
	struct seg *seg;
	char *data;		/* block 0 */
	void *free;		/* returned blocks, encoded links (class lock) */
	uint32_t nfree;		/* blocks on free */
	uint32_t bump;		/* blocks [0, bump), the hole aside, handed out */
	struct run *next, *prev;
};

/*
 * Per-block metadata: unused bytes of a busy block, or one of these (the
 * _WIDE ones for 16-bit entries). A narrow block shrunk in place
 * (HEAP_REALLOC_IN_PLACE_ONLY) by more than a byte can count keeps the
 * count in its last two bytes, which are unused, as Windows' heap does.
 */
#define META_FREE	0xff
#define META_DEAD	0xfe	/* a block under the metadata */
#define META_TAIL	0xfd	/* unused bytes in the block's tail */
#define META_FREE_WIDE	0xffff
#define META_DEAD_WIDE	0xfffe

/*
 * A run's metadata starts META_OFF bytes into page color_of(run) of the
 * run (on page 0, right after the header).
 */
#define NCOLORS		16
#define META_OFF	64UL	/* sizeof(struct run) */

struct sclass {
	uint32_t size;		/* block size */
	uint32_t recip;		/* ceil(2^32 / size): offset to index */
	uintptr_t mask;		/* ~(run size - 1) */
	uint32_t run_size;
	uint32_t nslots;
	uint32_t span;		/* nslots * size */
	uint16_t limit;		/* thread cache capacity */
	uint16_t batch;		/* blocks moved at once to or from the run lists */
	bool wide;		/* 16-bit metadata */
};

/*
 * Blocks [start, end) of a colour-c run of a class hold its metadata: kept
 * apart from the classes, which the fast paths read and which should stay
 * within a page.
 */
struct hole {
	uint16_t start, end;
};

/* A thread's cache of a class: free blocks, the last freed on top. */
struct tbin {
	uint32_t count;
	uint32_t limit;		/* 0 until items is allocated */
	uint32_t low;		/* lowest count since the last collection */
	void **items;
};

struct tcache {
	struct tbin bin[NCLASS];
	uint32_t events;	/* slow-path refills and overflows */
	uint32_t gc_next;	/* the next bin to collect */
};

/*
 * A class of the front end. Thread caches overflow into, and refill from,
 * the depot first: a batch moves as an array of pointers, without touching
 * its blocks. Only what the depot cannot take goes back to the runs.
 */
struct lclass {
	pthread_mutex_t lock;
	struct run *partial;	/* runs with blocks to hand out */
	void **depot;		/* DEPOT_BATCHES batches of free blocks */
	uint32_t ndepot;
} __aligned(64);

/* The front end of a heap, in its own metadata reservation. */
struct lfh {
	struct lclass cls[NCLASS];
	pthread_mutex_t meta_lock;
	char *bump, *commit, *end;	/* metadata allocation (meta_lock) */
	struct tcache *tc[MAX_TSLOTS];
};

/* What HeapAlloc and HeapFree read, in the heap's first cache line. */
struct heap {
	struct seg seg;			/* segment 0; the handle is its base */
	DWORD flags;			/* CREATE_FLAGS, HEAP_GROWABLE */
	uint8_t tag;			/* MAP_HEAP() of its runs, or 0 */
	uint64_t active;		/* classes served by the front end */
	struct lfh *lfh;
	pthread_mutex_t lock;		/* recursive */
	struct heap *next_heap;		/* the registry */
	struct seg *last;		/* the newest segment */
	size_t next_seg;		/* reservation of the next sub-heap */
	uint64_t regions[4];		/* iRegionIndex values taken */
	uint64_t epoch;			/* heap operations, the purge clock */
	bool compat_lfh;		/* HeapCompatibilityInformation set to 2 */
	bool process;
	bool dead;			/* destroyed while referenced (registry lock) */
	uint32_t refs;			/* optimize()'s references (registry lock) */
	uint8_t counts[NCLASS];		/* allocations per class, to LFH_THRESHOLD */
	struct large *large, *large_tail;
	uint64_t bitmap[NBITMAP];
	struct fblk *bins[NBINS];
};

_Static_assert(sizeof(struct heap) <= HEAP_HDR, "struct heap fits its header");
_Static_assert(sizeof(struct seg) <= SEG_HDR, "struct seg fits its header");
_Static_assert(sizeof(struct large) <= LARGE_HDR, "struct large fits");
_Static_assert(SEG_HDR + HDR == LARGE_HDR,
	       "a sub-heap's first block is where a large block's data is");
_Static_assert(sizeof(struct blk) == HDR, "block header");
_Static_assert(sizeof(struct run) == META_OFF, "metadata after the header");
_Static_assert(NCLASS <= 64, "active is a 64-bit mask");
_Static_assert(offsetof(struct heap, lfh) < 64, "hot fields in one line");

/*
 * Segment map entries: a pointer to a segment, run or large block (all
 * three 64 KiB aligned), tagged in its low bits. A run's entry also holds
 * its class and its heap's tag, so that HeapFree needs not read the run:
 * tags are unique among live heaps, 0 when the 255 are taken (then the
 * run's heap is read).
 */
#define MAP_SEG		1UL
#define MAP_RUN		2UL
#define MAP_LARGE	3UL
#define MAP_TAG		3UL
#define MAP_OBJ(e)	((void *)((e) & ~(GRAN - 1)))
#define MAP_CLS(e)	(((e) >> 2) & 63)
#define MAP_HEAP(e)	(((e) >> 8) & 0xff)
#define MAP_RUN_OF(run, c, tag) \
	((uintptr_t)(run) | (uintptr_t)(tag) << 8 | (uintptr_t)(c) << 2 | MAP_RUN)
#define MAP_L2_BITS	15
#define MAP_L1_BITS	(47 - 16 - MAP_L2_BITS)

static struct hole holes[NCLASS][NCOLORS];	/* slow paths only */
static uintptr_t *segmap[1UL << MAP_L1_BITS];
static pthread_mutex_t segmap_lock = PTHREAD_MUTEX_INITIALIZER;

static struct sclass classes[NCLASS];
static uint8_t small_class[NSMALL];
static uintptr_t secret;
static int terminate_on_corruption;

/* The heap registry: every heap, the process heap first (GetProcessHeaps). */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct heap *registry;
static uint64_t tags_used[4];		/* heap tags taken (registry lock) */
static struct heap *process_heap;
static pthread_mutex_t process_heap_lock = PTHREAD_MUTEX_INITIALIZER;

/* Thread slots: index of a thread's caches in every heap; 0 is none. */
static __thread unsigned int tslot __attribute__((tls_model("initial-exec")));
/* This thread's caches in the process heap, for the fast paths. */
static __thread struct tcache *proc_tc __attribute__((tls_model("initial-exec")));
static pthread_mutex_t tslot_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t tslot_used[MAX_TSLOTS / 64];
static pthread_key_t tslot_key;

/*
 * The thread's last first-level lookup: the index of a 2 GiB span and its
 * table. A pointer in the same span is looked up through the thread's TLS,
 * which the fast paths touch anyway, rather than the 512 KiB first level:
 * a page fewer in the TLB. Second-level tables are never freed but in a
 * forked child, which resets this.
 */
static __thread struct {
	uintptr_t key;
	uintptr_t *l2;
} map_last __attribute__((tls_model("initial-exec"))) = { ~0UL, NULL };

static __always_inline uintptr_t map_lookup(const void *p)
{
	uintptr_t a = (uintptr_t)p, key = a >> (16 + MAP_L2_BITS), *l2;

	if (likely(key == map_last.key)) {
		l2 = map_last.l2;
	} else {
		if (unlikely(key >> MAP_L1_BITS))
			return 0;
		l2 = __atomic_load_n(&segmap[key], __ATOMIC_ACQUIRE);
		if (unlikely(!l2))
			return 0;
		map_last.key = key;
		map_last.l2 = l2;
	}
	return __atomic_load_n(&l2[(a >> 16) & ((1UL << MAP_L2_BITS) - 1)],
			       __ATOMIC_ACQUIRE);
}

/*
 * Point the granules of [start, end) at @val. Second-level tables are
 * created on demand and never freed (but in a forked child): only the heap
 * owning the granules writes their entries, under its lock or before the
 * memory is reachable, so only the table creation needs segmap_lock.
 */
static bool map_set(const void *start, const void *end, uintptr_t val)
{
	uintptr_t a, *l2;
	size_t i;

	for (a = (uintptr_t)start & ~(GRAN - 1); a < (uintptr_t)end; a += GRAN) {
		i = a >> (16 + MAP_L2_BITS);
		if (i >= 1UL << MAP_L1_BITS)
			return false;
		l2 = __atomic_load_n(&segmap[i], __ATOMIC_ACQUIRE);
		if (!l2) {
			pthread_mutex_lock(&segmap_lock);
			l2 = segmap[i];
			if (!l2) {
				l2 = mmap(NULL, sizeof(*l2) << MAP_L2_BITS,
					  PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				if (l2 == MAP_FAILED)
					l2 = NULL;
				else
					__atomic_store_n(&segmap[i], l2,
							 __ATOMIC_RELEASE);
			}
			pthread_mutex_unlock(&segmap_lock);
			if (!l2)
				return false;
		}
		__atomic_store_n(&l2[(a >> 16) & ((1UL << MAP_L2_BITS) - 1)],
				 val, __ATOMIC_RELEASE);
	}
	return true;
}

/* Internal VirtualAlloc/VirtualFree calls leave the caller's last error be. */
static void *vm_alloc(void *addr, size_t size, DWORD type, DWORD prot)
{
	DWORD saved = GetLastError();
	void *p = VirtualAlloc(addr, size, type, prot);

	SetLastError(saved);
	return p;
}

static void vm_free(void *addr, size_t size, DWORD type)
{
	DWORD saved = GetLastError();

	VirtualFree(addr, size, type);
	SetLastError(saved);
}

static DWORD heap_prot(const struct heap *heap)
{
	return heap->flags & HEAP_CREATE_ENABLE_EXECUTE ?
	       PAGE_EXECUTE_READWRITE : PAGE_READWRITE;
}

static size_t round_up(size_t x, size_t to)
{
	return (x + to - 1) & ~(to - 1);
}

/*
 * Locking: the heap lock, unless the heap or the call says
 * HEAP_NO_SERIALIZE. @flags already include the heap's own.
 */
static void heap_lock(struct heap *heap, DWORD flags)
{
	if (!(flags & HEAP_NO_SERIALIZE))
		pthread_mutex_lock(&heap->lock);
}

static void heap_unlock(struct heap *heap, DWORD flags)
{
	if (!(flags & HEAP_NO_SERIALIZE))
		pthread_mutex_unlock(&heap->lock);
}

/* A heap handle good enough for the hot paths: null or ours. */
static struct heap *heap_of(HANDLE h)
{
	struct heap *heap = h;

	if (unlikely(!heap || heap->seg.magic != HEAP_MAGIC))
		return NULL;
	return heap;
}

/* A heap handle checked against the registry, for the other calls. */
static struct heap *heap_find(HANDLE h)
{
	struct heap *heap;

	pthread_mutex_lock(&registry_lock);
	for (heap = registry; heap && heap != h; heap = heap->next_heap)
		;
	pthread_mutex_unlock(&registry_lock);
	return heap;
}

/* Block headers. */

static uint16_t blk_sum(const struct blk *b)
{
	uint64_t x;

	x = ((uint64_t)b->prev << 32 | b->size) * 0x9e3779b97f4a7c15ULL;
	x ^= ((uint64_t)b->unused << 8 | b->flags) * 0xc2b2ae3d27d4eb4fULL;
	x ^= ((uintptr_t)b ^ secret) * 0x165667b19e3779f9ULL;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x >> 48;
}

static bool blk_ok(const struct blk *b)
{
	return b->check == blk_sum(b);
}

static void blk_set(struct blk *b, uint32_t size, uint32_t prev,
		    uint32_t unused, uint8_t flags)
{
	b->size = size;
	b->prev = prev;
	b->unused = unused;
	b->flags = flags;
	b->pad = 0;
	b->check = blk_sum(b);
}

static void blk_set_prev(struct blk *b, uint32_t prev)
{
	b->prev = prev;
	b->check = blk_sum(b);
}

static struct blk *blk_next(const struct blk *b)
{
	return (struct blk *)((char *)b + (size_t)b->size * UNIT);
}

static struct blk *blk_prev(const struct blk *b)
{
	return (struct blk *)((char *)b - (size_t)b->prev * UNIT);
}

static char *blk_data(const struct blk *b)
{
	return (char *)b + HDR;
}

static size_t blk_cap(const struct blk *b)
{
	return (size_t)b->size * UNIT - HDR;
}

static void **blk_user_slot(const struct blk *b)
{
	return (void **)(blk_data(b) + blk_cap(b) - sizeof(void *));
}

/* Units of a block holding @size bytes. */
static size_t units_for(size_t size)
{
	size_t bytes = round_up(size + HDR, UNIT);

	return bytes < MIN_BLOCK ? MIN_BLOCK / UNIT : bytes / UNIT;
}

/* Bins of free blocks. */

static unsigned int bin_of(uint32_t units)
{
	unsigned int l;

	if (units < 64)
		return units;
	l = 31 - __builtin_clz(units);
	return 64 + (l - 6) * 4 + ((units >> (l - 2)) & 3);
}

static void bin_insert(struct heap *heap, struct fblk *f)
{
	unsigned int b = bin_of(f->h.size);

	f->prev = NULL;
	f->next = heap->bins[b];
	if (f->next)
		f->next->prev = f;
	heap->bins[b] = f;
	heap->bitmap[b / 64] |= 1ULL << (b % 64);
}

static void bin_remove(struct heap *heap, struct fblk *f)
{
	unsigned int b = bin_of(f->h.size);

	if (f->prev)
		f->prev->next = f->next;
	else
		heap->bins[b] = f->next;
	if (f->next)
		f->next->prev = f->prev;
	if (!heap->bins[b])
		heap->bitmap[b / 64] &= ~(1ULL << (b % 64));
}

static unsigned int next_bin(const struct heap *heap, unsigned int b)
{
	uint64_t w;

	while (b < NBINS) {
		w = heap->bitmap[b / 64] >> (b % 64);
		if (w)
			return b + __builtin_ctzll(w);
		b = (b | 63) + 1;
	}
	return NBINS;
}

/*
 * A free block of at least @units. The exact bins hold one size each; a
 * range bin may hold smaller blocks, so a few are tried before moving to
 * the next bin, all of whose blocks fit.
 */
static struct fblk *bin_find(struct heap *heap, size_t units)
{
	unsigned int b, tries;
	struct fblk *f;

	if (units > MAX_UNITS)
		return NULL;
	b = bin_of(units);
	if (b >= 64) {
		for (f = heap->bins[b], tries = 0; f && tries < 16;
		     f = f->next, tries++)
			if (f->h.size >= units)
				return f;
		b++;
	}
	b = next_bin(heap, b);
	return b < NBINS ? heap->bins[b] : NULL;
}

/*
 * Make @b (of @units, not in a bin, its neighbours' boundary tags not yet
 * updated) a free block: merge it with free neighbours, as long as the
 * result stays within MAX_UNITS, and bin it. Returns the merged block.
 */
static struct fblk *make_free(struct heap *heap, struct blk *b, size_t units)
{
	struct blk *next = (struct blk *)((char *)b + units * UNIT), *prev;
	uint32_t prev_units = b->prev;

	if (!(next->flags & BLK_BUSY) && units + next->size <= MAX_UNITS) {
		bin_remove(heap, (struct fblk *)next);
		units += next->size;
		memset(next, 0, HDR);
		next = (struct blk *)((char *)b + units * UNIT);
	}
	if (prev_units) {
		prev = blk_prev(b);
		if (!(prev->flags & BLK_BUSY) &&
		    units + prev->size <= MAX_UNITS) {
			bin_remove(heap, (struct fblk *)prev);
			units += prev->size;
			prev_units = prev->prev;
			memset(b, 0, HDR);
			b = prev;
		}
	}
	blk_set(b, units, prev_units, 0, 0);
	blk_set_prev(next, units);
	if (units * UNIT >= sizeof(struct fblk))
		((struct fblk *)b)->stamp = __atomic_load_n(&heap->epoch,
							    __ATOMIC_RELAXED);
	bin_insert(heap, (struct fblk *)b);
	return (struct fblk *)b;
}

/*
 * make_free() for a new segment's free space, which can be more than a
 * block holds (HeapCreate with more than 64 GiB committed; growth adds at
 * most 1 MiB at a time): blocks of at most MAX_UNITS, each marked busy
 * before the one in front of it is freed, so that no merge reads a header
 * not yet written.
 */
static void make_free_span(struct heap *heap, struct blk *b, size_t units)
{
	struct blk *next;
	size_t n;

	while (units > MAX_UNITS) {
		n = units - MAX_UNITS < MIN_BLOCK / UNIT ?
		    MAX_UNITS - MIN_BLOCK / UNIT : MAX_UNITS;
		next = (struct blk *)((char *)b + n * UNIT);
		blk_set(next, 0, n, 0, BLK_BUSY);
		make_free(heap, b, n);
		b = next;
		units -= n;
	}
	make_free(heap, b, units);
}

/*
 * Cut @b, a block out of the bins, down to @units: the rest, if it can be a
 * block, becomes free. Returns the units @b keeps.
 */
static size_t split_tail(struct heap *heap, struct blk *b, size_t units)
{
	size_t have = b->size;
	struct blk *rest;

	if (have - units < MIN_BLOCK / UNIT)
		return have;
	rest = (struct blk *)((char *)b + units * UNIT);
	rest->prev = units;
	make_free(heap, rest, have - units);
	return units;
}

/*
 * Let the pages of a block of @units at @b, but for its header and links
 * and the next block's header, go (MEM_RESET): big free blocks give their
 * memory back while staying committed, so that reading them (a stale
 * pointer given to HeapFree, say) reads zeros rather than faulting.
 */
static void blk_reset(struct blk *b, size_t units)
{
	char *lo = (char *)round_up((uintptr_t)b + MIN_BLOCK, PAGE);
	char *hi = (char *)(((uintptr_t)b + units * UNIT) & ~(PAGE - 1));

	if (units * UNIT >= RESET_MIN && hi > lo)
		vm_alloc(lo, hi - lo, MEM_RESET, PAGE_NOACCESS);
}

/* Mark @b busy with @size bytes asked for, at @units. */
static void blk_busy(struct blk *b, size_t units, size_t size, uint8_t flags)
{
	blk_set(b, units, b->prev, units * UNIT - HDR - size, BLK_BUSY | flags);
}

/* Segments. */

static struct blk *seg_first(const struct seg *seg)
{
	return (struct blk *)((char *)seg + (seg->index ? SEG_HDR : HEAP_HDR));
}

static struct blk *seg_end(const struct seg *seg)
{
	return (struct blk *)(seg->commit - HDR);
}

static struct seg *seg_of_blk(const struct heap *heap, const void *p)
{
	const struct seg *seg;

	for (seg = &heap->seg; seg; seg = seg->next)
		if ((const char *)p >= (const char *)seg &&
		    (const char *)p < seg->commit)
			return (struct seg *)seg;
	return NULL;
}

/* Lay out a new segment's committed part: one free block, the end marker. */
static void seg_format(struct heap *heap, struct seg *seg)
{
	struct blk *first = seg_first(seg);
	size_t units = (seg->commit - HDR - (char *)first) / UNIT;

	blk_set(seg_end(seg), 1, 0, 0, BLK_BUSY | BLK_END);
	first->prev = 0;
	make_free_span(heap, first, units);
}

/*
 * Commit @seg up to @commit: the old end marker becomes the start of new
 * free space, merged with a free last block.
 */
static bool seg_extend(struct heap *heap, struct seg *seg, char *commit)
{
	struct blk *old = seg_end(seg);
	uint32_t last = old->prev;

	if (!vm_alloc(seg->commit, commit - seg->commit, MEM_COMMIT,
		      heap_prot(heap)))
		return false;
	seg->commit = commit;
	blk_set(seg_end(seg), 1, 0, 0, BLK_BUSY | BLK_END);
	old->prev = last;
	make_free(heap, old, (size_t)((char *)seg_end(seg) - (char *)old) / UNIT);
	return true;
}

/*
 * Decommit the top of @seg when its last block is free and leaves more than
 * TRIM_MIN bytes past TRIM_KEEP.
 */
static void seg_trim(struct heap *heap, struct seg *seg)
{
	struct blk *end = seg_end(seg), *last = blk_prev(end);
	char *commit;

	if (last->flags & BLK_BUSY)
		return;
	commit = (char *)round_up((uintptr_t)last + MIN_BLOCK + HDR + TRIM_KEEP,
				  PAGE);
	if (commit + TRIM_MIN > seg->commit)
		return;
	bin_remove(heap, (struct fblk *)last);
	vm_free(commit, seg->commit - commit, MEM_DECOMMIT);
	seg->commit = commit;
	blk_set(seg_end(seg), 1, 0, 0, BLK_BUSY | BLK_END);
	make_free(heap, last, (size_t)((char *)seg_end(seg) - (char *)last) / UNIT);
}

static bool seg_empty(const struct seg *seg)
{
	return !(seg_first(seg)->flags & BLK_BUSY) &&
	       blk_next(seg_first(seg)) == seg_end(seg);
}

/*
 * The iRegionIndex of a new sub-heap: the lowest free one, 64 (large
 * blocks') and 255 excepted, so that a heap whose sub-heaps come and go
 * keeps small indices, as Windows' does; 255, shared, once the 253 others
 * are taken.
 */
static uint32_t region_get(struct heap *heap)
{
	uint64_t free;
	unsigned int w;

	for (w = 0; w < 4; w++) {
		free = ~heap->regions[w];
		if (free) {
			heap->regions[w] |= free & -free;
			return w * 64 + __builtin_ctzll(free);
		}
	}
	return 255;
}

/*
 * Take @seg, a segment other than the first, off the heap's list, and give
 * its iRegionIndex back.
 */
static void seg_unlink(struct heap *heap, struct seg *seg)
{
	struct seg *prev;

	if (seg->index != 255)
		heap->regions[seg->index / 64] &= ~(1ULL << (seg->index % 64));

	for (prev = &heap->seg; prev->next != seg; prev = prev->next)
		;
	prev->next = seg->next;
	if (heap->last == seg)
		heap->last = prev;
}

/* Release an empty segment other than the first. */
static void seg_release(struct heap *heap, struct seg *seg)
{
	seg_unlink(heap, seg);
	bin_remove(heap, (struct fblk *)seg_first(seg));
	map_set(seg, seg->end, 0);
	vm_free(seg, 0, MEM_RELEASE);
}

/* The free block at the top of @seg, if any. */
static struct fblk *seg_top(const struct seg *seg)
{
	struct blk *last = blk_prev(seg_end(seg));

	return last->flags & BLK_BUSY ? NULL : (struct fblk *)last;
}

/*
 * Whether free block @f has stayed so for PURGE_DELAY operations. The
 * clock counts back-end operations and front-end cache refills and
 * overflows (each a batch of blocks): any active program advances it.
 */
static bool blk_idle(const struct heap *heap, const struct fblk *f)
{
	return (size_t)f->h.size * UNIT >= sizeof(*f) &&
	       __atomic_load_n(&heap->epoch, __ATOMIC_RELAXED) - f->stamp >=
	       PURGE_DELAY;
}

/*
 * Give back memory that stayed idle PURGE_DELAY back-end operations (all
 * of it, for HeapCompact): empty sub-heaps but the newest are released,
 * free segment tops decommitted down to TRIM_KEEP, and the pages of free
 * blocks of RESET_MIN bytes or more reset (MEM_RESET: their contents
 * dropped, still committed, so a stale pointer reads zeros rather than
 * faulting). The delay spares a program that frees and allocates again
 * the cost of page faults on memory it had just given back.
 */
static void heap_purge(struct heap *heap, bool now)
{
	struct seg *seg, *next;
	struct fblk *f;
	unsigned int b;

	for (seg = heap->seg.next; seg; seg = next) {
		next = seg->next;
		if (seg_empty(seg) &&
		    (now || (seg != heap->last &&
			     blk_idle(heap, (struct fblk *)seg_first(seg)))))
			seg_release(heap, seg);
	}
	for (seg = &heap->seg; seg; seg = seg->next) {
		f = seg_top(seg);
		if (f && (now || blk_idle(heap, f)))
			seg_trim(heap, seg);
	}
	for (b = bin_of(RESET_MIN / UNIT); b < NBINS; b++) {
		for (f = heap->bins[b]; f; f = f->next) {
			if ((size_t)f->h.size * UNIT < RESET_MIN ||
			    (f->h.flags & BLK_CLEAN) || !(now || blk_idle(heap, f)))
				continue;
			blk_reset(&f->h, f->h.size);
			blk_set(&f->h, f->h.size, f->h.prev, 0, BLK_CLEAN);
		}
	}
}

/* One more back-end operation (heap lock held): a purge every PURGE_EVERY. */
static void heap_tick(struct heap *heap)
{
	if (!(__atomic_add_fetch(&heap->epoch, 1, __ATOMIC_RELAXED) %
	      PURGE_EVERY))
		heap_purge(heap, false);
}

/*
 * One more front-end slow path (no lock held): the purge, when due, only
 * if the heap lock is free, as the front end never waits for it.
 */
static void heap_tick_unlocked(struct heap *heap)
{
	if (!(__atomic_add_fetch(&heap->epoch, 1, __ATOMIC_RELAXED) %
	      PURGE_EVERY) && !pthread_mutex_trylock(&heap->lock)) {
		heap_purge(heap, false);
		pthread_mutex_unlock(&heap->lock);
	}
}

/* Commits in a segment of @reserve bytes go up by this much at least. */
static size_t commit_step(size_t reserve)
{
	size_t step = reserve / 16;

	return step < 0x10000 ? 0x10000 : step > 0x100000 ? 0x100000 : step;
}

/*
 * A free block of @units at the top of @seg, committing what is missing,
 * by commit_step() at least; a sub-heap of its own grows by half what it
 * has, so that its block, which keeps it all, holds at most that much
 * more than it asked for.
 */
static struct fblk *seg_grow(struct heap *heap, struct seg *seg, size_t units)
{
	struct fblk *top = seg_top(seg);
	size_t have = top ? top->h.size : 0, bytes, step;
	char *commit;

	if (have >= units)
		return top;
	if (have + (size_t)(seg->end - seg->commit) / UNIT < units)
		return NULL;
	bytes = round_up((units - have) * UNIT, PAGE);
	step = seg->magic == SOLO_MAGIC ?
	       round_up((seg->commit - (char *)seg) / 2, PAGE) :
	       commit_step(seg->end - (char *)seg);
	if (bytes < step)
		bytes = step;
	commit = (size_t)(seg->end - seg->commit) < bytes ? seg->end :
		 seg->commit + bytes;
	if (!seg_extend(heap, seg, commit))
		return NULL;
	top = seg_top(seg);
	return top && top->h.size >= units ? top : NULL;
}

/*
 * A new sub-heap of @size bytes, the first @commit committed and free, at
 * the end of the list.
 */
static struct seg *seg_new(struct heap *heap, size_t size, size_t commit,
			   uint32_t magic)
{
	struct seg *seg;

	seg = vm_alloc(NULL, size, MEM_RESERVE, heap_prot(heap));
	if (!seg)
		return NULL;
	if (!vm_alloc(seg, commit, MEM_COMMIT, heap_prot(heap)) ||
	    !map_set(seg, (char *)seg + size, (uintptr_t)seg | MAP_SEG)) {
		map_set(seg, (char *)seg + size, 0);
		vm_free(seg, 0, MEM_RELEASE);
		return NULL;
	}
	seg->magic = magic;
	seg->index = region_get(heap);
	seg->heap = heap;
	seg->next = NULL;
	seg->commit = (char *)seg + commit;
	seg->end = (char *)seg + size;
	heap->last->next = seg;
	heap->last = seg;
	seg_format(heap, seg);
	return seg;
}

/* A new sub-heap whose first free block has @units. */
static struct fblk *seg_add(struct heap *heap, size_t units)
{
	size_t need = SEG_HDR + units * UNIT + HDR, size, commit;
	struct seg *seg;

	size = round_up(need, GRAN);
	if (size < heap->next_seg)
		size = heap->next_seg;
	commit = round_up(need, PAGE);
	if (commit < commit_step(size))
		commit = commit_step(size);
	if (commit > size)
		commit = size;
	seg = seg_new(heap, size, commit, SEG_MAGIC);
	if (!seg)
		return NULL;
	if (size == heap->next_seg)
		heap->next_seg = size * 2 > SUBHEAP_MAX ? SUBHEAP_MAX : size * 2;
	return seg_top(seg);
}

/*
 * A free block of @units: commit more of a segment or, in a growable heap,
 * add one.
 */
static struct fblk *heap_grow(struct heap *heap, size_t units)
{
	struct fblk *f;
	struct seg *seg;

	for (seg = &heap->seg; seg; seg = seg->next) {
		if (seg->magic == SOLO_MAGIC)
			continue;
		f = seg_grow(heap, seg, units);
		if (f)
			return f;
	}
	return heap->flags & HEAP_GROWABLE ? seg_add(heap, units) : NULL;
}

/*
 * Carve a busy block of @units whose data is @align-aligned (0: no
 * constraint) out of free block @f. The lead before an aligned start, if
 * any, stays free; so does a tail that can be a block.
 */
static struct blk *carve(struct heap *heap, struct fblk *f, size_t units,
			 size_t align)
{
	struct blk *b = &f->h;
	size_t lead = 0, have = f->h.size;
	uintptr_t data;

	if (align) {
		data = round_up((uintptr_t)b + HDR, align);
		lead = data - HDR - (uintptr_t)b;
		if (lead && lead < MIN_BLOCK)
			lead += align;
		if (lead / UNIT + units > have)
			return NULL;
	}
	bin_remove(heap, f);
	if (lead) {
		b = (struct blk *)((char *)b + lead);
		b->prev = lead / UNIT;
		blk_set(&f->h, lead / UNIT, f->h.prev, 0, 0);
		bin_insert(heap, f);
		have -= lead / UNIT;
	}
	blk_set(b, have, b->prev, 0, BLK_BUSY);
	blk_set_prev(blk_next(b), have);
	return b;
}

/*
 * A busy block of the back end for @size bytes, its data @align-aligned.
 * Heap lock held. The caller sets the block's final header.
 */
static struct blk *backend_alloc(struct heap *heap, size_t size, size_t align)
{
	size_t units = units_for(size), want = units;
	struct fblk *f;
	struct blk *b;

	if (align)
		want += (align + MIN_BLOCK) / UNIT;
	f = bin_find(heap, want);
	if (!f)
		f = heap_grow(heap, want);
	if (!f)
		return NULL;
	b = carve(heap, f, units, align);
	if (!b)
		return NULL;
	units = split_tail(heap, b, units);
	blk_busy(b, units, size, 0);
	heap_tick(heap);
	return b;
}

/* Free busy back-end block @b. Heap lock held. */
static void backend_free(struct heap *heap, struct blk *b)
{
	make_free(heap, b, b->size);
	heap_tick(heap);
}

/* The front end: size classes. */

static unsigned int class_of(size_t size)
{
	unsigned int l;

	if (size <= 1024)
		return small_class[(size + UNIT - 1) / UNIT];
	l = 63 - __builtin_clzl(size - 1);
	return 20 + (l - 10) * 4 + (((size - 1) >> (l - 2)) & 3);
}

/*
 * 16 to 128 bytes by 16, then four classes per power of two up to 16 KiB.
 * Runs are 64 KiB up to 4 KiB classes, 128 KiB up to 8 KiB, 256 KiB above,
 * so that a run wastes at most about 1/16 of itself. A thread's cache of a
 * class holds 64 KiB of blocks, at least 16 and at most 512 of them, and
 * moves half at a time: a class of a few KiB that a program churns goes to
 * its depot every eight operations or so rather than every other one.
 */
static void classes_init(void)
{
	unsigned int c, g, s, k, msz, fit, lim, end;
	struct sclass *sc;

	for (c = 0; c < NCLASS; c++) {
		sc = &classes[c];
		g = (c - 8) / 4;
		sc->size = c < 8 ? 16 * (c + 1) :
			   (128U << g) + ((c - 8) % 4 + 1) * (32U << g);
		sc->run_size = sc->size <= 4096 ? 0x10000 :
			       sc->size <= 8192 ? 0x20000 : 0x40000;
		sc->mask = ~((uintptr_t)sc->run_size - 1);
		sc->recip = ((1ULL << 32) + sc->size - 1) / sc->size;
		sc->wide = sc->size > 1024;
		msz = sc->wide ? 2 : 1;
		/*
		 * As many blocks as fit, but no more than colour 15's
		 * metadata leaves room for. Block 0 is right after the
		 * header, at META_OFF, in every class.
		 */
		fit = (sc->run_size - HDR - META_OFF) / sc->size;
		lim = (sc->run_size - HDR - META_OFF - (NCOLORS - 1) * PAGE) /
		      msz;
		sc->nslots = fit < lim ? fit : lim;
		for (k = 0; k < NCOLORS; k++) {
			end = (k * PAGE + sc->nslots * msz + sc->size - 1) /
			      sc->size;
			holes[c][k].start = k * PAGE / sc->size;
			holes[c][k].end = end < sc->nslots ? end : sc->nslots;
		}
		sc->span = sc->nslots * sc->size;
		s = TCACHE_BYTES / sc->size;
		sc->limit = s > 512 ? 512 : s < 16 ? 16 : s;
		sc->batch = sc->limit / 2;
	}
	for (s = 0, c = 0; s < NSMALL; s++) {
		while (classes[c].size < s * UNIT)
			c++;
		small_class[s] = c;
	}
}

/*
 * A run's free blocks are linked through their first word, encoded with
 * their own address and the secret: a use after free that overwrites one
 * decodes to a misaligned pointer 15 times out of 16.
 */
static void *link_enc(const void *p, const void *next)
{
	return (void *)((uintptr_t)next ^ ((uintptr_t)p >> 12) ^ secret);
}

static void *link_dec(const void *p)
{
	return (void *)(*(const uintptr_t *)p ^ ((uintptr_t)p >> 12) ^ secret);
}

static bool link_ok(const void *next)
{
	return !((uintptr_t)next & (UNIT - 1));
}

static struct run *run_of(const struct sclass *sc, const void *p)
{
	return (struct run *)((uintptr_t)p & sc->mask);
}

/* The index of block @p of class @sc in its run, unchecked. */
static uint32_t slot_of(const struct sclass *sc, const void *p)
{
	uintptr_t off = ((uintptr_t)p & ~sc->mask) - META_OFF;

	return ((uint64_t)off * sc->recip) >> 32;
}

/* The index of block @p in @run, if @p is one of its blocks. */
static bool slot_index(const struct sclass *sc, const struct run *run,
		       const void *p, uint32_t *idx)
{
	uintptr_t off = (uintptr_t)p - (uintptr_t)run - META_OFF;
	uint32_t i = ((uint64_t)off * sc->recip) >> 32;

	if (off >= sc->span || (uintptr_t)i * sc->size != off)
		return false;
	*idx = i;
	return true;
}

static unsigned int color_of(const struct run *run)
{
	return ((uintptr_t)run >> 20) & (NCOLORS - 1);
}

/* Where @run's metadata is: two instructions. */
static __always_inline uint8_t *run_meta(const struct run *run)
{
	return (uint8_t *)run + META_OFF + color_of(run) * PAGE;
}

static const struct hole *run_hole(const struct sclass *sc,
				   const struct run *run)
{
	return &holes[sc - classes][color_of(run)];
}

/* Whether block @i of @run lies under its metadata. */
static bool slot_dead(const struct sclass *sc, const struct run *run,
		      uint32_t i)
{
	const struct hole *h = run_hole(sc, run);

	return i >= h->start && i < h->end;
}

/*
 * slot_index() for a block that may be handed out: not one under the
 * metadata. (The fast paths use slot_index() and let the entry, META_DEAD,
 * refuse such a block.)
 */
static bool slot_index_live(const struct sclass *sc, const struct run *run,
			    const void *p, uint32_t *idx)
{
	return slot_index(sc, run, p, idx) && !slot_dead(sc, run, *idx);
}

/* The first block from @i on that is not under the metadata. */
static uint32_t slot_live(const struct sclass *sc, const struct run *run,
			  uint32_t i)
{
	return slot_dead(sc, run, i) ? run_hole(sc, run)->end : i;
}

/*
 * Per-block metadata: unused bytes of a busy block, META_FREE or
 * META_DEAD. Threads write different blocks' entries without a lock;
 * HeapWalk reads them while they change, hence the relaxed atomics.
 */
static unsigned int meta_get(const struct sclass *sc, struct run *run,
			     uint32_t i)
{
	uint8_t *m = run_meta(run);

	if (sc->wide)
		return __atomic_load_n((uint16_t *)m + i, __ATOMIC_RELAXED);
	return __atomic_load_n(m + i, __ATOMIC_RELAXED);
}

static __always_inline void meta_set(const struct sclass *sc,
				     struct run *run, uint32_t i,
				     unsigned int val)
{
	uint8_t *m = run_meta(run);

	if (sc->wide)
		__atomic_store_n((uint16_t *)m + i, val, __ATOMIC_RELAXED);
	else
		__atomic_store_n(m + i, val, __ATOMIC_RELAXED);
}

static unsigned int meta_free(const struct sclass *sc)
{
	return sc->wide ? META_FREE_WIDE : META_FREE;
}

static unsigned int meta_dead(const struct sclass *sc)
{
	return sc->wide ? META_DEAD_WIDE : META_DEAD;
}

static uint16_t *meta_tail(const struct sclass *sc, const char *p)
{
	return (uint16_t *)(p + sc->size - sizeof(uint16_t));
}

/* Busy block @i of @run, at @p, now holds @size bytes. */
static void meta_resize(const struct sclass *sc, struct run *run, uint32_t i,
			char *p, size_t size)
{
	unsigned int unused = sc->size - size;

	if (!sc->wide && unused >= META_TAIL) {
		__atomic_store_n(meta_tail(sc, p), unused, __ATOMIC_RELAXED);
		unused = META_TAIL;
	}
	meta_set(sc, run, i, unused);
}

/*
 * The unused bytes of busy block @p, whose metadata entry is @meta; at most
 * the block's size whatever a stray write put in its tail.
 */
static unsigned int meta_unused(const struct sclass *sc, const char *p,
				unsigned int meta)
{
	unsigned int unused;

	if (sc->wide || meta != META_TAIL)
		return meta;
	unused = __atomic_load_n(meta_tail(sc, p), __ATOMIC_RELAXED);
	return unused < sc->size ? unused : sc->size;
}

/* Whether metadata entry @meta is a busy block's. */
static bool meta_busy(const struct sclass *sc, unsigned int meta)
{
	return meta < meta_dead(sc);
}

/*
 * Busy to free: false if it was free already (a double free) or is under
 * the metadata. One branch on the width, for the free fast path.
 */
static __always_inline bool
meta_release(const struct sclass *sc, struct run *run, uint32_t i)
{
	uint16_t *w;
	uint8_t *b;

	if (sc->wide) {
		w = (uint16_t *)run_meta(run) + i;
		if (__atomic_load_n(w, __ATOMIC_RELAXED) >= META_DEAD_WIDE)
			return false;
		__atomic_store_n(w, META_FREE_WIDE, __ATOMIC_RELAXED);
	} else {
		b = run_meta(run) + i;
		if (__atomic_load_n(b, __ATOMIC_RELAXED) >= META_DEAD)
			return false;
		__atomic_store_n(b, META_FREE, __ATOMIC_RELAXED);
	}
	return true;
}

static void corruption_found(struct heap *heap, const void *p);

/* Thread slots. */

static unsigned int tslot_get(void)
{
	unsigned int s = tslot, i;

	if (likely(s))
		return s;
	winvm_thread_setup();
	pthread_mutex_lock(&tslot_lock);
	for (i = 1; i < MAX_TSLOTS && !s; i++) {
		if (!(tslot_used[i / 64] & (1ULL << (i % 64)))) {
			tslot_used[i / 64] |= 1ULL << (i % 64);
			s = i;
		}
	}
	pthread_mutex_unlock(&tslot_lock);
	if (s) {
		tslot = s;
		pthread_setspecific(tslot_key, (void *)(uintptr_t)s);
	}
	return s;
}

/* Runs. */

static void partial_add(struct lclass *lc, struct run *run)
{
	run->prev = NULL;
	run->next = lc->partial;
	if (run->next)
		run->next->prev = run;
	lc->partial = run;
	run->listed = 1;
}

static void partial_remove(struct lclass *lc, struct run *run)
{
	if (run->prev)
		run->prev->next = run->next;
	else
		lc->partial = run->next;
	if (run->next)
		run->next->prev = run->prev;
	run->listed = 0;
}

/* A new run of class @c, from the back end. Takes the heap lock. */
static struct run *run_new(struct heap *heap, unsigned int c)
{
	const struct sclass *sc = &classes[c];
	struct run *run = NULL;
	const struct hole *h;
	struct blk *b;
	uint32_t i;

	pthread_mutex_lock(&heap->lock);
	b = backend_alloc(heap, sc->run_size - HDR, sc->run_size);
	if (!b)
		goto out;
	run = (struct run *)blk_data(b);
	if (!map_set(run, (char *)run + sc->run_size,
		     MAP_RUN_OF(run, c, heap->tag))) {
		map_set(run, (char *)run + sc->run_size,
			(uintptr_t)seg_of_blk(heap, b) | MAP_SEG);
		backend_free(heap, b);
		run = NULL;
		goto out;
	}
	blk_busy(b, b->size, sc->run_size - HDR, BLK_RUN);
	run->magic = RUN_MAGIC;
	run->cls = c;
	run->listed = 0;
	run->heap = heap;
	run->seg = seg_of_blk(heap, b);
	run->data = (char *)run + META_OFF;
	run->free = NULL;
	run->nfree = 0;
	run->bump = slot_live(sc, run, 0);
	h = run_hole(sc, run);
	memset(run_meta(run), 0xff, sc->nslots * (sc->wide ? 2 : 1));
	for (i = h->start; i < h->end; i++)
		meta_set(sc, run, i, meta_dead(sc));
out:
	pthread_mutex_unlock(&heap->lock);
	return run;
}

/* Give an entirely free, unlisted run back to the back end. */
static void run_release(struct heap *heap, struct run *run)
{
	const struct sclass *sc = &classes[run->cls];
	struct blk *b = (struct blk *)((char *)run - HDR);

	pthread_mutex_lock(&heap->lock);
	map_set(run, (char *)run + sc->run_size, (uintptr_t)run->seg | MAP_SEG);
	run->magic = 0;
	backend_free(heap, b);
	pthread_mutex_unlock(&heap->lock);
}

static bool run_idle(const struct run *run)
{
	const struct hole *h = run_hole(&classes[run->cls], run);
	uint32_t dead = run->bump > h->start ? h->end - h->start : 0;

	return run->nfree == run->bump - dead;
}

/*
 * Append up to @n free blocks of class @c to @items: from the depot, then
 * from the runs. A link
 * that does not decode to a block of its run drops the rest of that run's
 * list (those blocks leak) and reports corruption.
 */
static unsigned int central_get(struct heap *heap, unsigned int c,
				void **items, unsigned int n, bool *corrupt)
{
	struct lclass *lc = &heap->lfh->cls[c];
	const struct sclass *sc = &classes[c];
	unsigned int got = 0;
	struct run *run;
	uint32_t i;
	char *p;

	pthread_mutex_lock(&lc->lock);
	if (lc->ndepot) {
		got = n < lc->ndepot ? n : lc->ndepot;
		lc->ndepot -= got;
		memcpy(items, lc->depot + lc->ndepot, got * sizeof(void *));
	}
	while (got < n && (run = lc->partial)) {
		while (got < n && run->free) {
			p = run->free;
			if (!slot_index_live(sc, run, p, &i) ||
			    !link_ok(link_dec(p))) {
				run->free = NULL;
				run->nfree = 0;
				*corrupt = true;
				break;
			}
			run->free = link_dec(p);
			run->nfree--;
			items[got++] = p;
		}
		while (got < n && run->bump < sc->nslots) {
			items[got++] = run->data + (size_t)run->bump++ * sc->size;
			run->bump = slot_live(sc, run, run->bump);
		}
		if (!run->free && run->bump == sc->nslots)
			partial_remove(lc, run);
	}
	pthread_mutex_unlock(&lc->lock);
	return got;
}

/*
 * Return @n free blocks of class @c to their runs (class lock held). A run
 * that becomes entirely free is queued on @idle, for release, if its class
 * has another run to hand out from and @release allows it.
 */
static void runs_put(struct lclass *lc, unsigned int c, void *const *items,
		     unsigned int n, bool release, struct run **idle)
{
	const struct sclass *sc = &classes[c];
	struct run *run;
	unsigned int k;
	char *p;

	for (k = 0; k < n; k++) {
		p = items[k];
		run = run_of(sc, p);
		*(void **)p = link_enc(p, run->free);
		run->free = p;
		run->nfree++;
		if (!run->listed) {
			partial_add(lc, run);
		} else if (release && run_idle(run) &&
			   (lc->partial != run || run->next)) {
			partial_remove(lc, run);
			run->next = *idle;
			*idle = run;
		}
	}
}

static void runs_release(struct heap *heap, struct run *idle)
{
	struct run *run;

	while ((run = idle)) {
		idle = run->next;
		run_release(heap, run);
	}
}

/*
 * Return @n free blocks of class @c: to the depot if it has room. A full
 * depot means the class is shrinking (more frees than allocations): then
 * it is emptied into the runs with the batch, so that runs no block holds
 * any more go back to the back end, for other classes to use.
 */
static void central_put(struct heap *heap, unsigned int c, void *const *items,
			unsigned int n, bool release)
{
	struct lclass *lc = &heap->lfh->cls[c];
	unsigned int cap = DEPOT_BATCHES * classes[c].batch;
	struct run *idle = NULL;

	pthread_mutex_lock(&lc->lock);
	if (lc->depot && lc->ndepot + n <= cap) {
		memcpy(lc->depot + lc->ndepot, items, n * sizeof(void *));
		lc->ndepot += n;
	} else {
		runs_put(lc, c, lc->depot, lc->ndepot, release, &idle);
		lc->ndepot = 0;
		runs_put(lc, c, items, n, release, &idle);
	}
	pthread_mutex_unlock(&lc->lock);
	runs_release(heap, idle);
}

/* Empty the depots into the runs and release every entirely free run. */
static void runs_release_idle(struct heap *heap)
{
	struct run *run, *next, *idle = NULL;
	struct lclass *lc;
	unsigned int c;

	for (c = 0; c < NCLASS; c++) {
		lc = &heap->lfh->cls[c];
		pthread_mutex_lock(&lc->lock);
		runs_put(lc, c, lc->depot, lc->ndepot, false, &idle);
		lc->ndepot = 0;
		for (run = lc->partial; run; run = next) {
			next = run->next;
			if (run_idle(run)) {
				partial_remove(lc, run);
				run->next = idle;
				idle = run;
			}
		}
		pthread_mutex_unlock(&lc->lock);
	}
	runs_release(heap, idle);
}

/*
 * Give the @n oldest blocks of @bin back to their runs, keeping the most
 * recently freed, likely still in the cache, for the next allocations.
 */
static void tbin_flush(struct heap *heap, unsigned int c, struct tbin *bin,
		       unsigned int n, bool release)
{
	central_put(heap, c, bin->items, n, release);
	bin->count -= n;
	memmove(bin->items, bin->items + n, bin->count * sizeof(void *));
}

/*
 * Incremental decay of the thread caches: every GC_EVERY slow-path events
 * one bin is visited, and the blocks that stayed in it unused since the
 * last visit (its low-water mark) go back to their runs, with whatever the
 * class's depot holds: a class a thread has stopped using does not keep
 * runs from going back to the back end.
 */
static void tbin_gc(struct heap *heap, unsigned int c, struct tbin *bin)
{
	struct lclass *lc = &heap->lfh->cls[c];
	unsigned int n = bin->low < bin->count ? bin->low : bin->count;
	struct run *idle = NULL;

	bin->low = bin->count - n;
	if (!n)
		return;
	pthread_mutex_lock(&lc->lock);
	runs_put(lc, c, lc->depot, lc->ndepot, true, &idle);
	lc->ndepot = 0;
	runs_put(lc, c, bin->items, n, true, &idle);
	pthread_mutex_unlock(&lc->lock);
	bin->count -= n;
	memmove(bin->items, bin->items + n, bin->count * sizeof(void *));
	runs_release(heap, idle);
}

static void tcache_event(struct heap *heap, struct tcache *tc)
{
	unsigned int c;

	heap_tick_unlocked(heap);
	if (++tc->events % GC_EVERY)
		return;
	c = tc->gc_next++ % NCLASS;
	tbin_gc(heap, c, &tc->bin[c]);
}

/* A full cache hands a batch back; out of the free fast path. */
static noinline void tbin_overflow(struct heap *heap, unsigned int c,
				   struct tbin *bin)
{
	tbin_flush(heap, c, bin, classes[c].batch, true);
	if (bin->low > bin->count)
		bin->low = bin->count;
}

/* Give all blocks in @tc back to their runs. */
static void tcache_drain(struct heap *heap, struct tcache *tc, bool release)
{
	unsigned int c;

	for (c = 0; c < NCLASS; c++)
		if (tc->bin[c].count)
			tbin_flush(heap, c, &tc->bin[c], tc->bin[c].count,
				   release);
}

/*
 * A thread leaving: its caches go back to the runs (without releasing
 * runs: that would take heap locks under the registry lock) and its slot
 * to the next thread.
 */
static void tslot_exit(void *arg)
{
	unsigned int s = (uintptr_t)arg;
	struct heap *heap;
	struct lfh *lfh;

	pthread_mutex_lock(&registry_lock);
	for (heap = registry; heap; heap = heap->next_heap) {
		lfh = __atomic_load_n(&heap->lfh, __ATOMIC_ACQUIRE);
		if (lfh && lfh->tc[s])
			tcache_drain(heap, lfh->tc[s], false);
	}
	pthread_mutex_unlock(&registry_lock);
	pthread_mutex_lock(&tslot_lock);
	tslot_used[s / 64] &= ~(1ULL << (s % 64));
	pthread_mutex_unlock(&tslot_lock);
	tslot = 0;
	proc_tc = NULL;
}

/* The front end's metadata reservation, made when a first class turns on. */
static struct lfh *lfh_create(void)
{
	size_t first = round_up(sizeof(struct lfh), PAGE);
	struct lfh *lfh;
	unsigned int c;

	lfh = vm_alloc(NULL, META_RESERVE, MEM_RESERVE, PAGE_READWRITE);
	if (!lfh)
		return NULL;
	if (!vm_alloc(lfh, first, MEM_COMMIT, PAGE_READWRITE)) {
		vm_free(lfh, 0, MEM_RELEASE);
		return NULL;
	}
	for (c = 0; c < NCLASS; c++)
		pthread_mutex_init(&lfh->cls[c].lock, NULL);
	pthread_mutex_init(&lfh->meta_lock, NULL);
	lfh->bump = (char *)lfh + first;
	lfh->commit = lfh->bump;
	lfh->end = (char *)lfh + META_RESERVE;
	return lfh;
}

/* @size bytes of the metadata reservation; meta_lock held. */
static void *meta_alloc(struct lfh *lfh, size_t size)
{
	size_t need;
	void *p;

	size = round_up(size, 64);
	if (lfh->bump + size > lfh->commit) {
		need = round_up(lfh->bump + size - lfh->commit, PAGE);
		if (need > (size_t)(lfh->end - lfh->commit) ||
		    !vm_alloc(lfh->commit, need, MEM_COMMIT, PAGE_READWRITE))
			return NULL;
		lfh->commit += need;
	}
	p = lfh->bump;
	lfh->bump += size;
	return p;
}

/*
 * Count an allocation of class @c in the back end (heap lock held); the
 * LFH_THRESHOLD-th turns the front end on for the class, with a first run,
 * so that its blocks can be had without the heap lock from then on: a
 * thread holding HeapLock does not block them (case 97).
 */
static void lfh_count(struct heap *heap, unsigned int c)
{
	struct lfh *lfh = heap->lfh;
	struct run *run;
	void **depot;

	if ((heap->active & (1ULL << c)) || ++heap->counts[c] < LFH_THRESHOLD)
		return;
	heap->counts[c] = LFH_THRESHOLD;
	if (!lfh) {
		lfh = lfh_create();
		if (!lfh)
			return;
		__atomic_store_n(&heap->lfh, lfh, __ATOMIC_RELEASE);
	}
	pthread_mutex_lock(&lfh->meta_lock);
	depot = meta_alloc(lfh, DEPOT_BATCHES * classes[c].batch * sizeof(void *));
	pthread_mutex_unlock(&lfh->meta_lock);
	run = run_new(heap, c);
	pthread_mutex_lock(&lfh->cls[c].lock);
	lfh->cls[c].depot = depot;
	if (run)
		partial_add(&lfh->cls[c], run);
	pthread_mutex_unlock(&lfh->cls[c].lock);
	__atomic_or_fetch(&heap->active, 1ULL << c, __ATOMIC_RELEASE);
}

/*
 * This thread's cache in @heap, made on first use without the heap lock;
 * NULL: none to be had. A class's array comes with its first use
 * (tbin_items), so a thread pays only for the classes it uses.
 */
static struct tcache *tcache_get(struct heap *heap)
{
	unsigned int s = tslot_get();
	struct lfh *lfh = heap->lfh;
	struct tcache *tc;

	if (!s)
		return NULL;
	tc = lfh->tc[s];
	if (!tc) {
		pthread_mutex_lock(&lfh->meta_lock);
		tc = meta_alloc(lfh, sizeof(*tc));
		if (tc)
			lfh->tc[s] = tc;
		pthread_mutex_unlock(&lfh->meta_lock);
	}
	if (heap == process_heap)
		proc_tc = tc;
	return tc;
}

static bool tbin_items(struct heap *heap, struct tbin *bin, unsigned int c)
{
	struct lfh *lfh = heap->lfh;

	if (bin->items)
		return true;
	pthread_mutex_lock(&lfh->meta_lock);
	bin->items = meta_alloc(lfh, classes[c].limit * sizeof(void *));
	pthread_mutex_unlock(&lfh->meta_lock);
	if (!bin->items)
		return false;
	bin->limit = classes[c].limit;
	return true;
}

/*
 * Corruption found while allocating: with termination on corruption
 * enabled it ends the process; otherwise the damaged list was dropped and
 * the allocation goes on.
 */
static void corruption_found(struct heap *heap, const void *p)
{
	ULONG_PTR args[2] = { (ULONG_PTR)heap, (ULONG_PTR)p };

	if (!__atomic_load_n(&terminate_on_corruption, __ATOMIC_RELAXED))
		return;
	RaiseException(STATUS_HEAP_CORRUPTION, EXCEPTION_NONCONTINUABLE, 2,
		       args);
	abort();
}

/* Corruption found freeing or resizing @p: the call fails. */
static BOOL heap_corrupt(struct heap *heap, const void *p)
{
	corruption_found(heap, p);
	return winvm_fail(ERROR_INVALID_PARAMETER);
}

/*
 * Take the last block of @items, @n of them, for @size bytes; the fast
 * path does the same without the checks. A block that is not a free one
 * of its run (a cache overwritten by a stray write) is dropped and
 * reported.
 */
static void *items_pop(struct heap *heap, unsigned int c, void **items,
		       uint32_t *n, size_t size)
{
	const struct sclass *sc = &classes[c];
	struct run *run;
	uint32_t i;
	char *p;

	while (*n) {
		p = items[--*n];
		run = run_of(sc, p);
		if (link_ok(p) && map_lookup(p) == MAP_RUN_OF(run, c, heap->tag) &&
		    slot_index(sc, run, p, &i) &&
		    meta_get(sc, run, i) == meta_free(sc)) {
			meta_set(sc, run, i, sc->size - size);
			return p;
		}
		corruption_found(heap, p);
	}
	return NULL;
}

/*
 * A front-end block for @size bytes when the thread's cache is empty or
 * missing: refill it (or, without a cache, take one block) from the runs,
 * adding a run when none has a block. NULL when the class is not on the
 * front end or no run can be had: the back end serves the request then.
 */
static void *lfh_alloc_slow(struct heap *heap, size_t size)
{
	unsigned int c = class_of(size);
	void *local[1], **items;
	bool corrupt = false;
	uint32_t n = 0, *count;
	struct tcache *tc;
	struct run *run;
	void *p;

	if (!(__atomic_load_n(&heap->active, __ATOMIC_ACQUIRE) & (1ULL << c)))
		return NULL;
	tc = tcache_get(heap);
	if (tc && tbin_items(heap, &tc->bin[c], c)) {
		items = tc->bin[c].items;
		count = &tc->bin[c].count;
	} else {
		items = local;
		count = &n;
	}
	for (;;) {
		p = items_pop(heap, c, items, count, size);
		if (p)
			return p;
		*count = central_get(heap, c, items, count == &n ? 1 :
				     classes[c].batch, &corrupt);
		if (corrupt) {
			corruption_found(heap, NULL);
			corrupt = false;
		}
		if (tc && count != &n) {
			tc->bin[c].low = *count;
			tcache_event(heap, tc);
		}
		if (*count)
			continue;
		run = run_new(heap, c);
		if (!run)
			return NULL;
		pthread_mutex_lock(&heap->lfh->cls[c].lock);
		partial_add(&heap->lfh->cls[c], run);
		pthread_mutex_unlock(&heap->lfh->cls[c].lock);
	}
}

/*
 * The free fast path: a busy front-end block of @heap into this thread's
 * cache; false: take lfh_free_full() if the cache is full, else the slow
 * path, which reports what is wrong. It calls nothing, so that its callers
 * need no stack frame.
 */
static __always_inline bool lfh_free(struct heap *heap, char *p,
				     uintptr_t e)
{
	struct run *run = MAP_OBJ(e);
	unsigned int c = MAP_CLS(e);
	const struct sclass *sc = &classes[c];
	struct tcache *tc;
	struct tbin *bin;
	uint32_t i;

	if (unlikely(MAP_HEAP(e) != heap->tag || !heap->tag) &&
	    run->heap != heap)
		return false;
	tc = heap == process_heap ? proc_tc : heap->lfh->tc[tslot];
	if (unlikely(!tc || !slot_index(sc, run, p, &i)))
		return false;
	bin = &tc->bin[c];
	if (unlikely(bin->count >= bin->limit ||
		     !meta_release(sc, run, i)))
		return false;
	bin->items[bin->count++] = p;
	return true;
}

/*
 * lfh_free() for a block whose thread cache may be full: a batch goes
 * back first. False: the general path is to free it (or report it).
 */
static noinline bool lfh_free_full(struct heap *heap, char *p, uintptr_t e)
{
	unsigned int c = MAP_CLS(e);
	struct tcache *tc;
	struct tbin *bin;

	if ((e & MAP_TAG) != MAP_RUN || !heap->lfh)
		return false;
	tc = heap->lfh->tc[tslot];
	if (tc && tc->bin[c].count >= tc->bin[c].limit) {
		bin = &tc->bin[c];
		if (!bin->items)
			return false;
		tbin_overflow(heap, c, bin);
		tcache_event(heap, tc);
	}
	return lfh_free(heap, p, e);
}

/* Large blocks. */

static uint32_t large_sum(const struct large *l)
{
	uint64_t x;

	x = ((uint64_t)l->size ^ (uintptr_t)l->heap) * 0x9e3779b97f4a7c15ULL;
	x ^= ((uint64_t)l->commit << 1 ^ l->reserve) * 0xc2b2ae3d27d4eb4fULL;
	x ^= ((uintptr_t)l ^ (uintptr_t)l->user ^ secret) * 0x165667b19e3779f9ULL;
	return (x ^ x >> 31) >> 32;
}

/*
 * Make the start of reservation @l, @commit of its @reserve bytes
 * committed, a large block of @size bytes carrying @user, and list it.
 * Heap lock held if serialized.
 */
static void large_init(struct heap *heap, struct large *l, size_t size,
		       size_t commit, size_t reserve, void *user)
{
	l->magic = LARGE_MAGIC;
	l->heap = heap;
	l->size = size;
	l->commit = commit;
	l->reserve = reserve;
	l->user = user;
	l->check = large_sum(l);
	l->next = NULL;
	l->prev = heap->large_tail;
	if (l->prev)
		l->prev->next = l;
	else
		heap->large = l;
	heap->large_tail = l;
}

/*
 * A large block of @size bytes in its own reservation of at least
 * @reserve bytes (a realloc leaves room to grow), committed as needed.
 * Fresh pages are zero: HEAP_ZERO_MEMORY costs nothing.
 */
static void *large_alloc(struct heap *heap, DWORD flags, size_t size,
			 size_t reserve, bool user, void *value)
{
	size_t commit = round_up(size + LARGE_HDR, PAGE);
	struct large *l;

	if (size > MAX_REQUEST - LARGE_HDR - PAGE)
		return NULL;
	reserve = round_up(reserve > commit ? reserve : commit, GRAN);
	l = vm_alloc(NULL, reserve, MEM_RESERVE, heap_prot(heap));
	if (!l)
		return NULL;
	if (!vm_alloc(l, commit, MEM_COMMIT, heap_prot(heap)) ||
	    !map_set(l, (char *)l + 1, (uintptr_t)l | MAP_LARGE)) {
		vm_free(l, 0, MEM_RELEASE);
		return NULL;
	}
	heap_lock(heap, flags);
	large_init(heap, l, size, commit, reserve, user ? value : NULL);
	heap_unlock(heap, flags);
	return (char *)l + LARGE_HDR;
}

/* Free large block @l. Heap lock held if serialized. */
static void large_free(struct heap *heap, struct large *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		heap->large = l->next;
	if (l->next)
		l->next->prev = l->prev;
	else
		heap->large_tail = l->prev;
	map_set(l, (char *)l + 1, 0);
	vm_free(l, 0, MEM_RELEASE);
}

/*
 * Resize large block @l to @size in place: shrinking decommits the pages
 * no longer needed; growing commits more of the reservation, except for
 * HEAP_REALLOC_IN_PLACE_ONLY, which, as on Windows, cannot grow past the
 * committed pages (case 91). *zero_end: where pages fresh from the kernel,
 * already zero, start.
 */
static bool large_resize(struct heap *heap, struct large *l, size_t size,
			 bool in_place, size_t *zero_end)
{
	size_t commit = round_up(size + LARGE_HDR, PAGE);

	if (commit > l->commit) {
		if (in_place || commit > l->reserve ||
		    !vm_alloc((char *)l + l->commit, commit - l->commit,
			      MEM_COMMIT, heap_prot(heap)))
			return false;
	} else if (commit < l->commit) {
		vm_free((char *)l + commit, l->commit - commit, MEM_DECOMMIT);
	}
	*zero_end = l->commit - LARGE_HDR < size ? l->commit - LARGE_HDR : size;
	l->commit = commit;
	l->size = size;
	l->check = large_sum(l);
	return true;
}

/* Finding the block a pointer is. */

enum bstat {
	B_OK,
	B_INVALID,	/* not a block of this heap */
	B_FREED,	/* a free block */
	B_CORRUPT,	/* a block whose header was overwritten */
};

struct loc {
	uintptr_t tag;		/* MAP_RUN, MAP_SEG or MAP_LARGE */
	size_t size;		/* bytes asked for */
	bool user;
	void *value;		/* the user value, if any */
	struct run *run;
	uint32_t idx;
	struct seg *seg;
	struct blk *b;
	struct large *l;
};

static enum bstat locate_slot(struct heap *heap, struct run *run,
			      const void *p, struct loc *loc)
{
	const struct sclass *sc;
	unsigned int meta;

	if (run->magic != RUN_MAGIC || run->heap != heap)
		return B_INVALID;
	sc = &classes[run->cls];
	if (!slot_index_live(sc, run, p, &loc->idx))
		return B_INVALID;
	meta = meta_get(sc, run, loc->idx);
	if (meta == meta_free(sc))
		return B_FREED;
	loc->run = run;
	loc->size = sc->size - meta_unused(sc, p, meta);
	return B_OK;
}

/* A back-end block: reads its header, so the heap lock must be held. */
static enum bstat locate_blk(struct heap *heap, struct seg *seg,
			     const char *p, struct loc *loc)
{
	struct blk *b;

	if (seg->heap != heap || ((uintptr_t)p & (UNIT - 1)) ||
	    p < blk_data(seg_first(seg)) || p >= seg->commit - HDR)
		return B_INVALID;
	b = (struct blk *)(p - HDR);
	if (!blk_ok(b))
		return B_CORRUPT;
	if (b->flags & (BLK_END | BLK_RUN))
		return B_INVALID;
	if (!(b->flags & BLK_BUSY))
		return B_FREED;
	if (b->unused > blk_cap(b))
		return B_CORRUPT;
	loc->seg = seg;
	loc->b = b;
	loc->size = blk_cap(b) - b->unused;
	loc->user = b->flags & BLK_USER;
	loc->value = loc->user ? *blk_user_slot(b) : NULL;
	return B_OK;
}

static enum bstat locate_large(struct heap *heap, struct large *l,
			       const char *p, struct loc *loc)
{
	if ((char *)l + LARGE_HDR != p || l->heap != heap)
		return B_INVALID;
	if (l->magic != LARGE_MAGIC || l->check != large_sum(l))
		return B_CORRUPT;
	loc->l = l;
	loc->size = l->size;
	loc->value = l->user;
	loc->user = l->user;
	return B_OK;
}

/* What @p is in @heap; the heap lock held unless it is a run's block. */
static enum bstat locate(struct heap *heap, const void *p, struct loc *loc)
{
	uintptr_t e = map_lookup(p);
	void *obj = MAP_OBJ(e);

	loc->tag = e & MAP_TAG;
	loc->user = false;
	loc->value = NULL;
	switch (loc->tag) {
	case MAP_RUN:
		return locate_slot(heap, obj, p, loc);
	case MAP_SEG:
		return locate_blk(heap, obj, p, loc);
	case MAP_LARGE:
		return locate_large(heap, obj, p, loc);
	}
	return B_INVALID;
}

/* Free the block found by locate(). Heap lock held if serialized. */
static void free_loc(struct heap *heap, struct loc *loc, void *p)
{
	const struct sclass *sc;
	bool solo;

	switch (loc->tag) {
	case MAP_RUN:
		sc = &classes[loc->run->cls];
		meta_set(sc, loc->run, loc->idx, meta_free(sc));
		central_put(heap, loc->run->cls, &p, 1, true);
		break;
	case MAP_SEG:
		/*
		 * A sub-heap of its own goes with its block (the purge
		 * backend_free() may run leaves a block freed just now).
		 */
		solo = loc->seg->magic == SOLO_MAGIC;
		if (solo)
			loc->seg->magic = SEG_MAGIC;
		backend_free(heap, loc->b);
		if (solo && seg_empty(loc->seg))
			seg_release(heap, loc->seg);
		break;
	case MAP_LARGE:
		large_free(heap, loc->l);
		break;
	}
}

/* Allocation. */

/* A back-end block, counting the class towards the front end. */
static void *backend_block(struct heap *heap, DWORD flags, size_t size,
			   bool user, void *value)
{
	struct blk *b;

	heap_lock(heap, flags);
	if (!user && size <= LFH_MAX && !(flags & HEAP_NO_SERIALIZE) &&
	    (heap->flags & HEAP_GROWABLE))
		lfh_count(heap, class_of(size));
	b = backend_alloc(heap, size + (user ? sizeof(void *) : 0), 0);
	if (b && user) {
		blk_busy(b, b->size, size, BLK_USER);
		*blk_user_slot(b) = value;
	}
	heap_unlock(heap, flags);
	return b ? blk_data(b) : NULL;
}

/*
 * @size bytes from @heap, carrying @value if @user: large blocks, then the
 * front end, then the back end. NULL, with nothing reported, on failure.
 */
static void *heap_alloc(struct heap *heap, DWORD flags, size_t size,
			bool user, void *value)
{
	size_t need = size + (user ? sizeof(void *) : 0);
	void *p = NULL;

	if (size > MAX_REQUEST)
		return NULL;
	if (need >= LARGE_MIN)
		return heap->flags & HEAP_GROWABLE ?
		       large_alloc(heap, flags, size, 0, user, value) : NULL;
	if (!user && size <= LFH_MAX)
		p = lfh_alloc_slow(heap, size);
	if (!p)
		p = backend_block(heap, flags, size, user, value);
	if (p && (flags & HEAP_ZERO_MEMORY))
		memset(p, 0, size);
	return p;
}

/* A failed allocation: ERROR_NOT_ENOUGH_MEMORY, or STATUS_NO_MEMORY raised. */
static void alloc_failed(DWORD flags, SIZE_T size)
{
	ULONG_PTR arg = size;

	winvm_fail(ERROR_NOT_ENOUGH_MEMORY);
	if (flags & HEAP_GENERATE_EXCEPTIONS)
		RaiseException(STATUS_NO_MEMORY, 0, 1, &arg);
}

/* HeapAlloc past the front end; @user and @value as for heap_alloc(). */
static void *alloc_checked(HANDLE h, DWORD flags, SIZE_T size, bool user,
			   void *value)
{
	struct heap *heap = heap_of(h);
	void *p;

	if (!heap) {
		winvm_fail(ERROR_INVALID_HANDLE);
		return NULL;
	}
	flags |= heap->flags & CALL_FLAGS;
	p = heap_alloc(heap, flags, size, user, value);
	if (!p)
		alloc_failed(flags, size);
	return p;
}

static noinline void *alloc_slow(HANDLE h, DWORD flags, SIZE_T size)
{
	return alloc_checked(h, flags, size, false, NULL);
}

/*
 * The allocation fast path: the last block freed into this thread's cache
 * @tc for the class of @size (at most LFH_MAX), or NULL. The block itself
 * is not touched, and its metadata is written, not read (a store does not
 * wait for its cache line). Only classes on the front end ever have blocks
 * in a cache, so an empty bin is all there is to check.
 */
static __always_inline void *tcache_pop(struct tcache *tc, DWORD flags,
					size_t size)
{
	unsigned int c = class_of(size);
	struct tbin *bin = &tc->bin[c];
	const struct sclass *sc;
	uint32_t n = bin->count;
	char *p;

	if (unlikely(!n))
		return NULL;
	p = bin->items[--n];
	bin->count = n;
	if (n < bin->low)
		bin->low = n;
	sc = &classes[c];
	meta_set(sc, run_of(sc, p), slot_of(sc, p), sc->size - size);
	if (flags & HEAP_ZERO_MEMORY)
		memset(p, 0, size);
	return p;
}

/*
 * For the process heap the thread's caches are a thread-local pointer
 * away; for the others, through the heap's front end.
 */
__fastpath LPVOID WINAPI HeapAlloc(HANDLE hHeap, DWORD dwFlags, SIZE_T dwBytes)
{
	struct heap *heap = hHeap;
	struct tcache *tc;
	void *p;

	if (unlikely(dwBytes > LFH_MAX))
		goto slow;
	if (likely(heap == process_heap && heap)) {
		tc = proc_tc;
	} else {
		if (unlikely(!heap || heap->seg.magic != HEAP_MAGIC ||
			     !heap->lfh))
			goto slow;
		tc = heap->lfh->tc[tslot];
	}
	if (unlikely(!tc))
		goto slow;
	p = tcache_pop(tc, dwFlags, dwBytes);
	if (likely(p))
		return p;
slow:
	return alloc_slow(hHeap, dwFlags, dwBytes);
}

static noinline void *alloc_fixed_slow(DWORD flags, SIZE_T size)
{
	HANDLE heap = winvm_process_heap();

	if (!heap) {
		winvm_fail(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	return alloc_slow(heap, flags, size);
}

/*
 * HeapAlloc on the process heap for GlobalAlloc and LocalAlloc of a fixed
 * block (below). A thread with caches in the process heap has a process
 * heap. The rest is a tail call, as in HeapAlloc, so that the fast path
 * needs no stack frame.
 */
static __always_inline void *alloc_fixed(DWORD flags, SIZE_T size)
{
	struct tcache *tc = proc_tc;
	void *p;

	if (likely(tc && size <= LFH_MAX)) {
		p = tcache_pop(tc, flags, size);
		if (likely(p))
			return p;
	}
	return alloc_fixed_slow(flags, size);
}

static noinline BOOL free_slow(HANDLE h, DWORD flags, void *p)
{
	struct heap *heap = heap_of(h);
	struct loc loc;
	enum bstat st;

	if (!heap)
		return winvm_fail(ERROR_INVALID_HANDLE);
	if (lfh_free_full(heap, p, map_lookup(p)))
		return TRUE;
	flags |= heap->flags & CALL_FLAGS;
	heap_lock(heap, flags);
	st = locate(heap, p, &loc);
	if (st == B_OK)
		free_loc(heap, &loc, p);
	heap_unlock(heap, flags);
	if (st == B_OK)
		return TRUE;
	if (st == B_INVALID)
		return winvm_fail(ERROR_INVALID_PARAMETER);
	return heap_corrupt(heap, p);	/* a double free or a bad header */
}

__fastpath BOOL WINAPI HeapFree(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem)
{
	uintptr_t e;

	if (!lpMem)
		return TRUE;
	e = map_lookup(lpMem);
	/* A NULL heap fails in free_slow(), as in the other calls. */
	if (likely((e & MAP_TAG) == MAP_RUN && hHeap) &&
	    lfh_free(hHeap, lpMem, e))
		return TRUE;
	return free_slow(hHeap, dwFlags, lpMem);
}

SIZE_T WINAPI HeapSize(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem)
{
	struct heap *heap = heap_of(hHeap);
	struct loc loc;
	enum bstat st;

	if (!heap) {
		winvm_fail(ERROR_INVALID_HANDLE);
		return ~(SIZE_T)0;
	}
	dwFlags |= heap->flags & CALL_FLAGS;
	if ((map_lookup(lpMem) & MAP_TAG) == MAP_RUN) {
		st = locate(heap, lpMem, &loc);
	} else {
		heap_lock(heap, dwFlags);
		st = locate(heap, lpMem, &loc);
		heap_unlock(heap, dwFlags);
	}
	if (st != B_OK) {
		winvm_fail(ERROR_INVALID_PARAMETER);
		return ~(SIZE_T)0;
	}
	return loc.size;
}

/* Reallocation. */

/*
 * Grow back-end block @b of @seg to @units by taking in the free block
 * after it, committing more of the segment first if @b or that free block
 * is at its top.
 */
static bool absorb_next(struct heap *heap, struct seg *seg, struct blk *b,
			size_t units)
{
	struct blk *next = blk_next(b);
	size_t have = b->size;

	if ((next->flags & BLK_END) ||
	    (!(next->flags & BLK_BUSY) && (blk_next(next)->flags & BLK_END)))
		seg_grow(heap, seg, units - have);
	next = blk_next(b);
	if ((next->flags & BLK_BUSY) || have + next->size < units ||
	    have + next->size > MAX_UNITS)
		return false;
	bin_remove(heap, (struct fblk *)next);
	have += next->size;
	memset(next, 0, HDR);
	blk_set(b, have, b->prev, 0, BLK_BUSY);
	blk_set_prev(blk_next(b), have);
	return true;
}

/*
 * Turn the sub-heap of back-end block @b into a large block of @size bytes
 * (@size >= LARGE_MIN) in place, when @b is the sub-heap's only block and
 * its reservation has room: a block that HeapReAlloc grew in a sub-heap of
 * its own (solo_alloc()) crosses the large-block threshold without a
 * copy. The block's data stays where it is, at LARGE_HDR from the base
 * like any large block's (SEG_HDR + HDR). Heap lock held if serialized.
 */
static bool seg_to_large(struct heap *heap, struct loc *loc, size_t size,
			 size_t *zero_end)
{
	size_t commit = round_up(size + LARGE_HDR, PAGE), had;
	struct seg *seg = loc->seg;
	struct blk *b = loc->b, *next = blk_next(b);
	struct large *l = (struct large *)seg;
	void *user = loc->user ? loc->value : NULL;
	size_t reserve = seg->end - (char *)seg;

	if (!(heap->flags & HEAP_GROWABLE) || seg == &heap->seg ||
	    b != seg_first(seg) || commit > reserve)
		return false;
	if (!(next->flags & BLK_END) &&
	    ((next->flags & BLK_BUSY) || !(blk_next(next)->flags & BLK_END)))
		return false;
	had = seg->commit - (char *)seg;
	if (commit > had && !vm_alloc(seg->commit, commit - had, MEM_COMMIT,
				      heap_prot(heap)))
		return false;
	if (!(next->flags & BLK_END))
		bin_remove(heap, (struct fblk *)next);
	seg_unlink(heap, seg);
	/* Cannot fail: the granules' tables exist, they pointed at @seg. */
	map_set((char *)seg + GRAN, seg->end, 0);
	map_set(l, (char *)l + 1, (uintptr_t)l | MAP_LARGE);
	if (commit < had)
		vm_free((char *)l + commit, had - commit, MEM_DECOMMIT);
	large_init(heap, l, size, commit, reserve, user);
	*zero_end = had - LARGE_HDR < size ? had - LARGE_HDR : size;
	loc->tag = MAP_LARGE;
	loc->l = l;
	return true;
}

/* Resize back-end block @b in place, keeping its user value. */
static bool backend_resize(struct heap *heap, struct loc *loc, size_t size,
			   bool in_place, size_t *zero_end)
{
	size_t need = size + (loc->user ? sizeof(void *) : 0);
	size_t units = units_for(need);
	struct blk *b = loc->b;

	if (need >= LARGE_MIN)
		return !in_place && seg_to_large(heap, loc, size, zero_end);
	if (units > b->size && !absorb_next(heap, loc->seg, b, units))
		return false;
	blk_set(b, b->size, b->prev, 0, BLK_BUSY);
	/* A solo block keeps what it has, unless it shrank to half. */
	if (loc->seg->magic == SOLO_MAGIC && units * 2 > b->size)
		units = b->size;
	else if (loc->seg->magic == SOLO_MAGIC)
		loc->seg->magic = SEG_MAGIC;
	units = split_tail(heap, b, units);
	blk_busy(b, units, size, loc->user ? BLK_USER : 0);
	if (loc->user)
		*blk_user_slot(b) = loc->value;
	return true;
}

/* Resize the block found by locate() in place; *zero_end as large_resize. */
static bool resize_in_place(struct heap *heap, DWORD flags, struct loc *loc,
			    size_t size, size_t *zero_end)
{
	bool in_place = flags & HEAP_REALLOC_IN_PLACE_ONLY;
	const struct sclass *sc;

	*zero_end = size;
	switch (loc->tag) {
	case MAP_RUN:
		sc = &classes[loc->run->cls];
		if (size > sc->size ||
		    (!in_place && class_of(size) != loc->run->cls))
			return false;
		meta_resize(sc, loc->run, loc->idx, loc->run->data +
			    (size_t)loc->idx * sc->size, size);
		return true;
	case MAP_SEG:
		return backend_resize(heap, loc, size, in_place, zero_end);
	default:
		if (!in_place && size < LARGE_MIN)
			return false;
		return large_resize(heap, loc->l, size, in_place, zero_end);
	}
}

/*
 * The reservation for a large block that HeapReAlloc moves to @size bytes:
 * eight times that, up to LARGE_ROOM, but at least half as much again, so
 * that a buffer grown step by step is committed in place rather than
 * copied into fresh pages (reserving costs winvm no memory), and is copied
 * O(log n) times if it outgrows even that.
 */
static size_t large_room(size_t size)
{
	size_t room = size > MAX_REQUEST / 3 * 2 ? size : size + size / 2;

	if (size <= LARGE_ROOM / 8)
		return size * 8;
	return room < LARGE_ROOM ? LARGE_ROOM : room;
}

/*
 * A back-end block of @size bytes (@need with the user value) in a new
 * sub-heap of its own, for a block of SOLO_MIN bytes or more that
 * HeapReAlloc moves: the sub-heap reserves what a large block of
 * LARGE_MIN bytes that HeapReAlloc moved would, so that a buffer grown
 * step by step grows in place, and becomes a large block without a copy
 * when it crosses LARGE_MIN (seg_to_large()). The block keeps every byte
 * committed after it (a free block there could go to another request and
 * stop the growth), and no other request is served from the sub-heap's
 * room (heap_grow()). Heap lock held if serialized.
 */
static void *solo_alloc(struct heap *heap, size_t size, size_t need,
			bool user, void *value)
{
	size_t reserve = round_up(large_room(LARGE_MIN), GRAN);
	size_t commit = round_up(SEG_HDR + units_for(need) * UNIT + HDR, PAGE);
	struct seg *seg;
	struct blk *b;

	seg = seg_new(heap, reserve, commit, SOLO_MAGIC);
	if (!seg)
		return NULL;
	b = seg_first(seg);
	bin_remove(heap, (struct fblk *)b);
	blk_busy(b, b->size, size, user ? BLK_USER : 0);
	if (user)
		*blk_user_slot(b) = value;
	heap_tick(heap);
	return blk_data(b);
}

/*
 * Move a block to a new one of @size bytes: the front end, the back end
 * (a sub-heap of its own from SOLO_MIN bytes on), or a large block with
 * room to grow (large_room()). Heap lock held if serialized.
 */
static void *realloc_move(struct heap *heap, DWORD flags, void *p,
			  struct loc *loc, size_t size)
{
	size_t need = size + (loc->user ? sizeof(void *) : 0);
	void *q = NULL;

	if (need >= LARGE_MIN && (heap->flags & HEAP_GROWABLE))
		q = large_alloc(heap, flags, size, large_room(size), loc->user,
				loc->value);
	else if (need >= SOLO_MIN && (heap->flags & HEAP_GROWABLE))
		q = solo_alloc(heap, size, need, loc->user, loc->value);
	if (!q && need < LARGE_MIN)
		q = heap_alloc(heap, flags & ~HEAP_ZERO_MEMORY, size, loc->user,
			       loc->value);
	if (!q)
		return NULL;
	memcpy(q, p, loc->size < size ? loc->size : size);
	if ((flags & HEAP_ZERO_MEMORY) && size > loc->size)
		memset((char *)q + loc->size, 0, size - loc->size);
	free_loc(heap, loc, p);
	return q;
}

static enum bstat heap_realloc(struct heap *heap, DWORD flags, void *p,
			       size_t size, void **out)
{
	size_t zero_end;
	struct loc loc;
	enum bstat st;
	bool done;

	heap_lock(heap, flags);
	st = locate(heap, p, &loc);
	if (st != B_OK) {
		heap_unlock(heap, flags);
		return st == B_FREED ? B_CORRUPT : st;
	}
	*out = NULL;
	done = size <= MAX_REQUEST &&
	       resize_in_place(heap, flags, &loc, size, &zero_end);
	if (done) {
		if ((flags & HEAP_ZERO_MEMORY) && zero_end > loc.size)
			memset((char *)p + loc.size, 0, zero_end - loc.size);
		*out = p;
	} else if (size <= MAX_REQUEST &&
		   !(flags & HEAP_REALLOC_IN_PLACE_ONLY)) {
		*out = realloc_move(heap, flags, p, &loc, size);
	}
	heap_unlock(heap, flags);
	return B_OK;
}

/*
 * HeapReAlloc of a front-end block without the heap lock: in place within
 * its class, else a new block, a copy and a free, on the fast paths.
 * *done false: the general path is to do it (and report what is wrong).
 */
static void *lfh_realloc(struct heap *heap, DWORD flags, char *p,
			 uintptr_t e, size_t size, bool *done)
{
	struct run *run = MAP_OBJ(e);
	unsigned int c = MAP_CLS(e), meta;
	const struct sclass *sc = &classes[c];
	size_t old;
	uint32_t i;
	void *q;

	*done = false;
	if (run->heap != heap || !slot_index(sc, run, p, &i))
		return NULL;
	meta = meta_get(sc, run, i);
	if (!meta_busy(sc, meta))
		return NULL;
	old = sc->size - meta_unused(sc, p, meta);
	if (size <= sc->size &&
	    (class_of(size) == c || (flags & HEAP_REALLOC_IN_PLACE_ONLY))) {
		meta_resize(sc, run, i, p, size);
		if ((flags & HEAP_ZERO_MEMORY) && size > old)
			memset(p + old, 0, size - old);
		*done = true;
		return p;
	}
	if ((flags & HEAP_REALLOC_IN_PLACE_ONLY) || size > MAX_REQUEST)
		return NULL;
	*done = true;
	q = HeapAlloc(heap, flags & ~HEAP_ZERO_MEMORY, size);
	if (!q)
		return NULL;
	memcpy(q, p, old < size ? old : size);
	if ((flags & HEAP_ZERO_MEMORY) && size > old)
		memset((char *)q + old, 0, size - old);
	if (!lfh_free(heap, p, e))
		free_slow(heap, flags, p);
	return q;
}

LPVOID WINAPI HeapReAlloc(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem,
			  SIZE_T dwBytes)
{
	struct heap *heap = heap_of(hHeap);
	void *q = NULL;
	bool done;
	uintptr_t e;

	if (!heap) {
		winvm_fail(ERROR_INVALID_HANDLE);
		return NULL;
	}
	dwFlags |= heap->flags & CALL_FLAGS;
	if (!lpMem) {
		/* As Windows does (case 85). */
		SetLastError(NO_ERROR);
		return NULL;
	}
	e = map_lookup(lpMem);
	if ((e & MAP_TAG) == MAP_RUN) {
		q = lfh_realloc(heap, dwFlags, lpMem, e, dwBytes, &done);
		if (done)
			return q;
	}
	switch (heap_realloc(heap, dwFlags, lpMem, dwBytes, &q)) {
	case B_OK:
		if (!q)
			alloc_failed(dwFlags, dwBytes);
		return q;
	case B_INVALID:
		winvm_fail(ERROR_INVALID_PARAMETER);
		return NULL;
	default:
		heap_corrupt(heap, lpMem);
		return NULL;
	}
}

/* Validation (HeapValidate with no block). */

/* Whether @m is a sound entry for block @i of @run. */
static bool meta_ok(const struct sclass *sc, const struct run *run,
		    uint32_t i, unsigned int m)
{
	if (slot_dead(sc, run, i))
		return m == meta_dead(sc);
	if (m == meta_free(sc) || m <= sc->size)
		return m != meta_dead(sc);
	return !sc->wide && m == META_TAIL && sc->size > META_TAIL;
}

static bool check_run(struct heap *heap, struct run *run)
{
	const struct sclass *sc;
	unsigned int m, n = 0;
	uint32_t i;
	char *p;
	bool ok;

	if (run->magic != RUN_MAGIC || run->heap != heap || run->cls >= NCLASS)
		return false;
	sc = &classes[run->cls];
	if (run->data != (char *)run + META_OFF)
		return false;
	/*
	 * Once per entry: a thread may free or take the block in between
	 * (so a count in a block's tail, which is then the program's, is not
	 * read either).
	 */
	for (i = 0; i < sc->nslots; i++) {
		m = meta_get(sc, run, i);
		if (!meta_ok(sc, run, i, m))
			return false;
	}
	/* The bump and the free list change under the class lock. */
	pthread_mutex_lock(&heap->lfh->cls[run->cls].lock);
	ok = run->bump <= sc->nslots;
	for (p = run->free; p && ok; p = link_dec(p), n++)
		ok = n < run->nfree && slot_index(sc, run, p, &i) &&
		     meta_get(sc, run, i) == meta_free(sc) &&
		     link_ok(link_dec(p));
	ok = ok && n == run->nfree;
	pthread_mutex_unlock(&heap->lfh->cls[run->cls].lock);
	return ok;
}

static bool check_seg(struct heap *heap, struct seg *seg)
{
	struct blk *b = seg_first(seg), *end = seg_end(seg);
	uint32_t prev = 0;

	if ((seg->index ? seg->magic != SEG_MAGIC && seg->magic != SOLO_MAGIC :
			  seg->magic != HEAP_MAGIC) ||
	    seg->heap != heap || !blk_ok(end) ||
	    end->flags != (BLK_BUSY | BLK_END))
		return false;
	while (b != end) {
		if (!blk_ok(b) || b->size < MIN_BLOCK / UNIT || b->prev != prev ||
		    blk_next(b) > end || (b->flags & BLK_END) ||
		    ((b->flags & BLK_BUSY) && b->unused > blk_cap(b)) ||
		    ((b->flags & BLK_RUN) &&
		     !check_run(heap, (struct run *)blk_data(b))))
			return false;
		prev = b->size;
		b = blk_next(b);
	}
	return end->prev == prev;
}

/* Every free block in the right bin, its links consistent. */
static bool check_bins(struct heap *heap)
{
	struct fblk *f, *prev;
	unsigned int b;

	for (b = 0; b < NBINS; b++) {
		if (!heap->bins[b] != !(heap->bitmap[b / 64] & (1ULL << (b % 64))))
			return false;
		for (f = heap->bins[b], prev = NULL; f; prev = f, f = f->next)
			if (f->prev != prev || !blk_ok(&f->h) ||
			    (f->h.flags & BLK_BUSY) || bin_of(f->h.size) != b)
				return false;
	}
	return true;
}

static bool heap_check(struct heap *heap)
{
	struct large *l;
	struct seg *seg;

	for (seg = &heap->seg; seg; seg = seg->next)
		if (!check_seg(heap, seg))
			return false;
	for (l = heap->large; l; l = l->next)
		if (l->magic != LARGE_MAGIC || l->check != large_sum(l))
			return false;
	return check_bins(heap);
}

BOOL WINAPI HeapValidate(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem)
{
	struct heap *heap = heap_find(hHeap);
	struct loc loc;
	BOOL ok;

	if (!heap)
		return winvm_fail(ERROR_INVALID_HANDLE);
	dwFlags |= heap->flags & CALL_FLAGS;
	heap_lock(heap, dwFlags);
	ok = lpMem ? locate(heap, lpMem, &loc) == B_OK : heap_check(heap);
	heap_unlock(heap, dwFlags);
	return ok;
}

/*
 * HeapWalk. Each call finds where it is from the previous entry alone: a
 * region entry's lpData is its segment's base, an uncommitted range's the
 * end of its segment's committed part, a block's its data. The order is:
 * per segment, its region, its blocks (a run's blocks one by one) and its
 * uncommitted range; then the large blocks, in iRegionIndex 64 as on
 * Windows.
 */

static void walk_region(struct seg *seg, size_t hdr, PROCESS_HEAP_ENTRY *e)
{
	memset(e, 0, sizeof(*e));
	e->lpData = seg;
	e->cbData = hdr;
	e->iRegionIndex = seg->index;
	e->wFlags = PROCESS_HEAP_REGION;
	e->Region.dwCommittedSize = seg->commit - (char *)seg;
	e->Region.dwUnCommittedSize = seg->end - seg->commit;
	e->Region.lpFirstBlock = blk_data(seg_first(seg));
	e->Region.lpLastBlock = seg->end;
}

static bool walk_large(struct large *l, PROCESS_HEAP_ENTRY *e)
{
	if (!l)
		return false;
	memset(e, 0, sizeof(*e));
	e->lpData = (char *)l + LARGE_HDR;
	e->cbData = l->size;
	e->iRegionIndex = 64;
	e->wFlags = PROCESS_HEAP_ENTRY_BUSY;
	return true;
}

static bool walk_after(struct heap *heap, struct seg *seg,
		       PROCESS_HEAP_ENTRY *e)
{
	if (seg->next) {
		walk_region(seg->next, SEG_HDR, e);
		return true;
	}
	return walk_large(heap->large, e);
}

static void walk_entry(PROCESS_HEAP_ENTRY *e, struct seg *seg, void *data,
		       size_t size, size_t overhead, bool busy)
{
	memset(e, 0, sizeof(*e));
	e->lpData = data;
	e->cbData = size;
	e->cbOverhead = overhead > 0xff ? 0xff : overhead;
	e->iRegionIndex = seg->index;
	e->wFlags = busy ? PROCESS_HEAP_ENTRY_BUSY : 0;
}

static bool walk_slot(struct run *run, uint32_t i, PROCESS_HEAP_ENTRY *e)
{
	const struct sclass *sc = &classes[run->cls];
	char *p = run->data + (size_t)i * sc->size;
	unsigned int meta = meta_get(sc, run, i);
	bool busy = meta_busy(sc, meta);

	if (busy)
		meta = meta_unused(sc, p, meta);
	walk_entry(e, run->seg, p, busy ? sc->size - meta : sc->size,
		   busy ? meta : 0, busy);
	return true;
}

static bool walk_blk(struct heap *heap, struct seg *seg, struct blk *b,
		     PROCESS_HEAP_ENTRY *e)
{
	struct run *run;

	if (b->flags & BLK_END) {
		if (seg->commit == seg->end)
			return walk_after(heap, seg, e);
		memset(e, 0, sizeof(*e));
		e->lpData = seg->commit;
		e->cbData = seg->end - seg->commit;
		e->iRegionIndex = seg->index;
		e->wFlags = PROCESS_HEAP_UNCOMMITTED_RANGE;
		return true;
	}
	if (b->flags & BLK_RUN) {
		run = (struct run *)blk_data(b);
		return walk_slot(run, slot_live(&classes[run->cls], run, 0), e);
	}
	/*
	 * Overheads as Windows reports them: a busy block's next block starts
	 * cbData + cbOverhead + 16 bytes on, a free block's cbData + 2 *
	 * cbOverhead bytes on (the end marker included).
	 */
	if (b->flags & BLK_BUSY)
		walk_entry(e, seg, blk_data(b), blk_cap(b) - b->unused,
			   b->unused, true);
	else
		walk_entry(e, seg, blk_data(b), blk_cap(b), HDR / 2, false);
	return true;
}

/* The entry after a block entry at @p, in a segment or a run. */
static bool walk_next_block(struct heap *heap, char *p, PROCESS_HEAP_ENTRY *e)
{
	struct seg *seg = seg_of_blk(heap, p);
	uintptr_t tag = map_lookup(p);
	struct run *run = MAP_OBJ(tag);
	const struct sclass *sc;
	struct blk *b;
	uint32_t i;

	if (!seg || ((uintptr_t)p & (UNIT - 1)))
		return false;
	if ((tag & MAP_TAG) == MAP_RUN) {
		sc = &classes[run->cls];
		if (run->heap != heap || !slot_index_live(sc, run, p, &i))
			return false;
		i = slot_live(sc, run, i + 1);
		if (i < sc->nslots)
			return walk_slot(run, i, e);
		b = (struct blk *)((char *)run - HDR);
	} else {
		b = (struct blk *)(p - HDR);
		if (p < blk_data(seg_first(seg)) || p >= seg->commit - HDR ||
		    !blk_ok(b))
			return false;
	}
	return walk_blk(heap, seg, blk_next(b), e);
}

static bool walk_next(struct heap *heap, PROCESS_HEAP_ENTRY *e, DWORD *err)
{
	char *p = e->lpData;
	struct large *l;
	struct seg *seg;

	*err = ERROR_NO_MORE_ITEMS;
	if (!p) {
		walk_region(&heap->seg, HEAP_HDR, e);
		return true;
	}
	for (seg = &heap->seg; seg; seg = seg->next) {
		if ((e->wFlags & PROCESS_HEAP_REGION) && p == (char *)seg)
			return walk_blk(heap, seg, seg_first(seg), e);
		if ((e->wFlags & PROCESS_HEAP_UNCOMMITTED_RANGE) &&
		    p == seg->commit)
			return walk_after(heap, seg, e);
	}
	for (l = heap->large; l; l = l->next)
		if ((char *)l + LARGE_HDR == p)
			return walk_large(l->next, e);
	if (!(e->wFlags & (PROCESS_HEAP_REGION | PROCESS_HEAP_UNCOMMITTED_RANGE)) &&
	    walk_next_block(heap, p, e))
		return true;
	*err = ERROR_INVALID_PARAMETER;
	return false;
}

BOOL WINAPI HeapWalk(HANDLE hHeap, LPPROCESS_HEAP_ENTRY lpEntry)
{
	struct heap *heap = heap_find(hHeap);
	DWORD err;
	bool ok;

	if (!heap)
		return winvm_fail(ERROR_INVALID_HANDLE);
	if (!lpEntry)
		return winvm_fail(ERROR_NOACCESS);
	heap_lock(heap, heap->flags);
	ok = walk_next(heap, lpEntry, &err);
	heap_unlock(heap, heap->flags);
	return ok ? TRUE : winvm_fail(err);
}

/* HeapSummary: what is allocated, committed and reserved. */

static size_t run_allocated(struct heap *heap, struct run *run)
{
	const struct sclass *sc = &classes[run->cls];
	unsigned int meta;
	size_t sum = 0;
	uint32_t i, bump;

	/* The bump changes under the class lock (central_get()). */
	pthread_mutex_lock(&heap->lfh->cls[run->cls].lock);
	bump = run->bump;
	pthread_mutex_unlock(&heap->lfh->cls[run->cls].lock);
	for (i = 0; i < bump; i++) {
		meta = meta_get(sc, run, i);
		if (meta_busy(sc, meta))
			sum += sc->size - meta_unused(sc, run->data +
						      (size_t)i * sc->size,
						      meta);
	}
	return sum;
}

BOOL WINAPI HeapSummary(HANDLE hHeap, DWORD dwFlags, LPHEAP_SUMMARY lpSummary)
{
	struct heap *heap = heap_find(hHeap);
	HEAP_SUMMARY sum = { .cb = sizeof(sum) };
	struct large *l;
	struct seg *seg;
	struct blk *b;

	if (!heap)
		return winvm_fail(ERROR_INVALID_HANDLE);
	if (!lpSummary || lpSummary->cb != sizeof(HEAP_SUMMARY))
		return winvm_fail(ERROR_INVALID_PARAMETER);
	dwFlags |= heap->flags & CALL_FLAGS;
	heap_lock(heap, dwFlags);
	for (seg = &heap->seg; seg; seg = seg->next) {
		sum.cbCommitted += seg->commit - (char *)seg;
		sum.cbReserved += seg->end - (char *)seg;
		for (b = seg_first(seg); !(b->flags & BLK_END); b = blk_next(b)) {
			if (b->flags & BLK_RUN)
				sum.cbAllocated +=
					run_allocated(heap,
						      (struct run *)blk_data(b));
			else if (b->flags & BLK_BUSY)
				sum.cbAllocated += blk_cap(b) - b->unused;
		}
	}
	for (l = heap->large; l; l = l->next) {
		sum.cbAllocated += l->size;
		sum.cbCommitted += l->commit;
		sum.cbReserved += l->reserve;
	}
	sum.cbMaxReserve = heap->flags & HEAP_GROWABLE ? sum.cbReserved :
			   (size_t)(heap->seg.end - (char *)heap);
	heap_unlock(heap, dwFlags);
	*lpSummary = sum;
	return TRUE;
}

/*
 * HeapCompact: the calling thread's caches go back to the runs, idle runs
 * to the back end, and the back end purges at once. Returns the largest
 * free block.
 */
static size_t heap_compact(struct heap *heap, DWORD flags)
{
	struct seg *seg;
	struct lfh *lfh;
	size_t best = 0;
	struct blk *b;

	heap_lock(heap, flags);
	lfh = heap->lfh;
	if (lfh) {
		if (tslot && lfh->tc[tslot])
			tcache_drain(heap, lfh->tc[tslot], true);
		runs_release_idle(heap);
	}
	heap_purge(heap, true);
	for (seg = &heap->seg; seg; seg = seg->next) {
		for (b = seg_first(seg); !(b->flags & BLK_END); b = blk_next(b))
			if (!(b->flags & BLK_BUSY) && blk_cap(b) > best)
				best = blk_cap(b);
	}
	heap_unlock(heap, flags);
	return best;
}

SIZE_T WINAPI HeapCompact(HANDLE hHeap, DWORD dwFlags)
{
	struct heap *heap = heap_find(hHeap);
	size_t best;

	if (!heap)
		return winvm_fail(ERROR_INVALID_HANDLE);
	best = heap_compact(heap, dwFlags | (heap->flags & CALL_FLAGS));
	if (!best)
		SetLastError(NO_ERROR);	/* documented: no free block at all */
	return best;
}

/* HeapLock and HeapUnlock: nothing to do for a HEAP_NO_SERIALIZE heap. */
BOOL WINAPI HeapLock(HANDLE hHeap)
{
	struct heap *heap = heap_find(hHeap);

	if (!heap)
		return winvm_fail(ERROR_INVALID_HANDLE);
	heap_lock(heap, heap->flags);
	return TRUE;
}

BOOL WINAPI HeapUnlock(HANDLE hHeap)
{
	struct heap *heap = heap_find(hHeap);

	if (!heap)
		return winvm_fail(ERROR_INVALID_HANDLE);
	if (!(heap->flags & HEAP_NO_SERIALIZE) &&
	    pthread_mutex_unlock(&heap->lock))
		return winvm_fail(ERROR_NOT_LOCKED);
	return TRUE;
}

/* HeapQueryInformation and HeapSetInformation (case 96). */

static ULONG compat_info(const struct heap *heap)
{
	return heap->compat_lfh ||
	       __atomic_load_n(&heap->active, __ATOMIC_RELAXED) ? 2 : 0;
}

BOOL WINAPI HeapQueryInformation(HANDLE HeapHandle,
				 HEAP_INFORMATION_CLASS HeapInformationClass,
				 PVOID HeapInformation,
				 SIZE_T HeapInformationLength,
				 PSIZE_T ReturnLength)
{
	struct heap *heap;
	ULONG val;

	if (HeapInformationClass != HeapCompatibilityInformation)
		return winvm_fail(ERROR_INVALID_PARAMETER);
	heap = HeapHandle ? heap_find(HeapHandle) : NULL;
	if (!heap) {
		/* Windows faults reading the heap and reports that. */
		if (ReturnLength)
			*ReturnLength = 0;
		return winvm_fail(ERROR_NOACCESS);
	}
	if (ReturnLength)
		*ReturnLength = sizeof(val);
	if (HeapInformationLength < sizeof(val))
		return winvm_fail(ERROR_INSUFFICIENT_BUFFER);
	if (!HeapInformation)
		return winvm_fail(ERROR_NOACCESS);
	val = compat_info(heap);
	memcpy(HeapInformation, &val, sizeof(val));
	return TRUE;
}

static BOOL set_compat(HANDLE h, const void *info, SIZE_T len)
{
	struct heap *heap = h ? heap_find(h) : NULL;
	ULONG val;

	if (!heap || !info)
		return winvm_fail(ERROR_NOACCESS);
	if (len != sizeof(val))
		return winvm_fail(ERROR_BAD_LENGTH);
	memcpy(&val, info, sizeof(val));
	switch (val) {
	case 0:
	case 1:
		/* The front end, once on, stays on. */
		if (compat_info(heap))
			return winvm_fail(ERROR_GEN_FAILURE);
		return TRUE;
	case 2:
		/* As the documentation says: not for these heaps. */
		if ((heap->flags & HEAP_NO_SERIALIZE) ||
		    !(heap->flags & HEAP_GROWABLE))
			return winvm_fail(ERROR_INVALID_PARAMETER);
		heap->compat_lfh = true;
		return TRUE;
	default:
		return winvm_fail(ERROR_INVALID_PARAMETER);
	}
}

static void heap_retire(struct heap *heap);

/* HeapOptimizeResources: compact one heap, or all of them. */
static BOOL optimize(HANDLE h, const void *info, SIZE_T len)
{
	HEAP_OPTIMIZE_RESOURCES_INFORMATION opt;
	struct heap *heap, **list;
	size_t n = 0, i;

	if (!info || len != sizeof(opt))
		return winvm_fail(ERROR_INVALID_PARAMETER);
	memcpy(&opt, info, sizeof(opt));
	if (opt.Version != HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION || opt.Flags)
		return winvm_fail(ERROR_INVALID_PARAMETER);
	if (h) {
		heap = heap_find(h);
		if (!heap)
			return winvm_fail(ERROR_INVALID_HANDLE);
		heap_compact(heap, heap->flags);
		return TRUE;
	}
	/*
	 * Every serialised heap, each held by a reference, so that a thread
	 * destroying one meanwhile leaves its release to us; compacted out of
	 * the registry lock, which calls made under HeapLock take after their
	 * heap's lock. A HEAP_NO_SERIALIZE heap is its thread's own: only a
	 * call that names it compacts it.
	 */
	n = GetProcessHeaps(0, NULL);
	list = calloc(n ? n : 1, sizeof(*list));
	if (!list)
		return winvm_fail(ERROR_NOT_ENOUGH_MEMORY);
	pthread_mutex_lock(&registry_lock);
	for (heap = registry, i = 0; heap && i < n; heap = heap->next_heap) {
		if (heap->flags & HEAP_NO_SERIALIZE)
			continue;
		heap->refs++;
		list[i++] = heap;
	}
	pthread_mutex_unlock(&registry_lock);
	n = i;
	for (i = 0; i < n; i++)
		heap_compact(list[i], list[i]->flags);
	pthread_mutex_lock(&registry_lock);
	for (i = 0; i < n; i++)
		if (!--list[i]->refs && list[i]->dead)
			heap_retire(list[i]);
	pthread_mutex_unlock(&registry_lock);
	free(list);
	return TRUE;
}

BOOL WINAPI HeapSetInformation(HANDLE HeapHandle,
			       HEAP_INFORMATION_CLASS HeapInformationClass,
			       PVOID HeapInformation,
			       SIZE_T HeapInformationLength)
{
	switch (HeapInformationClass) {
	case HeapCompatibilityInformation:
		return set_compat(HeapHandle, HeapInformation,
				  HeapInformationLength);
	case HeapEnableTerminationOnCorruption:
		/* For the whole process, and for good. */
		__atomic_store_n(&terminate_on_corruption, 1, __ATOMIC_RELAXED);
		return TRUE;
	case HeapOptimizeResources:
		return optimize(HeapHandle, HeapInformation,
				HeapInformationLength);
	default:
		return winvm_fail(ERROR_INVALID_PARAMETER);
	}
}

/* Creation and destruction. */

/* A free heap tag, or 0; registry lock held. */
static uint8_t tag_get(void)
{
	unsigned int t;

	for (t = 1; t < 256; t++) {
		if (!(tags_used[t / 64] & (1ULL << (t % 64)))) {
			tags_used[t / 64] |= 1ULL << (t % 64);
			return t;
		}
	}
	return 0;
}

/* Registry lock held; tag 0 is no tag and never taken. */
static void tag_put(uint8_t tag)
{
	tags_used[tag / 64] &= ~(1ULL << (tag % 64));
}

static struct heap *heap_create(DWORD flags, size_t reserve, size_t commit)
{
	DWORD prot = flags & HEAP_CREATE_ENABLE_EXECUTE ?
		     PAGE_EXECUTE_READWRITE : PAGE_READWRITE;
	pthread_mutexattr_t attr;
	struct heap *heap, **pos;

	heap = vm_alloc(NULL, reserve, MEM_RESERVE, prot);
	if (!heap)
		return NULL;
	if (!vm_alloc(heap, commit, MEM_COMMIT, prot) ||
	    !map_set(heap, (char *)heap + reserve, (uintptr_t)heap | MAP_SEG))
		goto fail;
	heap->seg.magic = HEAP_MAGIC;
	heap->seg.heap = heap;
	heap->seg.commit = (char *)heap + commit;
	heap->seg.end = (char *)heap + reserve;
	heap->flags = flags;
	heap->last = &heap->seg;
	heap->next_seg = SUBHEAP_MIN;
	heap->regions[0] = 1;		/* the first segment's */
	heap->regions[1] = 1;		/* large blocks' */
	heap->regions[3] = 1ULL << 63;	/* 255, for sub-heaps past the others */
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&heap->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	seg_format(heap, &heap->seg);

	pthread_mutex_lock(&registry_lock);
	heap->tag = tag_get();
	for (pos = &registry; *pos; pos = &(*pos)->next_heap)
		;
	*pos = heap;
	pthread_mutex_unlock(&registry_lock);
	return heap;
fail:
	map_set(heap, (char *)heap + reserve, 0);
	vm_free(heap, 0, MEM_RELEASE);
	return NULL;
}

/*
 * Growable (maximum 0): the initial size plus GROW_EXTRA reserved; fixed:
 * the maximum rounded up to FIXED_ROUND (case 94). The initial size,
 * MIN_COMMIT at least, is committed.
 */
HANDLE WINAPI HeapCreate(DWORD flOptions, SIZE_T dwInitialSize,
			 SIZE_T dwMaximumSize)
{
	DWORD flags = flOptions & CREATE_FLAGS;
	size_t reserve, commit;
	struct heap *heap;

	winvm_thread_setup();
	if (dwInitialSize > MAX_REQUEST || dwMaximumSize > MAX_REQUEST)
		goto nomem;
	commit = round_up(dwInitialSize, PAGE);
	if (!dwMaximumSize) {
		flags |= HEAP_GROWABLE;
		reserve = commit + GROW_EXTRA;
	} else {
		reserve = round_up(dwMaximumSize > dwInitialSize ?
				   dwMaximumSize : dwInitialSize, FIXED_ROUND);
	}
	if (commit < MIN_COMMIT)
		commit = MIN_COMMIT;
	if (commit > reserve)
		commit = reserve;
	heap = heap_create(flags, reserve, commit);
	if (heap)
		return heap;
nomem:
	winvm_fail(ERROR_NOT_ENOUGH_MEMORY);
	return NULL;
}

/* Give every byte of @heap back: large blocks, metadata, segments. */
static void heap_release(struct heap *heap)
{
	struct seg *seg, *next;
	struct large *l;

	while ((l = heap->large))
		large_free(heap, l);
	if (heap->lfh)
		vm_free(heap->lfh, 0, MEM_RELEASE);
	for (seg = heap->seg.next; seg; seg = next) {
		next = seg->next;
		map_set(seg, seg->end, 0);
		vm_free(seg, 0, MEM_RELEASE);
	}
	map_set(heap, heap->seg.end, 0);
	heap->seg.magic = 0;
	pthread_mutex_destroy(&heap->lock);
	vm_free(heap, 0, MEM_RELEASE);
}

/*
 * Release a heap no longer in the registry, and its tag. Under the registry
 * lock: no thread is draining caches into it.
 */
static void heap_retire(struct heap *heap)
{
	tag_put(heap->tag);
	heap_release(heap);
}

BOOL WINAPI HeapDestroy(HANDLE hHeap)
{
	struct heap **pos, *heap;

	pthread_mutex_lock(&registry_lock);
	for (pos = &registry; *pos && *pos != hHeap; pos = &(*pos)->next_heap)
		;
	if (!*pos || (*pos)->process) {
		pthread_mutex_unlock(&registry_lock);
		return winvm_fail(ERROR_INVALID_HANDLE);
	}
	heap = *pos;
	*pos = heap->next_heap;
	if (heap->refs)
		heap->dead = true;	/* optimize() is compacting it */
	else
		heap_retire(heap);
	pthread_mutex_unlock(&registry_lock);
	return TRUE;
}

/*
 * The process heap: made on first use, growable, with the 1 MiB reserve
 * Windows executables default to.
 */
HANDLE WINAPI GetProcessHeap(void)
{
	struct heap *heap = __atomic_load_n(&process_heap, __ATOMIC_ACQUIRE);

	if (likely(heap))
		return heap;
	pthread_mutex_lock(&process_heap_lock);
	heap = process_heap;
	if (!heap) {
		heap = heap_create(HEAP_GROWABLE, SUBHEAP_MIN, MIN_COMMIT);
		if (heap) {
			heap->process = true;
			__atomic_store_n(&process_heap, heap, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&process_heap_lock);
	return heap;
}

/* The process heap first, then the others in creation order. */
DWORD WINAPI GetProcessHeaps(DWORD NumberOfHeaps, PHANDLE ProcessHeaps)
{
	struct heap *process = GetProcessHeap(), *heap;
	DWORD n = 0;

	pthread_mutex_lock(&registry_lock);
	for (heap = registry; heap; heap = heap->next_heap)
		n++;
	if (n <= NumberOfHeaps && ProcessHeaps) {
		n = 0;
		if (process)
			ProcessHeaps[n++] = process;
		for (heap = registry; heap; heap = heap->next_heap)
			if (heap != process)
				ProcessHeaps[n++] = heap;
	}
	pthread_mutex_unlock(&registry_lock);
	return n;
}

/*
 * For Global* and Local*: the calls they make, without going through the
 * PLT as calls to exported functions do; and blocks carrying a value (the
 * moveable handle).
 */
__typeof__(HeapAlloc) winvm_heap_alloc
	__attribute__((alias("HeapAlloc"), visibility("hidden")));
__typeof__(HeapSize) winvm_heap_size
	__attribute__((alias("HeapSize"), visibility("hidden")));
__typeof__(HeapFree) winvm_heap_free
	__attribute__((alias("HeapFree"), visibility("hidden")));
__typeof__(GetProcessHeap) winvm_process_heap
	__attribute__((alias("GetProcessHeap"), visibility("hidden")));

bool winvm_process_heap_lock(void)
{
	struct heap *heap = GetProcessHeap();

	if (!heap)
		return false;
	pthread_mutex_lock(&heap->lock);
	return true;
}

void winvm_process_heap_unlock(void)
{
	pthread_mutex_unlock(&process_heap->lock);
}

void *winvm_heap_alloc_user(HANDLE hHeap, DWORD flags, SIZE_T size,
			    void *value)
{
	return alloc_checked(hHeap, flags, size, true, value);
}

bool winvm_heap_user_value(HANDLE hHeap, LPCVOID p, void **value)
{
	struct heap *heap = heap_of(hHeap);
	struct loc loc;
	enum bstat st;

	if (!heap || !p)
		return false;
	heap_lock(heap, heap->flags);
	st = locate(heap, p, &loc);
	heap_unlock(heap, heap->flags);
	*value = loc.value;
	return st == B_OK;
}

int winvm_heap_free_plain(HANDLE hHeap, void *p, void **value)
{
	struct heap *heap = heap_of(hHeap);
	uintptr_t e = map_lookup(p);
	struct loc loc;
	enum bstat st;

	if (!heap)
		return 0;
	if (lfh_free_full(heap, p, e))
		return 1;
	heap_lock(heap, heap->flags);
	st = locate(heap, p, &loc);
	if (st == B_OK && !loc.user)
		free_loc(heap, &loc, p);
	heap_unlock(heap, heap->flags);
	if (st == B_OK) {
		*value = loc.value;
		return loc.user ? -1 : 1;
	}
	if (st != B_INVALID)
		corruption_found(heap, p);
	return 0;
}

/*
 * Fixed blocks of Global* and Local*. A fixed block is a process-heap
 * block and its handle its address (global.c), so allocating or freeing
 * one is HeapAlloc or HeapFree on the process heap. These four entry
 * points are defined here rather than in global.c so that they contain
 * those fast paths instead of jumping to them: a fixed block's GlobalAlloc
 * costs what HeapAlloc does, and its GlobalFree what HeapFree does.
 * Moveable blocks and anything that is not a fixed block of the front end
 * go to global.c.
 */
static __always_inline HGLOBAL free_fixed(HGLOBAL h)
{
	struct heap *heap;
	uintptr_t e;

	if (unlikely(!h || winvm_is_mem_handle(h)))
		return winvm_mem_free(h);
	heap = __atomic_load_n(&process_heap, __ATOMIC_ACQUIRE);
	e = map_lookup(h);
	if (likely(heap && (e & MAP_TAG) == MAP_RUN) && lfh_free(heap, h, e))
		return NULL;
	return winvm_mem_free(h);
}

/* GlobalAlloc of size 0 gets a byte (case 111); LocalAlloc does not. */
__fastpath HGLOBAL WINAPI GlobalAlloc(UINT uFlags, SIZE_T dwBytes)
{
	if (unlikely(uFlags & GMEM_MOVEABLE))
		return winvm_mem_alloc(false, uFlags, dwBytes);
	return alloc_fixed(winvm_mem_heap_flags(uFlags),
			   dwBytes ? dwBytes : 1);
}

__fastpath HLOCAL WINAPI LocalAlloc(UINT uFlags, SIZE_T uBytes)
{
	if (unlikely(uFlags & LMEM_MOVEABLE))
		return winvm_mem_alloc(true, uFlags, uBytes);
	return alloc_fixed(winvm_mem_heap_flags(uFlags), uBytes);
}

__fastpath HGLOBAL WINAPI GlobalFree(HGLOBAL hMem)
{
	return free_fixed(hMem);
}

__fastpath HLOCAL WINAPI LocalFree(HLOCAL hMem)
{
	return free_fixed(hMem);
}

/*
 * A forked child has none of its parent's winvm memory: no heap survives,
 * and the segment map's second levels (ordinary memory) are dropped.
 */
static void heap_atfork_child(void)
{
	size_t i;

	registry = NULL;
	process_heap = NULL;
	proc_tc = NULL;
	memset(tags_used, 0, sizeof(tags_used));
	pthread_mutex_init(&registry_lock, NULL);
	pthread_mutex_init(&process_heap_lock, NULL);
	pthread_mutex_init(&segmap_lock, NULL);
	pthread_mutex_init(&tslot_lock, NULL);
	map_last.key = ~0UL;
	map_last.l2 = NULL;
	/* Writing only what is set keeps the untouched pages untouched. */
	for (i = 0; i < 1UL << MAP_L1_BITS; i++) {
		if (!segmap[i])
			continue;
		munmap(segmap[i], sizeof(uintptr_t) << MAP_L2_BITS);
		segmap[i] = NULL;
	}
	memset(tslot_used, 0, sizeof(tslot_used));
	if (tslot)
		tslot_used[tslot / 64] |= 1ULL << (tslot % 64);
}

__attribute__((constructor)) static void heap_init(void)
{
	if (getrandom(&secret, sizeof(secret), GRND_NONBLOCK) != sizeof(secret))
		secret = (uintptr_t)&secret * 0x9e3779b97f4a7c15ULL ^ getpid();
	secret &= ~(UNIT - 1);
	classes_init();
	pthread_key_create(&tslot_key, tslot_exit);
	pthread_atfork(NULL, NULL, heap_atfork_child);
}
