// SPDX-License-Identifier: GPL-2.0-only
/*
 * libwinvm tests: the Win32 prototypes through <windows.h>, case by case
 * against the behaviour of Windows (numbers refer to the cases of
 * shared/spec/win32-memory.md).
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <windows.h>

#include "harness.h"
#include "win32_util.h"

#define P	0x1000
#define G	0x10000

_Static_assert(sizeof(MEMORY_BASIC_INFORMATION) == 48, "MBI size");
_Static_assert(offsetof(MEMORY_BASIC_INFORMATION, AllocationProtect) == 16,
	       "MBI.AllocationProtect");
_Static_assert(offsetof(MEMORY_BASIC_INFORMATION, PartitionId) == 20,
	       "MBI.PartitionId");
_Static_assert(offsetof(MEMORY_BASIC_INFORMATION, RegionSize) == 24,
	       "MBI.RegionSize");
_Static_assert(offsetof(MEMORY_BASIC_INFORMATION, State) == 32, "MBI.State");
_Static_assert(offsetof(MEMORY_BASIC_INFORMATION, Protect) == 36,
	       "MBI.Protect");
_Static_assert(offsetof(MEMORY_BASIC_INFORMATION, Type) == 40, "MBI.Type");
_Static_assert(sizeof(SYSTEM_INFO) == 48, "SYSTEM_INFO size");
_Static_assert(offsetof(SYSTEM_INFO, dwPageSize) == 4, "dwPageSize");
_Static_assert(offsetof(SYSTEM_INFO, dwActiveProcessorMask) == 24,
	       "dwActiveProcessorMask");
_Static_assert(offsetof(SYSTEM_INFO, dwAllocationGranularity) == 40,
	       "dwAllocationGranularity");
_Static_assert(offsetof(SYSTEM_INFO, wProcessorRevision) == 46,
	       "wProcessorRevision");
_Static_assert(sizeof(DWORD) == 4 && sizeof(LONG) == 4 && sizeof(WORD) == 2,
	       "LLP64 integer sizes");

FIXTURE(win32) {
	int unused;
};

FIXTURE_SETUP(win32)
{
	if (access("/dev/winvm", F_OK))
		SETUP_SKIP("/dev/winvm not present: load winvm.ko");
}

FIXTURE_TEARDOWN(win32)
{
}

static void query(LPCVOID addr, MEMORY_BASIC_INFORMATION *mbi)
{
	memset(mbi, 0xcc, sizeof(*mbi));
	VirtualQuery(addr, mbi, sizeof(*mbi));
}

/* 1: a zero size is an invalid parameter. */
TEST_F(win32, alloc_zero_size)
{
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, 0, MEM_RESERVE, PAGE_NOACCESS));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
}

/* 2, 3: a reservation is 64 KiB aligned and queries as reserved. */
TEST_F(win32, reserve_and_query)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *a;

	a = VirtualAlloc(NULL, 0xfffc, MEM_RESERVE, PAGE_NOACCESS);
	ASSERT_NE(NULL, a);
	EXPECT_EQ(0, (uintptr_t)a % G);
	memset(&mbi, 0xcc, sizeof(mbi));
	SetLastError(UNTOUCHED);
	EXPECT_EQ(sizeof(mbi), VirtualQuery(a, &mbi, sizeof(mbi)));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(a, mbi.BaseAddress);
	EXPECT_EQ(a, mbi.AllocationBase);
	EXPECT_EQ(PAGE_NOACCESS, mbi.AllocationProtect);
	EXPECT_EQ(0, mbi.PartitionId);
	EXPECT_EQ(0x10000, mbi.RegionSize);
	EXPECT_EQ(MEM_RESERVE, mbi.State);
	EXPECT_EQ(0, mbi.Protect);
	EXPECT_EQ(MEM_PRIVATE, mbi.Type);
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
	EXPECT_EQ(UNTOUCHED, GetLastError());
}

/* 5, 39: committing a page splits the reservation into regions. */
TEST_F(win32, commit_then_query)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *a = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_NOACCESS);

	ASSERT_NE(NULL, a);
	EXPECT_EQ(a, VirtualAlloc(a, P, MEM_COMMIT, PAGE_NOACCESS));
	query(a, &mbi);
	EXPECT_EQ(P, mbi.RegionSize);
	EXPECT_EQ(MEM_COMMIT, mbi.State);
	EXPECT_EQ(PAGE_NOACCESS, mbi.Protect);
	EXPECT_EQ(PAGE_NOACCESS, mbi.AllocationProtect);
	query(a + P, &mbi);
	EXPECT_EQ(a + P, mbi.BaseAddress);
	EXPECT_EQ(a, mbi.AllocationBase);
	EXPECT_EQ(0xf000, mbi.RegionSize);
	EXPECT_EQ(MEM_RESERVE, mbi.State);
	EXPECT_EQ(0, mbi.Protect);
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/* 9: protection 0 is invalid for both reserve and commit. */
TEST_F(win32, zero_protection)
{
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, P, MEM_RESERVE, 0));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, P, MEM_COMMIT, 0));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
}

/* 26, 27, 29: exactly six base protections are valid for private memory. */
TEST_F(win32, protection_values)
{
	MEMORY_BASIC_INFORMATION mbi;
	DWORD prot;

	for (prot = 0; prot <= 0xff; prot++) {
		int valid = prot == PAGE_NOACCESS || prot == PAGE_READONLY ||
			    prot == PAGE_READWRITE || prot == PAGE_EXECUTE ||
			    prot == PAGE_EXECUTE_READ ||
			    prot == PAGE_EXECUTE_READWRITE;
		char *a;

		SetLastError(UNTOUCHED);
		a = VirtualAlloc(NULL, P, MEM_COMMIT, prot);
		if (!valid) {
			EXPECT_EQ(NULL, a) TH_LOG("prot %#x", prot);
			EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError())
				TH_LOG("prot %#x", prot);
			continue;
		}
		ASSERT_NE(NULL, a) TH_LOG("prot %#x", prot);
		EXPECT_EQ(UNTOUCHED, GetLastError());
		query(a, &mbi);
		EXPECT_EQ(prot, mbi.Protect);
		EXPECT_EQ(prot, mbi.AllocationProtect);
		EXPECT_EQ(P, mbi.RegionSize);
		EXPECT_EQ(MEM_COMMIT, mbi.State);
		EXPECT_EQ(MEM_PRIVATE, mbi.Type);
		if (prot == PAGE_READWRITE || prot == PAGE_EXECUTE_READWRITE) {
			a[0] = 1;
			query(a, &mbi);
			EXPECT_EQ(prot, mbi.Protect);
		}
		EXPECT_EQ(a, VirtualAlloc(a, P, MEM_COMMIT, prot));
		EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
	}
}

