// SPDX-License-Identifier: GPL-2.0-only
/*
 * libwinvm tests: Global* and Local*, memory status and the memory helpers,
 * through <windows.h>, case by case against the behaviour of Windows
 * (numbers refer to the cases of shared/spec/win32-memory.md, 1.11).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <windows.h>

#include "harness.h"
#include "win32_util.h"

_Static_assert(sizeof(MEMORYSTATUSEX) == 64, "MEMORYSTATUSEX size");
_Static_assert(offsetof(MEMORYSTATUSEX, dwMemoryLoad) == 4, "dwMemoryLoad");
_Static_assert(offsetof(MEMORYSTATUSEX, ullTotalPhys) == 8, "ullTotalPhys");
_Static_assert(offsetof(MEMORYSTATUSEX, ullAvailPhys) == 16, "ullAvailPhys");
_Static_assert(offsetof(MEMORYSTATUSEX, ullTotalPageFile) == 24,
	       "ullTotalPageFile");
_Static_assert(offsetof(MEMORYSTATUSEX, ullAvailPageFile) == 32,
	       "ullAvailPageFile");
_Static_assert(offsetof(MEMORYSTATUSEX, ullTotalVirtual) == 40,
	       "ullTotalVirtual");
_Static_assert(offsetof(MEMORYSTATUSEX, ullAvailVirtual) == 48,
	       "ullAvailVirtual");
_Static_assert(offsetof(MEMORYSTATUSEX, ullAvailExtendedVirtual) == 56,
	       "ullAvailExtendedVirtual");
_Static_assert(sizeof(MEMORYSTATUS) == 56, "MEMORYSTATUS size");
_Static_assert(offsetof(MEMORYSTATUS, dwTotalPhys) == 8, "dwTotalPhys");
_Static_assert(offsetof(MEMORYSTATUS, dwAvailVirtual) == 48, "dwAvailVirtual");
_Static_assert(GMEM_FIXED == 0 && GMEM_MOVEABLE == 2 && GMEM_NOCOMPACT == 0x10 &&
	       GMEM_NODISCARD == 0x20 && GMEM_ZEROINIT == 0x40 &&
	       GMEM_MODIFY == 0x80 && GMEM_DISCARDABLE == 0x100 &&
	       GMEM_NOT_BANKED == 0x1000 && GMEM_LOWER == 0x1000 &&
	       GMEM_SHARE == 0x2000 && GMEM_DDESHARE == 0x2000 &&
	       GMEM_NOTIFY == 0x4000 && GMEM_VALID_FLAGS == 0x7f72 &&
	       GMEM_INVALID_HANDLE == 0x8000 && GMEM_DISCARDED == 0x4000 &&
	       GMEM_LOCKCOUNT == 0xff && GHND == 0x42 && GPTR == 0x40,
	       "GMEM_* values");
_Static_assert(LMEM_FIXED == 0 && LMEM_MOVEABLE == 2 && LMEM_NOCOMPACT == 0x10 &&
	       LMEM_NODISCARD == 0x20 && LMEM_ZEROINIT == 0x40 &&
	       LMEM_MODIFY == 0x80 && LMEM_DISCARDABLE == 0xf00 &&
	       LMEM_VALID_FLAGS == 0xf72 && LMEM_INVALID_HANDLE == 0x8000 &&
	       LMEM_DISCARDED == 0x4000 && LMEM_LOCKCOUNT == 0xff &&
	       LHND == 0x42 && LPTR == 0x40 && NONZEROLHND == 2 &&
	       NONZEROLPTR == 0, "LMEM_* values");
_Static_assert(sizeof(HGLOBAL) == 8 && sizeof(UINT) == 4, "handle types");

#define INVALID_HANDLE	((HGLOBAL)(uintptr_t)(0xdeadbee0 + sizeof(void *)))
#define INVALID_PTR	((HGLOBAL)(uintptr_t)0xdeadbee0)

FIXTURE(global) {
	int unused;
};

FIXTURE_SETUP(global)
{
	if (access("/dev/winvm", F_OK))
		SETUP_SKIP("/dev/winvm not present: load winvm.ko");
}

FIXTURE_TEARDOWN(global)
{
}

/* 99: freeing NULL succeeds; reallocating it does not. */
TEST_F(global, null)
{
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, GlobalFree(NULL));
	EXPECT_EQ(NULL, LocalFree(NULL));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(NULL, GlobalReAlloc(NULL, 10, GMEM_MOVEABLE));
	EXPECT_EQ(NULL, LocalReAlloc(NULL, 10, LMEM_MOVEABLE));
}

/*
 * 100: 0x10000 moveable handles, then GlobalAlloc and LocalAlloc of one
 * more fail with ERROR_NOT_ENOUGH_MEMORY; fixed blocks still work.
 */
TEST_F(global, handle_limit)
{
	static HGLOBAL handles[0x10000];
	HGLOBAL h;
	unsigned int i;

	for (i = 0; i < 0x10000; i++) {
		handles[i] = GlobalAlloc(GMEM_MOVEABLE | GMEM_DISCARDABLE, 0);
		ASSERT_NE(NULL, handles[i]) TH_LOG("handle %u", i);
	}
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, GlobalAlloc(GMEM_MOVEABLE | GMEM_DISCARDABLE, 0));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, LocalAlloc(LMEM_MOVEABLE | LMEM_DISCARDABLE, 0));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, GlobalAlloc(GMEM_MOVEABLE, 100));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());

	h = GlobalAlloc(GMEM_DISCARDABLE, 0);
	ASSERT_NE(NULL, h);
	EXPECT_EQ(NULL, GlobalFree(h));
	h = LocalAlloc(LMEM_DISCARDABLE, 0);
	ASSERT_NE(NULL, h);
	EXPECT_EQ(NULL, LocalFree(h));

	for (i = 0; i < 0x10000; i++)
		ASSERT_EQ(NULL, GlobalFree(handles[i]));
	h = GlobalAlloc(GMEM_MOVEABLE, 10);
	ASSERT_NE(NULL, h);
	EXPECT_EQ(NULL, GlobalFree(h));
}

