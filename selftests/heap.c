// SPDX-License-Identifier: GPL-2.0-only
/*
 * libwinvm tests: the Heap* API through <windows.h>, case by case against
 * the behaviour of Windows (numbers refer to the cases of
 * shared/spec/win32-memory.md, 1.10), then stress: many blocks of random
 * sizes, frees from other threads, a fixed heap filled and emptied, HeapWalk
 * against what was allocated and HeapDestroy giving every byte back.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <windows.h>

#include "harness.h"
#include "win32_util.h"

#define P	0x1000UL
#define G	0x10000UL
#define A	(0x8000 * sizeof(void *))	/* the spec's A: 0x40000 */

_Static_assert(sizeof(PROCESS_HEAP_ENTRY) == 40, "PROCESS_HEAP_ENTRY size");
_Static_assert(offsetof(PROCESS_HEAP_ENTRY, cbData) == 8, "cbData");
_Static_assert(offsetof(PROCESS_HEAP_ENTRY, cbOverhead) == 12, "cbOverhead");
_Static_assert(offsetof(PROCESS_HEAP_ENTRY, iRegionIndex) == 13,
	       "iRegionIndex");
_Static_assert(offsetof(PROCESS_HEAP_ENTRY, wFlags) == 14, "wFlags");
_Static_assert(offsetof(PROCESS_HEAP_ENTRY, Block.hMem) == 16, "Block.hMem");
_Static_assert(offsetof(PROCESS_HEAP_ENTRY, Region.dwCommittedSize) == 16,
	       "Region.dwCommittedSize");
_Static_assert(offsetof(PROCESS_HEAP_ENTRY, Region.lpFirstBlock) == 24,
	       "Region.lpFirstBlock");
_Static_assert(offsetof(PROCESS_HEAP_ENTRY, Region.lpLastBlock) == 32,
	       "Region.lpLastBlock");
_Static_assert(sizeof(HEAP_SUMMARY) == 40, "HEAP_SUMMARY size");
_Static_assert(offsetof(HEAP_SUMMARY, cbAllocated) == 8, "cbAllocated");
_Static_assert(offsetof(HEAP_SUMMARY, cbMaxReserve) == 32, "cbMaxReserve");
_Static_assert(HEAP_NO_SERIALIZE == 0x1 && HEAP_GROWABLE == 0x2 &&
	       HEAP_GENERATE_EXCEPTIONS == 0x4 && HEAP_ZERO_MEMORY == 0x8 &&
	       HEAP_REALLOC_IN_PLACE_ONLY == 0x10 &&
	       HEAP_TAIL_CHECKING_ENABLED == 0x20 &&
	       HEAP_FREE_CHECKING_ENABLED == 0x40 &&
	       HEAP_DISABLE_COALESCE_ON_FREE == 0x80 &&
	       HEAP_CREATE_ALIGN_16 == 0x10000 &&
	       HEAP_CREATE_ENABLE_TRACING == 0x20000 &&
	       HEAP_CREATE_ENABLE_EXECUTE == 0x40000, "HEAP_* values");
_Static_assert(HeapCompatibilityInformation == 0 &&
	       HeapEnableTerminationOnCorruption == 1, "information classes");
_Static_assert(PROCESS_HEAP_REGION == 1 && PROCESS_HEAP_UNCOMMITTED_RANGE == 2 &&
	       PROCESS_HEAP_ENTRY_BUSY == 4 && PROCESS_HEAP_ENTRY_MOVEABLE == 0x10 &&
	       PROCESS_HEAP_ENTRY_DDESHARE == 0x20, "PROCESS_HEAP_* values");
_Static_assert(STATUS_NO_MEMORY == 0xc0000017 &&
	       STATUS_HEAP_CORRUPTION == 0xc0000374, "heap statuses");

FIXTURE(heap) {
	HANDLE heap;
};

FIXTURE_SETUP(heap)
{
	if (access("/dev/winvm", F_OK))
		SETUP_SKIP("/dev/winvm not present: load winvm.ko");
	self->heap = HeapCreate(0, 0, 0);
	ASSERT_NE(NULL, self->heap);
}

FIXTURE_TEARDOWN(heap)
{
	if (self->heap)
		EXPECT_TRUE(HeapDestroy(self->heap));
}

/* Bytes reserved by the allocation starting at @base (VirtualQuery). */
static SIZE_T reservation(const void *base)
{
	MEMORY_BASIC_INFORMATION mbi;
	const char *p = base;
	SIZE_T size = 0;

	while (VirtualQuery(p, &mbi, sizeof(mbi)) && mbi.AllocationBase == base &&
	       mbi.State != MEM_FREE) {
		size += mbi.RegionSize;
		p += mbi.RegionSize;
	}
	return size;
}

static DWORD query_state(const void *p)
{
	MEMORY_BASIC_INFORMATION mbi;

	memset(&mbi, 0xcc, sizeof(mbi));
	VirtualQuery(p, &mbi, sizeof(mbi));
	return mbi.State;
}

static void *query_base(const void *p)
{
	MEMORY_BASIC_INFORMATION mbi;

	memset(&mbi, 0xcc, sizeof(mbi));
	VirtualQuery(p, &mbi, sizeof(mbi));
	return mbi.AllocationBase;
}

/* HeapWalk's iRegionIndex for busy block @p of @heap (64: large); or -1. */
static int region_of(HANDLE heap, const void *p)
{
	PROCESS_HEAP_ENTRY e;

	memset(&e, 0, sizeof(e));
	while (HeapWalk(heap, &e))
		if (e.lpData == p && (e.wFlags & PROCESS_HEAP_ENTRY_BUSY))
			return e.iRegionIndex;
	return -1;
}

/* Every HeapWalk entry of @heap, up to @max; the count, and the last error. */
static int walk(HANDLE heap, PROCESS_HEAP_ENTRY *entries, int max, DWORD *err)
{
	PROCESS_HEAP_ENTRY e;
	int n = 0;

	memset(&e, 0xcd, sizeof(e));
	e.lpData = NULL;
	SetLastError(UNTOUCHED);
	while (HeapWalk(heap, &e)) {
		if (n < max)
			entries[n] = e;
		n++;
	}
	*err = GetLastError();
	return n;
}

/* 83: a heap is 64 KiB aligned and listed by GetProcessHeaps until destroyed. */
TEST_F(heap, create_destroy)
{
	HANDLE heaps[64], h1, h2, list[64];
	DWORD count, n;

	count = GetProcessHeaps(0, NULL);
	ASSERT_LE(2, count);	/* the process heap and the fixture's */
	h1 = HeapCreate(0, 0, 0);
	ASSERT_NE(NULL, h1);
	EXPECT_EQ(0, (uintptr_t)h1 & 0xffff);
	EXPECT_EQ(count + 1, GetProcessHeaps(0, NULL));
	h2 = HeapCreate(0, 0, 0);
	ASSERT_NE(NULL, h2);
	EXPECT_EQ(0, (uintptr_t)h2 & 0xffff);
	n = GetProcessHeaps(64, heaps);
	EXPECT_EQ(count + 2, n);
	EXPECT_EQ(GetProcessHeap(), heaps[0]);
	EXPECT_EQ(h1, heaps[count]);
	EXPECT_EQ(h2, heaps[count + 1]);
	/* Too small a buffer: the count, nothing stored. */
	memset(list, 0xcc, sizeof(list));
	EXPECT_EQ(count + 2, GetProcessHeaps(1, list));
	EXPECT_EQ((HANDLE)0xcccccccccccccccc, list[0]);

	SetLastError(UNTOUCHED);
	EXPECT_TRUE(HeapDestroy(h2));
	EXPECT_TRUE(HeapDestroy(h1));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(count, GetProcessHeaps(0, NULL));
	EXPECT_EQ(MEM_FREE, query_state(h1));
}

/* 83: HeapCreate fails with ERROR_NOT_ENOUGH_MEMORY; HeapDestroy(invalid). */
TEST_F(heap, create_destroy_errors)
{
	static char buffer[256];
	HANDLE h;

	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, HeapCreate(0, 0, (SIZE_T)1 << 47));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, HeapCreate(0, ~(SIZE_T)0 - 0xffff, 0));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());

	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapDestroy((HANDLE)0xdeadbeef0000));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapDestroy(buffer));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapDestroy(NULL));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	/* The process heap cannot be destroyed. */
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapDestroy(GetProcessHeap()));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	/* Nor a heap twice. */
	h = HeapCreate(0, 0, 0);
	ASSERT_NE(NULL, h);
	EXPECT_TRUE(HeapDestroy(h));
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapDestroy(h));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
}

/* 84: freeing NULL succeeds, even with no heap. */
TEST_F(heap, free_null)
{
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(HeapFree(NULL, 0, NULL));
	EXPECT_TRUE(HeapFree(self->heap, 0, NULL));
	EXPECT_EQ(UNTOUCHED, GetLastError());
}

/*
 * A NULL heap handle with a block, whichever part of the heap holds it:
 * ERROR_INVALID_HANDLE, and the block stays as it was [impl].
 */
TEST_F(heap, null_heap_handle)
{
	static const SIZE_T sizes[] = { 24, 5000, 70000, 2 << 20 };
	void *warm[0x12];
	unsigned int i, j;
	char *p;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		/* The front end serves a size from its 0x12th block on. */
		for (j = 0; j < ARRAY_SIZE(warm); j++)
			warm[j] = HeapAlloc(self->heap, 0, sizes[i]);
		p = HeapAlloc(self->heap, 0, sizes[i]);
		ASSERT_NE(NULL, p);
		memset(p, 0x5a, sizes[i]);
		SetLastError(UNTOUCHED);
		EXPECT_FALSE(HeapFree(NULL, 0, p));
		EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
		SetLastError(UNTOUCHED);
		EXPECT_EQ(~(SIZE_T)0, HeapSize(NULL, 0, p));
		EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
		SetLastError(UNTOUCHED);
		EXPECT_EQ(NULL, HeapReAlloc(NULL, 0, p, sizes[i] + 1));
		EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
		EXPECT_EQ(sizes[i], HeapSize(self->heap, 0, p));
		EXPECT_EQ(0x5a, p[0]);
		EXPECT_EQ(0x5a, p[sizes[i] - 1]);
		EXPECT_TRUE(HeapFree(self->heap, 0, p));
		for (j = 0; j < ARRAY_SIZE(warm); j++)
			EXPECT_TRUE(HeapFree(self->heap, 0, warm[j]));
	}
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/* 85: HeapReAlloc(NULL) fails and sets NO_ERROR, as Windows does. */
TEST_F(heap, realloc_null)
{
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, HeapReAlloc(self->heap, 0, NULL, 1));
	EXPECT_EQ(NO_ERROR, GetLastError());
}

/* 86: HeapValidate never touches the last error. */
TEST_F(heap, validate)
{
	static char buffer[512];
	char stack[256];
	void *p;

	SetLastError(UNTOUCHED);
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_FALSE(HeapValidate(self->heap, 0,
				  (char *)((uintptr_t)buffer & ~63) + 64));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_FALSE(HeapValidate(self->heap, 0,
				  (char *)((uintptr_t)stack & ~15) + 16));
	EXPECT_FALSE(HeapValidate(self->heap, 0, (void *)0xdeadbe00));
	EXPECT_EQ(UNTOUCHED, GetLastError());

	p = HeapAlloc(self->heap, 0, 100);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(HeapValidate(self->heap, 0, p));
	/* A block of another heap is not one of this one. */
	EXPECT_FALSE(HeapValidate(GetProcessHeap(), 0, p));
	/* Nor is a pointer inside a block. */
	EXPECT_FALSE(HeapValidate(self->heap, 0, (char *)p + 16));
	EXPECT_TRUE(HeapFree(self->heap, 0, p));
	EXPECT_FALSE(HeapValidate(self->heap, 0, p));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/* 87: zero-size blocks; sizes nothing can hold fail and leave the block. */
TEST_F(heap, zero_and_huge_sizes)
{
	void *p;

	SetLastError(UNTOUCHED);
	p = HeapAlloc(self->heap, 0, 0);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(0, HeapSize(self->heap, 0, p));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(NULL, HeapReAlloc(self->heap, 0, p, ~(SIZE_T)0 - 7));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, HeapReAlloc(self->heap, 0, p, ~(SIZE_T)0));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	EXPECT_TRUE(HeapValidate(self->heap, 0, p));
	EXPECT_EQ(0, HeapSize(self->heap, 0, p));
	EXPECT_TRUE(HeapFree(self->heap, 0, p));

	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, HeapAlloc(self->heap, 0, ~(SIZE_T)0));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, HeapAlloc(self->heap, 0, (SIZE_T)1 << 50));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
}

/* 88: reallocating to 0 bytes gives a block of size 0. */
TEST_F(heap, realloc_to_zero)
{
	void *p, *q;

	p = HeapAlloc(self->heap, 0, 1);
	ASSERT_NE(NULL, p);
	q = HeapReAlloc(self->heap, 0, p, 0);
	ASSERT_NE(NULL, q);
	EXPECT_EQ(0, HeapSize(self->heap, 0, q));
	EXPECT_TRUE(HeapFree(self->heap, 0, q));
}

