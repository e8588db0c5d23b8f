// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libwinvm: the Win32 virtual-memory calls on top of /dev/winvm.
 *
 * Rules that depend only on the arguments (which PAGE_* and MEM_* values
 * are valid, MEM_RELEASE wanting size 0) are checked here; everything that
 * depends on the state of the address space is decided by the module, in
 * one ioctl, atomically. The module answers in errno and WINVM_* flags; this
 * file owns every Win32 name and maps errors through one table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <linux/winvm.h>

#include "internal.h"
#include "winvm.h"

#define WINVM_DEVICE		"/dev/winvm"
#define WINVM_GRANULARITY	0x10000UL

/* Until the module says otherwise: the x86-64 4-level user address limit. */
#define WINVM_DEFAULT_MAX_ADDRESS	0x7ffffffeffffUL

static __thread DWORD last_error;

/*
 * The device is opened on first use, once per process: the fd is published
 * with release semantics and read locklessly on the fast path. A forked
 * child must not use its parent's context (the module refuses it), so the
 * child forgets it and opens its own: at once through pthread_atfork(), or,
 * for a child made without the fork handlers (_Fork(), a raw fork system
 * call), when the module refuses the parent's fd with EPERM.
 */
static struct {
	pthread_mutex_t lock;
	int fd;
	int hinted;
	pid_t pid;		/* the process that opened fd */
	bool guard_stack;	/* WINVM_OPTION_GUARD_STACK is on */
	struct winvm_info info;
} dev = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.fd = -1,
};

/* errno from the module (or from opening it) to Win32 error code. */
static const struct {
	int err;
	DWORD code;
} errno_table[] = {
	{ EINVAL,	ERROR_INVALID_PARAMETER },
	{ EEXIST,	ERROR_INVALID_ADDRESS },	/* conflicting addresses */
	{ ENXIO,	ERROR_INVALID_ADDRESS },	/* not (all) allocated */
	{ ENOMEM,	ERROR_NOT_ENOUGH_MEMORY },
	{ ENOSPC,	ERROR_COMMITMENT_LIMIT },	/* overcommit policy said no */
	{ EFAULT,	ERROR_NOACCESS },
	{ EPERM,	ERROR_ACCESS_DENIED },
	{ EACCES,	ERROR_ACCESS_DENIED },
	{ ENOENT,	ERROR_NOT_SUPPORTED },		/* module not loaded */
	{ ENODEV,	ERROR_NOT_SUPPORTED },
	{ ENOTTY,	ERROR_NOT_SUPPORTED },
	{ EPROTO,	ERROR_NOT_SUPPORTED },		/* unknown API version */
	{ EAGAIN,	STATUS_GUARD_PAGE_VIOLATION },	/* VirtualLock on a guard */
	{ EDQUOT,	ERROR_WORKING_SET_QUOTA },	/* RLIMIT_MEMLOCK */
	{ ENOLCK,	ERROR_NOT_LOCKED },
	{ ENODATA,	ERROR_GEN_FAILURE },		/* MEM_RESET_UNDO: data lost */
	{ EOPNOTSUPP,	ERROR_NOT_SUPPORTED },		/* no huge pages at all */
	{ ENOBUFS,	ERROR_NO_SYSTEM_RESOURCES },	/* no huge page free */
};

static DWORD errno_to_win32(int err)
{
	size_t i;

	for (i = 0; i < sizeof(errno_table) / sizeof(errno_table[0]); i++)
		if (errno_table[i].err == err)
			return errno_table[i].code;
	return ERROR_GEN_FAILURE;
}

static void forget_device(void)
{
	if (dev.fd >= 0)
		close(dev.fd);
	dev.fd = -1;
	pthread_mutex_init(&dev.lock, NULL);
}

__attribute__((constructor)) static void libwinvm_init(void)
{
	pthread_atfork(NULL, NULL, forget_device);
}

