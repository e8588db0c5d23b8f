// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libwinvm memory status (GlobalMemoryStatus, GlobalMemoryStatusEx,
 * GetPhysicallyInstalledSystemMemory) and RtlCompareMemory.
 *
 * Windows' figures map to Linux's as follows. Physical memory is
 * /proc/meminfo's MemTotal and MemAvailable, or the process's memory cgroup
 * (v2) limit and what is left of it when that is lower, as a job object's
 * limit would be. The "page file" is the commit limit: winvm takes the
 * commit charge at commit time under Linux's overcommit policy (README.md),
 * so with vm.overcommit_memory=2 it is CommitLimit, of which CommitLimit -
 * Committed_AS is available; under the other policies, which refuse only
 * single commits beyond RAM plus swap, it is MemTotal + SwapTotal, of which
 * MemAvailable + SwapFree is available. The virtual address space runs
 * from the lowest to the highest application address of GetSystemInfo, or
 * up to RLIMIT_AS when that is lower; what the process has mapped (VmSize)
 * is not available. Installed memory counts the memory blocks the kernel
 * knows (sysfs), which include what the firmware and kernel keep for
 * themselves, as SMBIOS would.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"
#include "winvm.h"

struct meminfo {
	uint64_t total, avail, swap_total, swap_free, commit_limit, committed;
};

static bool read_meminfo(struct meminfo *mi)
{
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
		{ "MemTotal:", offsetof(struct meminfo, total) },
		{ "MemAvailable:", offsetof(struct meminfo, avail) },
		{ "SwapTotal:", offsetof(struct meminfo, swap_total) },
		{ "SwapFree:", offsetof(struct meminfo, swap_free) },
		{ "CommitLimit:", offsetof(struct meminfo, commit_limit) },
		{ "Committed_AS:", offsetof(struct meminfo, committed) },
	};
	unsigned long long kb;
	char line[128], name[64];
	size_t i;
	FILE *f;

	memset(mi, 0, sizeof(*mi));
	f = fopen("/proc/meminfo", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %llu", name, &kb) != 2)
			continue;
		for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (!strcmp(name, fields[i].name))
				*(uint64_t *)((char *)mi + fields[i].off) =
					(uint64_t)kb * 1024;
	}
	fclose(f);
	return mi->total != 0;
}

/* The first number in @path, or @dflt. */
static uint64_t read_number(const char *path, const char *fmt, uint64_t dflt)
{
	unsigned long long val;
	FILE *f = fopen(path, "re");

	if (!f)
		return dflt;
	if (fscanf(f, fmt, &val) != 1)
		val = dflt;
	fclose(f);
	return val;
}

/* Limit and usage of the process's cgroup v2 memory controller, if any. */
static bool cgroup_memory(uint64_t *limit, uint64_t *usage)
{
	char line[512], path[600];
	bool found = false;
	FILE *f;

	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = 0;
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max",
			 line + 3);
		*limit = read_number(path, "%llu", 0);
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.current",
			 line + 3);
		*usage = read_number(path, "%llu", 0);
		found = *limit != 0;
	}
	fclose(f);
	return found;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void memory_status(MEMORYSTATUSEX *ms)
{
	uint64_t limit, usage, vm_pages = 0;
	struct meminfo mi;
	struct rlimit rl;
	SYSTEM_INFO si;

	read_meminfo(&mi);
	ms->ullTotalPhys = mi.total;
	ms->ullAvailPhys = min64(mi.avail, mi.total);
	if (cgroup_memory(&limit, &usage) && limit < ms->ullTotalPhys) {
		ms->ullTotalPhys = limit;
		ms->ullAvailPhys = min64(ms->ullAvailPhys,
					 usage < limit ? limit - usage : 0);
	}
	if (read_number("/proc/sys/vm/overcommit_memory", "%llu", 0) == 2) {
		ms->ullTotalPageFile = mi.commit_limit;
		ms->ullAvailPageFile = mi.committed < mi.commit_limit ?
				       mi.commit_limit - mi.committed : 0;
	} else {
		ms->ullTotalPageFile = mi.total + mi.swap_total;
		ms->ullAvailPageFile = min64(mi.avail + mi.swap_free,
					     ms->ullTotalPageFile);
	}
	ms->dwMemoryLoad = ms->ullTotalPhys >= 100 ?
		(ms->ullTotalPhys - ms->ullAvailPhys) / (ms->ullTotalPhys / 100) :
		0;

	GetSystemInfo(&si);
	ms->ullTotalVirtual = (uintptr_t)si.lpMaximumApplicationAddress -
			      (uintptr_t)si.lpMinimumApplicationAddress + 1;
	if (!getrlimit(RLIMIT_AS, &rl) && rl.rlim_cur != RLIM_INFINITY)
		ms->ullTotalVirtual = min64(ms->ullTotalVirtual, rl.rlim_cur);
	vm_pages = read_number("/proc/self/statm", "%llu", 0);
	vm_pages *= sysconf(_SC_PAGESIZE);
	ms->ullAvailVirtual = vm_pages < ms->ullTotalVirtual ?
			      ms->ullTotalVirtual - vm_pages : 0;
	ms->ullAvailExtendedVirtual = 0;
}

