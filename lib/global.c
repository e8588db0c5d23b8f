// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libwinvm Global* and Local*: the 16-bit era memory API, on the process
 * heap, with Windows' behaviour (shared/spec/win32-memory.md, 1.11).
 *
 * A fixed block is a plain process-heap block and its handle is its
 * address, 16-aligned. A moveable block is reached through a handle table:
 * an entry holds the block's flags, its lock count and its data pointer,
 * and the handle is the address of the data pointer, so that *(void **)h is
 * the data, as Win16 code assumes, and h % 16 == 8 tells a handle from a
 * fixed block. The data of a moveable block carries its handle (a heap
 * block value, see winvm_heap_alloc_user), so GlobalHandle finds it; a
 * discarded block (size 0, or GlobalDiscard) keeps its entry and has no
 * data. The table is one reservation of 0x10000 entries (the limit of case
 * 100), committed as it fills, outside the process heap: as on Windows,
 * HeapValidate does not take an entry for a heap block.
 *
 * Global* and Local* are one implementation; they differ only where Windows
 * does: the error each sets for what, the zero-size bump of GlobalAlloc,
 * GMEM_DISCARDABLE's value, GMEM_DDESHARE, and GMEM_MODIFY turning a fixed
 * block moveable (Global only). Where the specification says nothing, a
 * flag combination that cannot be honoured fails with
 * ERROR_INVALID_PARAMETER and a resize that cannot be done in place with
 * ERROR_NOT_ENOUGH_MEMORY.
 *
 * The table is guarded by the process heap's lock, as Windows serialises
 * these calls on the heap: a thread holding HeapLock(GetProcessHeap()) can
 * call them, and other threads wait in them until its HeapUnlock. (A lock
 * of the table's own, taken before the heap's, would deadlock with such a
 * thread.) Fixed blocks never touch the table: GlobalAlloc, LocalAlloc,
 * GlobalFree and LocalFree are defined in heap.c, where a fixed block costs
 * a HeapAlloc or a HeapFree, and come here for the rest.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "winvm.h"

#define TABLE_ENTRIES	0x10000U
#define TABLE_STEP	0x1000U		/* entries committed at a time */

#define ENTRY_INUSE		0x01
#define ENTRY_DISCARDABLE	0x02
#define ENTRY_DDESHARE		0x04

struct mem_entry {
	uint16_t flags;
	uint8_t lock;		/* GlobalLock count, saturating at 0xff */
	uint8_t pad;
	uint32_t next_free;	/* free entries: the next one's index + 1 */
	void *ptr;		/* the handle points here */
};

_Static_assert(sizeof(struct mem_entry) == 16, "16-byte entries");

enum api {
	GLOBAL,
	LOCAL,
};

/* What a handle or pointer passed to Global* or Local* turns out to be. */
enum kind {
	K_BAD_HANDLE,	/* handle-shaped, but not a live entry */
	K_BAD_PTR,	/* not a block of the process heap */
	K_MOVEABLE,	/* a moveable block, by handle or data pointer */
	K_FIXED,
};

static struct {
	struct mem_entry *base;
	uint32_t committed;	/* entries committed */
	uint32_t used;		/* entries ever handed out */
	uint32_t free;		/* first free entry's index + 1 */
} table;

_Static_assert(offsetof(struct mem_entry, ptr) == WINVM_MEM_HANDLE_OFF,
	       "a handle is the address of an entry's data pointer");

static HGLOBAL handle_of(struct mem_entry *e)
{
	return &e->ptr;
}

/*
 * Lock the table (the process heap); false, with ERROR_NOT_ENOUGH_MEMORY,
 * if there is no process heap: then there is no table either.
 */
static bool table_lock(void)
{
	return winvm_process_heap_lock() || winvm_fail(ERROR_NOT_ENOUGH_MEMORY);
}

static void table_unlock(void)
{
	winvm_process_heap_unlock();
}