static int open_device(void)
{
	struct winvm_info info;
	int fd, err = 0;

	pthread_mutex_lock(&dev.lock);
	fd = dev.fd;
	if (fd >= 0)
		goto out;

	fd = open(WINVM_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
	} else if (ioctl(fd, WINVM_IOC_GET_INFO, &info)) {
		err = errno;
	} else if (info.api_version != WINVM_API_VERSION) {
		err = EPROTO;
	} else {
		struct winvm_options opt = {
			.options = WINVM_OPTION_GUARD_STACK,
		};

		dev.info = info;
		dev.pid = getpid();
		dev.guard_stack =
			(info.features & WINVM_FEATURE_GUARD_STACK) &&
			!ioctl(fd, WINVM_IOC_SET_OPTIONS, &opt);
		__atomic_store_n(&dev.fd, fd, __ATOMIC_RELEASE);
		goto out;
	}
	if (fd >= 0)
		close(fd);
	fd = -err;
	if (!dev.hinted) {
		dev.hinted = 1;
		fprintf(stderr, "libwinvm: %s unusable (%s); load the module first: winvmctl load winvm.ko\n",
			WINVM_DEVICE, err == EPROTO ?
			"module API version differs from the library's" :
			strerror(err));
	}
out:
	pthread_mutex_unlock(&dev.lock);
	return fd;
}

/* The device fd, or -errno. */
static int device(void)
{
	int fd = __atomic_load_n(&dev.fd, __ATOMIC_ACQUIRE);

	winvm_thread_setup();

	return fd >= 0 ? fd : open_device();
}

/*
 * EPERM on @fd: if it is the parent's, in a child the fork handlers did not
 * run in, drop it for a new one. True if there is one to retry with: also
 * when another thread of the child replaced it first (its new fd may even
 * have the same number, but it was opened by this process).
 */