/* 10: two base protections at once are invalid. */
TEST_F(win32, combined_protection)
{
	char *a = VirtualAlloc(NULL, P, MEM_RESERVE, PAGE_READWRITE);

	ASSERT_NE(NULL, a);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(a, P, MEM_COMMIT,
				     PAGE_READONLY | PAGE_EXECUTE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(a, P, MEM_COMMIT, PAGE_READWRITE | 0x800));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/* 12, 14, 62: VirtualFree wants exactly one type, MEM_RELEASE size 0. */
TEST_F(win32, free_type_rules)
{
	char *a = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_NOACCESS);

	ASSERT_NE(NULL, a);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFree(a, G, 0));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFree(a, 0, MEM_FREE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFree(a, 0, MEM_DECOMMIT | MEM_RELEASE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFree(a, 1, MEM_RELEASE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFree(NULL, 0, MEM_RELEASE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
	EXPECT_EQ(UNTOUCHED, GetLastError());
}

/* 13: decommit of a range mixing committed and reserved pages succeeds. */
TEST_F(win32, decommit_mixed)
{
	char *a = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_NOACCESS);

	ASSERT_NE(NULL, a);
	ASSERT_EQ(a, VirtualAlloc(a, P, MEM_COMMIT, PAGE_READWRITE));
	EXPECT_TRUE(VirtualFree(a, G, MEM_DECOMMIT));
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/* 15: a released range is reusable at the same address. */
TEST_F(win32, reuse_released_address)
{
	char *a = VirtualAlloc(NULL, 0x2000, MEM_RESERVE | MEM_COMMIT,
			       PAGE_EXECUTE_READWRITE);

	ASSERT_NE(NULL, a);
	EXPECT_EQ(0, (uintptr_t)a % G);
	ASSERT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
	EXPECT_EQ(a, VirtualAlloc(a, P, MEM_RESERVE | MEM_COMMIT,
				  PAGE_EXECUTE_READWRITE));
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/* 16, 24: unknown allocation types, AT_ROUND_TO_PAGE included. */
TEST_F(win32, bad_allocation_types)
{
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, P,
				     MEM_RESERVE | MEM_COMMIT | AT_ROUND_TO_PAGE,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, P, MEM_TOP_DOWN, PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, P, MEM_RESERVE | MEM_DECOMMIT,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, P, 0, PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
}

/* 17: MEM_COMMIT alone with no address reserves and commits. */
TEST_F(win32, commit_without_reserve)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *a = VirtualAlloc(NULL, 0x1234, MEM_COMMIT, PAGE_READWRITE);

	ASSERT_NE(NULL, a);
	query(a, &mbi);
	EXPECT_EQ(a, mbi.BaseAddress);
	EXPECT_EQ(a, mbi.AllocationBase);
	EXPECT_EQ(PAGE_READWRITE, mbi.AllocationProtect);
	EXPECT_EQ(0x2000, mbi.RegionSize);
	EXPECT_EQ(MEM_COMMIT, mbi.State);
	EXPECT_EQ(MEM_PRIVATE, mbi.Type);
	a[0x1233] = 1;
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/*
 * 18: the Ex variants take only the current process; 31, 32: a failed
 * VirtualProtectEx reports PAGE_NOACCESS as the old protection.
 */
TEST_F(win32, ex_variants_handles)
{
	MEMORY_BASIC_INFORMATION mbi;
	DWORD old;
	char *a;

	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAllocEx(NULL, NULL, 0x8000, MEM_COMMIT,
				       PAGE_EXECUTE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	a = VirtualAllocEx(GetCurrentProcess(), NULL, 0x8000, MEM_COMMIT,
			   PAGE_EXECUTE_READWRITE);
	ASSERT_NE(NULL, a);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(0, VirtualQueryEx(NULL, a, &mbi, sizeof(mbi)));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	EXPECT_EQ(sizeof(mbi), VirtualQueryEx(GetCurrentProcess(), a, &mbi,
					      sizeof(mbi)));
	old = UNTOUCHED;
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualProtectEx(NULL, a, 0x1000, PAGE_READONLY, &old));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	EXPECT_EQ(PAGE_NOACCESS, old);
	EXPECT_TRUE(VirtualProtectEx(GetCurrentProcess(), a, 0x1000,
				     PAGE_READONLY, &old));
	EXPECT_EQ(PAGE_EXECUTE_READWRITE, old);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFreeEx(NULL, a, 0, MEM_RELEASE));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	/* 14: a size with MEM_RELEASE is refused before the handle is seen. */
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFreeEx(NULL, a, 1, MEM_RELEASE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	EXPECT_TRUE(VirtualFreeEx(GetCurrentProcess(), a, 0, MEM_RELEASE));
}

/* 19, 20: an explicit reservation inside an allocation conflicts. */
TEST_F(win32, reserve_inside_allocation)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *a = VirtualAlloc(NULL, G, MEM_RESERVE | MEM_COMMIT,
			       PAGE_READWRITE);

	ASSERT_NE(NULL, a);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(a + P, P, MEM_RESERVE | MEM_COMMIT,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
	/* Commit into it rounds to pages instead. */
	EXPECT_EQ(a + P, VirtualAlloc(a + P + 5, 10, MEM_COMMIT,
				      PAGE_READONLY));
	query(a + P, &mbi);
	EXPECT_EQ(a + P, mbi.BaseAddress);
	EXPECT_EQ(P, mbi.RegionSize);
	EXPECT_EQ(PAGE_READONLY, mbi.Protect);
	/* Two bytes straddling a page boundary commit both pages. */
	EXPECT_EQ(a + 2 * P, VirtualAlloc(a + 3 * P - 1, 2, MEM_COMMIT,
					  PAGE_EXECUTE_READ));
	query(a + 2 * P, &mbi);
	EXPECT_EQ(a + 2 * P, mbi.BaseAddress);
	EXPECT_EQ(2 * P, mbi.RegionSize);
	EXPECT_EQ(MEM_COMMIT, mbi.State);
	EXPECT_EQ(PAGE_EXECUTE_READ, mbi.Protect);
	query(a + 4 * P, &mbi);
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	EXPECT_EQ(G - 4 * P, mbi.RegionSize);
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/*
 * 20: MEM_RESERVE rounds the address down to 64 KiB; the size still covers
 * every page [addr, addr + size) touches.
 */
TEST_F(win32, reserve_unaligned_address)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *a = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_READWRITE);

	ASSERT_NE(NULL, a);
	ASSERT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
	EXPECT_EQ(a, VirtualAlloc(a + 0x1234, P, MEM_RESERVE, PAGE_READWRITE));
	query(a, &mbi);
	EXPECT_EQ(a, mbi.BaseAddress);
	EXPECT_EQ(a, mbi.AllocationBase);
	EXPECT_EQ(MEM_RESERVE, mbi.State);
	EXPECT_EQ(0x3000, mbi.RegionSize);
	query(a + 0x3000, &mbi);
	EXPECT_EQ(MEM_FREE, mbi.State);
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/* 21: commit outside one reservation is an invalid address. */
TEST_F(win32, commit_outside_reservation)
{
	char *a = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_READWRITE);

	ASSERT_NE(NULL, a);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(a + 0xf000, 0x2000, MEM_COMMIT,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
	ASSERT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(a, P, MEM_COMMIT, PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
}

/* 22, 23: recommit keeps data; decommit then recommit reads zero. */
TEST_F(win32, recommit_and_decommit)
{
	char *a = VirtualAlloc(NULL, 2 * P, MEM_COMMIT, PAGE_READWRITE);

	ASSERT_NE(NULL, a);
	memset(a, 0x55, 2 * P);
	EXPECT_EQ(a, VirtualAlloc(a, 2 * P, MEM_COMMIT, PAGE_READWRITE));
	EXPECT_EQ(0x55, a[P + 1]);
	EXPECT_TRUE(VirtualFree(a + P, P, MEM_DECOMMIT));
	EXPECT_EQ(a + P, VirtualAlloc(a + P, P, MEM_COMMIT, PAGE_READWRITE));
	EXPECT_EQ(0, a[P + 1]);
	EXPECT_EQ(0x55, a[1]);
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/* 24: explicit addresses below 64 KiB or past the top are invalid. */
TEST_F(win32, address_limits)
{
	SYSTEM_INFO si;

	GetSystemInfo(&si);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc((LPVOID)0x1000, P, MEM_RESERVE,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc((char *)si.lpMaximumApplicationAddress -
				     P + 1, 2 * P, MEM_RESERVE,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, (SIZE_T)-1, MEM_RESERVE,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
}

/* The last 64 KiB block below lpMaximumApplicationAddress can be had. */
TEST_F(win32, last_block)
{
	MEMORY_BASIC_INFORMATION mbi;
	SYSTEM_INFO si;
	char *last;

	GetSystemInfo(&si);
	ASSERT_EQ(0xffff, (uintptr_t)si.lpMaximumApplicationAddress & 0xffff);
	last = (char *)si.lpMaximumApplicationAddress + 1 - G;
	ASSERT_EQ(sizeof(mbi), VirtualQuery(last, &mbi, sizeof(mbi)));
	if (mbi.State != MEM_FREE)
		SKIP(return, "the stack or another mapping holds the last block");
	EXPECT_EQ(G, mbi.RegionSize);
	ASSERT_EQ(last, VirtualAlloc(last, G, MEM_RESERVE | MEM_COMMIT,
				     PAGE_READWRITE));
	last[G - 1] = 1;
	EXPECT_TRUE(VirtualFree(last, 0, MEM_RELEASE));
}

/*
 * 38: a free address queries as MEM_FREE with PAGE_NOACCESS, the region
 * reaching exactly to the next allocation.
 */
TEST_F(win32, query_free)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *a = VirtualAlloc(NULL, 3 * G, MEM_RESERVE, PAGE_READWRITE);

	ASSERT_NE(NULL, a);
	ASSERT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
	/* A page at a, a granule at a + 2G: free in between. */
	ASSERT_EQ(a, VirtualAlloc(a, P, MEM_RESERVE, PAGE_READWRITE));
	ASSERT_EQ(a + 2 * G, VirtualAlloc(a + 2 * G, G, MEM_RESERVE,
					  PAGE_READWRITE));
	query(a + G + 0x123, &mbi);
	EXPECT_EQ(a + G, mbi.BaseAddress);
	EXPECT_EQ(NULL, mbi.AllocationBase);
	EXPECT_EQ(0, mbi.AllocationProtect);
	EXPECT_EQ(MEM_FREE, mbi.State);
	EXPECT_EQ(PAGE_NOACCESS, mbi.Protect);
	EXPECT_EQ(0, mbi.Type);
	EXPECT_EQ(G, mbi.RegionSize);
	/* The slack after the page is free too, up to a + 2G. */
	query(a + P + 5, &mbi);
	EXPECT_EQ(a + P, mbi.BaseAddress);
	EXPECT_EQ(MEM_FREE, mbi.State);
	EXPECT_EQ(2 * G - P, mbi.RegionSize);
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
	EXPECT_TRUE(VirtualFree(a + 2 * G, 0, MEM_RELEASE));
	query(a + 0x123, &mbi);
	EXPECT_EQ(a, mbi.BaseAddress);
	EXPECT_EQ(MEM_FREE, mbi.State);
	EXPECT_GE(mbi.RegionSize, 3 * G);
}

/* 44: short buffers, NULL buffers and addresses past the top. */
TEST_F(win32, query_errors)
{
	MEMORY_BASIC_INFORMATION mbi;
	SYSTEM_INFO si;

	SetLastError(UNTOUCHED);
	EXPECT_EQ(0, VirtualQuery(&mbi, &mbi, sizeof(mbi) - 1));
	EXPECT_EQ(ERROR_BAD_LENGTH, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(0, VirtualQuery(&mbi, NULL, sizeof(mbi)));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	GetSystemInfo(&si);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(0, VirtualQuery((char *)si.lpMaximumApplicationAddress + 1,
				  &mbi, sizeof(mbi)));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(sizeof(mbi), VirtualQuery(si.lpMaximumApplicationAddress,
					    &mbi, sizeof(mbi) + 16));
	EXPECT_EQ(UNTOUCHED, GetLastError());
}

/* 51-54, 60: the address rules of decommit and release. */
TEST_F(win32, free_address_rules)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *a = VirtualAlloc(NULL, G, MEM_RESERVE | MEM_COMMIT,
			       PAGE_READWRITE);

	ASSERT_NE(NULL, a);
	EXPECT_TRUE(VirtualFree(a + 0x1fff, 2, MEM_DECOMMIT));
	query(a + P, &mbi);
	EXPECT_EQ(MEM_RESERVE, mbi.State);
	EXPECT_EQ(2 * P, mbi.RegionSize);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFree(a + 0x1001, 0, MEM_DECOMMIT));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
	EXPECT_TRUE(VirtualFree(a + 0xffe, 0, MEM_DECOMMIT));
	query(a, &mbi);
	EXPECT_EQ(G, mbi.RegionSize);
	EXPECT_EQ(MEM_RESERVE, mbi.State);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFree(a + 0x1000, 0, MEM_RELEASE));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFree(a, G + P, MEM_DECOMMIT));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	EXPECT_TRUE(VirtualFree(a + 0xfff, 0, MEM_RELEASE));
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFree(a, 0, MEM_RELEASE));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFree(a, P, MEM_DECOMMIT));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
}

/*
 * MEM_LARGE_PAGES: GetLargePageMinimum() is 2 MiB; a reserve-and-commit of
 * whole large pages gives huge pages; anything else is
 * ERROR_INVALID_PARAMETER.
 */
TEST_F(win32, large_pages)
{
	const SIZE_T lp = GetLargePageMinimum();
	MEMORY_BASIC_INFORMATION mbi;
	char *p;

	ASSERT_EQ(2 << 20, lp);
	p = VirtualAlloc(NULL, 2 * lp, MEM_RESERVE | MEM_COMMIT |
			 MEM_LARGE_PAGES, PAGE_READWRITE);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(0, (uintptr_t)p % lp);
	memset(p, 1, 2 * lp);
	ASSERT_EQ(sizeof(mbi), VirtualQuery(p + 5, &mbi, sizeof(mbi)));
	EXPECT_EQ(p, mbi.AllocationBase);
	EXPECT_EQ(2 * lp, mbi.RegionSize);
	EXPECT_EQ(MEM_COMMIT, mbi.State);
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	EXPECT_EQ(MEM_PRIVATE, mbi.Type);

	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualFree(p, P, MEM_DECOMMIT));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	EXPECT_TRUE(VirtualFree(p, lp, MEM_DECOMMIT));
	EXPECT_TRUE(VirtualFree(p, 0, MEM_RELEASE));

	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, lp, MEM_RESERVE | MEM_LARGE_PAGES,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, lp, MEM_COMMIT | MEM_LARGE_PAGES,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, lp + P, MEM_RESERVE | MEM_COMMIT |
				     MEM_LARGE_PAGES, PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, lp, MEM_RESERVE | MEM_COMMIT |
				     MEM_LARGE_PAGES,
				     PAGE_READWRITE | PAGE_GUARD));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
}

