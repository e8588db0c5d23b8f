// SPDX-License-Identifier: GPL-2.0-only
/*
 * winvm-fuzz: random sequences of VirtualAlloc, VirtualFree, VirtualProtect,
 * VirtualQuery, VirtualLock/Unlock, MEM_RESET and read/write/execute probes,
 * each checked against a reference model of the Win32 rules written from
 * the specification (shared/spec/win32-memory.md), not from the module:
 * return values, last errors, every MEMORY_BASIC_INFORMATION field, the
 * exceptions a probe raises and the byte it reads.
 *
 * Deterministic from its seed. On a divergence it prints the operation,
 * then shrinks the sequence (replaying subsets in fresh processes) and
 * prints the smallest one that still diverges.
 *
 * Usage: winvm-fuzz [--seed S] [--seeds N] [--ops N] [--threads N]
 *                   [--seconds T]
 *   --seeds N    run N seeds, S, S+1, ... (default 4)
 *   --ops N      operations per seed (default 25000)
 *   --threads N  then run N threads at once, each on its own allocations
 *                plus one shared allocation, checking what holds under
 *                concurrency (default: twice the CPUs; 0: sequential only)
 *   --seconds T  how long the threads run (default 15); 0: --ops
 *                operations each instead
 *
 * Output is TAP with a kselftest "# Totals:" line: one test per seed (and
 * one for the threaded run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <windows.h>

#define P		0x1000UL
#define G		0x10000UL
#define MAX_ALLOCS	32
#define MAX_PAGES	48
#define WINDOW		(256UL << 20)
#define RET		0xc3

static uintptr_t user_max;	/* lpMaximumApplicationAddress */

/* xorshift64*: small, fast, and the same everywhere. */
static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return n ? rnd_next(s) % n : 0;
}

/* --- the model -------------------------------------------------------- */

struct mpage {
	bool committed;
	DWORD protect;		/* base protection | PAGE_GUARD */
	int byte;		/* byte at offset 0: -1 unknown, else value */
	bool reset;
	bool locked;
};

struct malloc_ {
	bool live;
	uintptr_t base;		/* first page */
	size_t npages;
	uintptr_t fp_end;	/* footprint end */
	DWORD alloc_protect;
	struct mpage page[MAX_PAGES];
};

struct model {
	struct malloc_ a[MAX_ALLOCS];
	uintptr_t lo, hi;	/* the window fixed allocations go to */
};

static struct malloc_ *find(struct model *m, uintptr_t addr)
{
	int i;

	for (i = 0; i < MAX_ALLOCS; i++)
		if (m->a[i].live && addr >= m->a[i].base &&
		    addr < m->a[i].base + m->a[i].npages * P)
			return &m->a[i];
	return NULL;
}

/* Any allocation's footprint intersecting [s, e)? */
static bool overlaps(struct model *m, uintptr_t s, uintptr_t e)
{
	int i;

	for (i = 0; i < MAX_ALLOCS; i++)
		if (m->a[i].live && m->a[i].base < e && m->a[i].fp_end > s)
			return true;
	return false;
}

static uintptr_t next_base(struct model *m, uintptr_t addr)
{
	uintptr_t best = UINTPTR_MAX;
	int i;

	for (i = 0; i < MAX_ALLOCS; i++)
		if (m->a[i].live && m->a[i].base >= addr && m->a[i].base < best)
			best = m->a[i].base;
	return best;
}

static struct malloc_ *new_alloc(struct model *m)
{
	int i;

	for (i = 0; i < MAX_ALLOCS; i++)
		if (!m->a[i].live)
			return &m->a[i];
	return NULL;
}

static int nlive(struct model *m)
{
	int i, n = 0;

	for (i = 0; i < MAX_ALLOCS; i++)
		n += m->a[i].live;
	return n;
}

/* The Win32 rule for protection values: 0 when valid, else the error. */
static DWORD check_protect(DWORD prot)
{
	DWORD base = prot & 0xff;
	DWORD mod = prot & ~0xffu & ~(DWORD)PAGE_TARGETS_INVALID;
	DWORD cache = mod & (PAGE_NOCACHE | PAGE_WRITECOMBINE);

	if (base != PAGE_NOACCESS && base != PAGE_READONLY &&
	    base != PAGE_READWRITE && base != PAGE_EXECUTE &&
	    base != PAGE_EXECUTE_READ && base != PAGE_EXECUTE_READWRITE)
		return ERROR_INVALID_PARAMETER;
	if (mod & ~(DWORD)(PAGE_GUARD | PAGE_NOCACHE | PAGE_WRITECOMBINE))
		return ERROR_INVALID_PARAMETER;
	if (mod && base == PAGE_NOACCESS)
		return ERROR_INVALID_PARAMETER;
	if ((mod & PAGE_GUARD) && cache)
		return ERROR_INVALID_PARAMETER;
	if (cache == (PAGE_NOCACHE | PAGE_WRITECOMBINE))
		return ERROR_INVALID_PARAMETER;
	return 0;
}

static DWORD page_protect(DWORD prot)
{
	return prot & (0xff | PAGE_GUARD);
}

static bool readable(DWORD p)
{
	return (p & 0xff) != PAGE_NOACCESS;
}

static bool writable(DWORD p)
{
	return (p & 0xff) == PAGE_READWRITE ||
	       (p & 0xff) == PAGE_EXECUTE_READWRITE;
}

static bool executable(DWORD p)
{
	return (p & 0xff) >= PAGE_EXECUTE;
}