static bool forked_behind_our_back(int fd, pid_t opener)
{
	pid_t self = getpid();
	bool retry;

	pthread_mutex_lock(&dev.lock);
	retry = opener != self;
	if (retry && dev.fd == fd && dev.pid == opener) {
		close(fd);
		__atomic_store_n(&dev.fd, -1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&dev.lock);
	return retry;
}

bool winvm_owns(const void *addr)
{
	struct winvm_query_args q = { .addr = (uintptr_t)addr };
	int fd = device();

	return fd >= 0 && !ioctl(fd, WINVM_IOC_QUERY, &q) &&
	       (q.out_flags & WINVM_QUERY_WINVM);
}

int winvm_fault_fd(bool *guard_stack)
{
	int fd = __atomic_load_n(&dev.fd, __ATOMIC_ACQUIRE);

	*guard_stack = fd >= 0 && dev.guard_stack;
	return fd;
}

/* ioctl on the device: 0, or -1 with the Win32 error set. */
static int winvm_call(unsigned long cmd, void *arg)
{
	int fd = device();
	pid_t opener;

	if (fd < 0) {
		SetLastError(errno_to_win32(-fd));
		return -1;
	}
	opener = __atomic_load_n(&dev.pid, __ATOMIC_RELAXED);
	if (!ioctl(fd, cmd, arg))
		return 0;
	if (errno == EPERM && forked_behind_our_back(fd, opener)) {
		fd = device();
		if (fd >= 0 && !ioctl(fd, cmd, arg))
			return 0;
		if (fd < 0)
			errno = -fd;
	}
	SetLastError(errno_to_win32(errno));
	return -1;
}

static int fail(DWORD code)
{
	SetLastError(code);
	return 0;
}

/*
 * Win32 page protection to WINVM_PROT_*: exactly one base protection (the
 * WRITECOPY ones are not valid for private memory) and at most one of the
 * modifiers, never on PAGE_NOACCESS. PAGE_TARGETS_INVALID (alias
 * PAGE_TARGETS_NO_UPDATE) is accepted and has no effect: there is no CFG.
 */
static DWORD protect_to_prot(DWORD protect, __u32 *prot)
{
	DWORD modifiers = protect & ~0xffu & ~(DWORD)PAGE_TARGETS_INVALID;

	switch (protect & 0xff) {
	case PAGE_NOACCESS:
		*prot = 0;
		break;
	case PAGE_READONLY:
		*prot = WINVM_PROT_READ;
		break;
	case PAGE_READWRITE:
		*prot = WINVM_PROT_READ | WINVM_PROT_WRITE;
		break;
	case PAGE_EXECUTE:
		*prot = WINVM_PROT_EXEC;
		break;
	case PAGE_EXECUTE_READ:
		*prot = WINVM_PROT_EXEC | WINVM_PROT_READ;
		break;
	case PAGE_EXECUTE_READWRITE:
		*prot = WINVM_PROT_EXEC | WINVM_PROT_READ | WINVM_PROT_WRITE;
		break;
	default:
		return ERROR_INVALID_PARAMETER;
	}
	if (modifiers & ~(DWORD)(PAGE_GUARD | PAGE_NOCACHE | PAGE_WRITECOMBINE))
		return ERROR_INVALID_PARAMETER;
	/* Modifiers need access and exclude each other. */
	if (modifiers && (!*prot || (modifiers & (modifiers - 1))))
		return ERROR_INVALID_PARAMETER;
	if (modifiers & PAGE_GUARD)
		*prot |= WINVM_PROT_GUARD;
	if (modifiers & PAGE_NOCACHE)
		*prot |= WINVM_PROT_NOCACHE;
	if (modifiers & PAGE_WRITECOMBINE)
		*prot |= WINVM_PROT_WRITECOMBINE;
	return ERROR_SUCCESS;
}

static DWORD base_protect(__u32 prot);

/* WINVM_PROT_* to the Win32 protection value. */
static DWORD prot_to_protect(__u32 prot)
{
	DWORD protect = base_protect(prot & ~(WINVM_PROT_GUARD |
					      WINVM_PROT_CACHE_MASK));

	if (prot & WINVM_PROT_GUARD)
		protect |= PAGE_GUARD;
	if (prot & WINVM_PROT_NOCACHE)
		protect |= PAGE_NOCACHE;
	if (prot & WINVM_PROT_WRITECOMBINE)
		protect |= PAGE_WRITECOMBINE;
	return protect;
}

static DWORD base_protect(__u32 prot)
{
	switch (prot) {
	case 0:
		return PAGE_NOACCESS;
	case WINVM_PROT_READ:
		return PAGE_READONLY;
	case WINVM_PROT_READ | WINVM_PROT_WRITE:
		return PAGE_READWRITE;
	case WINVM_PROT_READ | WINVM_PROT_WRITE | WINVM_PROT_COPY:
		return PAGE_WRITECOPY;
	case WINVM_PROT_EXEC:
		return PAGE_EXECUTE;
	case WINVM_PROT_EXEC | WINVM_PROT_READ:
		return PAGE_EXECUTE_READ;
	case WINVM_PROT_EXEC | WINVM_PROT_READ | WINVM_PROT_WRITE:
		return PAGE_EXECUTE_READWRITE;
	case WINVM_PROT_EXEC | WINVM_PROT_READ | WINVM_PROT_WRITE |
	     WINVM_PROT_COPY:
		return PAGE_EXECUTE_WRITECOPY;
	case WINVM_PROT_WRITE:	/* a write-only Linux mapping */
		return PAGE_READWRITE;
	case WINVM_PROT_EXEC | WINVM_PROT_WRITE:
		return PAGE_EXECUTE_READWRITE;
	default:
		return PAGE_NOACCESS;
	}
}

static int is_current_process(HANDLE process)
{
	return process == GetCurrentProcess();
}

HANDLE WINAPI GetCurrentProcess(void)
{
	return WINVM_CURRENT_PROCESS;
}

DWORD WINAPI GetLastError(void)
{
	return last_error;
}

void WINAPI SetLastError(DWORD dwErrCode)
{
	last_error = dwErrCode;
}

/* Allocation types VirtualAlloc knows; only some are implemented. */
#define KNOWN_ALLOC_TYPES	(MEM_COMMIT | MEM_RESERVE | MEM_RESET | \
				 MEM_RESET_UNDO | MEM_TOP_DOWN | \
				 MEM_WRITE_WATCH | MEM_PHYSICAL | \
				 MEM_LARGE_PAGES)
