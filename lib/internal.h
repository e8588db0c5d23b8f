/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libwinvm internals shared between its source files; not installed.
 */
#ifndef LIBWINVM_INTERNAL_H
#define LIBWINVM_INTERNAL_H

#include <stdbool.h>

#include "winvm.h"

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

/*
 * Give the calling thread what exception delivery needs (an alternate
 * signal stack); cheap after the first call in a thread. Every entry point
 * calls it, so any thread that uses libwinvm can report a stack overflow.
 */
void winvm_thread_setup(void);

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
 * GlobalAlloc/LocalAlloc of a fixed block: HeapAlloc(GetProcessHeap(),
 * @flags, @size), the fast path in heap.c.
 */
void *winvm_alloc_fixed(DWORD flags, SIZE_T size);

/*
 * GlobalFree/LocalFree: winvm_free_fixed() (heap.c) is the fast path for
 * what is not handle-shaped (a fixed block) and hands anything it does not
 * free to winvm_mem_free() (global.c), the general path.
 */
HGLOBAL winvm_free_fixed(HGLOBAL h);
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