/* Page range of [addr, addr + size) if it stays in user space. */
static bool page_range(uintptr_t addr, uint64_t size, uintptr_t *s,
		       uintptr_t *e)
{
	uint64_t last;

	if (!size || __builtin_add_overflow(addr, size - 1, &last) ||
	    last > user_max)
		return false;
	*s = addr & ~(P - 1);
	*e = (last | (P - 1)) + 1;
	return true;
}

/* --- operations ------------------------------------------------------- */

enum optype {
	OP_ALLOC, OP_FREE, OP_PROTECT, OP_QUERY, OP_READ, OP_WRITE, OP_EXEC,
	OP_LOCK, OP_UNLOCK, NR_OPS
};

static const char *const opname[NR_OPS] = {
	"VirtualAlloc", "VirtualFree", "VirtualProtect", "VirtualQuery",
	"read", "write", "execute", "VirtualLock", "VirtualUnlock",
};

struct op {
	enum optype type;
	int slot;		/* which live allocation; -1: the window */
	int64_t off;		/* from the allocation's base, or the window's */
	uint64_t size;
	DWORD flags;		/* allocation or free type */
	DWORD prot;
	bool null_old;		/* VirtualProtect with no old-protection pointer */
	bool null_addr;		/* VirtualAlloc at no particular address */
	uint8_t value;		/* what a write stores */
};

static void print_op(FILE *f, const struct op *o)
{
	fprintf(f, "#   %s slot=%d off=%#" PRIx64 " size=%#" PRIx64
		" flags=%#x prot=%#x%s%s value=%#x\n", opname[o->type],
		o->slot, o->off, o->size, o->flags, o->prot,
		o->null_old ? " old=NULL" : "",
		o->null_addr ? " addr=NULL" : "", o->value);
}

static uint64_t pick_size(uint64_t *s, size_t npages)
{
	static const uint64_t sizes[] = { 0, 1, P - 1, P, P + 1, 2 * P,
					  3 * P - 1, 16 * P, G, G + P,
					  1UL << 20, ~0ULL, 1ULL << 47 };

	switch (rnd(s, 4)) {
	case 0:
		return sizes[rnd(s, sizeof(sizes) / sizeof(sizes[0]))];
	case 1:
		return npages * P;
	default:
		return 1 + rnd(s, 8 * P);
	}
}

static int64_t pick_off(uint64_t *s, size_t npages)
{
	switch (rnd(s, 6)) {
	case 0:
		return 0;
	case 1:
		return (int64_t)(npages - 1) * P;
	case 2:
		return (int64_t)npages * P;
	case 3:
		return -(int64_t)P;
	case 4:
		return rnd(s, npages * P + P);
	default:
		return rnd(s, npages) * P;
	}
}

static DWORD pick_prot(uint64_t *s)
{
	static const DWORD base[] = { PAGE_NOACCESS, PAGE_READONLY,
				      PAGE_READWRITE, PAGE_EXECUTE,
				      PAGE_EXECUTE_READ, PAGE_EXECUTE_READWRITE };
	static const DWORD odd[] = { 0, PAGE_WRITECOPY, PAGE_EXECUTE_WRITECOPY,
				     PAGE_READONLY | PAGE_EXECUTE, 0x800 | 4,
				     PAGE_NOACCESS | PAGE_GUARD,
				     PAGE_READWRITE | PAGE_NOCACHE,
				     PAGE_READONLY | PAGE_WRITECOMBINE,
				     PAGE_READWRITE | PAGE_GUARD | PAGE_NOCACHE };
	DWORD p = base[rnd(s, 6)];

	if (!rnd(s, 12))
		return odd[rnd(s, sizeof(odd) / sizeof(odd[0]))];
	if (!rnd(s, 5) && p != PAGE_NOACCESS)
		p |= PAGE_GUARD;
	return p;
}

static void gen(uint64_t *s, struct op *o, bool shared_space)
{
	static const DWORD alloc_types[] = {
		MEM_RESERVE, MEM_COMMIT, MEM_RESERVE | MEM_COMMIT,
		MEM_RESERVE | MEM_TOP_DOWN, MEM_COMMIT, MEM_COMMIT, MEM_RESET,
		MEM_RESET_UNDO, 0, MEM_RESERVE | MEM_RESET, 0x80000000,
	};
	static const DWORD free_types[] = {
		MEM_DECOMMIT, MEM_DECOMMIT, MEM_RELEASE, MEM_RELEASE, 0,
		MEM_DECOMMIT | MEM_RELEASE, MEM_FREE,
	};
	static const int weights[NR_OPS] = { 25, 14, 16, 16, 9, 9, 3, 2, 2 };
	int total = 0, r, i;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < NR_OPS; i++)
		total += weights[i];
	r = rnd(s, total);
	for (i = 0; r >= weights[i]; i++)
		r -= weights[i];
	o->type = i;
	o->slot = rnd(s, 8) ? (int)rnd(s, MAX_ALLOCS) : -1;
	o->off = pick_off(s, 1 + rnd(s, MAX_PAGES));
	o->size = pick_size(s, 1 + rnd(s, MAX_PAGES));
	o->prot = pick_prot(s);
	o->value = rnd(s, 4) ? (uint8_t)rnd_next(s) : RET;
	switch (o->type) {
	case OP_ALLOC:
		o->flags = alloc_types[rnd(s, sizeof(alloc_types) /
					  sizeof(alloc_types[0]))];
		if (o->slot < 0 && !rnd(s, 3))
			o->off = rnd(s, WINDOW / G) * G + rnd(s, 3) * P;
		if (o->slot < 0 && (o->flags & MEM_RESERVE))
			o->size = 1 + rnd(s, MAX_PAGES * P);
		/* With other threads about, placement is theirs to share. */
		o->null_addr = !shared_space && !rnd(s, 6);
		if (o->null_addr)
			o->size = 1 + rnd(s, MAX_PAGES * P);
		break;
	case OP_FREE:
		o->flags = free_types[rnd(s, sizeof(free_types) /
					 sizeof(free_types[0]))];
		if (o->flags == MEM_RELEASE && rnd(s, 4))
			o->size = 0;
		break;
	case OP_PROTECT:
		o->null_old = !rnd(s, 40);
		break;
	default:
		break;
	}
}