#define DONE_ALLOC_TYPES	(MEM_COMMIT | MEM_RESERVE | MEM_TOP_DOWN | \
				 MEM_RESET | MEM_RESET_UNDO | \
				 MEM_LARGE_PAGES | MEM_WRITE_WATCH)

/* Whether the module implements WINVM_FEATURE_* @feature. */
static bool has_feature(__u64 feature)
{
	return device() >= 0 && (dev.info.features & feature);
}

/*
 * VirtualAlloc, and VirtualAlloc2 with @req, its MEM_ADDRESS_REQUIREMENTS
 * (or NULL).
 */
static LPVOID alloc(LPVOID lpAddress, SIZE_T dwSize, DWORD flAllocationType,
		    DWORD flProtect, const MEM_ADDRESS_REQUIREMENTS *req)
{
	struct winvm_alloc_ex_args ex = { 0 };
	struct winvm_alloc_args args = {
		.addr = (uintptr_t)lpAddress,
		.size = dwSize,
	};
	DWORD type = flAllocationType, err;

	if (!dwSize || (type & ~(DWORD)KNOWN_ALLOC_TYPES) ||
	    (req && (lpAddress || (type & (MEM_RESET | MEM_RESET_UNDO)))) ||
	    !(type & (MEM_COMMIT | MEM_RESERVE | MEM_RESET | MEM_RESET_UNDO)) ||
	    ((type & MEM_WRITE_WATCH) && !(type & MEM_RESERVE)) ||
	    ((type & MEM_RESET) && type != MEM_RESET) ||
	    ((type & MEM_RESET_UNDO) && type != MEM_RESET_UNDO) ||
	    ((type & MEM_LARGE_PAGES) &&
	     (type & (MEM_RESERVE | MEM_COMMIT)) != (MEM_RESERVE | MEM_COMMIT))) {
		fail(ERROR_INVALID_PARAMETER);
		return NULL;
	}
	if ((type & ~(DWORD)DONE_ALLOC_TYPES) ||
	    ((type & MEM_WRITE_WATCH) &&
	     !has_feature(WINVM_FEATURE_WRITE_WATCH)) ||
	    (req && !has_feature(WINVM_FEATURE_ADDRESS_REQUIREMENTS))) {
		fail(ERROR_NOT_SUPPORTED);
		return NULL;
	}
	/* MEM_RESET and MEM_RESET_UNDO ignore the protection. */
	if (type == MEM_RESET || type == MEM_RESET_UNDO) {
		args.flags = type == MEM_RESET ? WINVM_ALLOC_RESET :
						 WINVM_ALLOC_RESET_UNDO;
		if (winvm_call(WINVM_IOC_ALLOC, &args))
			return NULL;
		return (LPVOID)(uintptr_t)args.out_addr;
	}
	err = protect_to_prot(flProtect, &args.prot);
	if (err) {
		fail(err);
		return NULL;
	}

	if (type & MEM_RESERVE)
		args.flags |= WINVM_ALLOC_RESERVE;
	if (type & MEM_COMMIT)
		args.flags |= WINVM_ALLOC_COMMIT;
	if (type & MEM_TOP_DOWN)
		args.flags |= WINVM_ALLOC_TOP_DOWN;
	if (type & MEM_LARGE_PAGES)
		args.flags |= WINVM_ALLOC_LARGE_PAGES;
	if (type & MEM_WRITE_WATCH)
		args.flags |= WINVM_ALLOC_WRITE_WATCH;

	if (!req) {
		if (winvm_call(WINVM_IOC_ALLOC, &args))
			return NULL;
		return (LPVOID)(uintptr_t)args.out_addr;
	}
	/* The module places it: a reservation, even for MEM_COMMIT alone. */
	ex.alloc = args;
	ex.alloc.flags |= WINVM_ALLOC_RESERVE;
	ex.align = req->Alignment;
	ex.lowest = (uintptr_t)req->LowestStartingAddress;
	ex.highest = (uintptr_t)req->HighestEndingAddress;
	if (winvm_call(WINVM_IOC_ALLOC_EX, &ex))
		return NULL;
	return (LPVOID)(uintptr_t)ex.alloc.out_addr;
}