/* Allocation types not implemented yet are refused, not ignored. */
TEST_F(win32, types_not_supported)
{
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, P, MEM_RESERVE | MEM_PHYSICAL,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_NOT_SUPPORTED, GetLastError());
	/* 50: MEM_RESET and MEM_RESET_UNDO stand alone. */
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, P, MEM_RESERVE | MEM_RESET,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, P, MEM_RESET | MEM_RESET_UNDO,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
}

/* 46-48: MEM_RESET keeps the pages committed; the protection is ignored. */
TEST_F(win32, mem_reset)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *a = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_READWRITE);

	ASSERT_NE(NULL, a);
	ASSERT_EQ(a, VirtualAlloc(a, P, MEM_COMMIT, PAGE_READWRITE));
	memset(a, 0x55, P);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(a, VirtualAlloc(a, P, MEM_RESET, PAGE_NOACCESS));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_TRUE(a[0] == 0x55 || a[0] == 0);
	VirtualQuery(a, &mbi, sizeof(mbi));
	EXPECT_EQ(MEM_COMMIT, mbi.State);
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	EXPECT_EQ(P, mbi.RegionSize);

	EXPECT_EQ(a + P, VirtualAlloc(a + P, P, MEM_RESET, PAGE_NOACCESS));
	VirtualQuery(a + P, &mbi, sizeof(mbi));
	EXPECT_EQ(MEM_RESERVE, mbi.State);
	EXPECT_EQ(0, mbi.Protect);
	EXPECT_EQ(0xf000, mbi.RegionSize);

	EXPECT_EQ(NULL, VirtualAlloc(a + 0xf000, 0x2000, MEM_RESET,
				     PAGE_NOACCESS));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/* 50: MEM_RESET_UNDO succeeds only if nothing was lost. */