/*
 * 89: blocks are 16-aligned and not always 32-aligned; from 0xff000 bytes
 * on they are large blocks, separately mapped, 64-aligned (0x40 into their
 * own allocation).
 */
TEST_F(heap, alignment)
{
	MEMORY_BASIC_INFORMATION mbi;
	uintptr_t any = 0, all = 0;
	void *ptrs[128];
	SIZE_T sizes[] = { 0, 1, 24, 100, 1000, 5000, A };
	unsigned int i, j;
	int region;

	for (j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
		any = 0;
		for (i = 0; i < 32; i++) {
			ptrs[i] = HeapAlloc(self->heap, 0, sizes[j]);
			ASSERT_NE(NULL, ptrs[i]);
			any |= (uintptr_t)ptrs[i];
			EXPECT_EQ(0, (uintptr_t)ptrs[i] & 15)
				TH_LOG("size %#zx", sizes[j]);
		}
		EXPECT_NE(0, any & 16) TH_LOG("size %#zx", sizes[j]);
		for (i = 0; i < 32; i++)
			EXPECT_TRUE(HeapFree(self->heap, 0, ptrs[i]));
	}

	any = 0;
	for (i = 0; i < 16; i++) {
		ptrs[i] = HeapAlloc(self->heap, 0, 4 * A);
		ASSERT_NE(NULL, ptrs[i]);
		any |= (uintptr_t)ptrs[i];
		all |= (uintptr_t)ptrs[i] & 63;
	}
	EXPECT_EQ(0, all);
	EXPECT_NE(0, any & 64);
	for (i = 0; i < 16; i++)
		EXPECT_TRUE(HeapFree(self->heap, 0, ptrs[i]));

	/* The threshold. */
	ptrs[0] = HeapAlloc(self->heap, 0, 0xff000);
	ASSERT_NE(NULL, ptrs[0]);
	ASSERT_EQ(sizeof(mbi), VirtualQuery(ptrs[0], &mbi, sizeof(mbi)));
	EXPECT_EQ((char *)ptrs[0] - 0x40, mbi.AllocationBase);
	EXPECT_EQ(0xff000, HeapSize(self->heap, 0, ptrs[0]));
	ptrs[1] = HeapAlloc(self->heap, 0, 0xfe000);
	ASSERT_NE(NULL, ptrs[1]);
	EXPECT_EQ(64, region_of(self->heap, ptrs[0]));
	region = region_of(self->heap, ptrs[1]);
	EXPECT_LE(0, region);
	EXPECT_GT(64, region);
	EXPECT_TRUE(HeapFree(self->heap, 0, ptrs[0]));
	EXPECT_TRUE(HeapFree(self->heap, 0, ptrs[1]));
	EXPECT_EQ(MEM_FREE, query_state(ptrs[0]));
}

/* 90: HEAP_ZERO_MEMORY zeroes new blocks and the grown part on HeapReAlloc. */
TEST_F(heap, zero_memory)
{
	unsigned char *p;

	p = HeapAlloc(self->heap, HEAP_ZERO_MEMORY, 1);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(1, HeapSize(self->heap, 0, p));
	EXPECT_EQ(0, p[0]);
	EXPECT_TRUE(HeapFree(self->heap, 0, p));

	p = HeapAlloc(self->heap, HEAP_ZERO_MEMORY, 1 << 20);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(1 << 20, HeapSize(self->heap, 0, p));
	EXPECT_TRUE(all_zero(p, 1 << 20));
	EXPECT_TRUE(HeapFree(self->heap, 0, p));

	p = HeapAlloc(self->heap, HEAP_ZERO_MEMORY, A);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(A, HeapSize(self->heap, 0, p));
	EXPECT_TRUE(all_zero(p, A));
	memset(p, 0x5a, A);
	p = HeapReAlloc(self->heap, HEAP_ZERO_MEMORY, p, 3 * A);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(3 * A, HeapSize(self->heap, 0, p));
	EXPECT_EQ(0x5a, p[A - 1]);
	EXPECT_TRUE(all_zero(p + A, 2 * A));

	p = HeapReAlloc(self->heap, HEAP_ZERO_MEMORY, p, 1);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(1, HeapSize(self->heap, 0, p));
	p = HeapReAlloc(self->heap, HEAP_ZERO_MEMORY, p, 1 << 20);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(1 << 20, HeapSize(self->heap, 0, p));
	EXPECT_EQ(0x5a, p[0]);
	EXPECT_TRUE(all_zero(p + 1, (1 << 20) - 1));

	/* A front-end block, dirtied, freed and handed out again. */
	p = HeapAlloc(self->heap, 0, 40);
	ASSERT_NE(NULL, p);
	memset(p, 0xff, 40);
	EXPECT_TRUE(HeapFree(self->heap, 0, p));
	p = HeapAlloc(self->heap, HEAP_ZERO_MEMORY, 40);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(all_zero(p, 40));
	p = HeapReAlloc(self->heap, HEAP_ZERO_MEMORY, p, 48);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(all_zero(p, 48));
	EXPECT_TRUE(HeapFree(self->heap, 0, p));
}

/*
 * 91: HEAP_REALLOC_IN_PLACE_ONLY shrinks in place and grows back in place;
 * a large block that was shrunk has its pages decommitted and cannot grow
 * in place again.
 */
TEST_F(heap, realloc_in_place)
{
	char *p, *q;

	p = HeapAlloc(self->heap, 0, 3 * A);
	ASSERT_NE(NULL, p);
	memset(p, 7, 3 * A);
	q = HeapReAlloc(self->heap, HEAP_REALLOC_IN_PLACE_ONLY, p, A * 3 / 2);
	EXPECT_EQ(p, q);
	EXPECT_EQ(A * 3 / 2, HeapSize(self->heap, 0, p));
	q = HeapReAlloc(self->heap, HEAP_REALLOC_IN_PLACE_ONLY, p, 2 * A);
	EXPECT_EQ(p, q);
	EXPECT_EQ(2 * A, HeapSize(self->heap, 0, p));
	EXPECT_EQ(7, p[A * 3 / 2 - 1]);
	EXPECT_TRUE(HeapFree(self->heap, 0, p));

	/* A front-end block: shrinking in place keeps it; growing out fails. */
	p = HeapAlloc(self->heap, 0, 17);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(p, HeapReAlloc(self->heap, HEAP_REALLOC_IN_PLACE_ONLY, p, 14));
	EXPECT_EQ(14, HeapSize(self->heap, 0, p));
	EXPECT_TRUE(HeapFree(self->heap, 0, p));

	p = HeapAlloc(self->heap, 0, 1 << 20);
	ASSERT_NE(NULL, p);
	q = HeapReAlloc(self->heap, HEAP_REALLOC_IN_PLACE_ONLY, p, A * 3 / 2);
	EXPECT_EQ(p, q);
	EXPECT_EQ(A * 3 / 2, HeapSize(self->heap, 0, p));
	EXPECT_EQ(MEM_RESERVE, query_state(p + 2 * A));
	SetLastError(UNTOUCHED);
	q = HeapReAlloc(self->heap, HEAP_REALLOC_IN_PLACE_ONLY, p, 2 * A);
	EXPECT_EQ(NULL, q);
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	EXPECT_EQ(A * 3 / 2, HeapSize(self->heap, 0, p));
	EXPECT_TRUE(HeapFree(self->heap, 0, p));
}

/*
 * A buffer that HeapReAlloc grows step by step past the large-block
 * threshold moves once, into a large block with room to grow, and then
 * grows in place, keeping its contents, its exact size and, for
 * HEAP_ZERO_MEMORY, zeroing what it gains; it is released when freed.
 */
TEST_F(heap, realloc_grows_large_in_place)
{
	SIZE_T size, old = 0x80000;
	char *p, *q, *large;

	p = HeapAlloc(self->heap, 0, old);
	ASSERT_NE(NULL, p);
	memset(p, 0x5a, old);
	size = 0x100000;
	large = HeapReAlloc(self->heap, HEAP_ZERO_MEMORY, p, size);
	ASSERT_NE(NULL, large);
	EXPECT_NE(p, large);
	EXPECT_EQ(0, (uintptr_t)large & 63);
	EXPECT_EQ(large - 0x40, query_base(large));
	EXPECT_LE(8 * size, reservation(large - 0x40));
	EXPECT_EQ(0x5a, large[old - 1]);
	EXPECT_TRUE(all_zero(large + old, size - old));
	for (old = size; size < 8 * 0x100000 - 0x1000; old = size) {
		memset(large + old - 0x100, 0x33, 0x100);
		size += size / 4;
		if (size > 8 * 0x100000 - 0x1000)
			size = 8 * 0x100000 - 0x1000;
		q = HeapReAlloc(self->heap, HEAP_ZERO_MEMORY, large, size);
		ASSERT_EQ(large, q) TH_LOG("size %#zx", size);
		EXPECT_EQ(size, HeapSize(self->heap, 0, large));
		EXPECT_EQ(0x5a, large[0]);
		EXPECT_EQ(0x33, large[old - 1]);
		EXPECT_TRUE(all_zero(large + old, size - old))
			TH_LOG("size %#zx", size);
	}
	EXPECT_TRUE(HeapFree(self->heap, 0, large));
	EXPECT_EQ(MEM_FREE, query_state(large));
}

/*
 * A block of 64 KiB or more that HeapReAlloc moves in the back end: the
 * moved block starts a sub-heap of its own, with room for at least 8 MiB.
 * solo_block() makes one in a heap created with an initial size of 1 MiB,
 * where back-end blocks are carved one after the other from the first
 * segment: the block allocated after a 64 KiB one (both above the front
 * end's classes) stops it from growing in place.
 */
FIXTURE(own_subheap) {
	HANDLE heap;
};

FIXTURE_SETUP(own_subheap)
{
	if (access("/dev/winvm", F_OK))
		SETUP_SKIP("/dev/winvm not present: load winvm.ko");
	self->heap = HeapCreate(0, 0x100000, 0);
	ASSERT_NE(NULL, self->heap);
}

FIXTURE_TEARDOWN(own_subheap)
{
	if (self->heap)
		EXPECT_TRUE(HeapDestroy(self->heap));
}

static char *solo_block(struct __test_metadata *_metadata, HANDLE heap,
			SIZE_T size)
{
	char *p, *fence, *q;

	p = HeapAlloc(heap, 0, 0x10000);
	fence = HeapAlloc(heap, 0, 0x5000);
	if (!p || !fence)
		return NULL;
	memset(p, 0x5a, 0x10000);
	q = HeapReAlloc(heap, 0, p, size);
	EXPECT_TRUE(HeapFree(heap, 0, fence));
	if (!q) {
		EXPECT_TRUE(HeapFree(heap, 0, p));
		return NULL;
	}
	EXPECT_NE(p, q);
	EXPECT_EQ(0x5a, q[0]);
	EXPECT_EQ(0x5a, q[0xffff]);
	return q;
}

TEST_F(own_subheap, realloc_moves_there)
{
	char *q = solo_block(_metadata, self->heap, 0x18000);
	int region;

	ASSERT_NE(NULL, q);
	EXPECT_EQ(q - 0x40, query_base(q));
	EXPECT_LE(0x800000, reservation(q - 0x40));
	region = region_of(self->heap, q);
	EXPECT_LT(0, region);
	EXPECT_GT(64, region);
	EXPECT_EQ(0x18000, HeapSize(self->heap, 0, q));
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
	EXPECT_TRUE(HeapFree(self->heap, 0, q));
	EXPECT_EQ(MEM_FREE, query_state(q));
}