LPVOID WINAPI VirtualAlloc(LPVOID lpAddress, SIZE_T dwSize,
			   DWORD flAllocationType, DWORD flProtect)
{
	return alloc(lpAddress, dwSize, flAllocationType, flProtect, NULL);
}

/*
 * VirtualAlloc2: NULL names the current process too. Of the extended
 * parameters, MEM_ADDRESS_REQUIREMENTS is done by the module and a NUMA
 * node is accepted and left to Linux's memory policy; the others are not
 * done. Placeholders are not done either.
 */
PVOID WINAPI VirtualAlloc2(HANDLE Process, PVOID BaseAddress, SIZE_T Size,
			   ULONG AllocationType, ULONG PageProtection,
			   MEM_EXTENDED_PARAMETER *ExtendedParameters,
			   ULONG ParameterCount)
{
	MEM_ADDRESS_REQUIREMENTS req, *reqp = NULL;
	MEM_EXTENDED_PARAMETER param;
	unsigned int seen = 0;
	DWORD err = 0;
	ULONG i;

	if (Process && !is_current_process(Process))
		err = ERROR_INVALID_HANDLE;
	else if (ParameterCount && !ExtendedParameters)
		err = ERROR_INVALID_PARAMETER;
	for (i = 0; !err && i < ParameterCount; i++) {
		if (!winvm_copy(&param, &ExtendedParameters[i], sizeof(param))) {
			err = ERROR_NOACCESS;
			break;
		}
		if (param.Reserved || param.Type == MemExtendedParameterInvalidType ||
		    param.Type >= MemExtendedParameterMax ||
		    (seen & (1u << param.Type))) {
			err = ERROR_INVALID_PARAMETER;
			break;
		}
		seen |= 1u << param.Type;
		switch (param.Type) {
		case MemExtendedParameterAddressRequirements:
			if (!param.Pointer)
				err = ERROR_INVALID_PARAMETER;
			else if (!winvm_copy(&req, param.Pointer, sizeof(req)))
				err = ERROR_NOACCESS;
			reqp = &req;
			break;
		case MemExtendedParameterNumaNode:
			break;
		default:
			err = ERROR_NOT_SUPPORTED;
			break;
		}
	}
	if (!err && (AllocationType & (MEM_RESERVE_PLACEHOLDER |
				       MEM_REPLACE_PLACEHOLDER)))
		err = ERROR_NOT_SUPPORTED;
	if (err) {
		fail(err);
		return NULL;
	}
	return alloc(BaseAddress, Size, AllocationType, PageProtection, reqp);
}

LPVOID WINAPI VirtualAllocEx(HANDLE hProcess, LPVOID lpAddress, SIZE_T dwSize,
			     DWORD flAllocationType, DWORD flProtect)
{
	if (!is_current_process(hProcess)) {
		fail(ERROR_INVALID_HANDLE);
		return NULL;
	}
	return VirtualAlloc(lpAddress, dwSize, flAllocationType, flProtect);
}

