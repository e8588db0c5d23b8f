// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libwinvm: access to memory that may not be there. IsBad*Ptr probe the
 * memory the way Windows' do, touching every page under winvm_try() (so a
 * guard page they meet is consumed, as on Windows); ReadProcessMemory and
 * WriteProcessMemory copy through the kernel (process_vm_readv/writev), so
 * a fault ends the copy instead of the process.
 *
 * Only the current process can be named, as with the other *Ex calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "winvm.h"

#define PAGE	4096UL

struct span {
	uintptr_t start, last;
	bool write;
};

/* Touch the first byte, every page after it and the last byte. */
static void touch_span(void *arg)
{
	const struct span *s = arg;
	uintptr_t a = s->start;

	for (;;) {
		if (s->write)
			__atomic_fetch_or((volatile char *)a, 0, __ATOMIC_RELAXED);
		else
			(void)*(volatile const char *)a;
		if ((a & ~(PAGE - 1)) == (s->last & ~(PAGE - 1)))
			break;
		a = (a & ~(PAGE - 1)) + PAGE;
	}
	if (s->write)
		__atomic_fetch_or((volatile char *)s->last, 0, __ATOMIC_RELAXED);
	else
		(void)*(volatile const char *)s->last;
}

/* Whether @n bytes at @p can all be read (or written, keeping them). */
static bool accessible(const void *p, uintptr_t n, bool write)
{
	struct span s = { (uintptr_t)p, (uintptr_t)p + n - 1, write };

	if (!n)
		return true;
	if (!p || s.last < s.start)
		return false;
	return winvm_try(touch_span, &s);
}

BOOL WINAPI IsBadReadPtr(LPCVOID lp, UINT_PTR ucb)
{
	return !accessible(lp, ucb, false);
}

BOOL WINAPI IsBadWritePtr(LPVOID lp, UINT_PTR ucb)
{
	return !accessible(lp, ucb, true);
}

BOOL WINAPI IsBadHugeReadPtr(LPCVOID lp, UINT_PTR ucb)
{
	return IsBadReadPtr(lp, ucb);
}

BOOL WINAPI IsBadHugeWritePtr(LPVOID lp, UINT_PTR ucb)
{
	return IsBadWritePtr(lp, ucb);
}

/* Windows reads one byte: the code must be readable. */
BOOL WINAPI IsBadCodePtr(FARPROC lpfn)
{
	return IsBadReadPtr((LPCVOID)lpfn, 1);
}

struct string {
	const void *s;
	UINT_PTR max;
	size_t width;
};

/* Read up to @max characters, or to the terminating zero. */
static void read_string(void *arg)
{
	const struct string *str = arg;
	UINT_PTR i;

	for (i = 0; i < str->max; i++) {
		if (str->width == 1 ?
		    !((volatile const CHAR *)str->s)[i] :
		    !((volatile const WCHAR *)str->s)[i])
			break;
	}
}

static BOOL bad_string(const void *s, UINT_PTR max, size_t width)
{
	struct string str = { s, max, width };

	if (!s)
		return TRUE;
	return !winvm_try(read_string, &str);
}

BOOL WINAPI IsBadStringPtrA(LPCSTR lpsz, UINT_PTR ucchMax)
{
	return bad_string(lpsz, ucchMax, sizeof(CHAR));
}

BOOL WINAPI IsBadStringPtrW(LPCWSTR lpsz, UINT_PTR ucchMax)
{
	return bad_string(lpsz, ucchMax, sizeof(WCHAR));
}

/* The count out-parameter of Read/WriteProcessMemory, if there is one. */
static void set_count(SIZE_T *count, SIZE_T n)
{
	if (count)
		winvm_copy(count, &n, sizeof(n));
}

/*
 * Copy @n bytes between @local and @remote, both in this process, through
 * the kernel: 0, or the Win32 error. A copy cut short by @remote is
 * ERROR_PARTIAL_COPY; by @local (the caller's own buffer), ERROR_NOACCESS.
 */