BOOL WINAPI GlobalMemoryStatusEx(LPMEMORYSTATUSEX lpBuffer)
{
	DWORD saved;

	if (lpBuffer->dwLength != sizeof(MEMORYSTATUSEX))
		return winvm_fail(ERROR_INVALID_PARAMETER);
	saved = GetLastError();
	memory_status(lpBuffer);
	SetLastError(saved);
	return TRUE;
}

/*
 * The 32-bit era structure: physical sizes capped at SIZE_T's half, the
 * others at SIZE_T's maximum, as Windows does. Never sets the last error.
 */
void WINAPI GlobalMemoryStatus(LPMEMORYSTATUS lpBuffer)
{
	DWORD saved = GetLastError();
	MEMORYSTATUSEX ms;

	memory_status(&ms);
	SetLastError(saved);
	lpBuffer->dwLength = sizeof(*lpBuffer);
	lpBuffer->dwMemoryLoad = ms.dwMemoryLoad;
	lpBuffer->dwTotalPhys = min64(ms.ullTotalPhys, ~(SIZE_T)0 >> 1);
	lpBuffer->dwAvailPhys = min64(ms.ullAvailPhys, ~(SIZE_T)0 >> 1);
	lpBuffer->dwTotalPageFile = min64(ms.ullTotalPageFile, ~(SIZE_T)0);
	lpBuffer->dwAvailPageFile = min64(ms.ullAvailPageFile, ~(SIZE_T)0);
	lpBuffer->dwTotalVirtual = ms.ullTotalVirtual;
	lpBuffer->dwAvailVirtual = ms.ullAvailVirtual;
}

/* Bytes in the memory blocks sysfs lists, or 0. */
static uint64_t memory_blocks(void)
{
	uint64_t block, n = 0;
	struct dirent *d;
	DIR *dir;

	block = read_number("/sys/devices/system/memory/block_size_bytes",
			    "%llx", 0);
	dir = opendir("/sys/devices/system/memory");
	if (!block || !dir) {
		if (dir)
			closedir(dir);
		return 0;
	}
	while ((d = readdir(dir)))
		if (!strncmp(d->d_name, "memory", 6) &&
		    d->d_name[6] >= '0' && d->d_name[6] <= '9')
			n++;
	closedir(dir);
	return n * block;
}

BOOL WINAPI GetPhysicallyInstalledSystemMemory(PULONGLONG TotalMemoryInKilobytes)
{
	struct meminfo mi;
	uint64_t bytes;

	if (!TotalMemoryInKilobytes)
		return winvm_fail(ERROR_INVALID_PARAMETER);
	read_meminfo(&mi);
	bytes = memory_blocks();
	if (bytes < mi.total)
		bytes = mi.total;
	*TotalMemoryInKilobytes = (bytes + 1023) / 1024;
	return TRUE;
}

/* The length of the common prefix of two buffers. */
SIZE_T WINAPI RtlCompareMemory(const VOID *Source1, const VOID *Source2,
			       SIZE_T Length)
{
	const unsigned char *a = Source1, *b = Source2;
	uint64_t x, y;
	SIZE_T i = 0;

	for (; i + sizeof(x) <= Length; i += sizeof(x)) {
		memcpy(&x, a + i, sizeof(x));
		memcpy(&y, b + i, sizeof(y));
		if (x != y)
			break;
	}
	while (i < Length && a[i] == b[i])
		i++;
	return i;
}