/* --- running an operation against both ------------------------------- */

struct run {
	struct model m;
	char why[512];
	bool exec_ok;		/* execute probes need RET at the page start */
};

/* Probe state: a vectored handler records the exceptions of a probe. */
static __thread sigjmp_buf probe_env;
static __thread volatile int probe_armed, probe_guards;
static __thread DWORD probe_code;
static __thread ULONG_PTR probe_info[2];

static LONG CALLBACK probe_handler(EXCEPTION_POINTERS *ep)
{
	EXCEPTION_RECORD *rec = ep->ExceptionRecord;

	if (!probe_armed)
		return EXCEPTION_CONTINUE_SEARCH;
	if (rec->ExceptionCode == STATUS_GUARD_PAGE_VIOLATION) {
		probe_guards++;
		probe_info[0] = rec->ExceptionInformation[0];
		probe_info[1] = rec->ExceptionInformation[1];
		return EXCEPTION_CONTINUE_EXECUTION;
	}
	probe_code = rec->ExceptionCode;
	probe_info[0] = rec->ExceptionInformation[0];
	probe_info[1] = rec->ExceptionInformation[1];
	probe_armed = 0;
	siglongjmp(probe_env, 1);
}

/* Access one byte: 0 if it completed, else the exception code. */
static DWORD probe(volatile uint8_t *p, enum optype type, uint8_t value,
		   uint8_t *out)
{
	probe_guards = 0;
	probe_code = 0;
	if (sigsetjmp(probe_env, 1))
		return probe_code;
	probe_armed = 1;
	switch (type) {
	case OP_READ:
		*out = *p;
		break;
	case OP_WRITE:
		*p = value;
		break;
	default:
		((void (*)(void))p)();
		break;
	}
	probe_armed = 0;
	__asm__ volatile("" ::: "memory");
	return 0;
}

#define FAIL(r, ...) do { \
	snprintf((r)->why, sizeof((r)->why), __VA_ARGS__); \
	return false; \
} while (0)

static bool check_error(struct run *r, const char *what, bool ok, DWORD err,
			bool want_ok, DWORD want_err)
{
	if (ok != want_ok)
		FAIL(r, "%s %s, model says %s (error %u)", what,
		     ok ? "succeeded" : "failed",
		     want_ok ? "success" : "failure", want_err);
	if (!ok && err != want_err)
		FAIL(r, "%s: error %u, model says %u", what, err, want_err);
	if (ok && err != 0xdeadbeef)
		FAIL(r, "%s succeeded but set the last error to %u", what, err);
	return true;
}

static uintptr_t target(struct run *r, const struct op *o, int *idx)
{
	int i, n = nlive(&r->m), k;

	*idx = -1;
	if (o->slot < 0 || !n)
		return r->m.lo + o->off;
	k = o->slot % n;
	for (i = 0; i < MAX_ALLOCS; i++) {
		if (r->m.a[i].live && !k--) {
			*idx = i;
			return r->m.a[i].base + o->off;
		}
	}
	return r->m.lo;
}

static void commit_pages(struct malloc_ *a, uintptr_t s, uintptr_t e,
			 DWORD prot)
{
	size_t i;

	for (i = (s - a->base) / P; i < (e - a->base) / P; i++) {
		if (!a->page[i].committed)
			a->page[i].byte = 0;
		a->page[i].committed = true;
		a->page[i].protect = page_protect(prot);
	}
}