BOOL WINAPI VirtualFree(LPVOID lpAddress, SIZE_T dwSize, DWORD dwFreeType)
{
	struct winvm_free_args args = {
		.addr = (uintptr_t)lpAddress,
		.size = dwSize,
	};

	switch (dwFreeType) {
	case MEM_DECOMMIT:
		args.flags = WINVM_FREE_DECOMMIT;
		break;
	case MEM_RELEASE:
		/* Only whole allocations: size 0, checked before the call. */
		if (dwSize)
			return fail(ERROR_INVALID_PARAMETER);
		args.flags = WINVM_FREE_RELEASE;
		break;
	default:
		return fail(ERROR_INVALID_PARAMETER);
	}
	return !winvm_call(WINVM_IOC_FREE, &args);
}

BOOL WINAPI VirtualFreeEx(HANDLE hProcess, LPVOID lpAddress, SIZE_T dwSize,
			  DWORD dwFreeType)
{
	/* Checked before the NT call, so before the handle (case 14). */
	if (dwFreeType == MEM_RELEASE && dwSize)
		return fail(ERROR_INVALID_PARAMETER);
	if (!is_current_process(hProcess))
		return fail(ERROR_INVALID_HANDLE);
	return VirtualFree(lpAddress, dwSize, dwFreeType);
}

static DWORD state_to_mem(__u32 state)
{
	switch (state) {
	case WINVM_STATE_COMMIT:
		return MEM_COMMIT;
	case WINVM_STATE_RESERVE:
		return MEM_RESERVE;
	default:
		return MEM_FREE;
	}
}

static DWORD type_to_mem(__u32 type)
{
	switch (type) {
	case WINVM_TYPE_PRIVATE:
		return MEM_PRIVATE;
	case WINVM_TYPE_MAPPED:
		return MEM_MAPPED;
	case WINVM_TYPE_IMAGE:
		return MEM_IMAGE;
	default:
		return 0;
	}
}

SIZE_T WINAPI VirtualQuery(LPCVOID lpAddress,
			   PMEMORY_BASIC_INFORMATION lpBuffer, SIZE_T dwLength)
{
	struct winvm_query_args args = { .addr = (uintptr_t)lpAddress };
	MEMORY_BASIC_INFORMATION mbi;

	if (dwLength < sizeof(mbi))
		return fail(ERROR_BAD_LENGTH);
	if (!lpBuffer)
		return fail(ERROR_NOACCESS);
	if (winvm_call(WINVM_IOC_QUERY, &args))
		return 0;

	memset(&mbi, 0, sizeof(mbi));
	mbi.BaseAddress = (PVOID)(uintptr_t)args.out_base;
	mbi.AllocationBase = (PVOID)(uintptr_t)args.out_alloc_base;
	mbi.RegionSize = args.out_region_size;
	mbi.State = state_to_mem(args.out_state);
	mbi.Type = type_to_mem(args.out_type);
	switch (args.out_state) {
	case WINVM_STATE_COMMIT:
		mbi.AllocationProtect = prot_to_protect(args.out_alloc_prot);
		mbi.Protect = prot_to_protect(args.out_prot);
		break;
	case WINVM_STATE_RESERVE:
		mbi.AllocationProtect = prot_to_protect(args.out_alloc_prot);
		mbi.Protect = 0;
		break;
	default:
		mbi.Protect = PAGE_NOACCESS;
		break;
	}
	if (!winvm_copy(lpBuffer, &mbi, sizeof(mbi)))
		return fail(ERROR_NOACCESS);
	return sizeof(mbi);
}