/* Other requests do not take the room of such a sub-heap. */
TEST_F(own_subheap, keeps_its_room)
{
	char *q = solo_block(_metadata, self->heap, 0x18000);
	char *base, *p;
	SIZE_T room;
	int i;

	ASSERT_NE(NULL, q);
	base = q - 0x40;
	room = reservation(base);
	for (i = 0; i < 64; i++) {
		p = HeapAlloc(self->heap, 0, i & 1 ? 0x20000 : 0x3000);
		ASSERT_NE(NULL, p);
		EXPECT_FALSE(p >= base && p < base + room) TH_LOG("%p", p);
	}
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/*
 * Grown step by step, such a block keeps its address, across the
 * large-block threshold too, where HeapWalk starts listing it as a large
 * block; contents kept, HEAP_ZERO_MEMORY zeroing each grown tail.
 */
TEST_F(own_subheap, crosses_large_in_place)
{
	char *q = solo_block(_metadata, self->heap, 0x18000), *r;
	SIZE_T size, old;
	int region;

	ASSERT_NE(NULL, q);
	for (old = 0x18000; old < 0x400000; old = size) {
		memset(q + old - 0x100, 0x33, 0x100);
		size = old + old / 4;
		r = HeapReAlloc(self->heap, HEAP_ZERO_MEMORY, q, size);
		ASSERT_EQ(q, r) TH_LOG("size %#zx", size);
		EXPECT_EQ(size, HeapSize(self->heap, 0, q));
		EXPECT_EQ(0x5a, q[0]);
		EXPECT_EQ(0x5a, q[0xffff]);
		EXPECT_EQ(0x33, q[old - 1]);
		EXPECT_TRUE(all_zero(q + old, size - old)) TH_LOG("size %#zx", size);
		region = region_of(self->heap, q);
		EXPECT_LE(0, region);
		EXPECT_EQ(size >= 0xff000, region == 64) TH_LOG("size %#zx", size);
	}
	EXPECT_EQ(q - 0x40, query_base(q));
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
	EXPECT_TRUE(HeapFree(self->heap, 0, q));
	EXPECT_EQ(MEM_FREE, query_state(q));
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/*
 * Such a sub-heap commits as its block grows, by half what it has at
 * most: the block never holds much more committed memory than it asked
 * for.
 */
TEST_F(own_subheap, commit_follows_growth)
{
	char *q = solo_block(_metadata, self->heap, 0x18000);
	MEMORY_BASIC_INFORMATION mbi;
	SIZE_T size;

	ASSERT_NE(NULL, q);
	for (size = 0x18000; size < 0xf0000; size += size / 8) {
		ASSERT_EQ(q, HeapReAlloc(self->heap, 0, q, size));
		ASSERT_EQ(sizeof(mbi), VirtualQuery(q - 0x40, &mbi, sizeof(mbi)));
		EXPECT_EQ(MEM_COMMIT, mbi.State);
		EXPECT_LE(size + 0x40, mbi.RegionSize);
		EXPECT_GE((size + 0x40) * 3 / 2 + 2 * P, mbi.RegionSize)
			TH_LOG("size %#zx committed %#zx", size, mbi.RegionSize);
	}
}

/* Crossing the threshold is never in place for HEAP_REALLOC_IN_PLACE_ONLY. */
TEST_F(own_subheap, in_place_only_stops_at_large)
{
	char *q = solo_block(_metadata, self->heap, 0x80000);

	ASSERT_NE(NULL, q);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, HeapReAlloc(self->heap, HEAP_REALLOC_IN_PLACE_ONLY, q,
				    0x100000));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	EXPECT_EQ(0x80000, HeapSize(self->heap, 0, q));
	EXPECT_EQ(q, HeapReAlloc(self->heap, HEAP_REALLOC_IN_PLACE_ONLY, q,
				 0xf0000));
	EXPECT_EQ(0xf0000, HeapSize(self->heap, 0, q));
	EXPECT_GT(64, region_of(self->heap, q));
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/* Sub-heaps that come and go reuse their iRegionIndex values. */
TEST_F_TIMEOUT(own_subheap, region_reused, 120)
{
	int i, first = -1, region;
	char *q;

	for (i = 0; i < 300; i++) {
		q = solo_block(_metadata, self->heap, 0x18000);
		ASSERT_NE(NULL, q);
		region = region_of(self->heap, q);
		if (first < 0)
			first = region;
		ASSERT_LT(0, region);
		ASSERT_EQ(first, region) TH_LOG("round %d", i);
		ASSERT_TRUE(HeapFree(self->heap, 0, q));
	}
}

/*
 * Shrunk to less than half, such a block gives the rest to the heap and
 * its sub-heap becomes an ordinary one: the block stays when the freed
 * tail is reused, and freeing it leaves the sub-heap to the heap.
 */
TEST_F(own_subheap, shrinks)
{
	char *q = solo_block(_metadata, self->heap, 0x80000), *p;

	ASSERT_NE(NULL, q);
	EXPECT_EQ(q, HeapReAlloc(self->heap, 0, q, 0x20000));
	EXPECT_EQ(0x5a, q[0xffff]);
	p = HeapAlloc(self->heap, 0, 0x40000);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(q - 0x40, query_base(p));
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
	EXPECT_TRUE(HeapFree(self->heap, 0, q));
	EXPECT_EQ(MEM_COMMIT, query_state(p));
	EXPECT_TRUE(HeapFree(self->heap, 0, p));
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/*
 * 92: a fixed heap of A holds a block of A - (0x400 + 0x100 * 8) bytes,
 * not one of A - (0x200 + 0x80 * 8).
 */
TEST_F(heap, fixed_heap_limit)
{
	HANDLE heap = HeapCreate(0, A, A);
	void *p;

	ASSERT_NE(NULL, heap);
	EXPECT_EQ(0, (uintptr_t)heap & 0xffff);
	EXPECT_EQ(A, reservation(heap));
	p = HeapAlloc(heap, 0, A - (0x400 + 0x100 * sizeof(void *)));
	ASSERT_NE(NULL, p);
	EXPECT_EQ(A - (0x400 + 0x100 * sizeof(void *)), HeapSize(heap, 0, p));
	EXPECT_TRUE(HeapFree(heap, 0, p));
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, HeapAlloc(heap, 0, A - (0x200 + 0x80 * sizeof(void *))));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	EXPECT_TRUE(HeapValidate(heap, 0, NULL));
	EXPECT_TRUE(HeapDestroy(heap));
}

/*
 * A heap created with more committed than one block can hold (2^32 units
 * of 16 bytes, 64 GiB) serves blocks, validates and walks whole. Committing
 * that much takes vm.overcommit_memory=1, set for a child that does the
 * work and put back whatever the child does. (Its first block used to be
 * cut to 1 MiB, leaving the rest unreachable and the heap corrupt.)
 */
static int huge_heaps(void)
{
	const SIZE_T big = 0x1000100000ULL;
	PROCESS_HEAP_ENTRY e = { 0 };
	char *p, *q, *last = NULL;
	HANDLE h;

	h = HeapCreate(0, big, 0);
	if (!h)
		return 1;
	p = HeapAlloc(h, 0, 100);
	q = HeapAlloc(h, 0, 0x10000000);
	if (!p || !q || !HeapValidate(h, 0, NULL))
		return 2;
	p[99] = 1;
	q[0x10000000 - 1] = 1;
	/* cbData is a DWORD: the walk shows how far it got by lpData. */
	while (HeapWalk(h, &e))
		if (!(e.wFlags & PROCESS_HEAP_REGION) && (char *)e.lpData > last)
			last = e.lpData;
	if (GetLastError() != ERROR_NO_MORE_ITEMS ||
	    last < (char *)h + big - 0x100000)
		return 3;
	if (!HeapFree(h, 0, q) || !HeapFree(h, 0, p) ||
	    !HeapValidate(h, 0, NULL) || !HeapDestroy(h))
		return 4;
	return 0;
}

TEST_F_TIMEOUT(heap, beyond_64gib, 120)
{
	char old[16] = "";
	int status = -1;
	FILE *f;
	pid_t pid;

	f = fopen("/proc/sys/vm/overcommit_memory", "r+");
	if (!f || !fgets(old, sizeof(old), f) ||
	    fseek(f, 0, SEEK_SET) || fputs("1\n", f) < 0 || fflush(f)) {
		if (f)
			fclose(f);
		SKIP(return, "cannot set vm.overcommit_memory");
	}
	pid = fork();
	if (!pid)
		_exit(huge_heaps());
	if (pid > 0)
		waitpid(pid, &status, 0);
	fseek(f, 0, SEEK_SET);
	fputs(old, f);
	fclose(f);
	ASSERT_LT(0, pid);
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* 93: no large blocks in a fixed heap; HeapReAlloc zeroes what it grows. */
TEST_F(heap, fixed_heap_no_large)
{
	HANDLE heap = HeapCreate(0, 8 * A, 8 * A);
	unsigned char *p;

	ASSERT_NE(NULL, heap);
	p = HeapAlloc(heap, 0, 0);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(0, HeapSize(heap, 0, p));
	EXPECT_TRUE(HeapFree(heap, 0, p));

	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, HeapAlloc(heap, 0, 4 * A));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());

	p = HeapAlloc(heap, 0, A);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(A, HeapSize(heap, 0, p));
	EXPECT_TRUE(HeapFree(heap, 0, p));

	p = HeapAlloc(heap, HEAP_ZERO_MEMORY, A);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(all_zero(p, A));
	memset(p, 1, A);
	p = HeapReAlloc(heap, HEAP_ZERO_MEMORY, p, 2 * A);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(2 * A, HeapSize(heap, 0, p));
	EXPECT_EQ(1, p[A - 1]);
	EXPECT_TRUE(all_zero(p + A, A));
	EXPECT_EQ(p, HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, p, A * 3 / 2));
	EXPECT_EQ(p, HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, p, 2 * A));
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, HeapReAlloc(heap, 0, p, 4 * A));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	EXPECT_TRUE(HeapFree(heap, 0, p));
	EXPECT_TRUE(HeapDestroy(heap));
}

/*
 * 94: reservations. A fixed heap reserves its maximum rounded up to 8 KiB;
 * a growable one its initial size plus 64 KiB, then sub-heaps of 1 MiB,
 * doubling up to 0xfd0000.
 */
TEST_F(heap, reserve_sizes)
{
	static const SIZE_T inits[] = { 0, 0x1000, 0x10000, 0x12345 };
	MEMORY_BASIC_INFORMATION mbi;
	HANDLE heap;
	unsigned int i;

	for (i = 1; i < 0x100; i++) {
		heap = HeapCreate(0, i * 0x100, i * 0x100);
		ASSERT_NE(NULL, heap) TH_LOG("size %#x", i * 0x100);
		EXPECT_EQ((i * 0x100 + 0x1fff) & ~0x1fffUL, reservation(heap))
			TH_LOG("size %#x", i * 0x100);
		ASSERT_EQ(sizeof(mbi), VirtualQuery(heap, &mbi, sizeof(mbi)));
		EXPECT_EQ(heap, mbi.AllocationBase);
		EXPECT_EQ(PAGE_READWRITE, mbi.AllocationProtect);
		EXPECT_EQ(MEM_COMMIT, mbi.State);
		EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
		EXPECT_EQ(MEM_PRIVATE, mbi.Type);
		EXPECT_TRUE(HeapDestroy(heap));
	}
	for (i = 0; i < sizeof(inits) / sizeof(inits[0]); i++) {
		heap = HeapCreate(HEAP_NO_SERIALIZE, inits[i], 0);
		ASSERT_NE(NULL, heap);
		EXPECT_EQ(((inits[i] + P - 1) & ~(P - 1)) + 0x10000,
			  reservation(heap)) TH_LOG("init %#zx", inits[i]);
		EXPECT_TRUE(HeapDestroy(heap));
	}
}

TEST_F_TIMEOUT(heap, subheap_sizes, 120)
{
	static const SIZE_T expect[] = {
		0x100000, 0x200000, 0x400000, 0x800000, 0xfd0000, 0xfd0000,
	};
	PROCESS_HEAP_ENTRY e;
	void *regions[16];
	unsigned int n = 0, i;
	SIZE_T total = 0;

	/* 64 KiB blocks: the back end (above the front end's classes). */
	while (total < 0x3000000) {
		ASSERT_NE(NULL, HeapAlloc(self->heap, 0, 0x10000));
		total += 0x10000;
	}
	memset(&e, 0, sizeof(e));
	while (HeapWalk(self->heap, &e))
		if ((e.wFlags & PROCESS_HEAP_REGION) && n < 16)
			regions[n++] = e.lpData;
	ASSERT_LE(7, n);
	EXPECT_EQ(self->heap, regions[0]);
	EXPECT_EQ(0x10000, reservation(regions[0]));
	for (i = 0; i < 6; i++)
		EXPECT_EQ(expect[i], reservation(regions[i + 1])) TH_LOG("sub-heap %u", i);
}

/*
 * 95: what is not a block of the heap: HeapSize (SIZE_T)-1 and HeapFree
 * FALSE, both with ERROR_INVALID_PARAMETER.
 */
TEST_F(heap, invalid_pointers)
{
	static char buffer[512];
	char *p, *other;

	SetLastError(UNTOUCHED);
	EXPECT_EQ(~(SIZE_T)0, HeapSize(self->heap, 0,
				       (char *)((uintptr_t)buffer & ~63) + 64));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~(SIZE_T)0, HeapSize(self->heap, 0, (void *)0xdeadbe00));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapFree(self->heap, 0, (char *)((uintptr_t)buffer & ~63) + 64));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapFree(self->heap, 0, (void *)0xdeadbe00));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());

	/* A block of another heap, a pointer inside a block, a freed block. */
	other = HeapAlloc(GetProcessHeap(), 0, 64);
	ASSERT_NE(NULL, other);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapFree(self->heap, 0, other));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	EXPECT_TRUE(HeapFree(GetProcessHeap(), 0, other));
	p = HeapAlloc(self->heap, 0, 0x2000);
	ASSERT_NE(NULL, p);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~(SIZE_T)0, HeapSize(self->heap, 0, p + 0x100));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	EXPECT_TRUE(HeapFree(self->heap, 0, p));
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~(SIZE_T)0, HeapSize(self->heap, 0, p));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapFree(self->heap, 0, p));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/* 95: HEAP_GENERATE_EXCEPTIONS raises STATUS_NO_MEMORY instead of failing. */
static __thread EXCEPTION_RECORD seen;
static __thread int seen_calls;

static LONG CALLBACK record_continue(EXCEPTION_POINTERS *ep)
{
	seen = *ep->ExceptionRecord;
	seen_calls++;
	return EXCEPTION_CONTINUE_EXECUTION;
}