static bool do_alloc(struct run *r, const struct op *o, uintptr_t addr)
{
	DWORD type = o->flags, want_err = 0, err;
	struct malloc_ *a = NULL, *na = NULL;
	uintptr_t s = 0, e = 0, want = 0;
	size_t i;
	void *got;

	if (!o->size)
		want_err = ERROR_INVALID_PARAMETER;
	else if (type & ~(DWORD)(MEM_COMMIT | MEM_RESERVE | MEM_RESET |
				MEM_RESET_UNDO | MEM_TOP_DOWN |
				MEM_WRITE_WATCH | MEM_PHYSICAL |
				MEM_LARGE_PAGES) ||
		 !(type & (MEM_COMMIT | MEM_RESERVE | MEM_RESET |
			   MEM_RESET_UNDO)) ||
		 ((type & MEM_RESET) && type != MEM_RESET) ||
		 ((type & MEM_RESET_UNDO) && type != MEM_RESET_UNDO))
		want_err = ERROR_INVALID_PARAMETER;
	else if (type == MEM_RESET || type == MEM_RESET_UNDO) {
		if (!addr || !page_range(addr, o->size, &s, &e))
			want_err = ERROR_INVALID_PARAMETER;
		else if (!(a = find(&r->m, s)) ||
			 e > a->base + a->npages * P)
			want_err = ERROR_INVALID_ADDRESS;
		else if (type == MEM_RESET_UNDO) {
			bool lost = false;

			for (i = (s - a->base) / P; i < (e - a->base) / P; i++) {
				if (!a->page[i].committed)
					want_err = ERROR_INVALID_ADDRESS;
				lost |= a->page[i].reset;
			}
			if (!want_err && lost)
				want_err = ERROR_GEN_FAILURE;
		}
		want = s;
	} else if ((want_err = check_protect(o->prot))) {
		;
	} else if ((type & MEM_RESERVE) || !addr) {
		if (addr) {
			if (addr < G || !page_range(addr, o->size, &s, &e))
				want_err = ERROR_INVALID_PARAMETER;
			s = addr & ~(G - 1);
			if (!want_err && overlaps(&r->m, s, e))
				want_err = ERROR_INVALID_ADDRESS;
			want = s;
		} else if (o->size > user_max - G) {
			want_err = ERROR_INVALID_PARAMETER;
		}
		if (!want_err && !(na = new_alloc(&r->m)))
			return true;	/* the model is full: skip */
	} else {
		if (addr < G || !page_range(addr, o->size, &s, &e))
			want_err = ERROR_INVALID_PARAMETER;
		else if (!(a = find(&r->m, s)) ||
			 e > a->base + a->npages * P)
			want_err = ERROR_INVALID_ADDRESS;
		want = s;
	}

	/*
	 * Reservations the model cannot describe page by page, or that may
	 * meet mappings it does not know (outside its window): skip.
	 */
	if (!want_err && ((type & MEM_RESERVE) || !addr) &&
	    type != MEM_RESET && type != MEM_RESET_UNDO &&
	    ((addr ? e - s : o->size) > MAX_PAGES * P ||
	     (addr && (s < r->m.lo || e > r->m.hi))))
		return true;

	SetLastError(0xdeadbeef);
	got = VirtualAlloc((void *)addr, o->size, type, o->prot);
	err = GetLastError();
	if (!check_error(r, "VirtualAlloc", got, err, !want_err, want_err))
		return false;
	/* MEM_RESET_UNDO ends the reset, whether the data survived or not. */
	if (type == MEM_RESET_UNDO && want_err == ERROR_GEN_FAILURE)
		for (i = (s - a->base) / P; i < (e - a->base) / P; i++)
			a->page[i].reset = false;
	if (!got)
		return true;

	if (type == MEM_RESET || type == MEM_RESET_UNDO) {
		if ((uintptr_t)got != want)
			FAIL(r, "VirtualAlloc returned %p, model says %#lx",
			     got, want);
		for (i = (s - a->base) / P; i < (e - a->base) / P; i++) {
			a->page[i].reset = type == MEM_RESET;
			if (type == MEM_RESET && a->page[i].committed &&
			    !a->page[i].locked)
				a->page[i].byte = -1;	/* intact or zero */
		}
		return true;
	}
	if ((type & MEM_RESERVE) || !addr) {
		uintptr_t base = (uintptr_t)got;

		if (addr && base != want)
			FAIL(r, "VirtualAlloc returned %p, model says %#lx",
			     got, want);
		if (base % G)
			FAIL(r, "reservation at %p is not 64 KiB aligned", got);
		e = addr ? e : base + ((o->size + P - 1) & ~(P - 1));
		if (overlaps(&r->m, base, e))
			FAIL(r, "reservation %p-%#lx overlaps an allocation",
			     got, e);
		memset(na, 0, sizeof(*na));
		na->live = true;
		na->base = base;
		na->npages = (e - base) / P;
		na->alloc_protect = o->prot;
		na->fp_end = (e + G - 1) & ~(G - 1);
		if (next_base(&r->m, e) < na->fp_end)
			na->fp_end = next_base(&r->m, e);
		for (i = 0; i < na->npages; i++)
			na->page[i].byte = 0;
		if (type & MEM_COMMIT)
			commit_pages(na, base, e, o->prot);
		return true;
	}
	if ((uintptr_t)got != want)
		FAIL(r, "VirtualAlloc returned %p, model says %#lx", got, want);
	commit_pages(a, s, e, o->prot);
	return true;
}

static bool do_free(struct run *r, const struct op *o, uintptr_t addr)
{
	DWORD want_err = 0, err;
	struct malloc_ *a = NULL;
	uintptr_t s = 0, e = 0;
	size_t i;
	BOOL ok;

	if (o->flags != MEM_DECOMMIT && o->flags != MEM_RELEASE)
		want_err = ERROR_INVALID_PARAMETER;
	else if (o->flags == MEM_RELEASE && o->size)
		want_err = ERROR_INVALID_PARAMETER;
	else if (!addr || addr > user_max)
		want_err = ERROR_INVALID_PARAMETER;
	else if (!o->size) {
		s = addr & ~(P - 1);
		a = find(&r->m, s);
		if (!a || a->base != s)
			want_err = ERROR_INVALID_ADDRESS;
		else
			e = a->base + a->npages * P;
	} else if (!page_range(addr, o->size, &s, &e)) {
		want_err = ERROR_INVALID_PARAMETER;
	} else if (!(a = find(&r->m, s))) {
		want_err = ERROR_INVALID_ADDRESS;
	} else if (e > a->base + a->npages * P) {
		want_err = ERROR_INVALID_PARAMETER;
	}

	SetLastError(0xdeadbeef);
	ok = VirtualFree((void *)addr, o->size, o->flags);
	err = GetLastError();
	if (!check_error(r, "VirtualFree", ok, err, !want_err, want_err))
		return false;
	if (!ok)
		return true;
	if (o->flags == MEM_RELEASE) {
		a->live = false;
		return true;
	}
	for (i = (s - a->base) / P; i < (e - a->base) / P; i++) {
		a->page[i].committed = false;
		a->page[i].protect = 0;
		a->page[i].reset = false;
		a->page[i].locked = false;
	}
	return true;
}