/*
 * 98: HeapWalk shows a moveable block's data as a plain busy block of the
 * process heap: never PROCESS_HEAP_ENTRY_MOVEABLE or _DDESHARE.
 */
TEST_F(global, walk_moveable)
{
	HGLOBAL h[2] = {
		GlobalAlloc(GMEM_MOVEABLE, 100),
		GlobalAlloc(GMEM_MOVEABLE | GMEM_DDESHARE, 3000),
	};
	PROCESS_HEAP_ENTRY e;
	unsigned int i, found = 0;
	char *p[2];

	for (i = 0; i < 2; i++) {
		ASSERT_NE(NULL, h[i]);
		p[i] = GlobalLock(h[i]);
		ASSERT_NE(NULL, p[i]);
	}
	memset(&e, 0, sizeof(e));
	ASSERT_TRUE(HeapLock(GetProcessHeap()));
	while (HeapWalk(GetProcessHeap(), &e)) {
		EXPECT_EQ(0, e.wFlags & (PROCESS_HEAP_ENTRY_MOVEABLE |
					 PROCESS_HEAP_ENTRY_DDESHARE));
		for (i = 0; i < 2; i++) {
			if (e.lpData != p[i])
				continue;
			found++;
			EXPECT_EQ(PROCESS_HEAP_ENTRY_BUSY, e.wFlags);
			EXPECT_LE(GlobalSize(h[i]), e.cbData);
		}
	}
	EXPECT_EQ(ERROR_NO_MORE_ITEMS, GetLastError());
	ASSERT_TRUE(HeapUnlock(GetProcessHeap()));
	EXPECT_EQ(2, found);
	for (i = 0; i < 2; i++) {
		SetLastError(UNTOUCHED);
		EXPECT_FALSE(GlobalUnlock(h[i]));
		EXPECT_EQ(NO_ERROR, GetLastError());
		EXPECT_EQ(NULL, GlobalFree(h[i]));
	}
}

/*
 * Moveable blocks' calls serialise on the process heap's lock, as on
 * Windows: the thread holding HeapLock(GetProcessHeap()) makes them while
 * another thread's GlobalAlloc(GMEM_MOVEABLE) waits for its HeapUnlock. A
 * handle-table lock of its own, which the waiting thread held while it
 * waited for the heap, deadlocked the holder's first call.
 */