BOOL WINAPI VirtualProtect(LPVOID lpAddress, SIZE_T dwSize, DWORD flNewProtect,
			   PDWORD lpflOldProtect)
{
	struct winvm_protect_args args = {
		.addr = (uintptr_t)lpAddress,
		.size = dwSize,
	};
	DWORD err, old = PAGE_NOACCESS;

	/*
	 * As on Windows, a failure reports PAGE_NOACCESS as the old value: it
	 * goes in first, which also finds an unwritable pointer before
	 * anything changes.
	 */
	err = protect_to_prot(flNewProtect, &args.prot);
	if ((!lpflOldProtect || !winvm_copy(lpflOldProtect, &old, sizeof(old))) &&
	    !err)
		err = ERROR_NOACCESS;
	if (err)
		return fail(err);
	if (winvm_call(WINVM_IOC_PROTECT, &args))
		return FALSE;
	old = prot_to_protect(args.out_old_prot);
	winvm_copy(lpflOldProtect, &old, sizeof(old));
	return TRUE;
}

BOOL WINAPI VirtualLock(LPVOID lpAddress, SIZE_T dwSize)
{
	struct winvm_lock_args args = {
		.addr = (uintptr_t)lpAddress,
		.size = dwSize,
	};

	return !winvm_call(WINVM_IOC_LOCK, &args);
}

BOOL WINAPI VirtualUnlock(LPVOID lpAddress, SIZE_T dwSize)
{
	struct winvm_lock_args args = {
		.addr = (uintptr_t)lpAddress,
		.size = dwSize,
	};

	return !winvm_call(WINVM_IOC_UNLOCK, &args);
}

/* Whether the caller's @n (<= 8) bytes at @p can be written; kept as is. */
static bool writable(void *p, size_t n)
{
	uint64_t v;

	return p && winvm_copy(&v, p, n) && winvm_copy(p, &v, n);
}

/*
 * Write watch: the module keeps the marks and checks the range; the
 * pointers and the count are checked here, in the order Windows does, and
 * before anything is reset.
 */
UINT WINAPI GetWriteWatch(DWORD dwFlags, PVOID lpBaseAddress,
			  SIZE_T dwRegionSize, PVOID *lpAddresses,
			  ULONG_PTR *lpdwCount, LPDWORD lpdwGranularity)
{
	struct winvm_watch_args args = {
		.addr = (uintptr_t)lpBaseAddress,
		.size = dwRegionSize,
		.buf = (uintptr_t)lpAddresses,
		.flags = WINVM_WATCH_REPORT,
	};

	if (dwFlags & ~(DWORD)WRITE_WATCH_FLAG_RESET) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return ~0u;
	}
	if (!writable(lpdwCount, sizeof(*lpdwCount))) {
		SetLastError(ERROR_NOACCESS);
		return ~0u;
	}
	args.count = *lpdwCount;
	if (!args.count) {
		SetLastError(ERROR_INVALID_PARAMETER);
		return ~0u;
	}
	if (!lpAddresses || !writable(lpdwGranularity, sizeof(*lpdwGranularity))) {
		SetLastError(ERROR_NOACCESS);
		return ~0u;
	}
	if (dwFlags & WRITE_WATCH_FLAG_RESET)
		args.flags |= WINVM_WATCH_RESET;
	if (winvm_call(WINVM_IOC_WATCH, &args))
		return ~0u;
	*lpdwCount = args.out_count;
	*lpdwGranularity = sysconf(_SC_PAGESIZE);
	return 0;
}

UINT WINAPI ResetWriteWatch(LPVOID lpBaseAddress, SIZE_T dwRegionSize)
{
	struct winvm_watch_args args = {
		.addr = (uintptr_t)lpBaseAddress,
		.size = dwRegionSize,
		.flags = WINVM_WATCH_RESET,
	};

	return winvm_call(WINVM_IOC_WATCH, &args) ? ~0u : 0;
}