static bool do_protect(struct run *r, const struct op *o, uintptr_t addr)
{
	DWORD want_err = 0, want_old = PAGE_NOACCESS, old = 0x12345678, err;
	struct malloc_ *a = NULL;
	uintptr_t s = 0, e = 0;
	size_t i;
	BOOL ok;

	if ((want_err = check_protect(o->prot)))
		;
	else if (o->null_old)
		want_err = ERROR_NOACCESS;
	else if (!page_range(addr, o->size, &s, &e))
		want_err = ERROR_INVALID_PARAMETER;
	else if (!(a = find(&r->m, s)) || e > a->base + a->npages * P)
		want_err = ERROR_INVALID_ADDRESS;
	else
		for (i = (s - a->base) / P; i < (e - a->base) / P; i++)
			if (!a->page[i].committed)
				want_err = ERROR_INVALID_ADDRESS;
	if (!want_err)
		want_old = a->page[(s - a->base) / P].protect |
			   (a->alloc_protect &
			    (PAGE_NOCACHE | PAGE_WRITECOMBINE));

	SetLastError(0xdeadbeef);
	ok = VirtualProtect((void *)addr, o->size, o->prot,
			    o->null_old ? NULL : &old);
	err = GetLastError();
	if (!check_error(r, "VirtualProtect", ok, err, !want_err, want_err))
		return false;
	if (!o->null_old && old != want_old)
		FAIL(r, "VirtualProtect: old protection %#x, model says %#x",
		     old, want_old);
	if (ok)
		for (i = (s - a->base) / P; i < (e - a->base) / P; i++)
			a->page[i].protect = page_protect(o->prot);
	return true;
}

static bool do_query(struct run *r, uintptr_t addr)
{
	MEMORY_BASIC_INFORMATION mbi, want;
	uintptr_t page = addr & ~(P - 1), end;
	struct malloc_ *a;
	SIZE_T ret;
	size_t i;

	memset(&mbi, 0xcc, sizeof(mbi));
	a = find(&r->m, page);
	/* Outside the window, only winvm memory the model made is known. */
	if (!a && (page < r->m.lo || page >= r->m.hi) && addr <= user_max)
		return true;

	SetLastError(0xdeadbeef);
	ret = VirtualQuery((void *)addr, &mbi, sizeof(mbi));
	if (addr > user_max) {
		if (ret || GetLastError() != ERROR_INVALID_PARAMETER)
			FAIL(r, "VirtualQuery past the top: %zu, error %u", ret,
			     GetLastError());
		return true;
	}
	if (ret != sizeof(mbi) || GetLastError() != 0xdeadbeef)
		FAIL(r, "VirtualQuery returned %zu, error %u", ret,
		     GetLastError());

	memset(&want, 0, sizeof(want));
	want.BaseAddress = (void *)page;
	if (a) {
		struct mpage *pg = &a->page[(page - a->base) / P];

		want.AllocationBase = (void *)a->base;
		want.AllocationProtect = a->alloc_protect;
		want.State = pg->committed ? MEM_COMMIT : MEM_RESERVE;
		want.Protect = pg->committed ? pg->protect |
			(a->alloc_protect & (PAGE_NOCACHE | PAGE_WRITECOMBINE)) :
			0;
		want.Type = MEM_PRIVATE;
		for (i = (page - a->base) / P + 1; i < a->npages; i++)
			if (a->page[i].committed != pg->committed ||
			    a->page[i].protect != pg->protect)
				break;
		want.RegionSize = a->base + i * P - page;
	} else {
		want.State = MEM_FREE;
		want.Protect = PAGE_NOACCESS;
		end = next_base(&r->m, page);
		want.RegionSize = end < r->m.hi ? end - page : 0;
	}
	if (mbi.BaseAddress != want.BaseAddress ||
	    mbi.AllocationBase != want.AllocationBase ||
	    mbi.AllocationProtect != want.AllocationProtect ||
	    mbi.State != want.State || mbi.Protect != want.Protect ||
	    mbi.Type != want.Type || mbi.PartitionId ||
	    (want.RegionSize ? mbi.RegionSize != want.RegionSize :
	     page >= r->m.lo && page < r->m.hi &&
	     mbi.RegionSize < r->m.hi - page))
		FAIL(r, "VirtualQuery(%#lx): base %p alloc %p aprot %#x size %#zx state %#x prot %#x type %#x; model: base %p alloc %p aprot %#x size %#zx state %#x prot %#x type %#x",
		     addr, mbi.BaseAddress, mbi.AllocationBase,
		     mbi.AllocationProtect, mbi.RegionSize, mbi.State,
		     mbi.Protect, mbi.Type, want.BaseAddress,
		     want.AllocationBase, want.AllocationProtect,
		     want.RegionSize, want.State, want.Protect, want.Type);
	return true;
}