struct lock_holder {
	HGLOBAL h;		/* in: a moveable block of 12 bytes */
	HGLOBAL other;		/* the waiting thread's block */
	int other_done;
	bool waited;		/* the other thread was still waiting */
	SIZE_T size;
	char *p;
	char *data;		/* the handle's first word, when locked */
	BOOL unlocked;
	HGLOBAL grown;
	UINT flags;
	int done;
};

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void *moveable_alloc(void *arg)
{
	struct lock_holder *l = arg;

	l->other = GlobalAlloc(GMEM_MOVEABLE, 100);
	__atomic_store_n(&l->other_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *lock_holder(void *arg)
{
	struct lock_holder *l = arg;
	pthread_t t;
	bool started;

	if (!HeapLock(GetProcessHeap()))
		return NULL;
	started = !pthread_create(&t, NULL, moveable_alloc, l);
	sleep_ms(300);
	l->waited = started &&
		    !__atomic_load_n(&l->other_done, __ATOMIC_ACQUIRE);
	l->size = GlobalSize(l->h);
	l->p = GlobalLock(l->h);
	l->data = *(char **)l->h;
	l->unlocked = GlobalUnlock(l->h);
	l->grown = GlobalReAlloc(l->h, 5000, GMEM_MOVEABLE);
	l->flags = GlobalFlags(l->h);
	HeapUnlock(GetProcessHeap());
	if (started)
		pthread_join(t, NULL);
	__atomic_store_n(&l->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

TEST_F_TIMEOUT(global, heap_lock_serialises, 60)
{
	struct lock_holder l = { .h = GlobalAlloc(GMEM_MOVEABLE, 12) };
	pthread_t t;
	int waited;

	ASSERT_NE(NULL, l.h);
	ASSERT_EQ(0, pthread_create(&t, NULL, lock_holder, &l));
	for (waited = 0; waited < 20000 &&
	     !__atomic_load_n(&l.done, __ATOMIC_ACQUIRE); waited += 10)
		sleep_ms(10);
	/* Deadlocked threads stay behind; the test's process ends them. */
	ASSERT_EQ(1, __atomic_load_n(&l.done, __ATOMIC_ACQUIRE));
	pthread_join(t, NULL);
	EXPECT_TRUE(l.waited);
	EXPECT_EQ(12, l.size);
	EXPECT_NE(NULL, l.p);
	EXPECT_EQ(l.data, l.p);
	EXPECT_FALSE(l.unlocked);
	EXPECT_EQ(l.h, l.grown);
	EXPECT_EQ(0, l.flags);
	EXPECT_EQ(5000, GlobalSize(l.h));
	ASSERT_NE(NULL, l.other);
	EXPECT_EQ(100, GlobalSize(l.other));
	EXPECT_EQ(NULL, GlobalFree(l.other));
	EXPECT_EQ(NULL, GlobalFree(l.h));
}

/*
 * 101: a moveable handle is 8 mod 16, its data 16-aligned and a block of
 * the process heap; the handle's first word is the data pointer; a fixed
 * block is a plain 16-aligned heap pointer. GlobalHandle maps back.
 */
TEST_F(global, handle_encoding)
{
	SIZE_T size;
	HGLOBAL h, fixed;
	char *data, *p;

	for (size = 1; size < 0x10000000; size <<= 5) {
		fixed = GlobalAlloc(GMEM_FIXED, size);
		ASSERT_NE(NULL, fixed);
		EXPECT_EQ(0, (uintptr_t)fixed & 15) TH_LOG("size %#zx", size);
		EXPECT_TRUE(HeapValidate(GetProcessHeap(), 0, fixed));
		EXPECT_EQ(fixed, GlobalHandle(fixed));
		EXPECT_EQ(fixed, GlobalLock(fixed));
		EXPECT_EQ(NULL, GlobalFree(fixed));

		h = GlobalAlloc(GMEM_MOVEABLE, size);
		ASSERT_NE(NULL, h);
		EXPECT_EQ(8, (uintptr_t)h & 15);
		EXPECT_NE(0, (uintptr_t)h & 8);
		EXPECT_FALSE(HeapValidate(GetProcessHeap(), 0, (char *)h - 8));
		data = *(char **)h;
		EXPECT_TRUE(HeapValidate(GetProcessHeap(), 0, data));
		EXPECT_EQ(size, HeapSize(GetProcessHeap(), 0, data));
		EXPECT_EQ(size, GlobalSize(h));
		p = GlobalLock(h);
		EXPECT_EQ(data, p);
		EXPECT_NE((char *)h, p);
		EXPECT_EQ(0, (uintptr_t)p & 15);
		EXPECT_EQ(h, GlobalHandle(p));
		EXPECT_EQ(h, GlobalHandle(h));
		EXPECT_EQ(h, LocalHandle(p));
		EXPECT_FALSE(GlobalUnlock(h));
		EXPECT_EQ(NULL, GlobalFree(h));
	}
	p = HeapAlloc(GetProcessHeap(), 0, 10);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(p, GlobalHandle(p));
	EXPECT_EQ(p, LocalHandle(p));
	EXPECT_TRUE(HeapFree(GetProcessHeap(), 0, p));
}

/*
 * 102: each lock counts, up to 0xff; GlobalFlags shows the count; the last
 * unlock returns FALSE with NO_ERROR, one more ERROR_NOT_LOCKED.
 */
static void lock_counts(struct __test_metadata *_metadata, bool global)
{
	HGLOBAL h = global ? GlobalAlloc(GMEM_MOVEABLE, 256) :
			     LocalAlloc(LMEM_MOVEABLE, 256);
	UINT (*flags)(HGLOBAL) = global ? GlobalFlags : LocalFlags;
	LPVOID (*lock)(HGLOBAL) = global ? GlobalLock : LocalLock;
	BOOL (*unlock)(HGLOBAL) = global ? GlobalUnlock : LocalUnlock;
	char *p, *q;
	int i;

	ASSERT_NE(NULL, h);
	EXPECT_EQ(0, flags(h));
	p = lock(h);
	ASSERT_NE(NULL, p);
	EXPECT_NE((char *)h, p);
	EXPECT_EQ(1, flags(h));
	q = lock(h);
	EXPECT_EQ(p, q);
	EXPECT_EQ(2, flags(h));
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(unlock(h));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(1, flags(h));
	EXPECT_FALSE(unlock(h));
	EXPECT_EQ(NO_ERROR, GetLastError());
	EXPECT_EQ(0, flags(h));
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(unlock(h));
	EXPECT_EQ(ERROR_NOT_LOCKED, GetLastError());

	/* The count saturates at 0xff, and unlocks from there. */
	for (i = 0; i < 0x105; i++)
		EXPECT_EQ(p, lock(h));
	EXPECT_EQ(GMEM_LOCKCOUNT, flags(h));
	for (i = 1; i < 0xff; i++)
		EXPECT_TRUE(unlock(h));
	EXPECT_FALSE(unlock(h));
	EXPECT_EQ(NO_ERROR, GetLastError());
	EXPECT_EQ(0, flags(h));
	EXPECT_EQ(NULL, global ? GlobalFree(h) : LocalFree(h));
}

TEST_F(global, lock_counts)
{
	lock_counts(_metadata, true);
	lock_counts(_metadata, false);
}

/*
 * 103: GlobalFlags: lock count | GMEM_DISCARDABLE | GMEM_DISCARDED |
 * GMEM_DDESHARE, nothing else; LocalFlags has LMEM_DISCARDABLE (0xf00).
 */
TEST_F(global, flags)
{
	static const UINT global_mixes[] = {
		GMEM_FIXED | GMEM_NOTIFY,
		GMEM_FIXED | GMEM_DISCARDABLE,
		GMEM_MOVEABLE | GMEM_NOTIFY,
		GMEM_MOVEABLE | GMEM_DDESHARE,
		GMEM_MOVEABLE | GMEM_NOT_BANKED,
		GMEM_MOVEABLE | GMEM_NODISCARD,
		GMEM_MOVEABLE | GMEM_DISCARDABLE,
		GMEM_MOVEABLE | GMEM_DDESHARE | GMEM_DISCARDABLE | GMEM_LOWER |
			GMEM_NOCOMPACT | GMEM_NODISCARD | GMEM_NOT_BANKED |
			GMEM_NOTIFY,
	};
	static const UINT local_mixes[] = {
		LMEM_FIXED,
		LMEM_FIXED | LMEM_DISCARDABLE,
		LMEM_MOVEABLE,
		LMEM_MOVEABLE | LMEM_NODISCARD,
		LMEM_MOVEABLE | LMEM_DISCARDABLE,
		LMEM_MOVEABLE | LMEM_DISCARDABLE | LMEM_NOCOMPACT |
			LMEM_NODISCARD,
	};
	unsigned int i;
	HGLOBAL h;

	h = GlobalAlloc(GMEM_MOVEABLE | GMEM_DISCARDABLE, 0);
	ASSERT_NE(NULL, h);
	EXPECT_EQ(GMEM_DISCARDED | GMEM_DISCARDABLE, GlobalFlags(h));
	EXPECT_EQ(0, GlobalSize(h));
	EXPECT_EQ(NULL, GlobalFree(h));
	h = GlobalAlloc(GMEM_MOVEABLE | GMEM_DISCARDABLE, 1);
	ASSERT_NE(NULL, h);
	EXPECT_EQ(GMEM_DISCARDABLE, GlobalFlags(h));
	EXPECT_EQ(NULL, GlobalFree(h));
	h = GlobalAlloc(GMEM_MOVEABLE | GMEM_DISCARDABLE | GMEM_DDESHARE, 1);
	ASSERT_NE(NULL, h);
	EXPECT_EQ(GMEM_DISCARDABLE | GMEM_DDESHARE, GlobalFlags(h));
	EXPECT_EQ(NULL, GlobalFree(h));
	for (i = 0; i < sizeof(global_mixes) / sizeof(global_mixes[0]); i++) {
		h = GlobalAlloc(global_mixes[i], 4);
		ASSERT_NE(NULL, h);
		/* Only those two bits, and exactly the ones asked for. */
		EXPECT_EQ(global_mixes[i] & GMEM_MOVEABLE ?
			  global_mixes[i] & (GMEM_DDESHARE | GMEM_DISCARDABLE) :
			  0, GlobalFlags(h))
			TH_LOG("flags %#x", global_mixes[i]);
		EXPECT_EQ(NULL, GlobalFree(h));
	}

	h = LocalAlloc(LMEM_MOVEABLE | LMEM_DISCARDABLE, 0);
	ASSERT_NE(NULL, h);
	EXPECT_EQ(LMEM_DISCARDED | LMEM_DISCARDABLE, LocalFlags(h));
	EXPECT_EQ(NULL, LocalFree(h));
	for (i = 0; i < sizeof(local_mixes) / sizeof(local_mixes[0]); i++) {
		h = LocalAlloc(local_mixes[i], 4);
		ASSERT_NE(NULL, h);
		EXPECT_EQ(local_mixes[i] & LMEM_MOVEABLE ?
			  local_mixes[i] & LMEM_DISCARDABLE : 0, LocalFlags(h))
			TH_LOG("flags %#x", local_mixes[i]);
		EXPECT_EQ(NULL, LocalFree(h));
	}
}

/* 104: a moveable block through sizes 0, 10, 0, 10; its size after free. */
static void moveable_sizes(struct __test_metadata *_metadata, bool global)
{
	HGLOBAL (*alloc)(UINT, SIZE_T) = global ? GlobalAlloc : LocalAlloc;
	HGLOBAL (*re)(HGLOBAL, SIZE_T, UINT) = global ? GlobalReAlloc :
							LocalReAlloc;
	SIZE_T (*size)(HGLOBAL) = global ? GlobalSize : LocalSize;
	HGLOBAL h, h2;

	h = alloc(GMEM_MOVEABLE, 0);
	ASSERT_NE(NULL, h);
	EXPECT_EQ(0, size(h));
	EXPECT_EQ(GMEM_DISCARDED, GlobalFlags(h));
	h2 = re(h, 10, GMEM_MOVEABLE);
	EXPECT_EQ(h, h2);
	EXPECT_LE(10, size(h));
	EXPECT_GE(16, size(h));
	h2 = re(h, 0, GMEM_MOVEABLE);
	EXPECT_EQ(h, h2);
	EXPECT_EQ(0, size(h));
	h2 = re(h, 10, GMEM_MOVEABLE);
	EXPECT_EQ(h, h2);
	EXPECT_LE(10, size(h));
	EXPECT_GE(16, size(h));
	EXPECT_EQ(NULL, global ? GlobalFree(h) : LocalFree(h));
	EXPECT_EQ(0, size(h));
}

TEST_F(global, moveable_sizes)
{
	moveable_sizes(_metadata, true);
	moveable_sizes(_metadata, false);
}

/*
 * 105: a freed moveable handle, and one that never was: every call fails
 * with ERROR_INVALID_HANDLE; GlobalUnlock still answers TRUE.
 */
static void bad_handle(struct __test_metadata *_metadata, HGLOBAL h,
		       bool global)
{
	SetLastError(UNTOUCHED);
	EXPECT_EQ(h, global ? GlobalFree(h) : LocalFree(h));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(GMEM_INVALID_HANDLE, global ? GlobalFlags(h) : LocalFlags(h));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(0, global ? GlobalSize(h) : LocalSize(h));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, global ? GlobalLock(h) : LocalLock(h));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(global, global ? GlobalUnlock(h) : LocalUnlock(h));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, global ? GlobalReAlloc(h, 0, GMEM_MOVEABLE) :
				 LocalReAlloc(h, 0, LMEM_MOVEABLE));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, global ? GlobalReAlloc(h, 10, GMEM_MOVEABLE) :
				 LocalReAlloc(h, 10, LMEM_MOVEABLE));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, global ? GlobalHandle(h) : LocalHandle(h));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
}