TEST_F(win32, mem_reset_undo)
{
	char *a = VirtualAlloc(NULL, 2 * P, MEM_COMMIT, PAGE_READWRITE);

	ASSERT_NE(NULL, a);
	memset(a, 1, 2 * P);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(a, VirtualAlloc(a, 2 * P, MEM_RESET_UNDO, PAGE_READWRITE));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(1, a[P]);
	EXPECT_EQ(a, VirtualAlloc(a, P, MEM_RESET, PAGE_READWRITE));
	/*
	 * winvm always discards what MEM_RESET covers, so the data of the
	 * written page is lost: the undo fails and the page reads as zero.
	 */
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(a, 2 * P, MEM_RESET_UNDO, PAGE_READWRITE));
	EXPECT_EQ(ERROR_GEN_FAILURE, GetLastError());
	EXPECT_EQ(0, a[0]);
	EXPECT_TRUE(all_zero(a, P));
	EXPECT_EQ(1, a[P]);
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/* 74: VirtualLock consumes a guard page and fails with its status. */
TEST_F(win32, virtual_lock_guard)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *a = VirtualAlloc(NULL, P, MEM_COMMIT,
			       PAGE_READWRITE | PAGE_GUARD);

	ASSERT_NE(NULL, a);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualLock(a, P));
	EXPECT_EQ(STATUS_GUARD_PAGE_VIOLATION, GetLastError());
	VirtualQuery(a, &mbi, sizeof(mbi));
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(VirtualLock(a, P));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	a[0] = 1;
	EXPECT_TRUE(VirtualUnlock(a, P));
	EXPECT_FALSE(VirtualUnlock(a, P));
	EXPECT_EQ(ERROR_NOT_LOCKED, GetLastError());
	EXPECT_EQ(1, a[0]);
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/* VirtualLock on memory that is not committed, or not accessible. */
TEST_F(win32, virtual_lock_errors)
{
	char *a = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_READWRITE);

	ASSERT_NE(NULL, a);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualLock(a, P));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	ASSERT_EQ(a, VirtualAlloc(a, P, MEM_COMMIT, PAGE_NOACCESS));
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualLock(a, P));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualUnlock(a, P));
	EXPECT_EQ(ERROR_NOT_LOCKED, GetLastError());
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualLock(a, P));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
}

/* MEM_TOP_DOWN hands out higher addresses than the default order. */
TEST_F(win32, top_down)
{
	char *low = VirtualAlloc(NULL, P, MEM_RESERVE, PAGE_READWRITE);
	char *high = VirtualAlloc(NULL, P, MEM_RESERVE | MEM_TOP_DOWN,
				  PAGE_READWRITE);

	ASSERT_NE(NULL, low);
	ASSERT_NE(NULL, high);
	EXPECT_LT(low, high);
	EXPECT_TRUE(VirtualFree(low, 0, MEM_RELEASE));
	EXPECT_TRUE(VirtualFree(high, 0, MEM_RELEASE));
}

