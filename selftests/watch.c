// SPDX-License-Identifier: GPL-2.0-only
/*
 * libwinvm tests: write watch (MEM_WRITE_WATCH, GetWriteWatch,
 * ResetWriteWatch), cases 25, 75, 81 and 82 of
 * shared/spec/win32-memory.md, and what Windows does around them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <windows.h>

#include "harness.h"
#include "win32_util.h"

#define P	0x1000
#define G	0x10000
#define NPAGES	16
#define POISON	((PVOID)0x5a5a5a5a5a5a5a5aUL)

FIXTURE(watch) {
	char *base;		/* 16 committed RW pages, write-watched */
	PVOID res[NPAGES + 1];
	ULONG_PTR count;
	ULONG gran;
};

FIXTURE_SETUP(watch)
{
	if (access("/dev/winvm", F_OK))
		SETUP_SKIP("/dev/winvm not present: load winvm.ko");
	self->base = VirtualAlloc(NULL, NPAGES * P, MEM_RESERVE | MEM_COMMIT |
				  MEM_WRITE_WATCH, PAGE_READWRITE);
	ASSERT_NE(NULL, self->base);
}

FIXTURE_TEARDOWN(watch)
{
	if (self->base)
		VirtualFree(self->base, 0, MEM_RELEASE);
}

/* GetWriteWatch of [addr, addr + size) into self->res; the pages found. */
static UINT get(FIXTURE_DATA(watch) *self, DWORD flags, void *addr,
		SIZE_T size, ULONG_PTR max)
{
	UINT ret;
	int i;

	for (i = 0; i <= NPAGES; i++)
		self->res[i] = POISON;
	self->count = max;
	self->gran = 0;
	ret = GetWriteWatch(flags, addr, size, self->res, &self->count,
			    &self->gran);
	return ret;
}

/* 81: a fresh region reports nothing, in pages of the page size. */
TEST_F(watch, fresh_region_reports_nothing)
{
	MEMORY_BASIC_INFORMATION mbi;

	SetLastError(UNTOUCHED);
	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	EXPECT_EQ(0, self->count);
	EXPECT_EQ(P, self->gran);
	EXPECT_EQ(POISON, self->res[0]);
	EXPECT_EQ(UNTOUCHED, GetLastError());

	/* Write watch does not show in VirtualQuery. */
	ASSERT_EQ(sizeof(mbi), VirtualQuery(self->base, &mbi, sizeof(mbi)));
	EXPECT_EQ(NPAGES * P, mbi.RegionSize);
	EXPECT_EQ(MEM_COMMIT, mbi.State);
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	EXPECT_EQ(PAGE_READWRITE, mbi.AllocationProtect);
	EXPECT_EQ(MEM_PRIVATE, mbi.Type);
}

/* 81: a written page is reported, and only it; reads do not count. */
TEST_F(watch, write_is_reported)
{
	volatile char *b = self->base;

	(void)b[3 * P];
	b[P + 1] = 0x44;
	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	ASSERT_EQ(1, self->count);
	EXPECT_EQ(self->base + P, self->res[0]);
	EXPECT_EQ(POISON, self->res[1]);

	/* Without the reset flag, the mark stays. */
	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	EXPECT_EQ(1, self->count);
}

/* 81: WRITE_WATCH_FLAG_RESET reports, then clears; a new write marks again. */
TEST_F(watch, reset_flag_clears)
{
	self->base[P + 1] = 0x44;
	ASSERT_EQ(0, get(self, WRITE_WATCH_FLAG_RESET, self->base, NPAGES * P,
			 NPAGES));
	ASSERT_EQ(1, self->count);
	EXPECT_EQ(self->base + P, self->res[0]);

	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	EXPECT_EQ(0, self->count);

	/* The page is still mapped: the next write must fault and mark it. */
	self->base[P + 2] = 0x45;
	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	ASSERT_EQ(1, self->count);
	EXPECT_EQ(self->base + P, self->res[0]);
	EXPECT_EQ(0x44, self->base[P + 1]);
}