TEST_F(global, freed_and_invalid_handles)
{
	HGLOBAL h;

	h = GlobalAlloc(GMEM_MOVEABLE, 256);
	ASSERT_NE(NULL, h);
	ASSERT_EQ(NULL, GlobalFree(h));
	bad_handle(_metadata, h, true);
	bad_handle(_metadata, INVALID_HANDLE, true);
	h = LocalAlloc(LMEM_MOVEABLE, 256);
	ASSERT_NE(NULL, h);
	ASSERT_EQ(NULL, LocalFree(h));
	bad_handle(_metadata, h, false);
	bad_handle(_metadata, INVALID_HANDLE, false);
}

/* 106: a pointer that is no block: each call's own error. */
TEST_F(global, invalid_pointer)
{
	HGLOBAL p = INVALID_PTR;

	SetLastError(UNTOUCHED);
	EXPECT_EQ(p, GlobalFree(p));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(p, LocalFree(p));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, GlobalReAlloc(p, 0, GMEM_MOVEABLE));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, LocalReAlloc(p, 0, LMEM_MOVEABLE));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(GMEM_INVALID_HANDLE, GlobalFlags(p));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(LMEM_INVALID_HANDLE, LocalFlags(p));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(0, GlobalSize(p));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(0, LocalSize(p));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, GlobalLock(p));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, LocalLock(p));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(GlobalUnlock(p));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(LocalUnlock(p));
	EXPECT_EQ(ERROR_NOT_LOCKED, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, GlobalHandle(p));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, LocalHandle(p));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
}

