// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libwinvm: access to memory that may not be there. IsBad*Ptr probe the
 * memory the way Windows' do under SEH, touching every page under
 * winvm_try(): vectored handlers see the faults first, and a guard page
 * met is consumed (a Windows-style stack's grows instead). Read and
 * WriteProcessMemory copy under winvm_try() too, through the page tables
 * as Windows' do, so a fault ends the copy rather than the process and
 * write watch sees the writes.
 *
 * Only the current process can be named, as with the other *Ex calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "internal.h"
#include "winvm.h"

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

/* Probes are Windows' SEH probes: vectored handlers see their faults. */
#define PROBE	(WINVM_TRY_VEH | WINVM_TRY_UNBLOCK)

/*
 * Whether @n bytes at @p can all be read (or written, keeping them), probed
 * with winvm_try() @flags.
 */
static bool accessible(const void *p, uintptr_t n, bool write,
		       unsigned int flags)
{
	struct span s = { (uintptr_t)p, (uintptr_t)p + n - 1, write };
	struct winvm_try t = {
		.start = { (uintptr_t)p }, .len = { n }, .flags = flags,
	};

	if (!n)
		return true;
	if (!p || s.last < s.start)
		return false;
	return winvm_try(&t, touch_span, &s);
}

BOOL WINAPI IsBadReadPtr(LPCVOID lp, UINT_PTR ucb)
{
	return !accessible(lp, ucb, false, PROBE);
}

BOOL WINAPI IsBadWritePtr(LPVOID lp, UINT_PTR ucb)
{
	return !accessible(lp, ucb, true, PROBE);
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
	struct winvm_try t = {
		.start = { (uintptr_t)s },
		.len = { max > UINTPTR_MAX / width ? UINTPTR_MAX : max * width },
		.flags = PROBE,
	};

	if (!s)
		return TRUE;
	return !winvm_try(&t, read_string, &str);
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
 * Copy @n bytes from @src to @dst, both in this process, the one the
 * caller named (@remote) and the caller's buffer: 0, or the Win32 error.
 * The copy goes through the page tables, as Windows' does, so write watch
 * sees it; a copy cut short by @remote is ERROR_PARTIAL_COPY, by the
 * caller's buffer ERROR_NOACCESS. No vectored handler sees the faults.
 */
static DWORD copy(void *dst, const void *src, SIZE_T n, const void *remote)
{
	uintptr_t fault, end;

	if (__builtin_add_overflow((uintptr_t)dst, n, &end) ||
	    __builtin_add_overflow((uintptr_t)src, n, &end))
		return ERROR_NOACCESS;
	if (winvm_copy_ex(dst, src, n, WINVM_TRY_UNBLOCK, &fault))
		return 0;
	return fault - (uintptr_t)remote < n ? ERROR_PARTIAL_COPY :
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
		err = copy(lpBuffer, lpBaseAddress, nSize, lpBaseAddress);
	set_count(lpNumberOfBytesRead, err ? 0 : nSize);
	return err ? winvm_fail(err) : TRUE;
}

/*
 * Through /proc/self/mem, which writes what the mapping itself does not
 * let the program write (a debugger's way into code): 0 or the error.
 */
static DWORD write_forced(void *addr, const void *buf, SIZE_T n)
{
	SIZE_T done = 0;
	ssize_t ret = 0;
	int fd;

	fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return ERROR_ACCESS_DENIED;
	while (done < n) {
		ret = pwrite(fd, (const char *)buf + done, n - done,
			     (off_t)((uintptr_t)addr + done));
		if (ret <= 0)
			break;
		done += ret;
	}
	close(fd);
	if (done == n)
		return 0;
	/* Which side failed, found the way the kernel would: unseen. */
	return accessible((const char *)buf + done, 1, false,
			  WINVM_TRY_UNBLOCK) ? ERROR_PARTIAL_COPY :
					       ERROR_NOACCESS;
}

/*
 * As Windows' WriteProcessMemory: a writable target is written; one that
 * is executable but not writable (code, for a debugger's breakpoint) is
 * made writable for the copy and given its protection back; a read-only
 * or inaccessible one is refused with ERROR_NOACCESS. Code that is not
 * winvm's (the program's own text) cannot be reprotected by winvm: it is
 * written through /proc/self/mem, as a debugger writes it.
 */
static DWORD write_code(void *addr, const void *buf, SIZE_T n)
{
	DWORD old, ignored, err;

	if (!winvm_owns(addr))
		return write_forced(addr, buf, n);
	if (!VirtualProtect(addr, n, PAGE_EXECUTE_READWRITE, &old))
		return GetLastError();
	err = copy(addr, buf, n, addr);
	VirtualProtect(addr, n, old, &ignored);
	return err;
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
			err = copy(lpBaseAddress, lpBuffer, nSize,
				   lpBaseAddress);
			break;
		case PAGE_EXECUTE:
		case PAGE_EXECUTE_READ:
			err = write_code(lpBaseAddress, lpBuffer, nSize);
			break;
		default:
			err = ERROR_NOACCESS;
			break;
		}
	}
	set_count(lpNumberOfBytesWritten, err ? 0 : nSize);
	if (err)
		return winvm_fail(err);
	SetLastError(saved);
	return TRUE;
}