static bool do_probe(struct run *r, const struct op *o, uintptr_t addr)
{
	static const ULONG_PTR access[] = {
		[OP_READ] = EXCEPTION_READ_FAULT,
		[OP_WRITE] = EXCEPTION_WRITE_FAULT,
		[OP_EXEC] = EXCEPTION_EXECUTE_FAULT,
	};
	struct malloc_ *a = find(&r->m, addr);
	struct mpage *pg = a ? &a->page[(addr - a->base) / P] : NULL;
	bool guard = false, ok = false;
	uint8_t got = 0;
	DWORD code;

	/* Only probe winvm memory the model knows, or the empty window. */
	if (!a && (addr < r->m.lo || addr >= r->m.hi))
		return true;
	if (o->type == OP_EXEC) {
		addr &= ~(P - 1);
		if (!pg || pg->byte != RET)
			return true;
	}
	if (pg && pg->committed) {
		guard = pg->protect & PAGE_GUARD;
		if (o->type == OP_READ)
			ok = readable(pg->protect);
		else if (o->type == OP_WRITE)
			ok = writable(pg->protect);
		else
			ok = executable(pg->protect);
	}

	code = probe((volatile uint8_t *)addr, o->type, o->value, &got);
	if (probe_guards != guard)
		FAIL(r, "%s at %#lx: %d guard exceptions, model says %d",
		     opname[o->type], addr, probe_guards, guard);
	if (guard && probe_info[0] != access[o->type] && !code)
		FAIL(r, "guard exception with access %lu, model says %lu",
		     probe_info[0], access[o->type]);
	if (guard)
		pg->protect &= ~PAGE_GUARD;
	if (ok != !code)
		FAIL(r, "%s at %#lx: %s, model says %s", opname[o->type], addr,
		     code ? "exception" : "completed",
		     ok ? "it completes" : "access violation");
	if (code && (code != EXCEPTION_ACCESS_VIOLATION ||
		     probe_info[0] != access[o->type] ||
		     (o->type != OP_EXEC && probe_info[1] != addr)))
		FAIL(r, "%s at %#lx: exception %#x access %lu address %#lx",
		     opname[o->type], addr, code, probe_info[0],
		     probe_info[1]);
	if (!ok || addr % P)
		return true;
	if (o->type == OP_READ && pg->byte >= 0 && got != pg->byte)
		FAIL(r, "read %#x at %#lx, model says %#x", got, addr,
		     pg->byte);
	if (o->type == OP_READ)
		pg->byte = got;
	if (o->type == OP_WRITE)
		pg->byte = o->value;
	return true;
}

static bool do_lock(struct run *r, const struct op *o, uintptr_t addr)
{
	bool lock = o->type == OP_LOCK;
	DWORD want_err = 0, err;
	struct malloc_ *a = NULL;
	uintptr_t s = 0, e = 0;
	size_t i, guard = SIZE_MAX;
	BOOL ok;

	if (!page_range(addr, o->size, &s, &e))
		want_err = ERROR_INVALID_PARAMETER;
	else if (!(a = find(&r->m, s)) || e > a->base + a->npages * P)
		want_err = ERROR_INVALID_ADDRESS;
	else if (e - s > MAX_PAGES * P)
		return true;
	else
		for (i = (s - a->base) / P; i < (e - a->base) / P; i++) {
			struct mpage *pg = &a->page[i];

			if (!lock) {
				if (!pg->locked)
					want_err = ERROR_NOT_LOCKED;
				continue;
			}
			if (!pg->committed || !readable(pg->protect)) {
				want_err = ERROR_NOACCESS;
				break;
			}
			if (pg->protect & PAGE_GUARD) {
				want_err = STATUS_GUARD_PAGE_VIOLATION;
				guard = i;
				break;
			}
		}

	SetLastError(0xdeadbeef);
	ok = lock ? VirtualLock((void *)addr, o->size) :
		    VirtualUnlock((void *)addr, o->size);
	err = GetLastError();
	if (!check_error(r, opname[o->type], ok, err, !want_err, want_err))
		return false;
	if (guard != SIZE_MAX)
		a->page[guard].protect &= ~PAGE_GUARD;
	if (ok)
		for (i = (s - a->base) / P; i < (e - a->base) / P; i++)
			a->page[i].locked = lock;
	return true;
}

static bool step(struct run *r, const struct op *o)
{
	int idx;
	uintptr_t addr = target(r, o, &idx);

	switch (o->type) {
	case OP_ALLOC:
		return do_alloc(r, o, o->null_addr ? 0 : addr);
	case OP_FREE:
		return do_free(r, o, addr);
	case OP_PROTECT:
		return do_protect(r, o, addr);
	case OP_QUERY:
		return do_query(r, addr);
	case OP_LOCK:
	case OP_UNLOCK:
		return do_lock(r, o, addr);
	default:
		return do_probe(r, o, addr);
	}
}

/* --- driving it -------------------------------------------------------- */

/* A free window for fixed-address allocations, the same in every child. */
static bool pick_window(struct model *m)
{
	MEMORY_BASIC_INFORMATION mbi;
	uintptr_t w;

	for (w = 0x500000000000UL; w + WINDOW < user_max; w += 1UL << 30) {
		if (VirtualQuery((void *)w, &mbi, sizeof(mbi)) &&
		    mbi.State == MEM_FREE && mbi.RegionSize >= WINDOW) {
			m->lo = w;
			m->hi = w + WINDOW;
			return true;
		}
	}
	return false;
}

/*
 * Run @ops in this process, from a fresh winvm context: the index of the
 * first divergence (its description in @why), or -1.
 */
static long run_ops(const struct op *ops, long n, char *why, size_t len,
		    uintptr_t window)
{
	struct run *r = calloc(1, sizeof(*r));
	long i;

	if (!r)
		return 0;
	r->m.lo = window;
	r->m.hi = window + WINDOW;
	for (i = 0; i < n; i++) {
		if (!step(r, &ops[i])) {
			snprintf(why, len, "%s", r->why);
			free(r);
			return i;
		}
	}
	free(r);
	return -1;
}