/* Several pages come lowest first; a sub-range reports only its own. */
TEST_F(watch, order_and_subrange)
{
	self->base[4 * P + 8] = 0x11;
	self->base[2 * P + 3] = 0x11;
	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	ASSERT_EQ(2, self->count);
	EXPECT_EQ(self->base + 2 * P, self->res[0]);
	EXPECT_EQ(self->base + 4 * P, self->res[1]);

	ASSERT_EQ(0, get(self, 0, self->base + 3 * P, 2 * P, NPAGES));
	ASSERT_EQ(1, self->count);
	EXPECT_EQ(self->base + 4 * P, self->res[0]);

	/* An unaligned range covers every page it touches. */
	ASSERT_EQ(0, get(self, 0, self->base + 3 * P + 5, P, NPAGES));
	ASSERT_EQ(1, self->count);
	EXPECT_EQ(self->base + 4 * P, self->res[0]);
}

/* ResetWriteWatch clears the range given and nothing else. */
TEST_F(watch, reset_write_watch_range)
{
	self->base[P] = 1;
	self->base[2 * P] = 1;
	self->base[4 * P] = 1;
	SetLastError(UNTOUCHED);
	EXPECT_EQ(0, ResetWriteWatch(self->base, 3 * P));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	ASSERT_EQ(1, self->count);
	EXPECT_EQ(self->base + 4 * P, self->res[0]);

	/* A write straddling two pages marks both. */
	*(volatile DWORD *)(self->base + 2 * P - 2) = 0xdeadbeef;
	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	ASSERT_EQ(3, self->count);
	EXPECT_EQ(self->base + P, self->res[0]);
	EXPECT_EQ(self->base + 2 * P, self->res[1]);
	EXPECT_EQ(self->base + 4 * P, self->res[2]);
}

/* A full buffer: the reset only clears what was reported. */
TEST_F(watch, reset_only_what_was_reported)
{
	self->base[P] = 1;
	self->base[2 * P] = 1;
	self->base[4 * P] = 1;
	ASSERT_EQ(0, get(self, WRITE_WATCH_FLAG_RESET, self->base, NPAGES * P,
			 1));
	ASSERT_EQ(1, self->count);
	EXPECT_EQ(self->base + P, self->res[0]);
	EXPECT_EQ(POISON, self->res[1]);

	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	ASSERT_EQ(2, self->count);
	EXPECT_EQ(self->base + 2 * P, self->res[0]);
	EXPECT_EQ(self->base + 4 * P, self->res[1]);
}

/* More written pages than one batch of the module: all come, in order. */
TEST_F(watch, many_pages)
{
	const SIZE_T n = 300;
	ULONG_PTR count = n + 7;
	PVOID *res = calloc(n + 8, sizeof(*res));
	char *b = VirtualAlloc(NULL, 2 * n * P, MEM_RESERVE | MEM_COMMIT |
			       MEM_WRITE_WATCH, PAGE_READWRITE);
	ULONG gran;
	SIZE_T i;

	ASSERT_NE(NULL, res);
	ASSERT_NE(NULL, b);
	for (i = 0; i < n; i++)
		b[2 * i * P] = 1;
	ASSERT_EQ(0, GetWriteWatch(WRITE_WATCH_FLAG_RESET, b, 2 * n * P, res,
				   &count, &gran));
	ASSERT_EQ(n, count);
	for (i = 0; i < n; i++)
		ASSERT_EQ(b + 2 * i * P, res[i]) TH_LOG("entry %zu", i);
	EXPECT_EQ(NULL, res[n]);

	count = n;
	ASSERT_EQ(0, GetWriteWatch(0, b, 2 * n * P, res, &count, &gran));
	EXPECT_EQ(0, count);
	EXPECT_TRUE(VirtualFree(b, 0, MEM_RELEASE));
	free(res);
}

/* 81: protection changes do not affect the marks. */
TEST_F(watch, protection_changes_keep_marks)
{
	MEMORY_BASIC_INFORMATION mbi;
	DWORD old;

	self->base[2 * P] = 1;
	self->base[4 * P] = 1;
	ASSERT_TRUE(VirtualProtect(self->base, 3 * P, PAGE_READONLY, &old));
	EXPECT_EQ(PAGE_READWRITE, old);
	ASSERT_TRUE(VirtualProtect(self->base, 3 * P, PAGE_READWRITE, &old));
	EXPECT_EQ(PAGE_READONLY, old);

	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	ASSERT_EQ(2, self->count);
	EXPECT_EQ(self->base + 2 * P, self->res[0]);
	EXPECT_EQ(self->base + 4 * P, self->res[1]);
	ASSERT_EQ(sizeof(mbi), VirtualQuery(self->base, &mbi, sizeof(mbi)));
	EXPECT_EQ(NPAGES * P, mbi.RegionSize);
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
}