TEST_F(heap, generate_exceptions)
{
	HANDLE fixed, h;
	void *p, *veh;

	veh = AddVectoredExceptionHandler(1, record_continue);
	ASSERT_NE(NULL, veh);
	seen_calls = 0;
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, HeapAlloc(self->heap, HEAP_GENERATE_EXCEPTIONS,
				  ~(SIZE_T)0));
	EXPECT_EQ(1, seen_calls);
	EXPECT_EQ(STATUS_NO_MEMORY, seen.ExceptionCode);
	EXPECT_EQ(0, seen.ExceptionFlags);
	EXPECT_EQ(1, seen.NumberParameters);
	EXPECT_EQ(~(ULONG_PTR)0, seen.ExceptionInformation[0]);
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());

	/* Without the flag, nothing is raised. */
	EXPECT_EQ(NULL, HeapAlloc(self->heap, 0, ~(SIZE_T)0));
	EXPECT_EQ(1, seen_calls);

	/* The flag given to HeapCreate applies to every call. */
	h = HeapCreate(HEAP_GENERATE_EXCEPTIONS, 0, 0);
	ASSERT_NE(NULL, h);
	EXPECT_EQ(NULL, HeapAlloc(h, 0, (SIZE_T)1 << 50));
	EXPECT_EQ(2, seen_calls);
	EXPECT_EQ((ULONG_PTR)1 << 50, seen.ExceptionInformation[0]);
	p = HeapAlloc(h, 0, 10);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(NULL, HeapReAlloc(h, 0, p, (SIZE_T)1 << 50));
	EXPECT_EQ(3, seen_calls);
	EXPECT_EQ(STATUS_NO_MEMORY, seen.ExceptionCode);
	EXPECT_EQ(10, HeapSize(h, 0, p));
	EXPECT_TRUE(HeapDestroy(h));

	/* A full fixed heap. */
	fixed = HeapCreate(HEAP_GENERATE_EXCEPTIONS, 0, 0x10000);
	ASSERT_NE(NULL, fixed);
	EXPECT_EQ(NULL, HeapAlloc(fixed, 0, 0x20000));
	EXPECT_EQ(4, seen_calls);
	EXPECT_EQ(0x20000, seen.ExceptionInformation[0]);
	EXPECT_TRUE(HeapDestroy(fixed));
	EXPECT_TRUE(RemoveVectoredExceptionHandler(veh));
}

/*
 * Corruption: with termination on corruption enabled, a double free or an
 * overwritten block header raises STATUS_HEAP_CORRUPTION, non-continuable.
 * In a child, since the process ends.
 */
static int corruption_fd = -1;

static LONG CALLBACK report_and_exit(EXCEPTION_POINTERS *ep)
{
	EXCEPTION_RECORD *rec = ep->ExceptionRecord;
	DWORD msg[2] = { rec->ExceptionCode, rec->ExceptionFlags };

	if (write(corruption_fd, msg, sizeof(msg)) != sizeof(msg))
		_exit(9);
	_exit(42);
}

enum damage {
	DOUBLE_FREE_SMALL,	/* a front-end block */
	DOUBLE_FREE_BACKEND,
	BAD_HEADER,
	USE_AFTER_FREE,		/* a freed front-end block's link overwritten */
	BAD_HEADER_REALLOC,
};

static void damage(enum damage how)
{
	HANDLE heap = HeapCreate(0, 0, 0);
	char *p, *q, *blocks[0x20];
	int i;

	if (!heap)
		_exit(2);
	for (i = 0; i < 0x20; i++)
		blocks[i] = HeapAlloc(heap, 0, 48);
	for (i = 0; i < 0x20; i++)
		HeapFree(heap, 0, blocks[i]);
	switch (how) {
	case DOUBLE_FREE_SMALL:
		p = HeapAlloc(heap, 0, 48);
		HeapFree(heap, 0, p);
		HeapFree(heap, 0, p);
		break;
	case DOUBLE_FREE_BACKEND:
		p = HeapAlloc(heap, 0, 0x5000);
		HeapFree(heap, 0, p);
		HeapFree(heap, 0, p);
		break;
	case BAD_HEADER:
	case BAD_HEADER_REALLOC:
		/* Back-end blocks, next to each other in the first segment. */
		p = HeapAlloc(heap, 0, 0x5000);
		q = HeapAlloc(heap, 0, 0x5000);
		if (q != p + 0x5010)
			_exit(4);
		memset(p, 0x41, 0x5000 + 8);	/* into q's header */
		if (how == BAD_HEADER)
			HeapFree(heap, 0, q);
		else
			HeapReAlloc(heap, 0, q, 10);
		break;
	case USE_AFTER_FREE:
		/*
		 * A block back on its run's free list (HeapCompact empties
		 * the thread's cache; q keeps the run in use), its link
		 * overwritten so that it decodes to a misaligned pointer.
		 */
		q = HeapAlloc(heap, 0, 48);
		p = HeapAlloc(heap, 0, 48);
		HeapFree(heap, 0, p);
		HeapCompact(heap, 0);
		*(uintptr_t *)p = (((uintptr_t)p >> 12) & 15) ^ 1;
		HeapAlloc(heap, 0, 48);
		HeapFree(heap, 0, q);
		break;
	}
	_exit(3);
}

TEST_F(heap, corruption_terminates)
{
	enum damage how;
	int status, fds[2];
	DWORD msg[2];
	pid_t pid;

	for (how = DOUBLE_FREE_SMALL; how <= BAD_HEADER_REALLOC; how++) {
		ASSERT_EQ(0, pipe(fds));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			corruption_fd = fds[1];
			AddVectoredExceptionHandler(1, report_and_exit);
			if (!HeapSetInformation(NULL,
						HeapEnableTerminationOnCorruption,
						NULL, 0))
				_exit(1);
			damage(how);
		}
		close(fds[1]);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status)) TH_LOG("damage %d", how);
		EXPECT_EQ(42, WEXITSTATUS(status)) TH_LOG("damage %d", how);
		memset(msg, 0, sizeof(msg));
		EXPECT_EQ(sizeof(msg), read(fds[0], msg, sizeof(msg)));
		EXPECT_EQ(STATUS_HEAP_CORRUPTION, msg[0]) TH_LOG("damage %d", how);
		EXPECT_EQ(EXCEPTION_NONCONTINUABLE, msg[1]);
		close(fds[0]);
	}
}

/* Unhandled, heap corruption ends the process. */
TEST_F(heap, corruption_unhandled)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		HeapSetInformation(GetProcessHeap(),
				   HeapEnableTerminationOnCorruption, NULL, 0);
		damage(DOUBLE_FREE_SMALL);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
}

/* Without termination: the call fails; HeapValidate reports the damage. */
TEST_F(heap, corruption_reported)
{
	char *p, *q, saved[16];

	p = HeapAlloc(self->heap, 0, 0x5000);
	q = HeapAlloc(self->heap, 0, 0x5000);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(p + 0x5010, q);
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
	memcpy(saved, q - 16, 16);
	memset(p, 0x41, 0x5000 + 16);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapValidate(self->heap, 0, NULL));
	EXPECT_FALSE(HeapValidate(self->heap, 0, q));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_FALSE(HeapFree(self->heap, 0, q));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	memcpy(q - 16, saved, 16);
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
	EXPECT_TRUE(HeapFree(self->heap, 0, q));
	EXPECT_TRUE(HeapFree(self->heap, 0, p));
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/*
 * 96: HeapCompatibilityInformation: 0 until 0x12 allocations of one size
 * turn the low-fragmentation front end on (2), or it is set; it cannot be
 * turned off, nor on for a HEAP_NO_SERIALIZE heap.
 */
TEST_F(heap, compatibility_information)
{
	SIZE_T size;
	ULONG info;
	char buf[8];
	HANDLE h;

	size = 0xcccc;
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapQueryInformation(NULL, HeapCompatibilityInformation,
					  &info, sizeof(info), &size));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	EXPECT_EQ(0, size);

	size = 0;
	EXPECT_FALSE(HeapQueryInformation(self->heap,
					  HeapCompatibilityInformation, NULL, 0,
					  &size));
	EXPECT_EQ(ERROR_INSUFFICIENT_BUFFER, GetLastError());
	EXPECT_EQ(sizeof(ULONG), size);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapQueryInformation(self->heap,
					  HeapCompatibilityInformation, NULL, 0,
					  NULL));
	EXPECT_EQ(ERROR_INSUFFICIENT_BUFFER, GetLastError());
	memset(buf, 0xcc, sizeof(buf));
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(HeapQueryInformation(self->heap,
					 HeapCompatibilityInformation, buf,
					 sizeof(ULONG) + 1, NULL));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	memcpy(&info, buf, sizeof(info));
	EXPECT_EQ(0, info);
	EXPECT_EQ((char)0xcc, buf[4]);

	info = 2;
	EXPECT_TRUE(HeapSetInformation(self->heap, HeapCompatibilityInformation,
				       &info, sizeof(info)));
	info = 0xcccccccc;
	EXPECT_TRUE(HeapQueryInformation(self->heap,
					 HeapCompatibilityInformation, &info,
					 sizeof(info), &size));
	EXPECT_EQ(2, info);
	info = 0;
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapSetInformation(self->heap,
					HeapCompatibilityInformation, &info,
					sizeof(info)));
	EXPECT_EQ(ERROR_GEN_FAILURE, GetLastError());
	info = 1;
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapSetInformation(self->heap,
					HeapCompatibilityInformation, &info,
					sizeof(info)));
	EXPECT_EQ(ERROR_GEN_FAILURE, GetLastError());
	EXPECT_TRUE(HeapQueryInformation(self->heap,
					 HeapCompatibilityInformation, &info,
					 sizeof(info), &size));
	EXPECT_EQ(2, info);
	/* Not a ULONG; not a value. */
	info = 2;
	EXPECT_FALSE(HeapSetInformation(self->heap,
					HeapCompatibilityInformation, &info, 8));
	EXPECT_EQ(ERROR_BAD_LENGTH, GetLastError());
	info = 3;
	EXPECT_FALSE(HeapSetInformation(self->heap,
					HeapCompatibilityInformation, &info,
					sizeof(info)));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());

	h = HeapCreate(HEAP_NO_SERIALIZE, 0, 0);
	ASSERT_NE(NULL, h);
	info = 2;
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapSetInformation(h, HeapCompatibilityInformation, &info,
					sizeof(info)));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	info = 0;
	EXPECT_TRUE(HeapSetInformation(h, HeapCompatibilityInformation, &info,
				       sizeof(info)));
	EXPECT_TRUE(HeapDestroy(h));
}

static ULONG compat(HANDLE heap)
{
	ULONG info = 0xcccccccc;

	HeapQueryInformation(heap, HeapCompatibilityInformation, &info,
			     sizeof(info), NULL);
	return info;
}

/* 96: 0x12 same-size allocations switch the front end on; 0x11 do not. */
TEST_F(heap, lfh_pattern)
{
	void *ptrs[0x12];
	HANDLE h;
	int i;

	for (i = 0; i < 0x11; i++)
		ptrs[i] = HeapAlloc(self->heap, 0, 0);
	for (i = 0; i < 0x11; i++)
		HeapFree(self->heap, 0, ptrs[i]);
	EXPECT_EQ(0, compat(self->heap));
	ptrs[0] = HeapAlloc(self->heap, 0, 0);
	HeapFree(self->heap, 0, ptrs[0]);
	EXPECT_EQ(2, compat(self->heap));

	/* Not on a HEAP_NO_SERIALIZE heap, nor on a fixed one. */
	h = HeapCreate(HEAP_NO_SERIALIZE, 0, 0);
	ASSERT_NE(NULL, h);
	for (i = 0; i < 0x12; i++)
		ptrs[i] = HeapAlloc(h, 0, 0);
	for (i = 0; i < 0x12; i++)
		HeapFree(h, 0, ptrs[i]);
	EXPECT_EQ(0, compat(h));
	EXPECT_TRUE(HeapDestroy(h));
	h = HeapCreate(0, 0, 0x100000);
	ASSERT_NE(NULL, h);
	for (i = 0; i < 0x12; i++)
		ptrs[i] = HeapAlloc(h, 0, 24);
	EXPECT_EQ(0, compat(h));
	EXPECT_TRUE(HeapDestroy(h));
}

/*
 * A front-end block shrunk in place by more than its run's metadata byte
 * can count keeps its exact size for HeapSize, HeapWalk, HeapValidate and
 * HeapReAlloc, and frees as any other.
 */