/* The live entry @h is the handle of, if any. Table lock held. */
static struct mem_entry *entry_of(const void *h)
{
	uintptr_t a = (uintptr_t)h - offsetof(struct mem_entry, ptr);
	struct mem_entry *e = (struct mem_entry *)a;

	if (!table.base || !winvm_is_mem_handle(h) ||
	    a < (uintptr_t)table.base ||
	    a >= (uintptr_t)(table.base + table.used) ||
	    !(e->flags & ENTRY_INUSE))
		return NULL;
	return e;
}

/* A new entry, or NULL when all 0x10000 are taken. Table lock held. */
static struct mem_entry *entry_new(void)
{
	struct mem_entry *e;

	if (table.free) {
		e = table.base + table.free - 1;
		table.free = e->next_free;
		return e;
	}
	if (!table.base) {
		table.base = VirtualAlloc(NULL, TABLE_ENTRIES * sizeof(*e),
					  MEM_RESERVE, PAGE_READWRITE);
		if (!table.base)
			return NULL;
	}
	if (table.used == table.committed) {
		if (table.committed == TABLE_ENTRIES ||
		    !VirtualAlloc(table.base + table.committed,
				  TABLE_STEP * sizeof(*e), MEM_COMMIT,
				  PAGE_READWRITE))
			return NULL;
		table.committed += TABLE_STEP;
	}
	return table.base + table.used++;
}

static void entry_free(struct mem_entry *e)
{
	e->flags = 0;
	e->lock = 0;
	e->ptr = NULL;
	e->next_free = table.free;
	table.free = e - table.base + 1;
}

/* Table lock held: it also orders the data pointer's updates. */
static enum kind classify(const void *h, struct mem_entry **pe)
{
	struct mem_entry *e;
	void *value;

	if (winvm_is_mem_handle(h)) {
		*pe = entry_of(h);
		return *pe ? K_MOVEABLE : K_BAD_HANDLE;
	}
	if (!h || !winvm_heap_user_value(winvm_process_heap(), h, &value))
		return K_BAD_PTR;
	e = value ? entry_of(value) : NULL;
	if (e && e->ptr == h) {
		*pe = e;
		return K_MOVEABLE;
	}
	return K_FIXED;
}

static bool wants_discardable(enum api api, UINT flags)
{
	return flags & (api == GLOBAL ? GMEM_DISCARDABLE : LMEM_DISCARDABLE);
}

/* Data for entry @e, carrying its handle. */
static void *data_alloc(struct mem_entry *e, SIZE_T size, DWORD flags)
{
	return winvm_heap_alloc_user(winvm_process_heap(), flags, size,
				     handle_of(e));
}