/*
 * 25 and "initial protect doesn't matter": a NOACCESS reservation, a page
 * made writable, written and made NOACCESS again is reported; decommitting
 * it keeps the mark.
 */
TEST_F(watch, noaccess_reservation)
{
	PVOID res[NPAGES];
	ULONG_PTR count = NPAGES;
	ULONG gran;
	char *b;
	DWORD old;

	b = VirtualAlloc(NULL, NPAGES * P, MEM_RESERVE | MEM_WRITE_WATCH,
			 PAGE_NOACCESS);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(b, VirtualAlloc(b, NPAGES * P, MEM_COMMIT, PAGE_NOACCESS));
	ASSERT_EQ(0, GetWriteWatch(0, b, NPAGES * P, res, &count, &gran));
	EXPECT_EQ(0, count);

	ASSERT_TRUE(VirtualProtect(b, 6 * P, PAGE_READWRITE, &old));
	EXPECT_EQ(PAGE_NOACCESS, old);
	b[5 * P + 200] = 3;
	ASSERT_TRUE(VirtualProtect(b, 6 * P, PAGE_NOACCESS, &old));
	EXPECT_EQ(PAGE_READWRITE, old);

	count = NPAGES;
	ASSERT_EQ(0, GetWriteWatch(0, b, NPAGES * P, res, &count, &gran));
	ASSERT_EQ(1, count);
	EXPECT_EQ(b + 5 * P, res[0]);

	ASSERT_TRUE(VirtualFree(b, NPAGES * P, MEM_DECOMMIT));
	count = NPAGES;
	ASSERT_EQ(0, GetWriteWatch(0, b, NPAGES * P, res, &count, &gran));
	ASSERT_EQ(1, count);
	EXPECT_EQ(b + 5 * P, res[0]);
	EXPECT_TRUE(VirtualFree(b, 0, MEM_RELEASE));
}

/* A write by the kernel on the program's behalf counts as a write. */
TEST_F(watch, kernel_write_marks)
{
	int fds[2];

	ASSERT_EQ(0, pipe(fds));
	ASSERT_EQ(5, write(fds[1], "hello", 5));
	ASSERT_EQ(5, read(fds[0], self->base + 7 * P + 10, 5));
	close(fds[0]);
	close(fds[1]);
	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	ASSERT_EQ(1, self->count);
	EXPECT_EQ(self->base + 7 * P, self->res[0]);
	EXPECT_EQ(0, memcmp(self->base + 7 * P + 10, "hello", 5));
}

/* Releasing the allocation forgets its marks: a new one starts clean. */
TEST_F(watch, release_forgets)
{
	PVOID res[NPAGES];
	ULONG_PTR count = NPAGES;
	ULONG gran;
	char *b, *c;

	b = VirtualAlloc(NULL, NPAGES * P, MEM_RESERVE | MEM_COMMIT |
			 MEM_WRITE_WATCH, PAGE_READWRITE);
	ASSERT_NE(NULL, b);
	b[P] = 1;
	ASSERT_TRUE(VirtualFree(b, 0, MEM_RELEASE));
	c = VirtualAlloc(b, NPAGES * P, MEM_RESERVE | MEM_COMMIT |
			 MEM_WRITE_WATCH, PAGE_READWRITE);
	ASSERT_EQ(b, c);
	ASSERT_EQ(0, GetWriteWatch(0, c, NPAGES * P, res, &count, &gran));
	EXPECT_EQ(0, count);
	EXPECT_TRUE(VirtualFree(c, 0, MEM_RELEASE));
}

/* 25: MEM_WRITE_WATCH needs MEM_RESERVE, and is not for large pages. */
TEST_F(watch, alloc_rules)
{
	char *b;

	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, G, MEM_WRITE_WATCH,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, G, MEM_WRITE_WATCH | MEM_COMMIT,
				     PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(NULL, VirtualAlloc(NULL, 2 << 20, MEM_WRITE_WATCH |
				     MEM_RESERVE | MEM_COMMIT |
				     MEM_LARGE_PAGES, PAGE_READWRITE));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());

	/* Any protection will do, even PAGE_NOACCESS. */
	SetLastError(UNTOUCHED);
	b = VirtualAlloc(NULL, G, MEM_RESERVE | MEM_WRITE_WATCH,
			 PAGE_NOACCESS);
	ASSERT_NE(NULL, b);
	EXPECT_EQ(UNTOUCHED, GetLastError());
	/* Committing into it later needs no MEM_WRITE_WATCH again. */
	EXPECT_EQ(b, VirtualAlloc(b, P, MEM_COMMIT, PAGE_READWRITE));
	EXPECT_TRUE(VirtualFree(b, 0, MEM_RELEASE));
}