TEST_F(heap, lfh_shrink_in_place)
{
	static const SIZE_T sizes[] = { 1, 2, 3, 251, 252, 253, 700, 1008, 1 };
	PROCESS_HEAP_ENTRY e;
	unsigned char *p, *q;
	void *warm[0x12];
	unsigned int i;
	SIZE_T found;

	for (i = 0; i < 0x12; i++)
		warm[i] = HeapAlloc(self->heap, 0, 1000);
	for (i = 0; i < 0x12; i++)
		EXPECT_TRUE(HeapFree(self->heap, 0, warm[i]));
	ASSERT_EQ(2, compat(self->heap));
	p = HeapAlloc(self->heap, 0, 1000);
	ASSERT_NE(NULL, p);
	memset(p, 0x5a, 1000);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		SetLastError(UNTOUCHED);
		q = HeapReAlloc(self->heap, HEAP_REALLOC_IN_PLACE_ONLY, p,
				sizes[i]);
		ASSERT_EQ(p, q) TH_LOG("to %zu", sizes[i]);
		EXPECT_EQ(sizes[i], HeapSize(self->heap, 0, p));
		EXPECT_EQ(UNTOUCHED, GetLastError());
		EXPECT_TRUE(HeapValidate(self->heap, 0, p));
		EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
		EXPECT_EQ(0x5a, p[0]);
		found = 0;
		memset(&e, 0, sizeof(e));
		while (HeapWalk(self->heap, &e))
			if (e.lpData == p)
				found = e.cbData;
		EXPECT_EQ(sizes[i], found);
		memset(p, 0x5a, sizes[i]);
	}

	/* From 1 byte, a move keeps that byte. */
	q = HeapReAlloc(self->heap, 0, p, 5000);
	ASSERT_NE(NULL, q);
	EXPECT_EQ(0x5a, q[0]);
	EXPECT_EQ(5000, HeapSize(self->heap, 0, q));
	EXPECT_TRUE(HeapFree(self->heap, 0, q));
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/*
 * Every 16-byte boundary of a front-end run that is not a busy block (the
 * run's header and metadata, the blocks under the metadata, free blocks,
 * the slack at the end) is refused by HeapSize, HeapFree and HeapReAlloc
 * with ERROR_INVALID_PARAMETER, and the heap stays valid.
 */
#define RUN_BYTES	0x10000
#define RUN_FILL	4000

TEST_F(heap, run_addresses_refused)
{
	static char *blk[RUN_FILL];
	static bool busy[RUN_BYTES / 16];
	unsigned int i, refused = 0;
	char *base, *a;

	for (i = 0; i < RUN_FILL; i++) {
		blk[i] = HeapAlloc(self->heap, 0, 16);
		ASSERT_NE(NULL, blk[i]);
	}
	ASSERT_EQ(2, compat(self->heap));
	base = (char *)((uintptr_t)blk[RUN_FILL / 2] & ~(uintptr_t)(RUN_BYTES - 1));
	for (i = 0; i < RUN_FILL; i++) {
		if (blk[i] < base || blk[i] >= base + RUN_BYTES)
			continue;
		if (i % 3) {
			busy[(blk[i] - base) / 16] = true;
			continue;
		}
		ASSERT_TRUE(HeapFree(self->heap, 0, blk[i]));
		blk[i] = NULL;
	}
	for (a = base; a < base + RUN_BYTES; a += 16) {
		if (busy[(a - base) / 16]) {
			EXPECT_EQ(16, HeapSize(self->heap, 0, a));
			continue;
		}
		refused++;
		SetLastError(UNTOUCHED);
		ASSERT_EQ(~(SIZE_T)0, HeapSize(self->heap, 0, a)) TH_LOG("%p", a);
		EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
		SetLastError(UNTOUCHED);
		ASSERT_FALSE(HeapFree(self->heap, 0, a)) TH_LOG("%p", a);
		EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
		SetLastError(UNTOUCHED);
		ASSERT_EQ(NULL, HeapReAlloc(self->heap, 0, a, 32)) TH_LOG("%p", a);
		EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	}
	/* The header, the metadata and a third of the blocks at least. */
	EXPECT_LT(RUN_BYTES / 16 / 3, refused);
	ASSERT_TRUE(HeapValidate(self->heap, 0, NULL));
	for (i = 0; i < RUN_FILL; i++)
		if (blk[i])
			EXPECT_TRUE(HeapFree(self->heap, 0, blk[i]));
	ASSERT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/* Other information classes. */
TEST_F(heap, other_information)
{
	HEAP_OPTIMIZE_RESOURCES_INFORMATION opt = {
		.Version = HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION,
	};
	ULONG info;

	EXPECT_TRUE(HeapSetInformation(NULL, HeapOptimizeResources, &opt,
				       sizeof(opt)));
	EXPECT_TRUE(HeapSetInformation(self->heap, HeapOptimizeResources, &opt,
				       sizeof(opt)));
	opt.Version = 2;
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapSetInformation(NULL, HeapOptimizeResources, &opt,
					sizeof(opt)));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapSetInformation(self->heap, (HEAP_INFORMATION_CLASS)5,
					&info, sizeof(info)));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapQueryInformation(self->heap,
					  HeapEnableTerminationOnCorruption,
					  &info, sizeof(info), NULL));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
}

/*
 * 97: HeapLock blocks other threads' HeapAlloc and HeapFree, unless they
 * pass HEAP_NO_SERIALIZE, and their HeapLock. A HEAP_NO_SERIALIZE heap is
 * never locked. Once the front end serves a size, its allocations are not
 * blocked, but HeapLock still is. Large blocks (their own VirtualAlloc)
 * are no exception either way.
 */
struct worker {
	HANDLE heap;
	DWORD flags;
	SIZE_T size;
	bool lock;
	int done;
};

static void *heap_worker(void *arg)
{
	struct worker *w = arg;
	void *p;

	if (w->lock)
		HeapLock(w->heap);
	p = HeapAlloc(w->heap, w->flags, w->size);
	HeapFree(w->heap, w->flags, p);
	if (w->lock)
		HeapUnlock(w->heap);
	__atomic_store_n(&w->done, p ? 1 : 2, __ATOMIC_RELEASE);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/*
 * Whether a worker doing @lock, @flags on @heap gets through a HeapLock,
 * allocating and freeing @size bytes.
 */
static int blocked_by_lock(HANDLE heap, DWORD flags, bool lock, SIZE_T size)
{
	struct worker w = { .heap = heap, .flags = flags, .lock = lock,
			    .size = size };
	int waited, blocked;
	pthread_t t;

	if (!HeapLock(heap))
		return -1;
	if (pthread_create(&t, NULL, heap_worker, &w))
		return -1;
	for (waited = 0; waited < 20000 && !__atomic_load_n(&w.done, __ATOMIC_ACQUIRE);
	     waited += 10)
		sleep_ms(10);
	blocked = !__atomic_load_n(&w.done, __ATOMIC_ACQUIRE);
	HeapUnlock(heap);
	pthread_join(t, NULL);
	return w.done == 1 ? blocked : -1;
}

/* Not blocked within 20 s, or blocked 300 ms: fast enough either way. */
static int blocked_quick(HANDLE heap, DWORD flags, bool lock, SIZE_T size)
{
	struct worker w = { .heap = heap, .flags = flags, .lock = lock,
			    .size = size };
	pthread_t t;
	int blocked;

	if (!HeapLock(heap))
		return -1;
	if (pthread_create(&t, NULL, heap_worker, &w))
		return -1;
	sleep_ms(300);
	blocked = !__atomic_load_n(&w.done, __ATOMIC_ACQUIRE);
	HeapUnlock(heap);
	pthread_join(t, NULL);
	return w.done == 1 ? blocked : -1;
}

TEST_F_TIMEOUT(heap, heap_lock, 120)
{
	void *ptrs[0x12];
	HANDLE h;
	int i;

	h = HeapCreate(HEAP_NO_SERIALIZE, 0, 0);
	ASSERT_NE(NULL, h);
	EXPECT_EQ(0, blocked_by_lock(h, 0, true, 0));
	EXPECT_EQ(0, blocked_by_lock(h, 0, false, 0));
	EXPECT_TRUE(HeapDestroy(h));

	EXPECT_EQ(1, blocked_quick(self->heap, 0, true, 0));
	EXPECT_EQ(1, blocked_quick(self->heap, 0, false, 0));
	EXPECT_EQ(0, blocked_by_lock(self->heap, HEAP_NO_SERIALIZE, false, 0));
	EXPECT_EQ(1, blocked_quick(self->heap, 0, false, 0x100000));
	EXPECT_EQ(0, blocked_by_lock(self->heap, HEAP_NO_SERIALIZE, false,
				     0x100000));

	/* The front end on for size 0: allocation passes, locking not. */
	for (i = 0; i < 0x12; i++)
		ptrs[i] = HeapAlloc(self->heap, 0, 0);
	for (i = 0; i < 0x12; i++)
		HeapFree(self->heap, 0, ptrs[i]);
	ASSERT_EQ(2, compat(self->heap));
	EXPECT_EQ(1, blocked_quick(self->heap, 0, true, 0));
	EXPECT_EQ(0, blocked_by_lock(self->heap, 0, false, 0));

	/* HeapLock is recursive in its thread. */
	EXPECT_TRUE(HeapLock(self->heap));
	EXPECT_TRUE(HeapLock(self->heap));
	ptrs[0] = HeapAlloc(self->heap, 0, 5000);
	EXPECT_NE(NULL, ptrs[0]);
	EXPECT_TRUE(HeapFree(self->heap, 0, ptrs[0]));
	EXPECT_TRUE(HeapUnlock(self->heap));
	EXPECT_TRUE(HeapUnlock(self->heap));
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapLock((HANDLE)0xdeadbeef0000));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
}

/* 97: HeapSummary wants cb set; cbAllocated sums the live blocks. */
TEST_F(heap, summary)
{
	static const SIZE_T sizes[] = { 0, 1, 24, 123, 456, 5000, 70000, 2 << 20 };
	HEAP_SUMMARY sum;
	SIZE_T total = 0;
	void *ptrs[64];
	unsigned int i;

	memset(&sum, 0, sizeof(sum));
	sum.cb = sizeof(sum) - 1;
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapSummary(self->heap, 0, &sum));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	sum.cb = 0;
	EXPECT_FALSE(HeapSummary(self->heap, 0, &sum));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());

	for (i = 0; i < 64; i++) {
		ptrs[i] = HeapAlloc(self->heap, 0, sizes[i % 8]);
		ASSERT_NE(NULL, ptrs[i]);
		total += sizes[i % 8];
	}
	memset(&sum, 0xcc, sizeof(sum));
	sum.cb = sizeof(sum);
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(HeapSummary(self->heap, 0, &sum));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(sizeof(sum), sum.cb);
	EXPECT_EQ(total, sum.cbAllocated);
	EXPECT_LE(total, sum.cbCommitted);
	EXPECT_LE(sum.cbCommitted, sum.cbReserved);
	EXPECT_LE(sum.cbReserved, sum.cbMaxReserve);
	for (i = 0; i < 64; i += 2) {
		EXPECT_TRUE(HeapFree(self->heap, 0, ptrs[i]));
		total -= sizes[i % 8];
	}
	EXPECT_TRUE(HeapSummary(self->heap, 0, &sum));
	EXPECT_EQ(total, sum.cbAllocated);
}

/*
 * 98: HeapWalk of a new heap: its region, its one free block, its
 * uncommitted range, then ERROR_NO_MORE_ITEMS; large blocks come last.
 */