/*
 * 107: a fixed block resizes only with GMEM_MOVEABLE, to a new fixed
 * block; GMEM_MODIFY succeeds and changes nothing.
 */
static void fixed_realloc(struct __test_metadata *_metadata, bool global)
{
	HGLOBAL (*re)(HGLOBAL, SIZE_T, UINT) = global ? GlobalReAlloc :
							LocalReAlloc;
	SIZE_T (*size)(HGLOBAL) = global ? GlobalSize : LocalSize;
	char *p, *q;

	p = global ? GlobalAlloc(GMEM_FIXED, 12) : LocalAlloc(LMEM_FIXED, 12);
	ASSERT_NE(NULL, p);
	memcpy(p, "hello world", 12);
	EXPECT_EQ(p, re(p, 11, GMEM_MODIFY));
	EXPECT_EQ(12, size(p));
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, re(p, 12, 0));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	EXPECT_EQ(p, re(p, 1 << 20, GMEM_MODIFY));
	EXPECT_EQ(12, size(p));
	q = re(p, 13, GMEM_MOVEABLE);
	ASSERT_NE(NULL, q);
	EXPECT_NE(p, q);
	EXPECT_EQ(0, (uintptr_t)q & 15);
	EXPECT_EQ(13, size(q));
	EXPECT_STREQ("hello world", q);
	EXPECT_EQ(q, global ? GlobalLock(q) : LocalLock(q));
	EXPECT_EQ(NULL, global ? GlobalFree(q) : LocalFree(q));
}

TEST_F(global, fixed_realloc)
{
	fixed_realloc(_metadata, true);
	fixed_realloc(_metadata, false);
}

/*
 * 108: GlobalReAlloc(fixed, 0, GMEM_MODIFY | GMEM_MOVEABLE) makes the
 * block moveable: a handle, same size and contents. LocalReAlloc does not.
 */
TEST_F(global, fixed_to_moveable)
{
	char *p, *data;
	HGLOBAL h;

	p = GlobalAlloc(GMEM_FIXED, 100);
	ASSERT_NE(NULL, p);
	strcpy(p, "kept");
	h = GlobalReAlloc(p, 0, GMEM_MODIFY | GMEM_MOVEABLE);
	ASSERT_NE(NULL, h);
	EXPECT_NE((HGLOBAL)p, h);
	EXPECT_EQ(8, (uintptr_t)h & 15);
	EXPECT_EQ(100, GlobalSize(h));
	data = GlobalLock(h);
	ASSERT_NE(NULL, data);
	EXPECT_NE((char *)h, data);
	EXPECT_STREQ("kept", data);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(GlobalUnlock(h));
	EXPECT_EQ(NO_ERROR, GetLastError());
	EXPECT_EQ(NULL, GlobalFree(h));

	p = LocalAlloc(LMEM_FIXED, 100);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(p, LocalReAlloc(p, 0, LMEM_MODIFY | LMEM_MOVEABLE));
	EXPECT_EQ(100, LocalSize(p));
	EXPECT_EQ(p, LocalLock(p));
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(LocalUnlock(p));
	EXPECT_EQ(ERROR_NOT_LOCKED, GetLastError());
	EXPECT_EQ(NULL, LocalFree(p));
}

/*
 * 109: a locked moveable block: GMEM_MOVEABLE moves its data; without
 * that flag it may only shrink in place; no discarding; GMEM_MODIFY changes
 * only discardability.
 */