/* 82: every bad argument fails with ~0u and the right error. */
TEST_F(watch, bad_arguments)
{
	char *plain = VirtualAlloc(NULL, G, MEM_RESERVE | MEM_COMMIT,
				   PAGE_READWRITE);
	static const struct {
		DWORD flags;
		SIZE_T off, size;
		ULONG_PTR count;
		bool null_base, plain;
		DWORD err;
	} cases[] = {
		{ 0, 0, NPAGES * P, NPAGES, true, false,
		  ERROR_INVALID_PARAMETER },		/* NULL base */
		{ 0, 0, NPAGES * P, NPAGES, false, true,
		  ERROR_INVALID_PARAMETER },		/* not watched */
		{ 0, 0, 0, NPAGES, false, false,
		  ERROR_INVALID_PARAMETER },		/* size 0 */
		{ 0, 0, 2 * NPAGES * P, NPAGES, false, false,
		  ERROR_INVALID_PARAMETER },		/* past the end */
		{ 0, (NPAGES - 1) * P, P + 1, NPAGES, false, false,
		  ERROR_INVALID_PARAMETER },		/* one byte past */
		{ 0xdeadbeef, 0, NPAGES * P, NPAGES, false, false,
		  ERROR_INVALID_PARAMETER },		/* unknown flags */
		{ 2, 0, NPAGES * P, NPAGES, false, false,
		  ERROR_INVALID_PARAMETER },
		{ 0, 0, NPAGES * P, 0, false, false,
		  ERROR_INVALID_PARAMETER },		/* count 0 */
	};
	char *addr;
	size_t i;

	ASSERT_NE(NULL, plain);
	self->base[P] = 1;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		addr = cases[i].null_base ? NULL :
		       (cases[i].plain ? plain : self->base) + cases[i].off;
		SetLastError(UNTOUCHED);
		/* With the reset flag where valid: it must not act. */
		EXPECT_EQ(~0u, get(self, cases[i].flags ?: WRITE_WATCH_FLAG_RESET,
				   addr, cases[i].size, cases[i].count))
			TH_LOG("case %zu", i);
		EXPECT_EQ(cases[i].err, GetLastError()) TH_LOG("case %zu", i);
		EXPECT_EQ(POISON, self->res[0]) TH_LOG("case %zu", i);
		EXPECT_EQ(cases[i].count, self->count) TH_LOG("case %zu", i);
		EXPECT_EQ(0, self->gran) TH_LOG("case %zu", i);
	}

	/* NULL pointers with a non-zero count: ERROR_NOACCESS. */
	self->count = NPAGES;
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~0u, GetWriteWatch(0, self->base, NPAGES * P, NULL,
				     &self->count, &self->gran));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~0u, GetWriteWatch(0, self->base, NPAGES * P, self->res,
				     NULL, &self->gran));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~0u, GetWriteWatch(0, self->base, NPAGES * P, self->res,
				     &self->count, NULL));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	/* ... but a zero count is checked first. */
	self->count = 0;
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~0u, GetWriteWatch(0, self->base, NPAGES * P, NULL,
				     &self->count, &self->gran));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());

	SetLastError(UNTOUCHED);
	EXPECT_EQ(~0u, ResetWriteWatch(self->base, 0));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~0u, ResetWriteWatch(plain, G));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~0u, ResetWriteWatch(self->base, 2 * NPAGES * P));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());

	/* None of it reset the mark. */
	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	ASSERT_EQ(1, self->count);
	EXPECT_EQ(self->base + P, self->res[0]);
	EXPECT_TRUE(VirtualFree(plain, 0, MEM_RELEASE));
}

/*
 * A results buffer that cannot be written: ERROR_NOACCESS, and the reset
 * that was asked for does not happen.
 */