TEST_F(heap, walk_layout)
{
	PROCESS_HEAP_ENTRY e[16], before[16];
	void *p, *q;
	DWORD err;
	int n;

	n = walk(self->heap, e, 16, &err);
	EXPECT_EQ(ERROR_NO_MORE_ITEMS, err);
	ASSERT_EQ(3, n);
	EXPECT_EQ(PROCESS_HEAP_REGION, e[0].wFlags);
	EXPECT_EQ(self->heap, e[0].lpData);
	EXPECT_GE(0x1000, e[0].cbData);
	EXPECT_EQ(0, e[0].cbOverhead);
	EXPECT_EQ(0, e[0].iRegionIndex);
	EXPECT_EQ(0x400 * sizeof(void *), e[0].Region.dwCommittedSize);
	EXPECT_EQ(0x10000 - e[0].Region.dwCommittedSize,
		  e[0].Region.dwUnCommittedSize);
	EXPECT_EQ((char *)e[0].lpData + e[0].cbData + 2 * sizeof(void *),
		  e[0].Region.lpFirstBlock);
	EXPECT_EQ((char *)e[2].lpData + e[2].cbData, e[0].Region.lpLastBlock);

	EXPECT_EQ(0, e[1].wFlags);
	EXPECT_NE(NULL, e[1].lpData);
	EXPECT_NE(0, e[1].cbData);
	EXPECT_NE(0, e[1].cbOverhead);
	EXPECT_EQ(0, e[1].iRegionIndex);

	EXPECT_EQ(PROCESS_HEAP_UNCOMMITTED_RANGE, e[2].wFlags);
	EXPECT_EQ((char *)e[0].lpData + e[0].Region.dwCommittedSize,
		  e[2].lpData);
	EXPECT_EQ((char *)e[1].lpData + e[1].cbData + 2 * e[1].cbOverhead,
		  e[2].lpData);
	EXPECT_EQ(e[0].Region.dwUnCommittedSize, e[2].cbData);
	EXPECT_EQ(0, e[2].cbOverhead);
	EXPECT_EQ(0, e[2].iRegionIndex);
	memcpy(before, e, sizeof(e));

	/* Large blocks: after the regions, busy, in region 64. */
	p = HeapAlloc(self->heap, HEAP_ZERO_MEMORY, 5 * A);
	ASSERT_NE(NULL, p);
	q = HeapAlloc(self->heap, HEAP_ZERO_MEMORY, 5 * A);
	ASSERT_NE(NULL, q);
	n = walk(self->heap, e, 16, &err);
	ASSERT_EQ(5, n);
	EXPECT_EQ(0, memcmp(before, e, 3 * sizeof(e[0])));
	EXPECT_EQ(PROCESS_HEAP_ENTRY_BUSY, e[3].wFlags);
	EXPECT_EQ(p, e[3].lpData);
	EXPECT_EQ(5 * A, e[3].cbData);
	EXPECT_EQ(64, e[3].iRegionIndex);
	EXPECT_EQ(PROCESS_HEAP_ENTRY_BUSY, e[4].wFlags);
	EXPECT_EQ(q, e[4].lpData);
	EXPECT_TRUE(HeapFree(self->heap, 0, q));
	EXPECT_TRUE(HeapFree(self->heap, 0, p));
	n = walk(self->heap, e, 16, &err);
	ASSERT_EQ(3, n);
	EXPECT_EQ(0, memcmp(before, e, 3 * sizeof(e[0])));

	/* Small blocks. */
	p = HeapAlloc(self->heap, HEAP_ZERO_MEMORY, 123);
	ASSERT_NE(NULL, p);
	n = walk(self->heap, e, 16, &err);
	ASSERT_EQ(4, n);
	EXPECT_EQ(0, memcmp(before, e, sizeof(e[0])));
	EXPECT_EQ(PROCESS_HEAP_ENTRY_BUSY, e[1].wFlags);
	EXPECT_EQ(p, e[1].lpData);
	EXPECT_EQ(123, e[1].cbData);
	EXPECT_NE(0, e[1].cbOverhead);
	EXPECT_EQ(0, e[2].wFlags);
	EXPECT_EQ((char *)e[1].lpData + e[1].cbData + e[1].cbOverhead +
		  2 * sizeof(void *), e[2].lpData);
	EXPECT_EQ(PROCESS_HEAP_UNCOMMITTED_RANGE, e[3].wFlags);
	EXPECT_EQ((char *)e[2].lpData + e[2].cbData + 2 * e[2].cbOverhead,
		  e[3].lpData);

	q = HeapAlloc(self->heap, HEAP_ZERO_MEMORY, 456);
	ASSERT_NE(NULL, q);
	n = walk(self->heap, e, 16, &err);
	ASSERT_EQ(5, n);
	EXPECT_EQ(PROCESS_HEAP_ENTRY_BUSY, e[2].wFlags);
	EXPECT_EQ(q, e[2].lpData);
	EXPECT_EQ(456, e[2].cbData);
	EXPECT_NE(0, e[2].cbOverhead);
	EXPECT_EQ(0, e[3].wFlags);
	EXPECT_EQ(PROCESS_HEAP_UNCOMMITTED_RANGE, e[4].wFlags);
	EXPECT_TRUE(HeapFree(self->heap, 0, q));
	EXPECT_TRUE(HeapFree(self->heap, 0, p));

	/* Errors: no entry; an lpData that is nothing of the heap. */
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapWalk(self->heap, NULL));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	memset(e, 0, sizeof(e[0]));
	e[0].lpData = (void *)0xdeadbe00;
	EXPECT_FALSE(HeapWalk(self->heap, e));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(HeapWalk((HANDLE)0xdeadbeef0000, e));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
}

/* HeapCompact: the largest free block; nothing else changes. */
TEST_F(heap, compact)
{
	SIZE_T largest;
	void *p;

	SetLastError(UNTOUCHED);
	largest = HeapCompact(self->heap, 0);
	EXPECT_LT(0x1000, largest);
	EXPECT_EQ(UNTOUCHED, GetLastError());
	p = HeapAlloc(self->heap, 0, largest);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(HeapFree(self->heap, 0, p));
	SetLastError(UNTOUCHED);
	EXPECT_EQ(0, HeapCompact((HANDLE)0xdeadbeef0000, 0));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
}

/*
 * HeapCompact releasing the newest sub-heap leaves the older ones in the
 * heap: a sub-heap added afterwards does not hide them from HeapWalk, and
 * HeapDestroy still releases them.
 */
TEST_F(heap, compact_keeps_older_subheaps)
{
	char *old, *newest, *added;
	PROCESS_HEAP_ENTRY e;
	bool seen = false;
	void *base;

	old = HeapAlloc(self->heap, 0, 0x80000);
	ASSERT_NE(NULL, old);
	base = query_base(old);
	ASSERT_NE(self->heap, base);
	newest = HeapAlloc(self->heap, 0, 0xc0000);
	ASSERT_NE(NULL, newest);
	ASSERT_NE(base, query_base(newest));
	ASSERT_NE(self->heap, query_base(newest));
	EXPECT_TRUE(HeapFree(self->heap, 0, newest));
	HeapCompact(self->heap, 0);
	EXPECT_EQ(MEM_FREE, query_state(newest));
	added = HeapAlloc(self->heap, 0, 0xc0000);
	ASSERT_NE(NULL, added);
	memset(&e, 0, sizeof(e));
	while (HeapWalk(self->heap, &e))
		if (e.lpData == old && (e.wFlags & PROCESS_HEAP_ENTRY_BUSY))
			seen = true;
	EXPECT_TRUE(seen);
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
	EXPECT_TRUE(HeapDestroy(self->heap));
	self->heap = NULL;
	EXPECT_EQ(MEM_FREE, query_state(base));
	EXPECT_EQ(MEM_FREE, query_state(added));
}

/* GetProcessHeap: one heap, created once, from any thread. */
static void *process_heap_thread(void *arg)
{
	void *p = HeapAlloc(GetProcessHeap(), 0, 32);

	HeapFree(GetProcessHeap(), 0, p);
	return GetProcessHeap();
}

TEST_F(heap, process_heap)
{
	HANDLE ph = GetProcessHeap();
	pthread_t t;
	void *ret, *p;

	ASSERT_NE(NULL, ph);
	EXPECT_EQ(0, (uintptr_t)ph & 0xffff);
	EXPECT_EQ(ph, GetProcessHeap());
	ASSERT_EQ(0, pthread_create(&t, NULL, process_heap_thread, NULL));
	ASSERT_EQ(0, pthread_join(t, &ret));
	EXPECT_EQ(ph, ret);
	p = HeapAlloc(ph, HEAP_ZERO_MEMORY, 100);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(all_zero(p, 100));
	EXPECT_TRUE(HeapValidate(ph, 0, p));
	EXPECT_TRUE(HeapFree(ph, 0, p));
	EXPECT_TRUE(HeapValidate(ph, 0, NULL));
}

/* A forked child has its own process heap; its parent's heaps are gone. */
TEST_F(heap, fork_child)
{
	char *p = HeapAlloc(GetProcessHeap(), 0, 64);
	int status;
	pid_t pid;

	ASSERT_NE(NULL, p);
	strcpy(p, "parent");
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		HANDLE heaps[8];
		char *q;

		if (GetProcessHeaps(8, heaps) != 1 || heaps[0] != GetProcessHeap())
			_exit(1);
		if (HeapValidate(GetProcessHeap(), 0, p))
			_exit(2);
		q = HeapAlloc(GetProcessHeap(), 0, 64);
		if (!q || !HeapFree(GetProcessHeap(), 0, q))
			_exit(3);
		if (HeapDestroy(self->heap))
			_exit(4);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_STREQ("parent", p);
	EXPECT_TRUE(HeapFree(GetProcessHeap(), 0, p));
}

/* HEAP_CREATE_ENABLE_EXECUTE: blocks can hold code. */
TEST_F(heap, enable_execute)
{
	MEMORY_BASIC_INFORMATION mbi;
	HANDLE h = HeapCreate(HEAP_CREATE_ENABLE_EXECUTE, 0, 0);
	unsigned char *code, *big;

	ASSERT_NE(NULL, h);
	ASSERT_EQ(sizeof(mbi), VirtualQuery(h, &mbi, sizeof(mbi)));
	EXPECT_EQ(PAGE_EXECUTE_READWRITE, mbi.Protect);
	code = HeapAlloc(h, 0, 16);
	ASSERT_NE(NULL, code);
	code[0] = 0xb8;				/* mov eax, 42 */
	memcpy(code + 1, &(int){ 42 }, 4);
	code[5] = 0xc3;				/* ret */
	EXPECT_EQ(42, ((int (*)(void))code)());
	big = HeapAlloc(h, 0, 2 << 20);
	ASSERT_NE(NULL, big);
	ASSERT_EQ(sizeof(mbi), VirtualQuery(big, &mbi, sizeof(mbi)));
	EXPECT_EQ(PAGE_EXECUTE_READWRITE, mbi.Protect);
	EXPECT_TRUE(HeapDestroy(h));

	ASSERT_EQ(sizeof(mbi), VirtualQuery(self->heap, &mbi, sizeof(mbi)));
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
}

/* A pseudo-random generator, so that runs repeat. */
static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static SIZE_T random_size(uint64_t *s)
{
	unsigned int r = rng(s) % 1000;

	if (r < 700)
		return rng(s) % 257;
	if (r < 950)
		return rng(s) % 16385;
	if (r < 995)
		return rng(s) % 0x40000;
	return 0xff000 + rng(s) % 0x100000;
}

static unsigned char pattern(unsigned int slot, SIZE_T i)
{
	return (unsigned char)(slot * 31 + i * 7 + (i >> 8));
}

/* What fill() writes: all of a small block, the ends and every 1 KiB of a big one. */
static SIZE_T fill_step(SIZE_T i, SIZE_T size)
{
	return size > 4096 && i >= 256 && i < size - 256 ? 1024 : 1;
}

static void fill(unsigned char *p, SIZE_T size, unsigned int slot)
{
	SIZE_T i;

	for (i = 0; i < size; i += fill_step(i, size))
		p[i] = pattern(slot, i);
}

/* Check what fill(p, size, slot) wrote below @limit. */
static bool check_below(const unsigned char *p, SIZE_T size, SIZE_T limit,
			unsigned int slot)
{
	SIZE_T i;

	for (i = 0; i < size && i < limit; i += fill_step(i, size))
		if (p[i] != pattern(slot, i))
			return false;
	return true;
}

static bool check(const unsigned char *p, SIZE_T size, unsigned int slot)
{
	return check_below(p, size, size, slot);
}

#define NSLOTS	3000