/* Code in PAGE_EXECUTE_READ memory runs. */
TEST_F(win32, execute_read)
{
	char *a = VirtualAlloc(NULL, P, MEM_COMMIT, PAGE_READWRITE);

	ASSERT_NE(NULL, a);
	a[0] = (char)0xc3;	/* ret */
	ASSERT_EQ(a, VirtualAlloc(a, P, MEM_COMMIT, PAGE_EXECUTE_READ));
	((void (*)(void))a)();
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/* GetSystemInfo reports Windows' x64 values and the real address limit. */
TEST_F(win32, system_info)
{
	SYSTEM_INFO si, native;

	memset(&si, 0xcc, sizeof(si));
	SetLastError(UNTOUCHED);
	GetSystemInfo(&si);
	GetNativeSystemInfo(&native);
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(PROCESSOR_ARCHITECTURE_AMD64, si.wProcessorArchitecture);
	EXPECT_EQ(0, si.wReserved);
	EXPECT_EQ(P, si.dwPageSize);
	EXPECT_EQ((LPVOID)0x10000, si.lpMinimumApplicationAddress);
	EXPECT_EQ((LPVOID)0x7ffffffeffffULL, si.lpMaximumApplicationAddress);
	EXPECT_EQ(sysconf(_SC_NPROCESSORS_ONLN), si.dwNumberOfProcessors);
	EXPECT_EQ(((DWORD_PTR)1 << si.dwNumberOfProcessors) - 1,
		  si.dwActiveProcessorMask);
	EXPECT_EQ(PROCESSOR_AMD_X8664, si.dwProcessorType);
	EXPECT_EQ(G, si.dwAllocationGranularity);
	EXPECT_NE(0, si.wProcessorLevel);
	EXPECT_EQ(0, memcmp(&si, &native, sizeof(si)));
}

static void *thread_error(void *arg)
{
	SetLastError(1234);
	return (void *)(uintptr_t)GetLastError();
}

/* The last error is per thread. */
TEST_F(win32, last_error_per_thread)
{
	pthread_t t;
	void *ret;

	SetLastError(42);
	ASSERT_EQ(0, pthread_create(&t, NULL, thread_error, NULL));
	ASSERT_EQ(0, pthread_join(t, &ret));
	EXPECT_EQ(1234, (uintptr_t)ret);
	EXPECT_EQ(42, GetLastError());
}

/*
 * After mlockall(MCL_FUTURE) without CAP_IPC_LOCK, mappings beyond
 * RLIMIT_MEMLOCK fail: a reservation that fits still works (in an arena of
 * its own size), one that does not fails with ERROR_NOT_ENOUGH_MEMORY, not
 * with a guard-page status.
 */
TEST_F(win32, mlockall_future)
{
	struct rlimit rl = { 1 << 20, 1 << 20 };
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char *p;

		if (setrlimit(RLIMIT_MEMLOCK, &rl) ||
		    (getuid() == 0 && setuid(65534)) || mlockall(MCL_FUTURE))
			_exit(10);
		p = VirtualAlloc(NULL, P, MEM_RESERVE | MEM_COMMIT,
				 PAGE_READWRITE);
		if (!p)
			_exit(11);
		p[P - 1] = 1;
		SetLastError(UNTOUCHED);
		if (VirtualAlloc(NULL, 4 << 20, MEM_RESERVE, PAGE_READWRITE))
			_exit(12);
		if (GetLastError() != ERROR_NOT_ENOUGH_MEMORY)
			_exit(13);
		_exit(VirtualFree(p, 0, MEM_RELEASE) ? 0 : 14);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* A forked child gets its own context; the parent's memory stays its own. */
TEST_F(win32, fork_child_context)
{
	char *a = VirtualAlloc(NULL, P, MEM_COMMIT, PAGE_READWRITE);
	int status;
	pid_t pid;

	ASSERT_NE(NULL, a);
	a[0] = 7;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		MEMORY_BASIC_INFORMATION mbi;
		char *b;

		if (!VirtualQuery(a, &mbi, sizeof(mbi)) ||
		    mbi.State != MEM_FREE)
			_exit(1);
		b = VirtualAlloc(a, P, MEM_RESERVE | MEM_COMMIT,
				 PAGE_READWRITE);
		if (b != a || b[0] != 0)
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(7, a[0]);
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/*
 * The same for a child made without the fork handlers (a raw fork system
 * call, as _Fork() makes): the module refuses the parent's fd with EPERM,
 * and the child opens its own context there and then rather than failing
 * every call with ERROR_ACCESS_DENIED.
 */
TEST_F(win32, raw_fork_child_context)
{
	char *a = VirtualAlloc(NULL, P, MEM_COMMIT, PAGE_READWRITE);
	int status = -1;
	pid_t pid;

	ASSERT_NE(NULL, a);
	a[0] = 7;
	pid = syscall(SYS_fork);
	ASSERT_LE(0, pid);
	if (pid == 0) {
		MEMORY_BASIC_INFORMATION mbi;
		char *b;

		b = VirtualAlloc(a, P, MEM_RESERVE | MEM_COMMIT,
				 PAGE_READWRITE);
		if (b != a || b[0] != 0)
			_exit(2);
		if (!VirtualQuery(a, &mbi, sizeof(mbi)) ||
		    mbi.State != MEM_COMMIT || !VirtualFree(b, 0, MEM_RELEASE))
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status)) TH_LOG("status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(7, a[0]);
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/* A vectored handler that counts what reaches it. */
static volatile int veh_calls;

static LONG CALLBACK count_veh(EXCEPTION_POINTERS *ep)
{
	veh_calls++;
	return EXCEPTION_CONTINUE_SEARCH;
}

/* 79: IsBad*Ptr, with the values Windows gives. */
TEST_F(win32, is_bad_ptr)
{
	PVOID h = AddVectoredExceptionHandler(1, count_veh);
	char *r = VirtualAlloc(NULL, 3 * P, MEM_RESERVE, PAGE_READWRITE);
	int stackvar = 5;

	ASSERT_NE(NULL, h);
	ASSERT_NE(NULL, r);
	ASSERT_EQ(r, VirtualAlloc(r, P, MEM_COMMIT, PAGE_READWRITE));
	ASSERT_EQ(r + P, VirtualAlloc(r + P, P, MEM_COMMIT, PAGE_READONLY));
	r[7] = 9;
	veh_calls = 0;
	SetLastError(UNTOUCHED);

	EXPECT_FALSE(IsBadReadPtr(NULL, 0));
	EXPECT_TRUE(IsBadReadPtr(NULL, 1));
	EXPECT_FALSE(IsBadReadPtr((void *)0xdeadbeef, 0));
	EXPECT_TRUE(IsBadReadPtr((void *)0xdeadbeef, 1));
	EXPECT_FALSE(IsBadReadPtr(&stackvar, 1));
	EXPECT_FALSE(IsBadReadPtr(r, 2 * P));		/* RW then RO */
	EXPECT_TRUE(IsBadReadPtr(r + 2 * P, 4));	/* reserved */
	EXPECT_TRUE(IsBadReadPtr(r + P, P + 1));	/* runs into it */
	EXPECT_TRUE(IsBadReadPtr(r, ~(UINT_PTR)0));	/* wraps */

	EXPECT_FALSE(IsBadWritePtr(NULL, 0));
	EXPECT_TRUE(IsBadWritePtr(NULL, 1));
	EXPECT_FALSE(IsBadWritePtr((void *)0xdeadbeef, 0));
	EXPECT_TRUE(IsBadWritePtr((void *)0xdeadbeef, 1));
	EXPECT_FALSE(IsBadWritePtr(&stackvar, sizeof(stackvar)));
	EXPECT_FALSE(IsBadWritePtr(r, P));
	EXPECT_TRUE(IsBadWritePtr(r, P + 1));		/* the RO page */
	EXPECT_TRUE(IsBadWritePtr(r + 2 * P, 4));
	EXPECT_FALSE(IsBadHugeWritePtr(r, P));
	EXPECT_TRUE(IsBadHugeReadPtr(r + 2 * P, 1));

	EXPECT_TRUE(IsBadCodePtr(NULL));
	EXPECT_TRUE(IsBadCodePtr((FARPROC)0xdeadbeef));
	EXPECT_FALSE(IsBadCodePtr((FARPROC)&stackvar));

	/*
	 * The probes change nothing; as Windows' SEH-guarded probes, their
	 * faults go to the vectored handlers first.
	 */
	EXPECT_EQ(5, stackvar);
	EXPECT_EQ(9, r[7]);
	EXPECT_LT(0, veh_calls);
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
	EXPECT_TRUE(VirtualFree(r, 0, MEM_RELEASE));
}

/* A vectored handler that commits the page and continues. */
static LONG CALLBACK commit_on_fault(EXCEPTION_POINTERS *ep)
{
	EXCEPTION_RECORD *rec = ep->ExceptionRecord;

	if (rec->ExceptionCode != STATUS_ACCESS_VIOLATION)
		return EXCEPTION_CONTINUE_SEARCH;
	veh_calls++;
	if (!VirtualAlloc((void *)rec->ExceptionInformation[1], 1, MEM_COMMIT,
			  PAGE_READWRITE))
		return EXCEPTION_CONTINUE_SEARCH;
	return EXCEPTION_CONTINUE_EXECUTION;
}

/* A handler that continues a probe's fault makes the memory good. */
TEST_F(win32, is_bad_ptr_handler_continues)
{
	PVOID h = AddVectoredExceptionHandler(1, commit_on_fault);
	char *r = VirtualAlloc(NULL, 2 * P, MEM_RESERVE, PAGE_READWRITE);

	ASSERT_NE(NULL, h);
	ASSERT_NE(NULL, r);
	veh_calls = 0;
	EXPECT_FALSE(IsBadWritePtr(r, 2 * P));
	EXPECT_EQ(2, veh_calls);
	r[2 * P - 1] = 1;
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
	EXPECT_TRUE(VirtualFree(r, 0, MEM_RELEASE));
}

static void *probe_blocked(void *arg)
{
	sigset_t all;
	long bad;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	bad = IsBadReadPtr((void *)0xdeadbeef, 1) &&
	      IsBadWritePtr(arg, 1) && !IsBadReadPtr(arg, 1);
	return (void *)bad;
}

/* A thread that blocks every signal can still probe. */
TEST_F(win32, is_bad_ptr_signals_blocked)
{
	char *ro = VirtualAlloc(NULL, P, MEM_RESERVE | MEM_COMMIT,
				PAGE_READONLY);
	pthread_t th;
	void *ret;

	ASSERT_NE(NULL, ro);
	ASSERT_EQ(0, pthread_create(&th, NULL, probe_blocked, ro));
	ASSERT_EQ(0, pthread_join(th, &ret));
	EXPECT_EQ((void *)1, ret);
	EXPECT_TRUE(VirtualFree(ro, 0, MEM_RELEASE));
}

/*
 * A fault a signal handler makes (the program's own probe) while a probe
 * of libwinvm's runs in the same thread goes to the program's handler,
 * not to the probe.
 */
static sigjmp_buf own_env;
static volatile int own_probes, own_faults;
static volatile char *volatile own_bad = (volatile char *)8;

static void own_segv(int sig)
{
	own_faults++;
	siglongjmp(own_env, 1);
}

static void own_alarm(int sig)
{
	if (!sigsetjmp(own_env, 1))
		(void)*own_bad;
	own_probes++;
}

TEST_F(win32, is_bad_ptr_foreign_fault)
{
	const SIZE_T size = 1 << 20;
	struct sigaction segv = { .sa_handler = own_segv }, alrm = {
		.sa_handler = own_alarm,
	}, old_segv, old_alrm;
	struct itimerval it = { { 0, 2000 }, { 0, 2000 } }, off = { 0 };
	char *p = VirtualAlloc(NULL, size, MEM_RESERVE | MEM_COMMIT,
			       PAGE_READWRITE);
	time_t until = time(NULL) + 2;
	int wrong = 0;

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, sigaction(SIGSEGV, &segv, &old_segv));
	ASSERT_EQ(0, sigaction(SIGALRM, &alrm, &old_alrm));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	while (time(NULL) < until)
		wrong += IsBadReadPtr(p, size);
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old_alrm, NULL);
	sigaction(SIGSEGV, &old_segv, NULL);
	EXPECT_EQ(0, wrong);
	EXPECT_LT(0, own_probes);
	EXPECT_EQ(own_probes, own_faults);
	EXPECT_TRUE(VirtualFree(p, 0, MEM_RELEASE));
}

/* As on Windows, a probe that meets a guard page consumes it. */
TEST_F(win32, is_bad_ptr_guard)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *g = VirtualAlloc(NULL, P, MEM_RESERVE | MEM_COMMIT,
			       PAGE_READWRITE | PAGE_GUARD);

	ASSERT_NE(NULL, g);
	EXPECT_TRUE(IsBadReadPtr(g, 1));
	query(g, &mbi);
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	EXPECT_FALSE(IsBadReadPtr(g, 1));
	EXPECT_TRUE(VirtualFree(g, 0, MEM_RELEASE));
}

/* IsBadStringPtr reads up to the terminator or the limit, whichever first. */
TEST_F(win32, is_bad_string_ptr)
{
	char *r = VirtualAlloc(NULL, 2 * P, MEM_RESERVE, PAGE_READWRITE);
	WCHAR *w;
	char *s;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(r, VirtualAlloc(r, P, MEM_COMMIT, PAGE_READWRITE));
	s = r + P - 3;			/* "ab" then the page ends */
	s[0] = 'a';
	s[1] = 'b';
	s[2] = 'c';
	EXPECT_TRUE(IsBadStringPtrA(NULL, 5));
	EXPECT_FALSE(IsBadStringPtrA("abc", 100));
	EXPECT_FALSE(IsBadStringPtrA(s, 3));
	EXPECT_TRUE(IsBadStringPtrA(s, 4));
	s[1] = 0;
	EXPECT_FALSE(IsBadStringPtrA(s, 100));

	w = (WCHAR *)(r + P - 4);
	w[0] = 'x';
	w[1] = 'y';
	EXPECT_FALSE(IsBadStringPtrW(w, 2));
	EXPECT_TRUE(IsBadStringPtrW(w, 3));
	w[1] = 0;
	EXPECT_FALSE(IsBadStringPtrW(w, 3));
	EXPECT_TRUE(IsBadStringPtrW(NULL, 1));
	EXPECT_TRUE(VirtualFree(r, 0, MEM_RELEASE));
}

/* 80: ReadProcessMemory of the current process. */
TEST_F(win32, read_process_memory)
{
	char *p = VirtualAlloc(NULL, 2 * P, MEM_RESERVE | MEM_COMMIT,
			       PAGE_READWRITE);
	char *buf = malloc(2 * P), *ro;
	SIZE_T n;
	DWORD old;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	memset(p, 0x3c, 2 * P);
	ASSERT_TRUE(VirtualProtect(p + P, P, PAGE_NOACCESS, &old));

	n = 12345;
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(ReadProcessMemory(GetCurrentProcess(), p, buf, 2 * P,
				       &n));
	EXPECT_EQ(ERROR_PARTIAL_COPY, GetLastError());
	EXPECT_EQ(0, n);

	memset(buf, 0, 2 * P);
	n = 12345;
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(ReadProcessMemory(GetCurrentProcess(), p, buf, P, &n));
	EXPECT_EQ(P, n);
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(0, memcmp(p, buf, P));

	n = 12345;
	EXPECT_TRUE(ReadProcessMemory(GetCurrentProcess(), p + P, buf, 0, &n));
	EXPECT_EQ(0, n);
	EXPECT_TRUE(ReadProcessMemory(GetCurrentProcess(), p, buf, 16, NULL));

	SetLastError(UNTOUCHED);
	EXPECT_FALSE(ReadProcessMemory(NULL, p, buf, 16, &n));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	EXPECT_EQ(0, n);

	/* The caller's own buffer unwritable: ERROR_NOACCESS. */
	ro = VirtualAlloc(NULL, P, MEM_RESERVE | MEM_COMMIT, PAGE_READONLY);
	ASSERT_NE(NULL, ro);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(ReadProcessMemory(GetCurrentProcess(), p, ro, 16, &n));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	EXPECT_EQ(0, ro[0]);
	EXPECT_TRUE(VirtualFree(ro, 0, MEM_RELEASE));
	EXPECT_TRUE(VirtualFree(p, 0, MEM_RELEASE));
	free(buf);
}

/*
 * WriteProcessMemory of the current process: writable memory is written;
 * code is made writable for the copy and keeps its protection; read-only
 * and inaccessible memory is refused, as on Windows.
 */
TEST_F(win32, write_process_memory)
{
	static const char data[8] = "winvm!!";
	MEMORY_BASIC_INFORMATION mbi;
	char *p = VirtualAlloc(NULL, 4 * P, MEM_RESERVE | MEM_COMMIT,
			       PAGE_READWRITE);
	SIZE_T n;
	DWORD old;

	ASSERT_NE(NULL, p);
	ASSERT_TRUE(VirtualProtect(p + P, P, PAGE_EXECUTE_READ, &old));
	ASSERT_TRUE(VirtualProtect(p + 2 * P, P, PAGE_READONLY, &old));
	ASSERT_TRUE(VirtualProtect(p + 3 * P, P, PAGE_NOACCESS, &old));

	n = 0;
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(WriteProcessMemory(GetCurrentProcess(), p + 10, data,
				       sizeof(data), &n));
	EXPECT_EQ(sizeof(data), n);
	EXPECT_EQ(0, memcmp(p + 10, data, sizeof(data)));

	EXPECT_TRUE(WriteProcessMemory(GetCurrentProcess(), p + P, data,
				       sizeof(data), &n));
	EXPECT_EQ(sizeof(data), n);
	EXPECT_EQ(0, memcmp(p + P, data, sizeof(data)));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	query(p + P, &mbi);
	EXPECT_EQ(PAGE_EXECUTE_READ, mbi.Protect);
	EXPECT_EQ(P, mbi.RegionSize);

	n = 12345;
	EXPECT_FALSE(WriteProcessMemory(GetCurrentProcess(), p + 2 * P, data,
					sizeof(data), &n));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	EXPECT_EQ(0, n);
	EXPECT_EQ(0, p[2 * P]);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(WriteProcessMemory(GetCurrentProcess(), p + 3 * P, data,
					sizeof(data), &n));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());

	/* From writable memory on into code: only the first page's counts. */
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(WriteProcessMemory(GetCurrentProcess(), p + P - 4,
					data, sizeof(data), &n));
	EXPECT_EQ(ERROR_PARTIAL_COPY, GetLastError());
	EXPECT_EQ(0, n);
	EXPECT_EQ('w', p[P]);

	/* Code running on into reserved pages: VirtualProtect's error. */
	ASSERT_TRUE(VirtualFree(p + 3 * P, P, MEM_DECOMMIT));
	ASSERT_TRUE(VirtualProtect(p + 2 * P, P, PAGE_EXECUTE_READ, &old));
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(WriteProcessMemory(GetCurrentProcess(), p + 3 * P - 4,
					data, sizeof(data), &n));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
	query(p + 2 * P, &mbi);
	EXPECT_EQ(PAGE_EXECUTE_READ, mbi.Protect);

	EXPECT_TRUE(VirtualFree(p, 0, MEM_RELEASE));
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(WriteProcessMemory(GetCurrentProcess(), p, data,
					sizeof(data), &n));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(WriteProcessMemory(NULL, p, data, sizeof(data), &n));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
}