static DWORD copy_via_kernel(void *remote, void *local, SIZE_T n, bool write)
{
	struct iovec l = { local, n }, r = { remote, n };
	uintptr_t end;
	ssize_t done;

	if (__builtin_add_overflow((uintptr_t)remote, n, &end) ||
	    __builtin_add_overflow((uintptr_t)local, n, &end) ||
	    n > SSIZE_MAX)
		return ERROR_NOACCESS;
	done = write ? process_vm_writev(getpid(), &l, 1, &r, 1, 0) :
		       process_vm_readv(getpid(), &l, 1, &r, 1, 0);
	if (done == (ssize_t)n)
		return 0;
	if (done < 0 && errno != EFAULT)
		return errno == ENOMEM ? ERROR_NOT_ENOUGH_MEMORY :
					 ERROR_ACCESS_DENIED;
	return accessible(local, n, !write) ? ERROR_PARTIAL_COPY :
					      ERROR_NOACCESS;
}

BOOL WINAPI ReadProcessMemory(HANDLE hProcess, LPCVOID lpBaseAddress,
			      LPVOID lpBuffer, SIZE_T nSize,
			      SIZE_T *lpNumberOfBytesRead)
{
	DWORD err = 0;

	winvm_thread_setup();
	if (hProcess != GetCurrentProcess())
		err = ERROR_INVALID_HANDLE;
	else if (nSize)
		err = copy_via_kernel((void *)lpBaseAddress, lpBuffer, nSize,
				      false);
	set_count(lpNumberOfBytesRead, err ? 0 : nSize);
	return err ? winvm_fail(err) : TRUE;
}

/*
 * As Windows' WriteProcessMemory: a writable target is written; one that
 * is executable but not writable (code, for a debugger's breakpoint) is
 * made writable for the copy and given its protection back; a read-only
 * or inaccessible one is refused with ERROR_NOACCESS. Code that is not
 * winvm's (the program's own text) cannot be reprotected by winvm: it is
 * written through /proc/self/mem, which may write what the mapping does
 * not allow, as a debugger does.
 */
static DWORD write_code(void *addr, const void *buf, SIZE_T n)
{
	DWORD old, ignored, err;
	ssize_t done;
	int fd;

	if (VirtualProtect(addr, n, PAGE_EXECUTE_READWRITE, &old)) {
		err = copy_via_kernel(addr, (void *)buf, n, true);
		VirtualProtect(addr, n, old, &ignored);
		return err;
	}
	if (GetLastError() != ERROR_INVALID_ADDRESS)
		return GetLastError();
	fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return ERROR_ACCESS_DENIED;
	done = pwrite(fd, buf, n, (off_t)(uintptr_t)addr);
	close(fd);
	if (done == (ssize_t)n)
		return 0;
	return accessible(buf, n, false) ? ERROR_PARTIAL_COPY :
					   ERROR_NOACCESS;
}

BOOL WINAPI WriteProcessMemory(HANDLE hProcess, LPVOID lpBaseAddress,
			       LPCVOID lpBuffer, SIZE_T nSize,
			       SIZE_T *lpNumberOfBytesWritten)
{
	MEMORY_BASIC_INFORMATION mbi;
	DWORD err = 0, saved = GetLastError();

	winvm_thread_setup();
	if (hProcess != GetCurrentProcess()) {
		err = ERROR_INVALID_HANDLE;
	} else if (!nSize) {
		;
	} else if (!VirtualQuery(lpBaseAddress, &mbi, sizeof(mbi))) {
		err = GetLastError();
	} else if (mbi.State != MEM_COMMIT) {
		err = ERROR_INVALID_ADDRESS;
	} else {
		switch (mbi.Protect & 0xff) {
		case PAGE_READWRITE:
		case PAGE_WRITECOPY:
		case PAGE_EXECUTE_READWRITE:
		case PAGE_EXECUTE_WRITECOPY:
			err = copy_via_kernel(lpBaseAddress, (void *)lpBuffer,
					      nSize, true);
			break;
		case PAGE_EXECUTE:
		case PAGE_EXECUTE_READ:
			err = write_code(lpBaseAddress, lpBuffer, nSize);
			SetLastError(saved);
			break;
		default:
			err = ERROR_NOACCESS;
			break;
		}
	}
	set_count(lpNumberOfBytesWritten, err ? 0 : nSize);
	return err ? winvm_fail(err) : TRUE;
}