BOOL WINAPI VirtualProtectEx(HANDLE hProcess, LPVOID lpAddress, SIZE_T dwSize,
			     DWORD flNewProtect, PDWORD lpflOldProtect)
{
	if (!is_current_process(hProcess)) {
		DWORD old = PAGE_NOACCESS;

		/* Any failure reports PAGE_NOACCESS (case 32). */
		if (lpflOldProtect)
			winvm_copy(lpflOldProtect, &old, sizeof(old));
		return fail(ERROR_INVALID_HANDLE);
	}
	return VirtualProtect(lpAddress, dwSize, flNewProtect, lpflOldProtect);
}

SIZE_T WINAPI VirtualQueryEx(HANDLE hProcess, LPCVOID lpAddress,
			     PMEMORY_BASIC_INFORMATION lpBuffer,
			     SIZE_T dwLength)
{
	if (!is_current_process(hProcess))
		return fail(ERROR_INVALID_HANDLE);
	return VirtualQuery(lpAddress, lpBuffer, dwLength);
}

static void fill_processor(LPSYSTEM_INFO si)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned int eax, ebx, ecx, edx, family, model;

#ifdef __x86_64__
	si->wProcessorArchitecture = PROCESSOR_ARCHITECTURE_AMD64;
	si->dwProcessorType = PROCESSOR_AMD_X8664;
#else
	si->wProcessorArchitecture = PROCESSOR_ARCHITECTURE_INTEL;
	si->dwProcessorType = PROCESSOR_INTEL_PENTIUM;
#endif
	if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
		family = (eax >> 8) & 0xf;
		model = (eax >> 4) & 0xf;
		if (family == 0xf)
			family += (eax >> 20) & 0xff;
		if (family >= 6)
			model |= ((eax >> 16) & 0xf) << 4;
		si->wProcessorLevel = family;
		si->wProcessorRevision = (model << 8) | (eax & 0xf);
	}
#elif defined(__aarch64__)
	si->wProcessorArchitecture = PROCESSOR_ARCHITECTURE_ARM64;
	si->dwProcessorType = 0;
#else
	si->wProcessorArchitecture = PROCESSOR_ARCHITECTURE_UNKNOWN;
#endif
}

void WINAPI GetSystemInfo(LPSYSTEM_INFO lpSystemInfo)
{
	SYSTEM_INFO si;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uintptr_t max = WINVM_DEFAULT_MAX_ADDRESS;

	if (device() >= 0)
		max = dev.info.max_address;
	if (cpus < 1)
		cpus = 1;

	memset(&si, 0, sizeof(si));
	fill_processor(&si);
	si.dwPageSize = sysconf(_SC_PAGESIZE);
	si.lpMinimumApplicationAddress = (LPVOID)WINVM_GRANULARITY;
	si.lpMaximumApplicationAddress = (LPVOID)max;
	si.dwNumberOfProcessors = cpus;
	si.dwActiveProcessorMask = cpus >= (long)(8 * sizeof(DWORD_PTR)) ?
				   ~(DWORD_PTR)0 :
				   ((DWORD_PTR)1 << cpus) - 1;
	si.dwAllocationGranularity = WINVM_GRANULARITY;
	*lpSystemInfo = si;
}

void WINAPI GetNativeSystemInfo(LPSYSTEM_INFO lpSystemInfo)
{
	GetSystemInfo(lpSystemInfo);
}

/* The module's large-page size (the PMD size), or 0 without huge pages. */
SIZE_T WINAPI GetLargePageMinimum(void)
{
	if (device() < 0)
		return 0;
	return dev.info.large_page_size;
}

/* x86 keeps instruction fetches coherent with stores: nothing to flush. */
BOOL WINAPI FlushInstructionCache(HANDLE hProcess, LPCVOID lpBaseAddress,
				  SIZE_T dwSize)
{
	if (!is_current_process(hProcess))
		return fail(ERROR_INVALID_HANDLE);
#ifndef __x86_64__
	__builtin___clear_cache((char *)lpBaseAddress,
				(char *)lpBaseAddress + dwSize);
#endif
	return TRUE;
}