TEST_F(watch, unwritable_buffer_changes_nothing)
{
	PVOID *ro = VirtualAlloc(NULL, P, MEM_RESERVE | MEM_COMMIT,
				 PAGE_READONLY);
	ULONG_PTR count = NPAGES;
	ULONG gran = 0;

	PVOID *edge;

	ASSERT_NE(NULL, ro);
	self->base[3 * P] = 1;
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~0u, GetWriteWatch(WRITE_WATCH_FLAG_RESET, self->base,
				     NPAGES * P, ro, &count, &gran));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	EXPECT_EQ(NULL, ro[0]);
	EXPECT_EQ(NPAGES, count);
	EXPECT_EQ(0, gran);
	EXPECT_TRUE(VirtualFree(ro, 0, MEM_RELEASE));

	/*
	 * Room for one entry, then a page that is not committed: the one
	 * page written would fit, but the buffer is checked for every entry
	 * the call may store (the range has 16 pages).
	 */
	edge = VirtualAlloc(NULL, 2 * P, MEM_RESERVE, PAGE_READWRITE);
	ASSERT_NE(NULL, edge);
	ASSERT_EQ(edge, VirtualAlloc(edge, P, MEM_COMMIT, PAGE_READWRITE));
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~0u, GetWriteWatch(WRITE_WATCH_FLAG_RESET, self->base,
				     NPAGES * P, edge + P / sizeof(PVOID) - 1,
				     &count, &gran));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	EXPECT_EQ(NULL, edge[P / sizeof(PVOID) - 1]);
	/* With room for exactly the range's pages, it works. */
	count = 1;
	EXPECT_EQ(0, GetWriteWatch(0, self->base, NPAGES * P,
				   edge + P / sizeof(PVOID) - 1, &count, &gran));
	EXPECT_EQ(1, count);
	EXPECT_EQ(self->base + 3 * P, edge[P / sizeof(PVOID) - 1]);

	/* A count or granularity the caller cannot write: the same. */
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~0u, GetWriteWatch(WRITE_WATCH_FLAG_RESET, self->base,
				     NPAGES * P, self->res,
				     (ULONG_PTR *)(edge + P / sizeof(PVOID)),
				     &gran));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	count = NPAGES;
	SetLastError(UNTOUCHED);
	EXPECT_EQ(~0u, GetWriteWatch(WRITE_WATCH_FLAG_RESET, self->base,
				     NPAGES * P, self->res, &count,
				     (ULONG *)(edge + P / sizeof(PVOID))));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());

	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	ASSERT_EQ(1, self->count);
	EXPECT_EQ(self->base + 3 * P, self->res[0]);
	EXPECT_TRUE(VirtualFree(edge, 0, MEM_RELEASE));
}

/* Guard pages and write watch (case 75). */
static volatile int guard_hits;
static volatile bool handler_writes;

static LONG CALLBACK on_guard(EXCEPTION_POINTERS *ep)
{
	EXCEPTION_RECORD *rec = ep->ExceptionRecord;

	if (rec->ExceptionCode != STATUS_GUARD_PAGE_VIOLATION)
		return EXCEPTION_CONTINUE_SEARCH;
	guard_hits++;
	if (handler_writes)
		*(volatile int *)rec->ExceptionInformation[1] += 0x100;
	return EXCEPTION_CONTINUE_EXECUTION;
}

/* 75: a write to a guarded watched page: one guard exception, then marked. */
TEST_F(watch, guard_write)
{
	PVOID res[4], h = AddVectoredExceptionHandler(1, on_guard);
	volatile int *v;
	ULONG_PTR count = 4;
	ULONG gran;
	char *b;

	ASSERT_NE(NULL, h);
	b = VirtualAlloc(NULL, P, MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
			 PAGE_READWRITE | PAGE_GUARD);
	ASSERT_NE(NULL, b);
	v = (volatile int *)b;
	ASSERT_EQ(0, GetWriteWatch(0, b, P, res, &count, &gran));
	EXPECT_EQ(0, count);

	guard_hits = 0;
	handler_writes = false;
	v[0] = 1;
	v[1] = 2;
	EXPECT_EQ(1, guard_hits);
	count = 4;
	ASSERT_EQ(0, GetWriteWatch(WRITE_WATCH_FLAG_RESET, b, P, res, &count,
				   &gran));
	ASSERT_EQ(1, count);
	EXPECT_EQ(b, res[0]);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
	EXPECT_TRUE(VirtualFree(b, 0, MEM_RELEASE));
}