/* Thousands of blocks of random sizes: contents, sizes, HeapValidate. */
TEST_F_TIMEOUT(heap, random_blocks, 300)
{
	static unsigned char *ptr[NSLOTS];
	static SIZE_T size[NSLOTS];
	uint64_t seed = 0x1234567;
	unsigned int i, slot;
	SIZE_T n;

	memset(ptr, 0, sizeof(ptr));
	for (i = 0; i < 30000; i++) {
		slot = rng(&seed) % NSLOTS;
		if (ptr[slot]) {
			ASSERT_EQ(size[slot], HeapSize(self->heap, 0, ptr[slot]));
			ASSERT_TRUE(check(ptr[slot], size[slot], slot))
				TH_LOG("slot %u size %zu", slot, size[slot]);
		}
		switch (rng(&seed) % 3) {
		case 0:
			if (ptr[slot])
				ASSERT_TRUE(HeapFree(self->heap, 0, ptr[slot]));
			ptr[slot] = NULL;
			break;
		case 1:
			if (!ptr[slot])
				break;
			n = random_size(&seed);
			ptr[slot] = HeapReAlloc(self->heap, 0, ptr[slot], n);
			ASSERT_NE(NULL, ptr[slot]);
			ASSERT_TRUE(check_below(ptr[slot], size[slot], n, slot))
				TH_LOG("slot %u size %zu to %zu", slot, size[slot], n);
			size[slot] = n;
			fill(ptr[slot], n, slot);
			break;
		default:
			if (ptr[slot])
				HeapFree(self->heap, 0, ptr[slot]);
			size[slot] = random_size(&seed);
			ptr[slot] = HeapAlloc(self->heap, 0, size[slot]);
			ASSERT_NE(NULL, ptr[slot]);
			EXPECT_EQ(0, (uintptr_t)ptr[slot] & 15);
			fill(ptr[slot], size[slot], slot);
			break;
		}
		if (i % 10000 == 9999)
			ASSERT_TRUE(HeapValidate(self->heap, 0, NULL));
	}
	for (slot = 0; slot < NSLOTS; slot++) {
		if (!ptr[slot])
			continue;
		ASSERT_TRUE(check(ptr[slot], size[slot], slot));
		ASSERT_TRUE(HeapFree(self->heap, 0, ptr[slot]));
	}
	ASSERT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/*
 * Front-end runs filled to their last block, in classes of 16, 1024, 4096
 * and 16384 bytes, each over more than 16 MiB so that runs are placed at
 * every offset in a MiB (where a run's metadata sits depends on it): no
 * block overlaps another or the metadata, every size and byte is kept,
 * HeapWalk reports each block once, and the runs empty and fill again.
 */
#define FILL_BIG	17000
#define FILL_SMALL	8
#define FILL_N		(FILL_BIG * (FILL_SMALL + 1))

struct filled {
	unsigned char *p;
	SIZE_T size;
};

static int filled_cmp(const void *a, const void *b)
{
	const struct filled *x = a, *y = b;

	return x->p < y->p ? -1 : x->p > y->p;
}

static SIZE_T filled_size(unsigned int i)
{
	if (i % 144 == 1)
		return 16000;
	if (i % 24 == 1)
		return 4000;
	return i % (FILL_SMALL + 1) ? 16 : 1008;
}

static int fill_runs(HANDLE heap, struct filled *blk, unsigned int round)
{
	unsigned int i;

	for (i = 0; i < FILL_N; i++) {
		blk[i].size = filled_size(i);
		blk[i].p = HeapAlloc(heap, 0, blk[i].size);
		if (!blk[i].p)
			return -1;
		fill(blk[i].p, blk[i].size, i + round);
	}
	return 0;
}

TEST_F_TIMEOUT(heap, runs_filled, 300)
{
	static struct filled blk[FILL_N];
	unsigned int i, busy = 0, lo, hi, mid;
	PROCESS_HEAP_ENTRY e;

	ASSERT_EQ(0, fill_runs(self->heap, blk, 0));
	ASSERT_TRUE(HeapValidate(self->heap, 0, NULL));
	for (i = 0; i < FILL_N; i++) {
		ASSERT_EQ(blk[i].size, HeapSize(self->heap, 0, blk[i].p));
		ASSERT_TRUE(check(blk[i].p, blk[i].size, i)) TH_LOG("block %u", i);
	}

	/* Each busy entry is one of the blocks, with its size. */
	qsort(blk, FILL_N, sizeof(blk[0]), filled_cmp);
	for (i = 1; i < FILL_N; i++)
		ASSERT_LE(blk[i - 1].p + blk[i - 1].size, blk[i].p);
	memset(&e, 0, sizeof(e));
	while (HeapWalk(self->heap, &e)) {
		if (!(e.wFlags & PROCESS_HEAP_ENTRY_BUSY))
			continue;
		busy++;
		for (lo = 0, hi = FILL_N; lo < hi;) {
			mid = (lo + hi) / 2;
			if (blk[mid].p < (unsigned char *)e.lpData)
				lo = mid + 1;
			else
				hi = mid;
		}
		ASSERT_LT(lo, FILL_N) TH_LOG("busy entry %p not allocated", e.lpData);
		ASSERT_EQ(e.lpData, blk[lo].p);
		ASSERT_EQ(blk[lo].size, e.cbData);
	}
	EXPECT_EQ(ERROR_NO_MORE_ITEMS, GetLastError());
	EXPECT_EQ(FILL_N, busy);

	/* Every other block, then the rest: runs empty and go back. */
	for (i = 0; i < FILL_N; i += 2)
		ASSERT_TRUE(HeapFree(self->heap, 0, blk[i].p));
	ASSERT_TRUE(HeapValidate(self->heap, 0, NULL));
	for (i = 1; i < FILL_N; i += 2)
		ASSERT_TRUE(HeapFree(self->heap, 0, blk[i].p));
	ASSERT_TRUE(HeapValidate(self->heap, 0, NULL));

	ASSERT_EQ(0, fill_runs(self->heap, blk, 7));
	for (i = 0; i < FILL_N; i++) {
		ASSERT_TRUE(check(blk[i].p, blk[i].size, i + 7)) TH_LOG("block %u", i);
		ASSERT_TRUE(HeapFree(self->heap, 0, blk[i].p));
	}
	ASSERT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/*
 * Threads growing buffers step by step from 8 KiB to 3 MiB (through the
 * front end, the back end, sub-heaps of their own and large blocks),
 * shrinking and freeing them at random, while another thread validates
 * the heap: contents and sizes kept at every step.
 */
#define GROWERS		2
#define GROWN		4

struct grower {
	HANDLE heap;
	unsigned int id;
	int bad;
};

static void *grow_buffers(void *arg)
{
	struct grower *g = arg;
	unsigned char *buf[GROWN] = { NULL }, *q;
	SIZE_T size[GROWN] = { 0 }, n;
	uint64_t seed = 1234 + g->id;
	unsigned int i, k, slot;

	for (i = 0; i < 600; i++) {
		k = rng(&seed) % GROWN;
		slot = g->id * GROWN + k;
		if (!buf[k]) {
			size[k] = 0x2000 + rng(&seed) % 0x2000;
			buf[k] = HeapAlloc(g->heap, 0, size[k]);
			if (!buf[k]) {
				g->bad++;
				continue;
			}
			fill(buf[k], size[k], slot);
			continue;
		}
		if (!check(buf[k], size[k], slot) ||
		    HeapSize(g->heap, 0, buf[k]) != size[k])
			g->bad++;
		if (size[k] > 0x300000 || rng(&seed) % 16 == 0) {
			if (!HeapFree(g->heap, 0, buf[k]))
				g->bad++;
			buf[k] = NULL;
			continue;
		}
		n = rng(&seed) % 8 ? size[k] + size[k] / 4 + rng(&seed) % 64 :
				     size[k] / 3;
		q = HeapReAlloc(g->heap, 0, buf[k], n);
		if (!q || !check_below(q, size[k], n, slot)) {
			g->bad++;
			continue;
		}
		buf[k] = q;
		size[k] = n;
		fill(q, n, slot);
	}
	for (k = 0; k < GROWN; k++)
		if (buf[k] && !HeapFree(g->heap, 0, buf[k]))
			g->bad++;
	return NULL;
}

TEST_F_TIMEOUT(heap, threads_grow_buffers, 300)
{
	unsigned int i, busy = 0, running = GROWERS;
	bool joined[GROWERS] = { false };
	struct grower g[GROWERS];
	pthread_t t[GROWERS];
	PROCESS_HEAP_ENTRY e;

	for (i = 0; i < GROWERS; i++) {
		g[i] = (struct grower){ .heap = self->heap, .id = i };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, grow_buffers, &g[i]));
	}
	while (running) {
		EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
		for (i = 0; i < GROWERS; i++) {
			if (!joined[i] && !pthread_tryjoin_np(t[i], NULL)) {
				joined[i] = true;
				running--;
			}
		}
	}
	for (i = 0; i < GROWERS; i++)
		EXPECT_EQ(0, g[i].bad) TH_LOG("thread %u", i);
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
	memset(&e, 0, sizeof(e));
	while (HeapWalk(self->heap, &e))
		if ((e.wFlags & PROCESS_HEAP_ENTRY_BUSY) && e.cbData >= 0x2000)
			busy++;
	EXPECT_EQ(0, busy);
}

/*
 * HeapValidate while threads allocate and free front-end blocks without
 * the heap lock: a block changing between free and busy under the check is
 * not corruption. Sizes cover narrow and wide metadata classes.
 */
#define CHURNERS	2

struct churner {
	HANDLE heap;
	unsigned int id;
	int stop;
	int bad;
};

static void *churn_blocks(void *arg)
{
	static const SIZE_T sizes[] = { 24, 100, 1000, 1500, 3000, 12000 };
	struct churner *c = arg;
	void *p[16] = { NULL };
	uint64_t seed = 99 + c->id;
	unsigned int k;

	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		k = rng(&seed) % 16;
		if (p[k]) {
			if (!HeapFree(c->heap, 0, p[k]))
				c->bad++;
			p[k] = NULL;
		} else {
			p[k] = HeapAlloc(c->heap, 0, sizes[k % 6]);
			if (!p[k])
				c->bad++;
		}
	}
	for (k = 0; k < 16; k++)
		if (p[k] && !HeapFree(c->heap, 0, p[k]))
			c->bad++;
	return NULL;
}

TEST_F(heap, validate_while_threads_churn)
{
	struct churner c[CHURNERS];
	pthread_t t[CHURNERS];
	unsigned int i, invalid = 0;

	for (i = 0; i < CHURNERS; i++) {
		c[i] = (struct churner){ .heap = self->heap, .id = i };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, churn_blocks, &c[i]));
	}
	for (i = 0; i < 3000; i++)
		if (!HeapValidate(self->heap, 0, NULL))
			invalid++;
	for (i = 0; i < CHURNERS; i++) {
		__atomic_store_n(&c[i].stop, 1, __ATOMIC_RELAXED);
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, c[i].bad) TH_LOG("thread %u", i);
	}
	EXPECT_EQ(0, invalid);
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/*
 * HeapSetInformation(NULL, HeapOptimizeResources) compacts every heap while
 * other threads create, use and destroy theirs, a HEAP_NO_SERIALIZE one
 * included (its thread's own: optimizing all heaps must not compact it
 * behind that thread's back). It used to compact a heap that a HeapDestroy
 * was releasing, and crashed within a few hundred rounds.
 */
struct heap_cycler {
	unsigned int rounds;
	int stop;
	int bad;
};

static void *cycle_heaps(void *arg)
{
	struct heap_cycler *c = arg;
	HANDLE own = HeapCreate(HEAP_NO_SERIALIZE, 0, 0);
	void *p[40], *q;
	unsigned int i;
	HANDLE h;

	if (!own) {
		c->bad++;
		return NULL;
	}
	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		h = HeapCreate(0, 0, 0);
		if (!h) {
			c->bad++;
			break;
		}
		/* Past LFH_THRESHOLD: runs, depots and a thread cache. */
		for (i = 0; i < 40; i++) {
			p[i] = HeapAlloc(h, 0, i < 30 ? 48 : 70000);
			if (!p[i])
				c->bad++;
		}
		for (i = 0; i < 40; i += 2)
			if (!HeapFree(h, 0, p[i]))
				c->bad++;
		q = HeapAlloc(own, 0, 100 + c->rounds % 5000);
		if (!q || !HeapFree(own, 0, q))
			c->bad++;
		if (!HeapDestroy(h))
			c->bad++;
		c->rounds++;
	}
	if (!HeapValidate(own, 0, NULL) || !HeapDestroy(own))
		c->bad++;
	return NULL;
}

TEST_F_TIMEOUT(heap, optimize_while_destroying, 120)
{
	HEAP_OPTIMIZE_RESOURCES_INFORMATION opt = {
		.Version = HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION,
	};
	struct heap_cycler c[2] = { { 0 } };
	unsigned int i, failed = 0, optimized;
	time_t until = time(NULL) + 20;
	pthread_t t[2];

	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, cycle_heaps, &c[i]));
	/* Enough of both, or 20 s on a slow machine. */
	for (optimized = 0; (optimized < 2000 ||
	     c[0].rounds + c[1].rounds < 500) && time(NULL) < until;
	     optimized++)
		if (!HeapSetInformation(NULL, HeapOptimizeResources, &opt,
					sizeof(opt)))
			failed++;
	for (i = 0; i < 2; i++) {
		__atomic_store_n(&c[i].stop, 1, __ATOMIC_RELAXED);
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, c[i].bad) TH_LOG("thread %u", i);
	}
	EXPECT_EQ(0, failed);
	EXPECT_TRUE(HeapValidate(GetProcessHeap(), 0, NULL));
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/* Blocks allocated in one thread, freed in another. */
#define RING	256

struct ring {
	HANDLE heap;
	void *slot[RING];
	SIZE_T size[RING];
	unsigned int head, tail;	/* producer writes head, consumer tail */
	unsigned int count;
	int bad;
};