/* GlobalAlloc and LocalAlloc of a moveable block (fixed ones: heap.c). */
HGLOBAL winvm_mem_alloc(bool local, UINT flags, SIZE_T size)
{
	enum api api = local ? LOCAL : GLOBAL;
	struct mem_entry *e;
	void *p = NULL;

	if (!table_lock())
		return NULL;
	e = entry_new();
	if (!e) {
		table_unlock();
		winvm_fail(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	if (size) {
		p = data_alloc(e, size, winvm_mem_heap_flags(flags));
		if (!p) {
			entry_free(e);
			table_unlock();
			return NULL;
		}
	}
	e->flags = ENTRY_INUSE;
	if (wants_discardable(api, flags))
		e->flags |= ENTRY_DISCARDABLE;
	if (api == GLOBAL && (flags & GMEM_DDESHARE))
		e->flags |= ENTRY_DDESHARE;
	e->lock = 0;
	e->ptr = p;
	table_unlock();
	return handle_of(e);
}

HGLOBAL winvm_mem_free(HGLOBAL h)
{
	struct mem_entry *e;
	enum kind kind;
	void *value;
	int freed;

	if (!h)
		return NULL;
	if (!winvm_is_mem_handle(h)) {
		/* The fast way for fixed blocks: no table lock. */
		freed = winvm_heap_free_plain(winvm_process_heap(), h, &value);
		if (freed > 0)
			return NULL;
		if (!freed) {
			winvm_fail(ERROR_NOACCESS);
			return h;
		}
	}
	if (!table_lock())
		return h;
	kind = classify(h, &e);
	if (kind == K_MOVEABLE) {
		if (e->ptr)
			winvm_heap_free(winvm_process_heap(), 0, e->ptr);
		entry_free(e);
	}
	table_unlock();
	if (kind == K_MOVEABLE)
		return NULL;
	winvm_fail(kind == K_BAD_HANDLE ? ERROR_INVALID_HANDLE : ERROR_NOACCESS);
	return h;
}

static LPVOID mem_lock(enum api api, HGLOBAL h)
{
	struct mem_entry *e;
	void *p = NULL;
	DWORD err = 0;

	if (!table_lock())
		return NULL;
	switch (classify(h, &e)) {
	case K_MOVEABLE:
		p = e->ptr;
		if (!p)
			err = ERROR_DISCARDED;
		else if (e->lock < GMEM_LOCKCOUNT)
			e->lock++;
		break;
	case K_FIXED:
		p = (void *)h;
		break;
	case K_BAD_HANDLE:
		err = ERROR_INVALID_HANDLE;
		break;
	case K_BAD_PTR:
		/* GlobalLock reports it; LocalLock does not. */
		err = api == GLOBAL ? ERROR_INVALID_HANDLE : 0;
		break;
	}
	table_unlock();
	if (err)
		winvm_fail(err);
	return p;
}

/*
 * TRUE while still locked; FALSE with NO_ERROR on the last unlock and
 * ERROR_NOT_LOCKED when not locked (case 102). GlobalUnlock answers TRUE
 * for what is not a moveable block, even a freed handle (setting
 * ERROR_INVALID_HANDLE then); LocalUnlock answers FALSE (case 105, 106,
 * 114).
 */
static BOOL mem_unlock(enum api api, HGLOBAL h)
{
	bool global = api == GLOBAL, set = true;
	struct mem_entry *e;
	BOOL ret = FALSE;
	DWORD err;

	if (!table_lock())
		return FALSE;
	switch (classify(h, &e)) {
	case K_MOVEABLE:
		if (!e->lock) {
			err = ERROR_NOT_LOCKED;
			break;
		}
		ret = --e->lock != 0;
		err = NO_ERROR;
		set = !ret;
		break;
	case K_BAD_HANDLE:
		ret = global;
		err = ERROR_INVALID_HANDLE;
		break;
	default:	/* a fixed block, or not a block at all */
		ret = global;
		err = ERROR_NOT_LOCKED;
		set = !global;
		break;
	}
	table_unlock();
	if (set)
		SetLastError(err);
	return ret;
}

static SIZE_T mem_size(HGLOBAL h)
{
	struct mem_entry *e;
	SIZE_T size = 0;
	enum kind kind;

	if (!table_lock())
		return 0;
	kind = classify(h, &e);
	if (kind == K_MOVEABLE && e->ptr)
		size = winvm_heap_size(winvm_process_heap(), 0, e->ptr);
	else if (kind == K_FIXED)
		size = winvm_heap_size(winvm_process_heap(), 0, h);
	table_unlock();
	if (kind == K_BAD_HANDLE || kind == K_BAD_PTR)
		winvm_fail(ERROR_INVALID_HANDLE);
	return size;
}

static UINT mem_flags(enum api api, HGLOBAL h)
{
	struct mem_entry *e;
	UINT flags = 0;
	enum kind kind;

	if (!table_lock())
		return GMEM_INVALID_HANDLE;
	kind = classify(h, &e);
	if (kind == K_MOVEABLE) {
		flags = e->lock;
		if (e->flags & ENTRY_DISCARDABLE)
			flags |= api == GLOBAL ? GMEM_DISCARDABLE :
						 LMEM_DISCARDABLE;
		if (!e->ptr)
			flags |= GMEM_DISCARDED;
		if (api == GLOBAL && (e->flags & ENTRY_DDESHARE))
			flags |= GMEM_DDESHARE;
	}
	table_unlock();
	if (kind == K_BAD_HANDLE || kind == K_BAD_PTR) {
		winvm_fail(kind == K_BAD_PTR && api == LOCAL ?
			   ERROR_NOACCESS : ERROR_INVALID_HANDLE);
		return GMEM_INVALID_HANDLE;
	}
	return flags;
}

static HGLOBAL mem_handle(enum api api, LPCVOID p)
{
	struct mem_entry *e;
	HGLOBAL h = NULL;
	enum kind kind;

	if (!table_lock())
		return NULL;
	kind = classify(p, &e);
	if (kind == K_MOVEABLE)
		h = handle_of(e);
	else if (kind == K_FIXED)
		h = (HGLOBAL)p;
	table_unlock();
	if (kind == K_BAD_HANDLE || kind == K_BAD_PTR)
		winvm_fail(kind == K_BAD_PTR && api == LOCAL ?
			   ERROR_NOACCESS : ERROR_INVALID_HANDLE);
	return h;
}

/*
 * GlobalReAlloc(fixed, 0, GMEM_MODIFY | GMEM_MOVEABLE): the block becomes
 * moveable, same size and contents, through a new handle (case 108).
 */
static HGLOBAL fixed_to_moveable(void *p, UINT flags)
{
	SIZE_T size = winvm_heap_size(winvm_process_heap(), 0, p);
	struct mem_entry *e = entry_new();
	void *q;

	if (!e) {
		winvm_fail(ERROR_NOT_ENOUGH_MEMORY);
		return NULL;
	}
	q = data_alloc(e, size, 0);
	if (!q) {
		entry_free(e);
		return NULL;
	}
	memcpy(q, p, size);
	winvm_heap_free(winvm_process_heap(), 0, p);
	e->flags = ENTRY_INUSE;
	if (flags & GMEM_DISCARDABLE)
		e->flags |= ENTRY_DISCARDABLE;
	e->lock = 0;
	e->ptr = q;
	return handle_of(e);
}

/*
 * A fixed block (cases 107, 108, 113): GMEM_MODIFY changes nothing (but
 * the Global conversion above); without GMEM_MOVEABLE it cannot be resized
 * at all; with it, it moves to a new fixed block; size 0 (GlobalDiscard)
 * leaves it be.
 */
static HGLOBAL realloc_fixed(enum api api, void *p, SIZE_T size, UINT flags,
			     DWORD *err)
{
	HANDLE heap = winvm_process_heap();
	SIZE_T old;
	void *q;

	if (flags & GMEM_MODIFY) {
		if (api == GLOBAL && (flags & GMEM_MOVEABLE))
			return fixed_to_moveable(p, flags);
		return p;
	}
	if (!(flags & GMEM_MOVEABLE)) {
		*err = ERROR_NOT_ENOUGH_MEMORY;
		return NULL;
	}
	if (!size)
		return p;
	q = winvm_heap_alloc(heap, winvm_mem_heap_flags(flags), size);
	if (!q)
		return NULL;
	old = winvm_heap_size(heap, 0, p);
	memcpy(q, p, old < size ? old : size);
	winvm_heap_free(heap, 0, p);
	return q;
}

/*
 * A moveable block (cases 104, 109, 110, 113): GMEM_MODIFY only adds
 * discardability; size 0 discards, with GMEM_MOVEABLE and unlocked only;
 * a discarded block gets new data; a locked block resized without
 * GMEM_MOVEABLE may only shrink in place; anything else moves the data.
 */
static HGLOBAL realloc_moveable(enum api api, struct mem_entry *e,
				SIZE_T size, UINT flags, DWORD *err)
{
	HANDLE heap = winvm_process_heap();
	SIZE_T old;
	void *q;

	if (flags & GMEM_MODIFY) {
		if (wants_discardable(api, flags))
			e->flags |= ENTRY_DISCARDABLE;
		return handle_of(e);
	}
	if (wants_discardable(api, flags) ||
	    (!size && (!(flags & GMEM_MOVEABLE) || e->lock))) {
		*err = ERROR_INVALID_PARAMETER;
		return NULL;
	}
	if (!size) {
		winvm_heap_free(heap, 0, e->ptr);
		e->ptr = NULL;
		return handle_of(e);
	}
	if (!e->ptr) {
		q = data_alloc(e, size, winvm_mem_heap_flags(flags));
		if (!q)
			return NULL;
		e->ptr = q;
		return handle_of(e);
	}
	old = winvm_heap_size(heap, 0, e->ptr);
	if (e->lock && !(flags & GMEM_MOVEABLE)) {
		if (size > old ||
		    !HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, e->ptr, size)) {
			*err = ERROR_NOT_ENOUGH_MEMORY;
			return NULL;
		}
		return handle_of(e);
	}
	q = data_alloc(e, size, 0);
	if (!q)
		return NULL;
	memcpy(q, e->ptr, old < size ? old : size);
	if ((flags & GMEM_ZEROINIT) && size > old)
		memset((char *)q + old, 0, size - old);
	winvm_heap_free(heap, 0, e->ptr);
	e->ptr = q;
	return handle_of(e);
}

static HGLOBAL mem_realloc(enum api api, HGLOBAL h, SIZE_T size, UINT flags)
{
	struct mem_entry *e;
	HGLOBAL ret = NULL;
	DWORD err = 0;

	if (!table_lock())
		return NULL;
	switch (classify(h, &e)) {
	case K_BAD_HANDLE:
		err = ERROR_INVALID_HANDLE;
		break;
	case K_BAD_PTR:
		err = ERROR_NOACCESS;
		break;
	case K_FIXED:
		ret = realloc_fixed(api, h, size, flags, &err);
		break;
	case K_MOVEABLE:
		ret = realloc_moveable(api, e, size, flags, &err);
		break;
	}
	table_unlock();
	if (err)
		winvm_fail(err);
	return ret;
}

HGLOBAL WINAPI GlobalReAlloc(HGLOBAL hMem, SIZE_T dwBytes, UINT uFlags)
{
	return mem_realloc(GLOBAL, hMem, dwBytes, uFlags);
}

LPVOID WINAPI GlobalLock(HGLOBAL hMem)
{
	return mem_lock(GLOBAL, hMem);
}

BOOL WINAPI GlobalUnlock(HGLOBAL hMem)
{
	return mem_unlock(GLOBAL, hMem);
}

SIZE_T WINAPI GlobalSize(HGLOBAL hMem)
{
	return mem_size(hMem);
}

UINT WINAPI GlobalFlags(HGLOBAL hMem)
{
	return mem_flags(GLOBAL, hMem);
}

HGLOBAL WINAPI GlobalHandle(LPCVOID pMem)
{
	return mem_handle(GLOBAL, pMem);
}

HLOCAL WINAPI LocalReAlloc(HLOCAL hMem, SIZE_T uBytes, UINT uFlags)
{
	return mem_realloc(LOCAL, hMem, uBytes, uFlags);
}

LPVOID WINAPI LocalLock(HLOCAL hMem)
{
	return mem_lock(LOCAL, hMem);
}

BOOL WINAPI LocalUnlock(HLOCAL hMem)
{
	return mem_unlock(LOCAL, hMem);
}

SIZE_T WINAPI LocalSize(HLOCAL hMem)
{
	return mem_size(hMem);
}

UINT WINAPI LocalFlags(HLOCAL hMem)
{
	return mem_flags(LOCAL, hMem);
}

HLOCAL WINAPI LocalHandle(LPCVOID pMem)
{
	return mem_handle(LOCAL, pMem);
}

/* A forked child has no winvm memory, so no table: start again. */
static void global_atfork_child(void)
{
	table.base = NULL;
	table.committed = 0;
	table.used = 0;
	table.free = 0;
}

__attribute__((constructor)) static void global_init(void)
{
	pthread_atfork(NULL, NULL, global_atfork_child);
}