__attribute__((noinline, noclone)) static int patch_me(void)
{
	return 1;
}

/* The program's own code, not winvm's, can be patched as a debugger would. */
TEST_F(win32, write_process_memory_text)
{
	/* mov eax, 2; ret */
	static const unsigned char code[] = { 0xb8, 2, 0, 0, 0, 0xc3 };
	int (*volatile fn)(void) = patch_me;
	MEMORY_BASIC_INFORMATION mbi;
	SIZE_T n = 0;

	EXPECT_EQ(1, fn());
	query((void *)fn, &mbi);
	ASSERT_EQ(PAGE_EXECUTE_READ, mbi.Protect);
	SetLastError(UNTOUCHED);
	ASSERT_TRUE(WriteProcessMemory(GetCurrentProcess(), (void *)fn, code,
				       sizeof(code), &n));
	EXPECT_EQ(sizeof(code), n);
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_EQ(2, fn());
	query((void *)fn, &mbi);
	EXPECT_EQ(PAGE_EXECUTE_READ, mbi.Protect);
}

/*
 * 30, generalised: an output the caller cannot write fails the call with
 * ERROR_NOACCESS, before anything changes.
 */
TEST_F(win32, unwritable_outputs)
{
	char *p = VirtualAlloc(NULL, P, MEM_RESERVE | MEM_COMMIT,
			       PAGE_READWRITE);
	char *ro = VirtualAlloc(NULL, P, MEM_RESERVE | MEM_COMMIT,
				PAGE_READONLY);
	MEMORY_BASIC_INFORMATION mbi;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, ro);
	SetLastError(UNTOUCHED);
	EXPECT_EQ(0, VirtualQuery(p, (MEMORY_BASIC_INFORMATION *)ro,
				  sizeof(mbi)));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());

	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualProtect(p, P, PAGE_NOACCESS, (DWORD *)ro));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	query(p, &mbi);
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	p[0] = 1;

	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualProtect(p, P, PAGE_NOACCESS,
				    (DWORD *)0xdeadbeef));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	EXPECT_TRUE(VirtualFree(ro, 0, MEM_RELEASE));
	EXPECT_TRUE(VirtualFree(p, 0, MEM_RELEASE));
}