static void locked_realloc(struct __test_metadata *_metadata, bool global)
{
	HGLOBAL (*re)(HGLOBAL, SIZE_T, UINT) = global ? GlobalReAlloc :
							LocalReAlloc;
	UINT discardable = global ? GMEM_DISCARDABLE : LMEM_DISCARDABLE;
	HGLOBAL h;
	char *p, *q;

	h = global ? GlobalAlloc(GMEM_MOVEABLE, 12) : LocalAlloc(LMEM_MOVEABLE, 12);
	ASSERT_NE(NULL, h);
	p = global ? GlobalLock(h) : LocalLock(h);
	ASSERT_NE(NULL, p);
	strcpy(p, "locked");
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, re(h, 512, 0));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	EXPECT_EQ(p, *(char **)h);
	EXPECT_EQ(12, global ? GlobalSize(h) : LocalSize(h));
	EXPECT_EQ(h, re(h, 512, GMEM_MOVEABLE));
	q = *(char **)h;
	EXPECT_NE(p, q);
	EXPECT_STREQ("locked", q);
	EXPECT_EQ(512, global ? GlobalSize(h) : LocalSize(h));
	EXPECT_EQ(1, global ? GlobalFlags(h) : LocalFlags(h));
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, re(h, 1024, 0));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
	EXPECT_EQ(h, re(h, 10, 0));
	EXPECT_EQ(q, *(char **)h);
	EXPECT_EQ(10, global ? GlobalSize(h) : LocalSize(h));
	EXPECT_EQ(NULL, re(h, 0, 0));
	EXPECT_EQ(NULL, re(h, 0, GMEM_MOVEABLE));
	EXPECT_EQ(NULL, re(h, 0, GMEM_MOVEABLE | discardable));
	EXPECT_EQ(NULL, re(h, 20, GMEM_MOVEABLE | discardable));
	EXPECT_EQ(10, global ? GlobalSize(h) : LocalSize(h));
	EXPECT_EQ(h, re(h, 0, GMEM_MODIFY));
	EXPECT_EQ(1, global ? GlobalFlags(h) : LocalFlags(h));
	EXPECT_EQ(h, re(h, 1000, GMEM_MODIFY | discardable));
	EXPECT_EQ(1 | discardable, global ? GlobalFlags(h) : LocalFlags(h));
	EXPECT_EQ(10, global ? GlobalSize(h) : LocalSize(h));
	EXPECT_STREQ("locked", *(char **)h);
	EXPECT_EQ(NULL, global ? GlobalFree(h) : LocalFree(h));
}

TEST_F(global, locked_realloc)
{
	locked_realloc(_metadata, true);
	locked_realloc(_metadata, false);
}

/*
 * 110: an unlocked moveable block moves on any resize; size 0 with
 * GMEM_MOVEABLE discards it; with GMEM_FIXED, or GMEM_DISCARDABLE without
 * GMEM_MODIFY, nothing happens.
 */
static void unlocked_realloc(struct __test_metadata *_metadata, bool global)
{
	HGLOBAL (*re)(HGLOBAL, SIZE_T, UINT) = global ? GlobalReAlloc :
							LocalReAlloc;
	UINT discardable = global ? GMEM_DISCARDABLE : LMEM_DISCARDABLE;
	HGLOBAL h;
	char *p;

	h = global ? GlobalAlloc(GMEM_MOVEABLE, 12) : LocalAlloc(LMEM_MOVEABLE, 12);
	ASSERT_NE(NULL, h);
	p = *(char **)h;
	strcpy(p, "moves");
	EXPECT_EQ(h, re(h, 512, 0));
	EXPECT_NE(p, *(char **)h);
	EXPECT_STREQ("moves", *(char **)h);
	p = *(char **)h;
	EXPECT_EQ(h, re(h, 600, GMEM_MOVEABLE));
	EXPECT_NE(p, *(char **)h);
	EXPECT_EQ(600, global ? GlobalSize(h) : LocalSize(h));
	EXPECT_EQ(NULL, re(h, 0, GMEM_FIXED));
	EXPECT_EQ(NULL, re(h, 100, GMEM_MOVEABLE | discardable));
	EXPECT_EQ(600, global ? GlobalSize(h) : LocalSize(h));
	EXPECT_EQ(h, re(h, 0, GMEM_MOVEABLE));
	EXPECT_EQ(0, global ? GlobalSize(h) : LocalSize(h));
	EXPECT_EQ(GMEM_DISCARDED, (global ? GlobalFlags(h) : LocalFlags(h)) &
				  GMEM_DISCARDED);
	EXPECT_EQ(NULL, *(char **)h);
	EXPECT_EQ(NULL, global ? GlobalFree(h) : LocalFree(h));
}

TEST_F(global, unlocked_realloc)
{
	unlocked_realloc(_metadata, true);
	unlocked_realloc(_metadata, false);
}

/* 111: GlobalAlloc(GMEM_FIXED, 0) has size 1; LocalAlloc(LMEM_FIXED, 0) 0. */
TEST_F(global, zero_size_fixed)
{
	HGLOBAL g = GlobalAlloc(GMEM_FIXED, 0), l = LocalAlloc(LMEM_FIXED, 0);

	ASSERT_NE(NULL, g);
	ASSERT_NE(NULL, l);
	EXPECT_EQ(1, GlobalSize(g));
	EXPECT_EQ(0, LocalSize(l));
	EXPECT_EQ(NULL, GlobalFree(g));
	EXPECT_EQ(NULL, LocalFree(l));
}

/*
 * 112: locking a discarded block fails with ERROR_DISCARDED; GMEM_ZEROINIT
 * blocks are zeroed, also through GlobalReAlloc.
 */
TEST_F(global, zeroinit_and_discarded)
{
	static const SIZE_T size = 100000;
	HGLOBAL h;
	char *p;

	h = GlobalAlloc(GMEM_MOVEABLE | GMEM_ZEROINIT, 0);
	ASSERT_NE(NULL, h);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, GlobalLock(h));
	EXPECT_EQ(ERROR_DISCARDED, GetLastError());
	EXPECT_EQ(NULL, GlobalFree(h));
	h = LocalAlloc(LMEM_MOVEABLE | LMEM_ZEROINIT, 0);
	ASSERT_NE(NULL, h);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, LocalLock(h));
	EXPECT_EQ(ERROR_DISCARDED, GetLastError());
	EXPECT_EQ(NULL, LocalFree(h));

	h = GlobalAlloc(GMEM_ZEROINIT, size);
	ASSERT_NE(NULL, h);
	EXPECT_LE(size, GlobalSize(h));
	EXPECT_EQ(h, GlobalLock(h));
	EXPECT_TRUE(all_zero(h, size));
	memset(h, 0x11, size);
	EXPECT_EQ(NULL, GlobalFree(h));

	h = GlobalAlloc(GHND, size);
	ASSERT_NE(NULL, h);
	p = GlobalLock(h);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(all_zero(p, size));
	memset(p, 0x22, 10);
	GlobalUnlock(h);
	EXPECT_EQ(h, GlobalReAlloc(h, 2 * size, GMEM_MOVEABLE | GMEM_ZEROINIT));
	EXPECT_LE(2 * size, GlobalSize(h));
	p = GlobalLock(h);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(0x22, p[9]);
	EXPECT_TRUE(all_zero(p + 10, 2 * size - 10));
	GlobalUnlock(h);
	EXPECT_EQ(NULL, GlobalFree(h));
}

