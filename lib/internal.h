/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libwinvm internals shared between its source files; not installed.
 */
#ifndef LIBWINVM_INTERNAL_H
#define LIBWINVM_INTERNAL_H

#include <stdbool.h>

#include "winvm.h"

/* The x86-64 page size, for code that must not ask (a fault handler). */
#define PAGE		4096UL

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

/*
 * Give the calling thread what exception delivery needs (an alternate
 * signal stack); cheap after the first call in a thread. Every entry point
 * calls it, so any thread that uses libwinvm can report a stack overflow.
 */
void winvm_thread_setup(void);

/*
 * Run @fn(@arg), whose memory accesses may fault, as Windows runs a probe
 * under SEH or a system call's accesses to the caller's buffers: true if
 * it completed, false if an access in one of the ranges of @t faulted
 * (SIGSEGV or SIGBUS; a guard page is consumed, as on Windows), where it
 * was cut short, with t->fault the address. @fn must take no lock and
 * allocate nothing.
 */
struct winvm_try {
	uintptr_t start[2];	/* where @fn's faults are expected */
	uintptr_t len[2];
	unsigned int flags;	/* WINVM_TRY_* */
	uintptr_t fault;	/* out: the address that faulted */
};

/* The vectored handlers see the faults first, and may continue them. */
#define WINVM_TRY_VEH		0x1
/* Unblock SIGSEGV and SIGBUS for the call, if the thread blocks them. */
#define WINVM_TRY_UNBLOCK	0x2

bool winvm_try(struct winvm_try *t, void (*fn)(void *arg), void *arg);

/* Whether @addr is in a winvm allocation; sets no last error. */
bool winvm_owns(const void *addr);

/*
 * The device's fd for the fault handler, which may not lock, open or set
 * anything up: -1 if it was never opened (then there is no winvm memory).
 * *@guard_stack: the module marks stack guard hits (WINVM_GUARD_STACK).
 */
int winvm_fault_fd(bool *guard_stack);

/*
 * Copy @n bytes to or from a caller's buffer with winvm_try() (@flags):
 * false if it faulted, with *@fault (if given) the address. winvm_copy()
 * is the cheap one, for a system call's outputs: a plain copy whose fault
 * the fault handler turns into a return of false (no setup at all); no
 * vectored handler sees it, and in a thread that blocks SIGSEGV it ends
 * the process, as any fault would.
 */
bool winvm_copy_ex(void *dst, const void *src, size_t n, unsigned int flags,
		   uintptr_t *fault);
bool winvm_copy(void *dst, const void *src, size_t n);

/* Set the last error to @code and return FALSE (0), for failing calls. */
static inline int winvm_fail(DWORD code)
{
	SetLastError(code);
	return 0;
}

/* HeapAlloc, HeapSize, HeapFree, GetProcessHeap, called within libwinvm. */
LPVOID winvm_heap_alloc(HANDLE heap, DWORD flags, SIZE_T size);
SIZE_T winvm_heap_size(HANDLE heap, DWORD flags, LPCVOID p);
BOOL winvm_heap_free(HANDLE heap, DWORD flags, LPVOID p);
HANDLE winvm_process_heap(void);

/*
 * Global* and Local*: heap.c defines GlobalAlloc, LocalAlloc, GlobalFree and
 * LocalFree, whose fixed blocks are process-heap blocks, and hands what is
 * not a fixed block to global.c: winvm_mem_alloc() allocates a moveable
 * block (@local: LocalAlloc's flags and errors), winvm_mem_free() frees
 * anything. A moveable block's handle is the address of its table entry's
 * data pointer, WINVM_MEM_HANDLE_OFF bytes into a 16-byte entry.
 */
#define WINVM_MEM_HANDLE_OFF	8

static inline bool winvm_is_mem_handle(const void *h)
{
	return ((uintptr_t)h & 15) == WINVM_MEM_HANDLE_OFF;
}

/* The heap flags of Global*'s and Local*'s @flags: GMEM_ZEROINIT. */
static inline DWORD winvm_mem_heap_flags(UINT flags)
{
	return flags & GMEM_ZEROINIT ? HEAP_ZERO_MEMORY : 0;
}

/*
 * The process heap's lock, which also guards global.c's handle table, as
 * Windows serialises those calls on the heap: false, with nothing set, if
 * there is no process heap and none can be made.
 */
bool winvm_process_heap_lock(void);
void winvm_process_heap_unlock(void);

HGLOBAL winvm_mem_alloc(bool local, UINT flags, SIZE_T size);
HGLOBAL winvm_mem_free(HGLOBAL h);

/*
 * For Global* and Local* (global.c), on top of heap.c: a block that
 * carries @value (a moveable block's handle) and keeps it through
 * HeapReAlloc; and the value of block @p, if @p is a busy block of @heap
 * (false otherwise, the last error untouched; *value is NULL for a block
 * without one).
 */
void *winvm_heap_alloc_user(HANDLE heap, DWORD flags, SIZE_T size,
			    void *value);
bool winvm_heap_user_value(HANDLE heap, LPCVOID p, void **value);

/*
 * Free block @p of @heap unless it carries a value: 1 freed; -1 it carries
 * *value and was left alone; 0 not a busy block of @heap (a double free or
 * a damaged block ends the process when termination on corruption is on).
 * The last error is left alone.
 */
int winvm_heap_free_plain(HANDLE heap, void *p, void **value);

#endif /* LIBWINVM_INTERNAL_H */