/*
 * 75: a read that hits the guard does not mark the page; the handler's own
 * write does.
 */
TEST_F(watch, guard_read)
{
	PVOID h = AddVectoredExceptionHandler(1, on_guard);
	volatile int *v = (volatile int *)self->base;
	DWORD old;
	int val;

	ASSERT_NE(NULL, h);
	ASSERT_TRUE(VirtualProtect(self->base, P, PAGE_READWRITE | PAGE_GUARD,
				   &old));
	guard_hits = 0;
	handler_writes = false;
	val = v[1];
	EXPECT_EQ(0, val);
	EXPECT_EQ(1, guard_hits);
	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	EXPECT_EQ(0, self->count);

	ASSERT_TRUE(VirtualProtect(self->base, P, PAGE_READWRITE | PAGE_GUARD,
				   &old));
	handler_writes = true;
	val = v[1];
	EXPECT_EQ(0x100, val);
	EXPECT_EQ(2, guard_hits);
	ASSERT_EQ(0, get(self, 0, self->base, NPAGES * P, NPAGES));
	ASSERT_EQ(1, self->count);
	EXPECT_EQ(self->base, self->res[0]);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

/*
 * Writers and a resetter race: a page a writer flagged before writing it
 * is either reported and unflagged by the resetter, or still marked at the
 * end. A write the reset lost would leave a flagged page unmarked.
 */
#define RACE_PAGES	64

struct race {
	char *base;
	atomic_int flagged[RACE_PAGES];
	atomic_bool stop;
	unsigned int seed;
};

static void *race_writer(void *data)
{
	struct race *r = data;
	unsigned int seed = __atomic_add_fetch(&r->seed, 7919, __ATOMIC_RELAXED);
	int p;

	while (!atomic_load(&r->stop)) {
		p = rand_r(&seed) % RACE_PAGES;
		atomic_store(&r->flagged[p], 1);
		/* Half the writes go through WriteProcessMemory. */
		if (seed & 0x1000)
			WriteProcessMemory(GetCurrentProcess(),
					   r->base + p * P + (seed & 0xfff),
					   &seed, 1, NULL);
		else
			((volatile char *)r->base)[p * P + (seed & 0xfff)]++;
	}
	return NULL;
}

TEST_F_TIMEOUT(watch, race, 120)
{
	struct race *r = calloc(1, sizeof(*r));
	PVOID res[RACE_PAGES];
	pthread_t th[3];
	ULONG_PTR count;
	time_t until;
	long rounds = 0;
	ULONG gran;
	int i, p;

	ASSERT_NE(NULL, r);
	r->base = VirtualAlloc(NULL, RACE_PAGES * P, MEM_RESERVE | MEM_COMMIT |
			       MEM_WRITE_WATCH, PAGE_READWRITE);
	ASSERT_NE(NULL, r->base);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, race_writer, r));
	until = time(NULL) + 5;
	while (time(NULL) < until) {
		count = RACE_PAGES;
		ASSERT_EQ(0, GetWriteWatch(WRITE_WATCH_FLAG_RESET, r->base,
					   RACE_PAGES * P, res, &count,
					   &gran));
		/* Reported pages were written at least once more. */
		for (i = 0; i < (int)count; i++) {
			p = ((char *)res[i] - r->base) / P;
			ASSERT_LT(p, RACE_PAGES);
			atomic_store(&r->flagged[p], 0);
		}
		rounds++;
	}
	atomic_store(&r->stop, true);
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);

	/* Flagged after the last reset saw them: must be marked now. */
	count = RACE_PAGES;
	ASSERT_EQ(0, GetWriteWatch(0, r->base, RACE_PAGES * P, res, &count,
				   &gran));
	for (p = 0; p < RACE_PAGES; p++) {
		bool marked = false;

		for (i = 0; i < (int)count; i++)
			marked |= res[i] == r->base + p * P;
		if (atomic_load(&r->flagged[p]))
			EXPECT_TRUE(marked) TH_LOG("page %d lost its write", p);
	}
	printf("# %ld resets\n", rounds);
	EXPECT_TRUE(VirtualFree(r->base, 0, MEM_RELEASE));
	free(r);
}

TEST_HARNESS_MAIN