/* run_ops() in a forked child, so that every replay starts afresh. */
static long replay(const struct op *ops, long n, char *why, size_t len,
		   uintptr_t window)
{
	int fds[2], status;
	long at = -1;
	ssize_t got;
	pid_t pid;

	if (pipe(fds))
		return -2;
	pid = fork();
	if (pid == 0) {
		char buf[512] = "";

		close(fds[0]);
		at = run_ops(ops, n, buf, sizeof(buf), window);
		if (write(fds[1], &at, sizeof(at)) != sizeof(at) ||
		    write(fds[1], buf, sizeof(buf)) != sizeof(buf))
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	got = read(fds[0], &at, sizeof(at));
	if (got == sizeof(at) && at >= 0 &&
	    read(fds[0], why, len) <= 0)
		why[0] = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (got != sizeof(at)) {
		/* The child died: that is a divergence too, at an unknown op. */
		snprintf(why, len, "the process died (status %#x)", status);
		return n - 1;
	}
	return at;
}

/* Shrink a diverging sequence by removing chunks while it still diverges. */
static long shrink(struct op *ops, long n, char *why, size_t len,
		   uintptr_t window)
{
	struct op *trial = malloc(n * sizeof(*ops));
	long chunk, i, m, at, budget = 400;
	char buf[512];

	if (!trial)
		return n;
	for (chunk = n / 2; chunk >= 1 && budget > 0; chunk /= 2) {
		for (i = 0; i + chunk <= n && budget > 0; budget--) {
			m = 0;
			memcpy(trial, ops, i * sizeof(*ops));
			m = i;
			memcpy(trial + m, ops + i + chunk,
			       (n - i - chunk) * sizeof(*ops));
			m += n - i - chunk;
			at = replay(trial, m, buf, sizeof(buf), window);
			if (at >= 0) {
				n = at + 1;
				memcpy(ops, trial, n * sizeof(*ops));
				snprintf(why, len, "%s", buf);
			} else {
				i += chunk;
			}
		}
	}
	free(trial);
	return n;
}

static bool fuzz_seed(uint64_t seed, long nops, uintptr_t window)
{
	struct op *ops = calloc(nops, sizeof(*ops));
	uint64_t state = seed * 0x9e3779b97f4a7c15ULL + 1;
	char why[512] = "";
	long i, at, n;

	if (!ops)
		return false;
	for (i = 0; i < nops; i++)
		gen(&state, &ops[i], false);
	at = replay(ops, nops, why, sizeof(why), window);
	if (at < 0) {
		free(ops);
		return true;
	}
	printf("# seed %" PRIu64 ": divergence at operation %ld: %s\n", seed,
	       at, why);
	print_op(stdout, &ops[at]);
	n = shrink(ops, at + 1, why, sizeof(why), window);
	printf("# minimal replay (%ld operations), diverging with: %s\n", n,
	       why);
	for (i = 0; i < n; i++)
		print_op(stdout, &ops[i]);
	free(ops);
	return false;
}

/* --- threads ------------------------------------------------------------ */

struct worker {
	pthread_t thread;
	uint64_t seed;
	long nops;
	uintptr_t window;
	char *shared;
	struct timespec deadline;
	long done;
	char why[600];
	bool ok;
};

/* Whether @w has worked long enough: its operations or its time are up. */
static bool worker_done(const struct worker *w, long i)
{
	struct timespec now;

	if (!w->deadline.tv_sec)
		return i >= w->nops;
	if (i % 64)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > w->deadline.tv_sec ||
	       (now.tv_sec == w->deadline.tv_sec &&
		now.tv_nsec >= w->deadline.tv_nsec);
}

/* What must hold on the shared allocation whatever the others do. */
static bool shared_step(struct worker *w, uint64_t *s)
{
	static const DWORD prots[] = { PAGE_READWRITE, PAGE_READONLY,
				       PAGE_NOACCESS,
				       PAGE_READWRITE | PAGE_GUARD };
	char *p = w->shared + rnd(s, 16) * P;
	MEMORY_BASIC_INFORMATION mbi;
	uint8_t byte;
	DWORD old, code;

	switch (rnd(s, 5)) {
	case 0:
		if (!VirtualAlloc(p, P, MEM_COMMIT, prots[rnd(s, 4)]))
			goto bad_call;
		return true;
	case 1:
		if (!VirtualFree(p, P, MEM_DECOMMIT))
			goto bad_call;
		return true;
	case 2:
		if (!VirtualProtect(p, P, prots[rnd(s, 4)], &old) &&
		    GetLastError() != ERROR_INVALID_ADDRESS)
			goto bad_call;
		return true;
	case 3:
		if (VirtualQuery(p, &mbi, sizeof(mbi)) != sizeof(mbi) ||
		    mbi.AllocationBase != w->shared ||
		    mbi.BaseAddress != p || !mbi.RegionSize ||
		    (char *)p + mbi.RegionSize > w->shared + 16 * P ||
		    (mbi.State == MEM_RESERVE && mbi.Protect) ||
		    (mbi.State != MEM_RESERVE && mbi.State != MEM_COMMIT)) {
			snprintf(w->why, sizeof(w->why),
				 "shared VirtualQuery: state %#x prot %#x size %#zx",
				 mbi.State, mbi.Protect, mbi.RegionSize);
			return false;
		}
		return true;
	default:
		code = probe((volatile uint8_t *)p, rnd(s, 2) ? OP_READ :
			     OP_WRITE, 1, &byte);
		if (code && code != EXCEPTION_ACCESS_VIOLATION) {
			snprintf(w->why, sizeof(w->why),
				 "shared probe: exception %#x", code);
			return false;
		}
		return true;
	}
bad_call:
	snprintf(w->why, sizeof(w->why), "shared call failed: error %u",
		 GetLastError());
	return false;
}

static void *worker_main(void *data)
{
	struct worker *w = data;
	uint64_t state = w->seed * 0x9e3779b97f4a7c15ULL + 7;
	struct run *r = calloc(1, sizeof(*r));
	struct op op;
	long i;

	w->ok = r != NULL;
	if (!r)
		return NULL;
	r->m.lo = w->window;
	r->m.hi = w->window + WINDOW;
	for (i = 0; !worker_done(w, i) && w->ok; i++) {
		if (!rnd(&state, 4)) {
			w->ok = shared_step(w, &state);
			continue;
		}
		gen(&state, &op, true);
		if (!step(r, &op)) {
			snprintf(w->why, sizeof(w->why), "operation %ld: %s", i,
				 r->why);
			w->ok = false;
		}
	}
	w->done = i;
	/* Final consistency check: every page the model knows, queried. */
	for (i = 0; i < MAX_ALLOCS && w->ok; i++) {
		struct malloc_ *a = &r->m.a[i];
		size_t pg;

		for (pg = 0; a->live && pg < a->npages && w->ok; pg++) {
			if (!do_query(r, a->base + pg * P)) {
				snprintf(w->why, sizeof(w->why),
					 "final check: %s", r->why);
				w->ok = false;
			}
		}
	}
	free(r);
	return NULL;
}

/*
 * Run @nthreads workers for @seconds, or @nops operations each if 0; the
 * operations they did are added to *@done.
 */
static bool fuzz_threads(int nthreads, uint64_t seed, long nops,
			 long seconds, long *done)
{
	struct timespec deadline = { 0 };
	struct worker *w = calloc(nthreads, sizeof(*w));
	struct model probe_model;
	char *shared;
	bool ok = true;
	int i;

	if (!w)
		return false;
	shared = VirtualAlloc(NULL, 16 * P, MEM_RESERVE, PAGE_READWRITE);
	if (!shared)
		return false;
	if (seconds) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += seconds;
	}
	for (i = 0; i < nthreads; i++) {
		/* Windows a gigabyte apart: no two threads share one. */
		if (!pick_window(&probe_model))
			return false;
		w[i].window = probe_model.lo + (uintptr_t)(i + 1) * (1UL << 30);
		w[i].seed = seed + i;
		w[i].nops = nops;
		w[i].deadline = deadline;
		w[i].shared = shared;
		pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(w[i].thread, NULL);
		*done += w[i].done;
		if (!w[i].ok) {
			printf("# thread %d (seed %" PRIu64 "): %s\n", i,
			       w[i].seed, w[i].why);
			ok = false;
		}
	}
	VirtualFree(shared, 0, MEM_RELEASE);
	free(w);
	return ok;
}

