// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * winvm-demo: reserve, commit, decommit and release through the Win32 API
 * and print what VirtualQuery sees after each step.
 */
#include <stdio.h>
#include <string.h>

#include <windows.h>

static const char *state_name(DWORD state)
{
	switch (state) {
	case MEM_COMMIT:
		return "MEM_COMMIT";
	case MEM_RESERVE:
		return "MEM_RESERVE";
	case MEM_FREE:
		return "MEM_FREE";
	default:
		return "?";
	}
}

static const char *protect_name(DWORD protect)
{
	switch (protect) {
	case 0:
		return "0";
	case PAGE_NOACCESS:
		return "PAGE_NOACCESS";
	case PAGE_READONLY:
		return "PAGE_READONLY";
	case PAGE_READWRITE:
		return "PAGE_READWRITE";
	case PAGE_EXECUTE_READ:
		return "PAGE_EXECUTE_READ";
	case PAGE_EXECUTE_READWRITE:
		return "PAGE_EXECUTE_READWRITE";
	default:
		return "other";
	}
}

/* Walk [base, base + size) region by region, as a debugger would. */
static void walk(const char *title, char *base, SIZE_T size)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *p = base;

	printf("\n%s\n", title);
	printf("  %-16s %-16s %10s  %-12s %-16s %s\n", "BaseAddress",
	       "AllocationBase", "RegionSize", "State", "Protect", "Type");
	while (p < base + size) {
		if (!VirtualQuery(p, &mbi, sizeof(mbi))) {
			printf("  VirtualQuery failed: %u\n", GetLastError());
			return;
		}
		printf("  %-16p %-16p %#10zx  %-12s %-16s %s\n",
		       mbi.BaseAddress, mbi.AllocationBase, mbi.RegionSize,
		       state_name(mbi.State), protect_name(mbi.Protect),
		       mbi.Type == MEM_PRIVATE ? "MEM_PRIVATE" :
		       mbi.Type ? "other" : "-");
		if (!mbi.RegionSize)
			return;
		p = (char *)mbi.BaseAddress + mbi.RegionSize;
	}
}

int main(void)
{
	const SIZE_T size = 1 << 20;
	SYSTEM_INFO si;
	char *base;
	BOOL ok;

	GetSystemInfo(&si);
	printf("page size %u, allocation granularity %#x, user space %p-%p, %u CPUs\n",
	       si.dwPageSize, si.dwAllocationGranularity,
	       si.lpMinimumApplicationAddress, si.lpMaximumApplicationAddress,
	       si.dwNumberOfProcessors);

	base = VirtualAlloc(NULL, size, MEM_RESERVE, PAGE_READWRITE);
	if (!base) {
		printf("VirtualAlloc(MEM_RESERVE) failed: %u\n", GetLastError());
		return 1;
	}
	walk("VirtualAlloc(NULL, 1 MiB, MEM_RESERVE, PAGE_READWRITE)", base,
	     size);

	if (!VirtualAlloc(base + 0x10000, 0x10000, MEM_COMMIT, PAGE_READWRITE) ||
	    !VirtualAlloc(base + 0x30000, 0x2000, MEM_COMMIT, PAGE_READONLY)) {
		printf("VirtualAlloc(MEM_COMMIT) failed: %u\n", GetLastError());
		return 1;
	}
	memset(base + 0x10000, 0x5a, 0x10000);
	walk("commit 64 KiB read-write at +0x10000 and 8 KiB read-only at +0x30000",
	     base, size);

	if (!VirtualFree(base + 0x18000, 0x4000, MEM_DECOMMIT)) {
		printf("VirtualFree(MEM_DECOMMIT) failed: %u\n", GetLastError());
		return 1;
	}
	walk("decommit 16 KiB at +0x18000", base, size);

	if (!VirtualFree(base, 0, MEM_RELEASE)) {
		printf("VirtualFree(MEM_RELEASE) failed: %u\n", GetLastError());
		return 1;
	}
	walk("VirtualFree(base, 0, MEM_RELEASE)", base, 0x10000);

	ok = VirtualFree(base, 0, MEM_RELEASE);
	printf("\nVirtualFree(base, 0, MEM_RELEASE) again: %s, GetLastError() = %u%s\n",
	       ok ? "TRUE" : "FALSE", GetLastError(),
	       GetLastError() == ERROR_INVALID_ADDRESS ?
	       " (ERROR_INVALID_ADDRESS)" : "");
	return ok;
}