/*
 * 113: GlobalDiscard fails on a locked block and discards it once
 * unlocked; LocalDiscard and GlobalDiscard of a fixed block return it.
 */
TEST_F(global, discard)
{
	HGLOBAL h;
	char *p;

	h = GlobalAlloc(GMEM_MOVEABLE, 100);
	ASSERT_NE(NULL, h);
	ASSERT_NE(NULL, GlobalLock(h));
	EXPECT_EQ(NULL, GlobalDiscard(h));
	EXPECT_EQ(100, GlobalSize(h));
	EXPECT_FALSE(GlobalUnlock(h));
	EXPECT_EQ(NO_ERROR, GetLastError());
	EXPECT_EQ(h, GlobalDiscard(h));
	EXPECT_EQ(0, GlobalSize(h));
	EXPECT_EQ(GMEM_DISCARDED, GlobalFlags(h));
	EXPECT_EQ(NULL, GlobalFree(h));

	h = LocalAlloc(LMEM_MOVEABLE, 100);
	ASSERT_NE(NULL, h);
	ASSERT_NE(NULL, LocalLock(h));
	EXPECT_EQ(NULL, LocalDiscard(h));
	EXPECT_EQ(100, LocalSize(h));
	EXPECT_FALSE(LocalUnlock(h));
	EXPECT_EQ(h, LocalDiscard(h));
	EXPECT_EQ(0, LocalSize(h));
	EXPECT_EQ(LMEM_DISCARDED, LocalFlags(h));
	EXPECT_EQ(NULL, LocalFree(h));

	p = LocalAlloc(LMEM_FIXED, 100);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(p, LocalDiscard(p));
	EXPECT_EQ(NULL, LocalFree(p));
	p = GlobalAlloc(GMEM_FIXED, 100);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(p, GlobalDiscard(p));
	EXPECT_EQ(NULL, GlobalFree(p));
}

/*
 * 114: a fixed block: GlobalUnlock TRUE, LocalUnlock FALSE with
 * ERROR_NOT_LOCKED; its handle is itself; its flags 0.
 */
TEST_F(global, fixed_calls)
{
	HGLOBAL g = GlobalAlloc(GMEM_FIXED, 100), l = LocalAlloc(LMEM_FIXED, 100);

	ASSERT_NE(NULL, g);
	ASSERT_NE(NULL, l);
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(GlobalUnlock(g));
	EXPECT_TRUE(GlobalUnlock(g));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_FALSE(LocalUnlock(l));
	EXPECT_EQ(ERROR_NOT_LOCKED, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(g, GlobalHandle(g));
	EXPECT_EQ(l, LocalHandle(l));
	EXPECT_EQ(0, GlobalFlags(g));
	EXPECT_EQ(0, LocalFlags(l));
	EXPECT_EQ(g, GlobalLock(g));
	EXPECT_EQ(l, LocalLock(l));
	EXPECT_EQ(100, GlobalSize(g));
	EXPECT_EQ(100, LocalSize(l));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(NULL, GlobalFree(g));
	EXPECT_EQ(NULL, LocalFree(l));
	/* Freed, it is no block any more. */
	SetLastError(UNTOUCHED);
	EXPECT_EQ(0, GlobalSize(g));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
}

/* A moveable block's data pointer stands for its handle. */
TEST_F(global, data_pointer)
{
	HGLOBAL h = GlobalAlloc(GMEM_MOVEABLE, 64);
	char *p;

	ASSERT_NE(NULL, h);
	p = GlobalLock(h);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(64, GlobalSize(p));
	EXPECT_EQ(1, GlobalFlags(p));
	EXPECT_FALSE(GlobalUnlock(p));
	EXPECT_EQ(0, GlobalFlags(h));
	EXPECT_EQ(NULL, GlobalFree(p));
	SetLastError(UNTOUCHED);
	EXPECT_EQ(GMEM_INVALID_HANDLE, GlobalFlags(h));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
}

static uint64_t meminfo(const char *name)
{
	unsigned long long kb = 0;
	char line[128];
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, name, strlen(name)))
			sscanf(line + strlen(name), " %llu", &kb);
	if (f)
		fclose(f);
	return (uint64_t)kb * 1024;
}

/*
 * 115: GlobalMemoryStatusEx wants dwLength set; GlobalMemoryStatus never
 * touches the last error; the virtual size spans the application
 * addresses; GetPhysicallyInstalledSystemMemory(NULL) fails.
 */