int main(int argc, char **argv)
{
	long nops = 25000, seeds = 4, threads, seconds = 15, i;
	long pass = 0, fail = 0, done = 0;
	uint64_t seed = 1;
	struct model m;
	SYSTEM_INFO si;
	int ntests;

	threads = 2 * sysconf(_SC_NPROCESSORS_ONLN);
	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--seed"))
			seed = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--seeds"))
			seeds = strtol(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--ops"))
			nops = strtol(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--threads"))
			threads = strtol(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = strtol(argv[i + 1], NULL, 0);
		else
			break;
	}
	if (i != argc || nops < 1 || seeds < 0 || threads < 0 || seconds < 0) {
		fprintf(stderr, "usage: winvm-fuzz [--seed S] [--seeds N] [--ops N] [--threads N] [--seconds T]\n");
		return 2;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	ntests = seeds + !!threads;
	printf("TAP version 13\n1..%d\n", ntests);
	if (access("/dev/winvm", F_OK)) {
		printf("ok 1 # SKIP /dev/winvm not present: load winvm.ko\n");
		printf("# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:1 error:0\n");
		return 0;
	}
	GetSystemInfo(&si);
	user_max = (uintptr_t)si.lpMaximumApplicationAddress;
	if (!AddVectoredExceptionHandler(1, probe_handler) ||
	    !pick_window(&m)) {
		printf("Bail out! no exception handler or no free window\n");
		return 1;
	}

	for (i = 0; i < seeds; i++) {
		bool ok = fuzz_seed(seed + i, nops, m.lo);

		printf("%s %ld seed %" PRIu64 ": %ld operations\n",
		       ok ? "ok" : "not ok", i + 1, seed + i, nops);
		ok ? pass++ : fail++;
		done += nops;
	}
	if (threads) {
		long before = done;
		bool ok = fuzz_threads(threads, seed, nops, seconds, &done);

		printf("%s %ld %ld threads: %ld operations\n",
		       ok ? "ok" : "not ok", seeds + 1, threads, done - before);
		ok ? pass++ : fail++;
	}
	printf("# fuzz: %ld operations checked against the model (%ld seeds from %" PRIu64 ", %ld threads)\n",
	       done, seeds, seed, threads);
	printf("# Totals: pass:%ld fail:%ld xfail:0 xpass:0 skip:0 error:0\n",
	       pass, fail);
	return fail ? 1 : 0;
}