static void *producer(void *arg)
{
	struct ring *r = arg;
	uint64_t seed = 99;
	unsigned int i, h;
	SIZE_T n;
	void *p;

	for (i = 0; i < r->count; i++) {
		h = r->head;
		while (h - __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) == RING)
			sched_yield();
		n = rng(&seed) % 300;
		p = HeapAlloc(r->heap, 0, n);
		if (!p) {
			r->bad++;
			continue;
		}
		fill(p, n, h % RING);
		r->slot[h % RING] = p;
		r->size[h % RING] = n;
		__atomic_store_n(&r->head, h + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct ring *r = arg;
	unsigned int i, t;

	for (i = 0; i < r->count; i++) {
		t = r->tail;
		while (__atomic_load_n(&r->head, __ATOMIC_ACQUIRE) == t)
			sched_yield();
		if (!check(r->slot[t % RING], r->size[t % RING], t % RING) ||
		    HeapSize(r->heap, 0, r->slot[t % RING]) != r->size[t % RING] ||
		    !HeapFree(r->heap, 0, r->slot[t % RING]))
			r->bad++;
		__atomic_store_n(&r->tail, t + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

TEST_F_TIMEOUT(heap, cross_thread_free, 300)
{
	struct ring r = { .heap = self->heap, .count = 40000 };
	HEAP_SUMMARY sum = { .cb = sizeof(sum) };
	pthread_t pt, ct;

	ASSERT_EQ(0, pthread_create(&pt, NULL, producer, &r));
	ASSERT_EQ(0, pthread_create(&ct, NULL, consumer, &r));
	ASSERT_EQ(0, pthread_join(pt, NULL));
	ASSERT_EQ(0, pthread_join(ct, NULL));
	EXPECT_EQ(0, r.bad);
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
	/* Everything came back: a summary counts no live block. */
	EXPECT_TRUE(HeapSummary(self->heap, 0, &sum));
	EXPECT_EQ(0, sum.cbAllocated);
}

/* Threads trading blocks through a shared array (larson-style). */
struct trade {
	HANDLE heap;
	void *volatile *slots;
	unsigned int nslots, rounds, seed;
	int bad;
};

static void *trader(void *arg)
{
	struct trade *t = arg;
	uint64_t seed = t->seed;
	unsigned int i, s;
	SIZE_T n;
	void *p, *old;

	for (i = 0; i < t->rounds; i++) {
		s = rng(&seed) % t->nslots;
		n = 16 + rng(&seed) % 200;
		p = HeapAlloc(t->heap, 0, n);
		if (!p) {
			t->bad++;
			continue;
		}
		memset(p, (unsigned char)n, n);
		*(SIZE_T *)p = n;
		old = __atomic_exchange_n(&t->slots[s], p, __ATOMIC_ACQ_REL);
		if (old) {
			n = *(SIZE_T *)old;
			if (HeapSize(t->heap, 0, old) != n ||
			    ((unsigned char *)old)[n - 1] != (unsigned char)n ||
			    !HeapFree(t->heap, 0, old))
				t->bad++;
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(heap, cross_thread_trade, 300)
{
	static void *volatile slots[1000];
	struct trade t[4];
	pthread_t th[4];
	unsigned int i;

	for (i = 0; i < 4; i++) {
		t[i] = (struct trade){ .heap = self->heap, .slots = slots,
				       .nslots = 1000, .rounds = 20000,
				       .seed = i + 1 };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, trader, &t[i]));
	}
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, pthread_join(th[i], NULL));
		EXPECT_EQ(0, t[i].bad);
	}
	for (i = 0; i < 1000; i++)
		if (slots[i])
			EXPECT_TRUE(HeapFree(self->heap, 0, slots[i]));
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
}

/* A fixed heap filled to exhaustion, emptied, and filled the same again. */
static unsigned int fill_heap(HANDLE heap, void **ptrs, unsigned int max,
			      DWORD *err)
{
	uint64_t seed = 7;
	unsigned int n = 0;
	SIZE_T size;

	*err = 0;
	while (n < max) {
		size = 16 + rng(&seed) % 4000;
		SetLastError(UNTOUCHED);
		ptrs[n] = HeapAlloc(heap, 0, size);
		if (!ptrs[n]) {
			*err = GetLastError();
			break;
		}
		fill(ptrs[n], size, n);
		n++;
	}
	return n;
}

TEST_F_TIMEOUT(heap, fixed_heap_exhaustion, 120)
{
	static void *ptrs[4096];
	HANDLE heap = HeapCreate(0, 0, 0x100000);
	unsigned int n1, n2, i;
	SIZE_T largest;
	uint64_t seed = 3;
	DWORD err;
	void *p;

	ASSERT_NE(NULL, heap);
	n1 = fill_heap(heap, ptrs, 4096, &err);
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, err);
	EXPECT_LT(200, n1);
	EXPECT_TRUE(HeapValidate(heap, 0, NULL));
	/* Empty it in random order. */
	for (i = n1; i > 1; i--) {
		unsigned int j = rng(&seed) % i;

		p = ptrs[j];
		ptrs[j] = ptrs[i - 1];
		ptrs[i - 1] = p;
	}
	for (i = 0; i < n1; i++)
		ASSERT_TRUE(HeapFree(heap, 0, ptrs[i]));
	EXPECT_TRUE(HeapValidate(heap, 0, NULL));
	/*
	 * All of it free again: two blocks of half of it fit (one of all of
	 * it would be a large block, which fixed heaps refuse).
	 */
	p = HeapAlloc(heap, 0, 0x7f000);
	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, ptrs[0] = HeapAlloc(heap, 0, 0x7f000));
	EXPECT_TRUE(HeapFree(heap, 0, ptrs[0]));
	EXPECT_TRUE(HeapFree(heap, 0, p));
	largest = HeapCompact(heap, 0);
	EXPECT_LT(0x1000, largest);
	p = HeapAlloc(heap, 0, largest);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(HeapFree(heap, 0, p));
	n2 = fill_heap(heap, ptrs, 4096, &err);
	EXPECT_EQ(n1, n2);
	for (i = 0; i < n2; i++)
		ASSERT_TRUE(HeapFree(heap, 0, ptrs[i]));
	EXPECT_TRUE(HeapDestroy(heap));
}

/* HeapWalk lists every block allocated, with its size, and nothing more. */
TEST_F_TIMEOUT(heap, walk_matches_allocations, 120)
{
	static unsigned char *ptr[2000];
	static SIZE_T size[2000];
	static bool found[2000];
	PROCESS_HEAP_ENTRY e;
	uint64_t seed = 5;
	unsigned int i, busy = 0, lo, hi, mid;
	unsigned int order[2000];

	for (i = 0; i < 2000; i++) {
		size[i] = random_size(&seed);
		ptr[i] = HeapAlloc(self->heap, 0, size[i]);
		ASSERT_NE(NULL, ptr[i]);
	}
	for (i = 0; i < 2000; i += 3) {
		EXPECT_TRUE(HeapFree(self->heap, 0, ptr[i]));
		ptr[i] = NULL;
	}
	/* Sort indices by address for lookups. */
	for (i = 0; i < 2000; i++)
		order[i] = i;
	for (i = 1; i < 2000; i++) {
		unsigned int j = i, k = order[i];

		while (j && (uintptr_t)ptr[order[j - 1]] > (uintptr_t)ptr[k]) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = k;
	}
	memset(found, 0, sizeof(found));
	memset(&e, 0, sizeof(e));
	ASSERT_TRUE(HeapLock(self->heap));
	while (HeapWalk(self->heap, &e)) {
		if (!(e.wFlags & PROCESS_HEAP_ENTRY_BUSY))
			continue;
		EXPECT_EQ(0, e.wFlags & (PROCESS_HEAP_ENTRY_MOVEABLE |
					 PROCESS_HEAP_ENTRY_DDESHARE));
		busy++;
		for (lo = 0, hi = 2000; lo < hi;) {
			mid = (lo + hi) / 2;
			if ((uintptr_t)ptr[order[mid]] < (uintptr_t)e.lpData)
				lo = mid + 1;
			else
				hi = mid;
		}
		ASSERT_LT(lo, 2000) TH_LOG("busy entry %p not allocated", e.lpData);
		ASSERT_EQ(e.lpData, ptr[order[lo]]);
		EXPECT_EQ(size[order[lo]], e.cbData);
		EXPECT_FALSE(found[order[lo]]);
		found[order[lo]] = true;
	}
	EXPECT_EQ(ERROR_NO_MORE_ITEMS, GetLastError());
	ASSERT_TRUE(HeapUnlock(self->heap));
	for (i = 0; i < 2000; i++)
		EXPECT_EQ(ptr[i] != NULL, found[i]) TH_LOG("block %u", i);
	EXPECT_EQ(2000 - 667, busy);
}

/* Every winvm allocation of the process, by walking VirtualQuery. */
static unsigned int allocations(void **bases, unsigned int max)
{
	MEMORY_BASIC_INFORMATION mbi;
	unsigned int n = 0;
	SYSTEM_INFO si;
	char *p;

	GetSystemInfo(&si);
	for (p = si.lpMinimumApplicationAddress;
	     p < (char *)si.lpMaximumApplicationAddress &&
	     VirtualQuery(p, &mbi, sizeof(mbi)); p += mbi.RegionSize) {
		if (mbi.State != MEM_FREE && mbi.AllocationBase == p && n < max)
			bases[n++] = p;
	}
	return n;
}

/* HeapDestroy gives back every byte: segments, large blocks, metadata. */
TEST_F_TIMEOUT(heap, destroy_returns_everything, 120)
{
	static void *before[4096], *after[4096], *regions[256];
	unsigned int nb, na, nr = 0, i;
	PROCESS_HEAP_ENTRY e;
	uint64_t seed = 11;
	HANDLE heap;

	nb = allocations(before, 4096);
	heap = HeapCreate(0, 0, 0);
	ASSERT_NE(NULL, heap);
	for (i = 0; i < 3000; i++)
		ASSERT_NE(NULL, HeapAlloc(heap, 0, random_size(&seed)));
	memset(&e, 0, sizeof(e));
	while (HeapWalk(heap, &e))
		if (((e.wFlags & PROCESS_HEAP_REGION) || e.iRegionIndex == 64) &&
		    nr < 256)
			regions[nr++] = e.wFlags & PROCESS_HEAP_REGION ?
					e.lpData : (char *)e.lpData - 0x40;
	EXPECT_LT(3, nr);
	EXPECT_LT(nb + nr - 1, allocations(after, 4096));
	EXPECT_TRUE(HeapDestroy(heap));
	for (i = 0; i < nr; i++)
		EXPECT_EQ(MEM_FREE, query_state(regions[i])) TH_LOG("%p", regions[i]);
	na = allocations(after, 4096);
	ASSERT_EQ(nb, na);
	EXPECT_EQ(0, memcmp(before, after, nb * sizeof(void *)));
}

/* A thread's cache goes back when it exits; what it allocated stays good. */
static void *alloc_and_exit(void *arg)
{
	HANDLE heap = arg;
	void **ptrs = HeapAlloc(heap, 0, 100 * sizeof(void *));
	int i;

	for (i = 0; i < 100; i++)
		ptrs[i] = HeapAlloc(heap, 0, 40);
	for (i = 0; i < 50; i++)
		HeapFree(heap, 0, ptrs[i]);
	return ptrs;
}

TEST_F(heap, thread_exit)
{
	HEAP_SUMMARY sum = { .cb = sizeof(sum) };
	void **ptrs;
	pthread_t t;
	int i, round;

	for (round = 0; round < 4; round++) {
		ASSERT_EQ(0, pthread_create(&t, NULL, alloc_and_exit, self->heap));
		ASSERT_EQ(0, pthread_join(t, (void **)&ptrs));
		ASSERT_NE(NULL, ptrs);
		for (i = 50; i < 100; i++)
			EXPECT_TRUE(HeapFree(self->heap, 0, ptrs[i]));
		EXPECT_TRUE(HeapFree(self->heap, 0, ptrs));
	}
	EXPECT_TRUE(HeapValidate(self->heap, 0, NULL));
	EXPECT_TRUE(HeapSummary(self->heap, 0, &sum));
	EXPECT_EQ(0, sum.cbAllocated);
}

/*
 * Allocations from TLS destructors that run after libwinvm gave the
 * thread's caches back (its key was made first, so its destructor runs
 * first), while other threads take the slots over: each thread keeps to
 * its own blocks, and the process heap stays valid.
 */
static pthread_key_t late_key;
static int late_bad;

static void late_churn(unsigned int seed, int n)
{
	HANDLE ph = GetProcessHeap();
	unsigned char *p[64];
	int i, j, size;

	for (i = 0; i < n; i++) {
		size = 16 + (seed + i * 7) % 200;
		p[i] = HeapAlloc(ph, 0, size);
		if (!p[i]) {
			__atomic_add_fetch(&late_bad, 1, __ATOMIC_RELAXED);
			return;
		}
		memset(p[i], (seed + i) & 0xff, size);
	}
	for (i = 0; i < n; i++) {
		size = 16 + (seed + i * 7) % 200;
		for (j = 0; j < size; j++)
			if (p[i][j] != ((seed + i) & 0xff))
				__atomic_add_fetch(&late_bad, 1,
						   __ATOMIC_RELAXED);
		HeapFree(ph, 0, p[i]);
	}
}

/* Frees what the thread left, then allocates afresh. */
static void late_destructor(void *arg)
{
	void **left = arg;
	int i;

	for (i = 0; left[i]; i++)
		HeapFree(GetProcessHeap(), 0, left[i]);
	late_churn((uintptr_t)left[129], 64);
	HeapFree(GetProcessHeap(), 0, left);
}

static void *late_thread(void *arg)
{
	void **left = HeapAlloc(GetProcessHeap(), 0, 130 * sizeof(void *));
	int i;

	if (!left) {
		__atomic_add_fetch(&late_bad, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	for (i = 0; i < 128; i++) {
		left[i] = HeapAlloc(GetProcessHeap(), 0, 16 + i % 64);
		if (!left[i]) {
			__atomic_add_fetch(&late_bad, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	for (; i <= 128; i++)
		left[i] = NULL;
	left[129] = arg;
	late_churn((uintptr_t)arg, 64);
	pthread_setspecific(late_key, left);
	return NULL;
}

TEST_F_TIMEOUT(heap, exit_destructors, 120)
{
	pthread_t t[4];
	int round, i;

	ASSERT_EQ(0, pthread_key_create(&late_key, late_destructor));
	late_bad = 0;
	for (round = 0; round < 100; round++) {
		for (i = 0; i < 4; i++)
			ASSERT_EQ(0, pthread_create(&t[i], NULL, late_thread,
						    (void *)(uintptr_t)(round * 4 + i + 1)));
		for (i = 0; i < 4; i++)
			ASSERT_EQ(0, pthread_join(t[i], NULL));
	}
	EXPECT_EQ(0, late_bad);
	EXPECT_TRUE(HeapValidate(GetProcessHeap(), 0, NULL));
	pthread_key_delete(late_key);
}

TEST_HARNESS_MAIN