TEST_F(global, memory_status)
{
	struct rlimit rl, limited;
	MEMORYSTATUSEX ex;
	MEMORYSTATUS ms;
	ULONGLONG kb;
	SYSTEM_INFO si;

	memset(&ex, 0, sizeof(ex));
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(GlobalMemoryStatusEx(&ex));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	ex.dwLength = sizeof(ex) + 1;
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(GlobalMemoryStatusEx(&ex));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	memset(&ms, 0xcc, sizeof(ms));
	ms.dwLength = 0;
	SetLastError(UNTOUCHED);
	GlobalMemoryStatus(&ms);
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(sizeof(ms), ms.dwLength);

	memset(&ex, 0xcc, sizeof(ex));
	ex.dwLength = sizeof(ex);
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(GlobalMemoryStatusEx(&ex));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(sizeof(ex), ex.dwLength);
	GetSystemInfo(&si);
	EXPECT_EQ((uintptr_t)si.lpMaximumApplicationAddress -
		  (uintptr_t)si.lpMinimumApplicationAddress + 1,
		  ex.ullTotalVirtual);
	EXPECT_LT(ex.ullAvailVirtual, ex.ullTotalVirtual);
	EXPECT_EQ(0, ex.ullAvailExtendedVirtual);
	EXPECT_LE(ex.ullTotalPhys, meminfo("MemTotal:"));
	EXPECT_LT(0, ex.ullTotalPhys);
	EXPECT_LE(ex.ullAvailPhys, ex.ullTotalPhys);
	EXPECT_LE(ex.ullAvailPageFile, ex.ullTotalPageFile);
	EXPECT_LE(ex.ullTotalPhys, ex.ullTotalPageFile);
	EXPECT_EQ((ex.ullTotalPhys - ex.ullAvailPhys) / (ex.ullTotalPhys / 100),
		  ex.dwMemoryLoad);
	EXPECT_GE(100, ex.dwMemoryLoad);

	GlobalMemoryStatus(&ms);
	EXPECT_EQ(ex.ullTotalPhys, ms.dwTotalPhys);
	EXPECT_EQ(ex.ullTotalPageFile, ms.dwTotalPageFile);
	EXPECT_EQ(ex.ullTotalVirtual, ms.dwTotalVirtual);

	/* A lower RLIMIT_AS is what the process can have. */
	ASSERT_EQ(0, getrlimit(RLIMIT_AS, &rl));
	limited = rl;
	limited.rlim_cur = 1ULL << 40;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < limited.rlim_cur)
		limited.rlim_cur = rl.rlim_max;
	ASSERT_EQ(0, setrlimit(RLIMIT_AS, &limited));
	EXPECT_TRUE(GlobalMemoryStatusEx(&ex));
	EXPECT_EQ(limited.rlim_cur, ex.ullTotalVirtual);
	EXPECT_LT(ex.ullAvailVirtual, ex.ullTotalVirtual);
	ASSERT_EQ(0, setrlimit(RLIMIT_AS, &rl));

	SetLastError(UNTOUCHED);
	EXPECT_FALSE(GetPhysicallyInstalledSystemMemory(NULL));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	kb = 0;
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(GetPhysicallyInstalledSystemMemory(&kb));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_LE(ex.ullTotalPhys / 1024, kb);
	EXPECT_LE(meminfo("MemTotal:") / 1024, kb);
}

/* CopyMemory and friends are the C library's; SecureZeroMemory zeroes. */
TEST_F(global, memory_helpers)
{
	char buf[64], other[64];
	volatile char secret[32];

	memset(buf, 'x', sizeof(buf));
	CopyMemory(buf, "abcdef", 6);
	EXPECT_EQ(0, memcmp(buf, "abcdefxx", 8));
	MoveMemory(buf + 2, buf, 6);
	EXPECT_EQ(0, memcmp(buf, "ababcdef", 8));
	FillMemory(buf, 4, 'z');
	EXPECT_EQ(0, memcmp(buf, "zzzzcdef", 8));
	ZeroMemory(buf + 1, 2);
	EXPECT_EQ(0, memcmp(buf, "z\0\0zcdef", 8));
	EXPECT_TRUE(EqualMemory(buf, "z\0\0z", 4));
	memset((char *)secret, 0x5a, sizeof(secret));
	EXPECT_EQ((void *)secret, SecureZeroMemory((void *)secret,
						   sizeof(secret)));
	EXPECT_TRUE(all_zero((void *)secret, sizeof(secret)));

	memset(buf, 1, sizeof(buf));
	memset(other, 1, sizeof(other));
	EXPECT_EQ(64, RtlCompareMemory(buf, other, 64));
	EXPECT_EQ(0, RtlCompareMemory(buf, other, 0));
	other[37] = 2;
	EXPECT_EQ(37, RtlCompareMemory(buf, other, 64));
	EXPECT_EQ(36, RtlCompareMemory(buf + 1, other + 1, 63));
	EXPECT_EQ(20, RtlCompareMemory(buf, other, 20));
	other[0] = 0;
	EXPECT_EQ(0, RtlCompareMemory(buf, other, 64));
}

/* Global* fixed blocks are process-heap blocks, freed in any order. */
TEST_F(global, many_blocks)
{
	static HGLOBAL h[4000];
	unsigned int i;
	char *p;

	for (i = 0; i < 4000; i++) {
		h[i] = i % 2 ? GlobalAlloc(GMEM_MOVEABLE, i % 300 + 1) :
			       LocalAlloc(LMEM_FIXED, i % 300 + 1);
		ASSERT_NE(NULL, h[i]);
		p = i % 2 ? GlobalLock(h[i]) : h[i];
		memset(p, (char)i, i % 300 + 1);
		if (i % 2)
			GlobalUnlock(h[i]);
	}
	for (i = 0; i < 4000; i++) {
		p = i % 2 ? GlobalLock(h[i]) : h[i];
		ASSERT_EQ((char)i, p[i % 300]);
		EXPECT_EQ(i % 300 + 1, GlobalSize(h[i]));
		if (i % 2)
			GlobalUnlock(h[i]);
	}
	for (i = 0; i < 4000; i += 2)
		EXPECT_EQ(NULL, LocalFree(h[i]));
	for (i = 1; i < 4000; i += 2)
		EXPECT_EQ(NULL, GlobalFree(h[i]));
	EXPECT_TRUE(HeapValidate(GetProcessHeap(), 0, NULL));
}

TEST_HARNESS_MAIN