/* VirtualAlloc2 with one MEM_ADDRESS_REQUIREMENTS parameter. */
static PVOID alloc2(SIZE_T size, DWORD type, void *low, void *high,
		    SIZE_T align)
{
	MEM_ADDRESS_REQUIREMENTS req = { low, high, align };
	MEM_EXTENDED_PARAMETER param = {
		.Type = MemExtendedParameterAddressRequirements,
		.Pointer = &req,
	};

	return VirtualAlloc2(NULL, NULL, size, type, PAGE_READWRITE, &param, 1);
}

/* 68: an alignment beyond 64 KiB is honoured, for any size. */
TEST_F(win32, alloc2_alignment)
{
	static const SIZE_T aligns[] = { G, 2 * G, 1 << 20, 2 << 20, 1 << 30 };
	static const SIZE_T sizes[] = { 1, P, G + 1, 3 << 20 };
	PVOID p[20];
	size_t i, j;

	for (i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		for (j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
			SetLastError(UNTOUCHED);
			p[j] = alloc2(sizes[j], MEM_RESERVE | MEM_COMMIT, NULL,
				      NULL, aligns[i]);
			ASSERT_NE(NULL, p[j]) TH_LOG("align %#zx", aligns[i]);
			EXPECT_EQ(0, (uintptr_t)p[j] % aligns[i]);
			EXPECT_EQ(UNTOUCHED, GetLastError());
			((char *)p[j])[sizes[j] - 1] = 1;
		}
		for (j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++)
			EXPECT_TRUE(VirtualFree(p[j], 0, MEM_RELEASE));
	}
	/* MEM_COMMIT alone with no address reserves too. */
	p[0] = alloc2(P, MEM_COMMIT, NULL, NULL, 1 << 20);
	ASSERT_NE(NULL, p[0]);
	EXPECT_EQ(0, (uintptr_t)p[0] % (1 << 20));
	EXPECT_TRUE(VirtualFree(p[0], 0, MEM_RELEASE));
}

/* 68: the bounds are honoured, bottom-up and top-down. */
TEST_F(win32, alloc2_bounds)
{
	const SIZE_T window = 64 << 20;
	char *w = VirtualAlloc(NULL, window, MEM_RESERVE, PAGE_NOACCESS);
	char *p[40], *q;
	size_t i;

	ASSERT_NE(NULL, w);
	ASSERT_TRUE(VirtualFree(w, 0, MEM_RELEASE));	/* a free window */

	for (i = 0; i < 40; i++) {
		p[i] = alloc2(G, MEM_RESERVE | MEM_COMMIT, w, w + window - 1, 0);
		ASSERT_NE(NULL, p[i]);
		EXPECT_LE(w, p[i]);
		EXPECT_GE(w + window, p[i] + G);
	}
	EXPECT_EQ(w, p[0]);
	q = alloc2(G, MEM_RESERVE | MEM_TOP_DOWN, w, w + window - 1, 0);
	ASSERT_NE(NULL, q);
	EXPECT_EQ(w + window - G, q);
	EXPECT_TRUE(VirtualFree(q, 0, MEM_RELEASE));
	for (i = 0; i < 40; i++)
		EXPECT_TRUE(VirtualFree(p[i], 0, MEM_RELEASE));

	/* Bounds and alignment together; then something that cannot fit. */
	q = alloc2(3 * G, MEM_RESERVE, w + G, w + window - 1, 4 << 20);
	ASSERT_NE(NULL, q);
	EXPECT_EQ(0, (uintptr_t)q % (4 << 20));
	EXPECT_LE(w + G, q);
	EXPECT_GE(w + window, q + 3 * G);
	EXPECT_TRUE(VirtualFree(q, 0, MEM_RELEASE));
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, alloc2(2 * G, MEM_RESERVE, w, w + G - 1, 0));
	EXPECT_EQ(ERROR_NOT_ENOUGH_MEMORY, GetLastError());
}

/* Bounds inside an arena made for the other direction are honoured. */
TEST_F(win32, alloc2_bounds_other_direction)
{
	char *t = VirtualAlloc(NULL, G, MEM_RESERVE | MEM_TOP_DOWN,
			       PAGE_READWRITE);
	char *p;

	ASSERT_NE(NULL, t);
	p = alloc2(G, MEM_RESERVE, t - (16 << 20), t - 1, 0);
	ASSERT_NE(NULL, p);
	EXPECT_LE(t - (16 << 20), p);
	EXPECT_GE(t, p + G);
	EXPECT_TRUE(VirtualFree(p, 0, MEM_RELEASE));
	EXPECT_TRUE(VirtualFree(t, 0, MEM_RELEASE));
}

/* A window wide enough for a shared arena: many small ones, all inside. */
TEST_F(win32, alloc2_bounds_shared_arena)
{
	const SIZE_T window = 256 << 20;
	char *w = VirtualAlloc(NULL, window, MEM_RESERVE, PAGE_NOACCESS);
	char *p[200];
	size_t i;

	ASSERT_NE(NULL, w);
	ASSERT_TRUE(VirtualFree(w, 0, MEM_RELEASE));
	for (i = 0; i < 200; i++) {
		p[i] = alloc2(P, MEM_RESERVE | MEM_COMMIT, w, w + window - 1,
			      0);
		ASSERT_NE(NULL, p[i]);
		EXPECT_LE(w, p[i]);
		EXPECT_GE(w + window, p[i] + G);
		p[i][P - 1] = 1;
	}
	EXPECT_EQ(w, p[0]);
	for (i = 0; i < 200; i++)
		EXPECT_TRUE(VirtualFree(p[i], 0, MEM_RELEASE));
}

/* 68 and the parameter rules of VirtualAlloc2. */
TEST_F(win32, alloc2_bad_parameters)
{
	SYSTEM_INFO si;
	char *w = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_NOACCESS);
	MEM_ADDRESS_REQUIREMENTS req = { 0 };
	MEM_EXTENDED_PARAMETER params[2] = {
		{ .Type = MemExtendedParameterAddressRequirements,
		  .Pointer = &req },
		{ .Type = MemExtendedParameterAddressRequirements,
		  .Pointer = &req },
	};
	static const struct {
		SIZE_T low_off, high_off, align;
		bool high_is_max;
	} bad[] = {
		{ 0, 0, 0x8000 },		/* below 64 KiB */
		{ 0, 0, 0x30000 },		/* not a power of two */
		{ P, 0, 0 },			/* lowest not 64 KiB aligned */
		{ 0, G, 0 },			/* highest not a page's end */
		{ 0, 0, 0, true },		/* beyond the top */
	};
	PVOID p;
	size_t i;

	ASSERT_NE(NULL, w);
	GetSystemInfo(&si);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		req.LowestStartingAddress = bad[i].low_off ? w + bad[i].low_off :
							     NULL;
		req.HighestEndingAddress = bad[i].high_is_max ?
			(char *)si.lpMaximumApplicationAddress + G :
			bad[i].high_off ? w + bad[i].high_off : NULL;
		req.Alignment = bad[i].align;
		SetLastError(UNTOUCHED);
		EXPECT_EQ(NULL, VirtualAlloc2(NULL, NULL, G, MEM_RESERVE,
					      PAGE_READWRITE, params, 1))
			TH_LOG("case %zu", i);
		EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError())
			TH_LOG("case %zu", i);
	}
	memset(&req, 0, sizeof(req));

	/* Highest below lowest. */
	req.LowestStartingAddress = w + G;
	req.HighestEndingAddress = w + G - 1;
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc2(NULL, NULL, G, MEM_RESERVE,
				      PAGE_READWRITE, params, 1));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	memset(&req, 0, sizeof(req));

	/* An address together with requirements. */
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc2(NULL, w, G, MEM_COMMIT, PAGE_READWRITE,
				      params, 1));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	/* The same type twice. */
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc2(NULL, NULL, G, MEM_RESERVE,
				      PAGE_READWRITE, params, 2));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	/* Invalid types, reserved bits, a missing array. */
	params[1].Type = MemExtendedParameterInvalidType;
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc2(NULL, NULL, G, MEM_RESERVE,
				      PAGE_READWRITE, &params[1], 1));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	params[1].Type = MemExtendedParameterMax;
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc2(NULL, NULL, G, MEM_RESERVE,
				      PAGE_READWRITE, &params[1], 1));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	params[1].Type = MemExtendedParameterNumaNode;
	params[1].Reserved = 1;
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc2(NULL, NULL, G, MEM_RESERVE,
				      PAGE_READWRITE, &params[1], 1));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc2(NULL, NULL, G, MEM_RESERVE,
				      PAGE_READWRITE, NULL, 1));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());

	/* Known but not done: ERROR_NOT_SUPPORTED, never ignored. */
	params[1].Reserved = 0;
	params[1].Type = MemExtendedParameterAttributeFlags;
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc2(NULL, NULL, G, MEM_RESERVE,
				      PAGE_READWRITE, &params[1], 1));
	EXPECT_EQ(ERROR_NOT_SUPPORTED, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc2(NULL, NULL, G, MEM_RESERVE |
				      MEM_RESERVE_PLACEHOLDER, PAGE_NOACCESS,
				      NULL, 0));
	EXPECT_EQ(ERROR_NOT_SUPPORTED, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc2((HANDLE)0x1234, NULL, G, MEM_RESERVE,
				      PAGE_READWRITE, NULL, 0));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());

	/* A NUMA node is accepted; no parameters at all is VirtualAlloc. */
	params[1].Type = MemExtendedParameterNumaNode;
	params[1].ULong = 0;
	p = VirtualAlloc2(GetCurrentProcess(), NULL, G, MEM_RESERVE |
			  MEM_COMMIT, PAGE_READWRITE, params, 2);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(VirtualFree(p, 0, MEM_RELEASE));
	p = VirtualAlloc2(NULL, NULL, G, MEM_RESERVE, PAGE_READWRITE, NULL, 0);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(0, (uintptr_t)p % G);
	EXPECT_TRUE(VirtualFree(p, 0, MEM_RELEASE));
	EXPECT_TRUE(VirtualFree(w, 0, MEM_RELEASE));
}

TEST_HARNESS_MAIN
