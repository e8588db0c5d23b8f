// SPDX-License-Identifier: GPL-2.0-only
/*
 * libwinvm tests: VirtualProtect, guard pages and the exception API
 * (vectored handlers, continue handlers, the unhandled-exception filter,
 * RaiseException, CONTEXT), through <windows.h>. Numbers refer to the cases
 * of shared/spec/win32-memory.md.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <windows.h>

#include "harness.h"
#include "win32_util.h"

#define P	0x1000
#define G	0x10000

_Static_assert(sizeof(CONTEXT) == 1232, "CONTEXT size");
_Static_assert(offsetof(CONTEXT, ContextFlags) == 0x30, "ContextFlags");
_Static_assert(offsetof(CONTEXT, SegCs) == 0x38, "SegCs");
_Static_assert(offsetof(CONTEXT, EFlags) == 0x44, "EFlags");
_Static_assert(offsetof(CONTEXT, Rax) == 0x78, "Rax");
_Static_assert(offsetof(CONTEXT, Rsp) == 0x98, "Rsp");
_Static_assert(offsetof(CONTEXT, Rip) == 0xf8, "Rip");
_Static_assert(offsetof(CONTEXT, FltSave) == 0x100, "FltSave");
_Static_assert(offsetof(CONTEXT, Xmm0) == 0x1a0, "Xmm0");
_Static_assert(offsetof(CONTEXT, VectorRegister) == 0x300, "VectorRegister");
_Static_assert(offsetof(CONTEXT, LastExceptionFromRip) == 0x4c8,
	       "LastExceptionFromRip");
_Static_assert(sizeof(EXCEPTION_RECORD) == 152, "EXCEPTION_RECORD size");
_Static_assert(offsetof(EXCEPTION_RECORD, NumberParameters) == 24,
	       "NumberParameters");
_Static_assert(offsetof(EXCEPTION_RECORD, ExceptionInformation) == 32,
	       "ExceptionInformation");

/*
 * The handlers run inside the faulting access: tell the compiler that
 * memory may have changed across it, or it may read what they wrote too
 * early.
 */
#define barrier()	__asm__ volatile("" ::: "memory")

/* What the handlers saw, per thread. */
static __thread EXCEPTION_RECORD seen;
static __thread CONTEXT seen_ctx;
static __thread int calls;
static int trace[16], ntrace;
static ULONG_PTR trace_info[16][2];

static void reset_seen(void)
{
	memset(&seen, 0, sizeof(seen));
	calls = 0;
	ntrace = 0;
}

/* Record the exception and let it run again (guard pages clear by then). */
static LONG CALLBACK record_continue(EXCEPTION_POINTERS *ep)
{
	seen = *ep->ExceptionRecord;
	seen_ctx = *ep->ContextRecord;
	calls++;
	return EXCEPTION_CONTINUE_EXECUTION;
}

/* Commit the page the access violation is on, then continue. */
static LONG CALLBACK commit_and_continue(EXCEPTION_POINTERS *ep)
{
	EXCEPTION_RECORD *rec = ep->ExceptionRecord;

	if (rec->ExceptionCode != EXCEPTION_ACCESS_VIOLATION)
		return EXCEPTION_CONTINUE_SEARCH;
	seen = *rec;
	calls++;
	if (!VirtualAlloc((void *)rec->ExceptionInformation[1], 1, MEM_COMMIT,
			  PAGE_READWRITE))
		return EXCEPTION_CONTINUE_SEARCH;
	return EXCEPTION_CONTINUE_EXECUTION;
}

FIXTURE(exc) {
	char *a;
};

FIXTURE_SETUP(exc)
{
	if (access("/dev/winvm", F_OK))
		SETUP_SKIP("/dev/winvm not present: load winvm.ko");
	self->a = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_READWRITE);
	ASSERT_NE(NULL, self->a);
	ASSERT_EQ(self->a, VirtualAlloc(self->a, 4 * P, MEM_COMMIT,
					PAGE_READWRITE));
	reset_seen();
}

FIXTURE_TEARDOWN(exc)
{
}

/* 4, 6: protection needs every page committed. */
TEST_F(exc, protect_needs_committed)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *r = VirtualAlloc(NULL, G, MEM_RESERVE, PAGE_NOACCESS);
	DWORD old = UNTOUCHED;

	ASSERT_NE(NULL, r);
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualProtect(r, 0xfffc, PAGE_READONLY, &old));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
	EXPECT_EQ(PAGE_NOACCESS, old);	/* 32 */
	ASSERT_EQ(r, VirtualAlloc(r, P, MEM_COMMIT, PAGE_NOACCESS));
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualProtect(r, 0xfffc, PAGE_READONLY, &old));
	EXPECT_EQ(ERROR_INVALID_ADDRESS, GetLastError());
	/* 7, 8 */
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(VirtualProtect(r, P, PAGE_READONLY, &old));
	EXPECT_EQ(PAGE_NOACCESS, old);
	EXPECT_TRUE(VirtualProtect(r, P, PAGE_READWRITE, &old));
	EXPECT_EQ(PAGE_READONLY, old);
	EXPECT_EQ(UNTOUCHED, GetLastError());
	memset(&mbi, 0xcc, sizeof(mbi));
	ASSERT_EQ(sizeof(mbi), VirtualQuery(r, &mbi, sizeof(mbi)));
	EXPECT_EQ(r, mbi.BaseAddress);
	EXPECT_EQ(P, mbi.RegionSize);
	EXPECT_EQ(MEM_COMMIT, mbi.State);
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	r[0] = 1;
	EXPECT_TRUE(VirtualFree(r, 0, MEM_RELEASE));
}

/* 11, 28, 29: the same six values as VirtualAlloc; invalid ones change nothing. */
TEST_F(exc, protect_values)
{
	MEMORY_BASIC_INFORMATION mbi;
	DWORD prot, old;

	for (prot = 0; prot <= 0xff; prot++) {
		int valid = prot == PAGE_NOACCESS || prot == PAGE_READONLY ||
			    prot == PAGE_READWRITE || prot == PAGE_EXECUTE ||
			    prot == PAGE_EXECUTE_READ ||
			    prot == PAGE_EXECUTE_READWRITE;

		ASSERT_TRUE(VirtualProtect(self->a, P, PAGE_NOACCESS, &old));
		SetLastError(UNTOUCHED);
		old = UNTOUCHED;
		if (!valid) {
			EXPECT_FALSE(VirtualProtect(self->a, P, prot, &old));
			EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
			EXPECT_EQ(PAGE_NOACCESS, old);
			VirtualQuery(self->a, &mbi, sizeof(mbi));
			EXPECT_EQ(PAGE_NOACCESS, mbi.Protect);
			continue;
		}
		EXPECT_TRUE(VirtualProtect(self->a, P, prot, &old))
			TH_LOG("prot %#x", prot);
		EXPECT_EQ(PAGE_NOACCESS, old);
		VirtualQuery(self->a, &mbi, sizeof(mbi));
		EXPECT_EQ(prot, mbi.Protect);
		EXPECT_EQ(PAGE_READWRITE, mbi.AllocationProtect);
	}
	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualProtect(self->a, P, PAGE_READWRITE |
				    PAGE_EXECUTE_WRITECOPY, &old));
	EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
}

/* 30: a NULL old-protection pointer fails and changes nothing. */
TEST_F(exc, protect_null_old)
{
	MEMORY_BASIC_INFORMATION mbi;
	DWORD old;

	SetLastError(UNTOUCHED);
	EXPECT_FALSE(VirtualProtect(self->a, P, PAGE_READONLY, NULL));
	EXPECT_EQ(ERROR_NOACCESS, GetLastError());
	VirtualQuery(self->a, &mbi, sizeof(mbi));
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	EXPECT_TRUE(VirtualProtect(self->a, P, PAGE_READONLY, &old));
	EXPECT_EQ(PAGE_READWRITE, old);
}

/* 33: the old protection is the first page's. */
TEST_F(exc, protect_old_first_page)
{
	DWORD old;

	ASSERT_TRUE(VirtualProtect(self->a, 2 * P, PAGE_READONLY, &old));
	ASSERT_TRUE(VirtualProtect(self->a + 2 * P, 2 * P,
				   PAGE_EXECUTE_READWRITE, &old));
	EXPECT_EQ(PAGE_READWRITE, old);
	ASSERT_TRUE(VirtualProtect(self->a, 4 * P, PAGE_EXECUTE_READ, &old));
	EXPECT_EQ(PAGE_READONLY, old);
}

/* 34: an unaligned one-byte range protects its page. */
TEST_F(exc, protect_unaligned)
{
	MEMORY_BASIC_INFORMATION mbi;
	DWORD old;

	EXPECT_TRUE(VirtualProtect(self->a + P + 1, 1, PAGE_READONLY, &old));
	VirtualQuery(self->a + P, &mbi, sizeof(mbi));
	EXPECT_EQ(PAGE_READONLY, mbi.Protect);
	EXPECT_EQ(P, mbi.RegionSize);
	VirtualQuery(self->a, &mbi, sizeof(mbi));
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	EXPECT_EQ(P, mbi.RegionSize);
}

/* 35: PAGE_NOCACHE sticks to the allocation. */
TEST_F(exc, nocache_allocation)
{
	MEMORY_BASIC_INFORMATION mbi;
	char *a = VirtualAlloc(NULL, 0x2000, MEM_COMMIT,
			       PAGE_READWRITE | PAGE_NOCACHE);
	DWORD old;

	ASSERT_NE(NULL, a);
	VirtualQuery(a, &mbi, sizeof(mbi));
	EXPECT_EQ(0x204, mbi.AllocationProtect);
	EXPECT_EQ(0x204, mbi.Protect);
	EXPECT_EQ(0x2000, mbi.RegionSize);
	EXPECT_TRUE(VirtualProtect(a, P, PAGE_READWRITE, &old));
	EXPECT_EQ(0x204, old);
	VirtualQuery(a, &mbi, sizeof(mbi));
	EXPECT_EQ(0x2000, mbi.RegionSize);
	EXPECT_EQ(0x204, mbi.Protect);
	EXPECT_TRUE(VirtualProtect(a, P, PAGE_READONLY, &old));
	EXPECT_EQ(0x204, old);
	VirtualQuery(a, &mbi, sizeof(mbi));
	EXPECT_EQ(P, mbi.RegionSize);
	EXPECT_EQ(0x202, mbi.Protect);
	EXPECT_TRUE(VirtualFree(a, 0, MEM_RELEASE));
}

/* 36: PAGE_NOCACHE cannot be added to one page. */
TEST_F(exc, nocache_not_per_page)
{
	MEMORY_BASIC_INFORMATION mbi;
	DWORD old;

	EXPECT_TRUE(VirtualProtect(self->a, P, PAGE_READONLY | PAGE_NOCACHE,
				   &old));
	EXPECT_EQ(PAGE_READWRITE, old);
	VirtualQuery(self->a, &mbi, sizeof(mbi));
	EXPECT_EQ(PAGE_READONLY, mbi.Protect);
	EXPECT_EQ(P, mbi.RegionSize);
	EXPECT_EQ(PAGE_READWRITE, mbi.AllocationProtect);
}

/* Modifier combinations Windows refuses. */
TEST_F(exc, modifier_rules)
{
	static const DWORD bad[] = {
		PAGE_NOACCESS | PAGE_GUARD, PAGE_NOACCESS | PAGE_NOCACHE,
		PAGE_NOACCESS | PAGE_WRITECOMBINE,
		PAGE_READWRITE | PAGE_GUARD | PAGE_NOCACHE,
		PAGE_READWRITE | PAGE_GUARD | PAGE_WRITECOMBINE,
		PAGE_READWRITE | PAGE_NOCACHE | PAGE_WRITECOMBINE,
		PAGE_READWRITE | 0x800,
	};
	DWORD old;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		SetLastError(UNTOUCHED);
		EXPECT_EQ(NULL, VirtualAlloc(NULL, P, MEM_COMMIT, bad[i]));
		EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
		SetLastError(UNTOUCHED);
		EXPECT_FALSE(VirtualProtect(self->a, P, bad[i], &old));
		EXPECT_EQ(ERROR_INVALID_PARAMETER, GetLastError());
	}
	/* No CFG here: the targets flag is accepted and does nothing. */
	EXPECT_TRUE(VirtualProtect(self->a, P, PAGE_EXECUTE_READ |
				   PAGE_TARGETS_NO_UPDATE, &old));
}

/* 69-73: a guard page raises one exception per arming. */
TEST_F(exc, guard_page)
{
	MEMORY_BASIC_INFORMATION mbi;
	PVOID h = AddVectoredExceptionHandler(1, record_continue);
	volatile char *b;
	DWORD old;

	ASSERT_NE(NULL, h);
	b = VirtualAlloc(NULL, P, MEM_RESERVE | MEM_COMMIT,
			 PAGE_READWRITE | PAGE_GUARD);
	ASSERT_NE(NULL, b);
	VirtualQuery((void *)b, &mbi, sizeof(mbi));
	EXPECT_EQ(0x104, mbi.AllocationProtect);
	EXPECT_EQ(0x104, mbi.Protect);
	EXPECT_EQ(P, mbi.RegionSize);
	EXPECT_EQ(MEM_COMMIT, mbi.State);
	EXPECT_EQ(MEM_PRIVATE, mbi.Type);

	EXPECT_TRUE(VirtualProtect((void *)b, P, PAGE_READWRITE, &old));
	EXPECT_EQ(0x104, old);
	EXPECT_TRUE(VirtualProtect((void *)b, P, PAGE_READWRITE | PAGE_GUARD,
				   &old));
	EXPECT_EQ(PAGE_READWRITE, old);

	(void)b[3];
	barrier();
	EXPECT_EQ(1, calls);
	EXPECT_EQ(STATUS_GUARD_PAGE_VIOLATION, seen.ExceptionCode);
	EXPECT_EQ(0, seen.ExceptionFlags);
	EXPECT_EQ(2, seen.NumberParameters);
	EXPECT_EQ(EXCEPTION_READ_FAULT, seen.ExceptionInformation[0]);
	EXPECT_EQ((ULONG_PTR)(b + 3), seen.ExceptionInformation[1]);
	VirtualQuery((void *)b, &mbi, sizeof(mbi));
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	EXPECT_EQ(0x104, mbi.AllocationProtect);
	b[0] = 1;
	barrier();
	EXPECT_EQ(1, calls);

	EXPECT_TRUE(VirtualProtect((void *)b, P, PAGE_READWRITE | PAGE_GUARD,
				   &old));
	EXPECT_EQ(PAGE_READWRITE, old);
	b[8] = 2;
	barrier();
	EXPECT_EQ(2, calls);
	EXPECT_EQ(EXCEPTION_WRITE_FAULT, seen.ExceptionInformation[0]);
	EXPECT_EQ(2, b[8]);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
	EXPECT_TRUE(VirtualFree((void *)b, 0, MEM_RELEASE));
}

/* What the page looked like from inside the guard handler. */
static __thread DWORD handler_protect;

/*
 * Query the guarded page from the handler and, if the guard is gone as it
 * must be, write to the page there (re-arming it instead otherwise, so
 * that a wrong answer fails the test rather than recursing).
 */
static LONG CALLBACK query_in_handler(EXCEPTION_POINTERS *ep)
{
	EXCEPTION_RECORD *rec = ep->ExceptionRecord;
	char *addr = (char *)rec->ExceptionInformation[1];
	MEMORY_BASIC_INFORMATION mbi;
	DWORD old;

	seen = *rec;
	calls++;
	if (rec->ExceptionCode != STATUS_GUARD_PAGE_VIOLATION)
		return EXCEPTION_CONTINUE_SEARCH;
	memset(&mbi, 0xcc, sizeof(mbi));
	if (VirtualQuery(addr, &mbi, sizeof(mbi)) != sizeof(mbi))
		return EXCEPTION_CONTINUE_SEARCH;
	handler_protect = mbi.Protect;
	if (mbi.Protect & PAGE_GUARD) {
		VirtualProtect(addr, 1, mbi.Protect & ~PAGE_GUARD, &old);
		return EXCEPTION_CONTINUE_EXECUTION;
	}
	((volatile char *)mbi.BaseAddress)[1] = 0x5a;
	return EXCEPTION_CONTINUE_EXECUTION;
}

/* 71: the guard is already cleared when the handler runs: it may use the page. */
TEST_F(exc, guard_cleared_in_handler)
{
	PVOID h = AddVectoredExceptionHandler(1, query_in_handler);
	volatile char *b = self->a;
	DWORD old;
	char v;

	ASSERT_NE(NULL, h);
	b[3] = 7;
	ASSERT_TRUE(VirtualProtect(self->a, P, PAGE_READWRITE | PAGE_GUARD,
				   &old));
	handler_protect = UNTOUCHED;
	v = b[3];
	barrier();
	EXPECT_EQ(7, v);
	EXPECT_EQ(1, calls);
	EXPECT_EQ(STATUS_GUARD_PAGE_VIOLATION, seen.ExceptionCode);
	EXPECT_EQ((ULONG_PTR)(b + 3), seen.ExceptionInformation[1]);
	EXPECT_EQ(PAGE_READWRITE, handler_protect);
	EXPECT_EQ(0x5a, b[1]);
	EXPECT_EQ(1, calls);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

/* Guard pages on executable memory: the fetch is reported as such. */
TEST_F(exc, guard_execute)
{
	PVOID h = AddVectoredExceptionHandler(1, record_continue);
	DWORD old;

	ASSERT_NE(NULL, h);
	self->a[0] = (char)0xc3;	/* ret */
	ASSERT_TRUE(VirtualProtect(self->a, P, PAGE_EXECUTE_READ | PAGE_GUARD,
				   &old));
	((void (*)(void))self->a)();
	EXPECT_EQ(1, calls);
	EXPECT_EQ(STATUS_GUARD_PAGE_VIOLATION, seen.ExceptionCode);
	EXPECT_EQ(EXCEPTION_EXECUTE_FAULT, seen.ExceptionInformation[0]);
	EXPECT_EQ((ULONG_PTR)self->a, seen.ExceptionInformation[1]);
	EXPECT_EQ((DWORD64)self->a, seen_ctx.Rip);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

/* Emulate the "ret" the faulting call would have reached. */
static LONG CALLBACK trace_and_return(EXCEPTION_POINTERS *ep)
{
	CONTEXT *ctx = ep->ContextRecord;

	trace_info[ntrace][0] = ep->ExceptionRecord->ExceptionInformation[0];
	trace_info[ntrace][1] = ep->ExceptionRecord->ExceptionInformation[1];
	trace[ntrace++] = ep->ExceptionRecord->ExceptionCode ==
			  STATUS_GUARD_PAGE_VIOLATION ? 'g' : 'a';
	seen = *ep->ExceptionRecord;
	if (ep->ExceptionRecord->ExceptionCode == EXCEPTION_ACCESS_VIOLATION) {
		ctx->Rip = *(DWORD64 *)ctx->Rsp;
		ctx->Rsp += 8;
	}
	return EXCEPTION_CONTINUE_EXECUTION;
}

/* 76: executing a guarded RW page: the guard first, then the NX fault. */
TEST_F(exc, guard_then_execute_fault)
{
	PVOID h = AddVectoredExceptionHandler(1, trace_and_return);
	DWORD old;

	ASSERT_NE(NULL, h);
	self->a[0] = (char)0xc3;
	ASSERT_TRUE(VirtualProtect(self->a, P, PAGE_READWRITE | PAGE_GUARD,
				   &old));
	((void (*)(void))self->a)();
	ASSERT_EQ(2, ntrace);
	EXPECT_EQ('g', trace[0]);
	EXPECT_EQ(EXCEPTION_EXECUTE_FAULT, trace_info[0][0]);
	EXPECT_EQ((ULONG_PTR)self->a, trace_info[0][1]);
	EXPECT_EQ('a', trace[1]);
	EXPECT_EQ(EXCEPTION_EXECUTE_FAULT, trace_info[1][0]);
	EXPECT_EQ((ULONG_PTR)self->a, trace_info[1][1]);
	EXPECT_EQ(EXCEPTION_ACCESS_VIOLATION, seen.ExceptionCode);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

/* Commit-on-demand: a handler commits the faulting page and continues. */
TEST_F(exc, access_violation_commit_on_demand)
{
	PVOID h = AddVectoredExceptionHandler(0, commit_and_continue);
	volatile char *p = self->a + 8 * P + 12;

	ASSERT_NE(NULL, h);
	*p = 42;
	barrier();
	EXPECT_EQ(1, calls);
	EXPECT_EQ(EXCEPTION_ACCESS_VIOLATION, seen.ExceptionCode);
	EXPECT_EQ(2, seen.NumberParameters);
	EXPECT_EQ(EXCEPTION_WRITE_FAULT, seen.ExceptionInformation[0]);
	EXPECT_EQ((ULONG_PTR)p, seen.ExceptionInformation[1]);
	EXPECT_EQ(42, *p);
	(void)p[-1];
	barrier();
	EXPECT_EQ(1, calls);
	(void)p[P];
	barrier();
	EXPECT_EQ(2, calls);
	EXPECT_EQ(EXCEPTION_READ_FAULT, seen.ExceptionInformation[0]);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

/* Resume elsewhere: the handler skips the faulting instruction. */
static LONG CALLBACK skip_instruction(EXCEPTION_POINTERS *ep)
{
	if (ep->ExceptionRecord->ExceptionCode != EXCEPTION_ACCESS_VIOLATION)
		return EXCEPTION_CONTINUE_SEARCH;
	seen = *ep->ExceptionRecord;
	seen_ctx = *ep->ContextRecord;
	calls++;
	ep->ContextRecord->Rip += 3;	/* movb $1, (%rdi) */
	ep->ContextRecord->Rax = 0x1234;
	ep->ContextRecord->Rbx = 0x5678;
	return EXCEPTION_CONTINUE_EXECUTION;
}

/* Assert the CONTEXT registers, and that changes to them take effect. */
TEST_F(exc, context_registers)
{
	PVOID h = AddVectoredExceptionHandler(1, skip_instruction);
	char *noaccess = self->a + 9 * P;
	unsigned long rax, rbx;

	ASSERT_NE(NULL, h);
	__asm__ volatile("mov $0x1111, %%rax\n\t"
			 "mov $0x2222, %%rbx\n\t"
			 "mov $0x3333, %%r15\n\t"
			 "movb $1, (%%rdi)\n\t"
			 "mov %%rax, %0\n\t"
			 "mov %%rbx, %1"
			 : "=r"(rax), "=r"(rbx)
			 : "D"(noaccess)
			 : "rax", "rbx", "r15", "memory");
	EXPECT_EQ(1, calls);
	EXPECT_EQ(0x1234, rax);
	EXPECT_EQ(0x5678, rbx);
	EXPECT_EQ(0x1111, seen_ctx.Rax);
	EXPECT_EQ(0x2222, seen_ctx.Rbx);
	EXPECT_EQ(0x3333, seen_ctx.R15);
	EXPECT_EQ((DWORD64)noaccess, seen_ctx.Rdi);
	EXPECT_EQ(seen_ctx.Rip, (DWORD64)seen.ExceptionAddress);
	EXPECT_EQ(CONTEXT_FULL | CONTEXT_SEGMENTS, seen_ctx.ContextFlags);
	EXPECT_EQ(0x33, seen_ctx.SegCs);
	EXPECT_EQ(0x2b, seen_ctx.SegSs);
	EXPECT_NE(0, seen_ctx.EFlags & 0x2);	/* reserved bit 1 */
	EXPECT_NE(0, seen_ctx.Rsp);
	EXPECT_EQ(seen_ctx.MxCsr, seen_ctx.FltSave.MxCsr);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

static LONG CALLBACK trace_a(EXCEPTION_POINTERS *ep)
{
	trace[ntrace++] = 'a';
	return EXCEPTION_CONTINUE_SEARCH;
}

static LONG CALLBACK trace_b(EXCEPTION_POINTERS *ep)
{
	trace[ntrace++] = 'b';
	return EXCEPTION_CONTINUE_SEARCH;
}

static LONG CALLBACK trace_continue(EXCEPTION_POINTERS *ep)
{
	trace[ntrace++] = 'c';
	return EXCEPTION_CONTINUE_EXECUTION;
}

static LONG CALLBACK trace_vch(EXCEPTION_POINTERS *ep)
{
	trace[ntrace++] = 'v';
	return EXCEPTION_CONTINUE_SEARCH;
}

static LONG WINAPI trace_filter(EXCEPTION_POINTERS *ep)
{
	trace[ntrace++] = 'f';
	return EXCEPTION_CONTINUE_EXECUTION;
}

/* Assert the order: first/last handlers, filter, then continue handlers. */
TEST_F(exc, handler_order)
{
	PVOID a, b, c, v;
	ULONG_PTR arg = 7;

	a = AddVectoredExceptionHandler(0, trace_a);
	b = AddVectoredExceptionHandler(1, trace_b);
	v = AddVectoredContinueHandler(0, trace_vch);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, v);
	EXPECT_EQ(NULL, SetUnhandledExceptionFilter(trace_filter));

	RaiseException(0xe0000001, 0, 1, &arg);
	ASSERT_EQ(4, ntrace);
	EXPECT_EQ('b', trace[0]);
	EXPECT_EQ('a', trace[1]);
	EXPECT_EQ('f', trace[2]);
	EXPECT_EQ('v', trace[3]);

	ntrace = 0;
	c = AddVectoredExceptionHandler(0, trace_continue);
	RaiseException(0xe0000001, 0, 1, &arg);
	ASSERT_EQ(4, ntrace);
	EXPECT_EQ('b', trace[0]);
	EXPECT_EQ('a', trace[1]);
	EXPECT_EQ('c', trace[2]);
	EXPECT_EQ('v', trace[3]);

	EXPECT_TRUE(SetUnhandledExceptionFilter(NULL) == trace_filter);
	EXPECT_EQ(1, RemoveVectoredExceptionHandler(a));
	EXPECT_EQ(0, RemoveVectoredExceptionHandler(a));
	EXPECT_EQ(1, RemoveVectoredExceptionHandler(b));
	EXPECT_EQ(1, RemoveVectoredExceptionHandler(c));
	EXPECT_EQ(0, RemoveVectoredContinueHandler(c));
	EXPECT_EQ(1, RemoveVectoredContinueHandler(v));
	EXPECT_EQ(NULL, AddVectoredExceptionHandler(1, NULL));
}

/* Assert what RaiseException puts in the record, and that it returns. */
TEST_F(exc, raise_exception)
{
	PVOID h = AddVectoredExceptionHandler(1, record_continue);
	ULONG_PTR args[20];
	int i;

	ASSERT_NE(NULL, h);
	for (i = 0; i < 20; i++)
		args[i] = 100 + i;
	/* Only EXCEPTION_NONCONTINUABLE is taken from the flags. */
	RaiseException(0xe0001234, 0xfe, 20, args);
	EXPECT_EQ(1, calls);
	EXPECT_EQ(0xe0001234, seen.ExceptionCode);
	EXPECT_EQ(0, seen.ExceptionFlags);
	EXPECT_EQ(NULL, seen.ExceptionRecord);
	EXPECT_EQ(EXCEPTION_MAXIMUM_PARAMETERS, seen.NumberParameters);
	EXPECT_EQ(114, seen.ExceptionInformation[14]);
	EXPECT_EQ(seen_ctx.Rip, (DWORD64)seen.ExceptionAddress);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

/* Continuing: a plain exception returns; a non-continuable one does not. */
static LONG CALLBACK count_continue(EXCEPTION_POINTERS *ep)
{
	trace[ntrace++] = ep->ExceptionRecord->ExceptionCode ==
			  STATUS_NONCONTINUABLE_EXCEPTION ? 'n' : 'e';
	return EXCEPTION_CONTINUE_EXECUTION;
}

TEST_F(exc, raise_noncontinuable)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		AddVectoredExceptionHandler(1, count_continue);
		RaiseException(0xe0000002, 0, 0, NULL);
		if (ntrace != 1 || trace[0] != 'e')
			_exit(4);
		RaiseException(0xe0000003, EXCEPTION_NONCONTINUABLE, 0, NULL);
		_exit(3);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGSEGV, WTERMSIG(status));
}

/*
 * RaiseException does not depend on the thread's signal mask: with SIGILL
 * and SIGSEGV blocked, a handled exception returns, the mask unchanged,
 * and an unhandled one still ends the process as from SIGSEGV.
 */
TEST_F(exc, raise_with_signals_blocked)
{
	sigset_t set, now;
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		sigemptyset(&set);
		sigaddset(&set, SIGILL);
		sigaddset(&set, SIGSEGV);
		sigprocmask(SIG_BLOCK, &set, NULL);
		AddVectoredExceptionHandler(1, count_continue);
		RaiseException(0xe0000004, 0, 0, NULL);
		sigprocmask(SIG_BLOCK, NULL, &now);
		if (ntrace != 1 || trace[0] != 'e' ||
		    !sigismember(&now, SIGILL) || !sigismember(&now, SIGSEGV))
			_exit(4);
		RaiseException(0xe0000005, EXCEPTION_NONCONTINUABLE, 0, NULL);
		_exit(3);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status)) TH_LOG("status %#x", status);
	EXPECT_EQ(SIGSEGV, WTERMSIG(status));
}

/* Unhandled: the filter runs, then the process dies as from SIGSEGV. */
static int filter_fd = -1;

static LONG WINAPI report_filter(EXCEPTION_POINTERS *ep)
{
	DWORD code = ep->ExceptionRecord->ExceptionCode;

	if (write(filter_fd, &code, sizeof(code)) != sizeof(code))
		_exit(9);
	return EXCEPTION_CONTINUE_SEARCH;
}

TEST_F(exc, unhandled_is_a_crash)
{
	int status, fds[2];
	DWORD code = 0;
	pid_t pid;

	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		filter_fd = fds[1];
		SetUnhandledExceptionFilter(report_filter);
		*(volatile char *)(self->a + 10 * P) = 1;
		_exit(3);
	}
	close(fds[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGSEGV, WTERMSIG(status));
	EXPECT_EQ(sizeof(code), read(fds[0], &code, sizeof(code)));
	EXPECT_EQ(EXCEPTION_ACCESS_VIOLATION, code);
	close(fds[0]);
}

/* The program's own SIGSEGV handler gets what the handlers decline. */
static __thread sigjmp_buf app_env;
static __thread int app_calls;
static __thread siginfo_t app_info;

static void app_handler(int sig, siginfo_t *si, void *uc)
{
	app_calls++;
	app_info = *si;
	siglongjmp(app_env, 1);
}

static LONG CALLBACK decline(EXCEPTION_POINTERS *ep)
{
	calls++;
	return EXCEPTION_CONTINUE_SEARCH;
}

TEST_F(exc, program_handler_after)
{
	struct sigaction sa = { .sa_sigaction = app_handler,
				.sa_flags = SA_SIGINFO }, old;
	PVOID h = AddVectoredExceptionHandler(1, decline);
	char *bad = self->a + 11 * P;

	ASSERT_NE(NULL, h);
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGSEGV, &sa, &old));
	if (!sigsetjmp(app_env, 1))
		*(volatile char *)bad = 1;
	EXPECT_EQ(1, app_calls);
	EXPECT_EQ(1, calls);
	EXPECT_EQ(SIGSEGV, app_info.si_signo);
	EXPECT_EQ(bad, app_info.si_addr);

	/* sigaction reports the program's handler back. */
	ASSERT_EQ(0, sigaction(SIGSEGV, &old, &sa));
	EXPECT_TRUE(sa.sa_sigaction == app_handler);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

/*
 * The other ways of installing a handler keep libwinvm's in front too, each
 * with its own semantics: sysv_signal()'s handler is reset when it runs,
 * sigignore() ignores.
 */
extern sighandler_t bsd_signal(int sig, sighandler_t handler);

static void app_plain(int sig)
{
	app_calls++;
	siglongjmp(app_env, 1);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static sighandler_t (*const installers[])(int, sighandler_t) = {
	bsd_signal, sysv_signal, sigset, ssignal,
};
static int (*const ignore_signal)(int) = sigignore;
#pragma GCC diagnostic pop

TEST_F(exc, program_handler_other_installers)
{
	sighandler_t (*const *install)(int, sighandler_t) = installers;
	PVOID h = AddVectoredExceptionHandler(1, decline);
	char *bad = self->a + 11 * P;
	struct sigaction now;
	size_t i;

	ASSERT_NE(NULL, h);
	for (i = 0; i < sizeof(installers) / sizeof(installers[0]); i++) {
		app_calls = 0;
		calls = 0;
		ASSERT_TRUE(install[i](SIGSEGV, app_plain) != SIG_ERR);
		if (!sigsetjmp(app_env, 1))
			*(volatile char *)bad = 1;
		EXPECT_EQ(1, calls) TH_LOG("installer %zu", i);
		EXPECT_EQ(1, app_calls) TH_LOG("installer %zu", i);
		ASSERT_EQ(0, sigaction(SIGSEGV, NULL, &now));
		EXPECT_TRUE(now.sa_handler == (install[i] == sysv_signal ?
					       SIG_DFL : app_plain))
			TH_LOG("installer %zu", i);
		signal(SIGSEGV, SIG_DFL);
	}
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));

	/* sigignore() too: libwinvm's handler stays, the faults stay its. */
	h = AddVectoredExceptionHandler(1, commit_and_continue);
	ASSERT_EQ(0, ignore_signal(SIGSEGV));
	ASSERT_EQ(0, sigaction(SIGSEGV, NULL, &now));
	EXPECT_TRUE(now.sa_handler == SIG_IGN);
	calls = 0;
	*(volatile char *)bad = 1;
	__asm__ volatile("" : : : "memory");
	EXPECT_EQ(1, calls);
	signal(SIGSEGV, SIG_DFL);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

/*
 * A fault signal someone sends is not an exception: a program that ignores
 * it goes on, as without libwinvm; one that leaves it to the default action
 * dies of it.
 */
static int sent_signal_status(int sig, void (*action)(int))
{
	int status = -1;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		signal(sig, action);
		kill(getpid(), sig);
		_exit(0);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
	return status;
}

TEST_F(exc, sent_signal_ignored)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };
	unsigned int i;
	int status;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		status = sent_signal_status(sigs[i], SIG_IGN);
		EXPECT_TRUE(WIFEXITED(status)) TH_LOG("signal %d", sigs[i]);
		EXPECT_EQ(0, WEXITSTATUS(status));
		status = sent_signal_status(sigs[i], SIG_DFL);
		EXPECT_TRUE(WIFSIGNALED(status)) TH_LOG("signal %d", sigs[i]);
		EXPECT_EQ(sigs[i], WTERMSIG(status));
	}
}

/*
 * fork() while another thread adds and removes vectored handlers and sets
 * signal actions: the child can do both itself (it used to inherit a lock
 * the other thread held, and wait on it for good).
 */
static void *churn_handlers(void *arg)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	int *stop = arg;
	PVOID h;

	while (!__atomic_load_n(stop, __ATOMIC_RELAXED)) {
		h = AddVectoredExceptionHandler(1, decline);
		RemoveVectoredExceptionHandler(h);
		sigaction(SIGBUS, &sa, NULL);
	}
	return NULL;
}

TEST_F_TIMEOUT(exc, fork_while_handlers_change, 120)
{
	time_t until = time(NULL) + 20;
	int stop = 0, i, status = 0;
	pthread_t t;
	pid_t pid;

	ASSERT_EQ(0, pthread_create(&t, NULL, churn_handlers, &stop));
	/* 300 forks, or as many as 20 s allow on a slow machine. */
	for (i = 0; i < 300 && time(NULL) < until; i++) {
		pid = fork();
		if (pid == 0) {
			struct sigaction sa = { .sa_handler = SIG_DFL };
			PVOID h;

			alarm(5);
			h = AddVectoredExceptionHandler(1, decline);
			sigaction(SIGBUS, &sa, NULL);
			_exit(h && RemoveVectoredExceptionHandler(h) ? 0 : 1);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid ||
		    !WIFEXITED(status) || WEXITSTATUS(status))
			break;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("fork %d: status %#x", i, status);
}

/*
 * Run helper program @name (selftests/helpers) with the path of libwinvm,
 * which it loads itself: its wait status, or -1.
 */
static int run_helper(const char *name)
{
	char helper[4096], lib[4096];
	int status = -1;
	pid_t pid;

	if (snprintf(helper, sizeof(helper), "%s/%s", HELPERS_DIR, name) <= 0 ||
	    snprintf(lib, sizeof(lib), "%s/libwinvm.so.1", LIB_DIR) <= 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		execl(helper, name, lib, NULL);
		_exit(10);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

/*
 * A program that installed its handler before libwinvm was loaded keeps
 * getting the faults libwinvm does not handle (helpers/late-load.c).
 */
TEST_F(exc, program_handler_before)
{
	int status = run_helper("late-load");

	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/*
 * A thread with no alternate stack yet gets one in the middle of a
 * dispatch: the nested dispatch on it must not take the outer one for
 * abandoned (which would free a handler the outer one still walks;
 * helpers/nested-setup.c).
 */
TEST_F(exc, nested_dispatch_new_altstack)
{
	int status = run_helper("nested-setup");

	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/*
 * A handler that leaves a probe's fault by siglongjmp() leaves the probe
 * behind too: the next fault is an ordinary exception.
 */
static sigjmp_buf probe_jump;
static volatile char *volatile low_address = (volatile char *)16;

static LONG CALLBACK jump_out_of_probe(EXCEPTION_POINTERS *ep)
{
	if (ep->ExceptionRecord->ExceptionInformation[1] != 16)
		return EXCEPTION_CONTINUE_SEARCH;
	siglongjmp(probe_jump, 1);
}

TEST_F(exc, probe_left_by_longjmp)
{
	struct sigaction sa = { .sa_sigaction = app_handler,
				.sa_flags = SA_SIGINFO }, old;
	PVOID h = AddVectoredExceptionHandler(1, jump_out_of_probe), h2;
	volatile int left = 0;

	ASSERT_NE(NULL, h);
	if (!sigsetjmp(probe_jump, 1))
		IsBadReadPtr((void *)16, 1);
	else
		left = 1;
	EXPECT_EQ(1, left);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));

	h2 = AddVectoredExceptionHandler(1, decline);
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGSEGV, &sa, &old));
	if (!sigsetjmp(app_env, 1))
		(void)*low_address;
	sigaction(SIGSEGV, &old, NULL);
	EXPECT_EQ(1, calls);
	EXPECT_EQ(1, app_calls);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h2));
}

/* A stack overflow in a thread is reported on the alternate stack. */
static __thread sigjmp_buf overflow_env;

static LONG CALLBACK catch_overflow(EXCEPTION_POINTERS *ep)
{
	if (ep->ExceptionRecord->ExceptionCode != EXCEPTION_STACK_OVERFLOW)
		return EXCEPTION_CONTINUE_SEARCH;
	seen = *ep->ExceptionRecord;
	siglongjmp(overflow_env, 1);
}

static volatile int overflow_depth;

static int recurse(volatile char *prev)
{
	volatile char frame[512];

	frame[0] = prev ? prev[0] + 1 : 0;
	if (++overflow_depth == 0)	/* never: stack runs out first */
		return frame[0];
	return recurse(frame) + frame[1];
}

static void *overflow_thread(void *arg)
{
	PVOID h = AddVectoredExceptionHandler(1, catch_overflow);

	if (!sigsetjmp(overflow_env, 1))
		recurse(NULL);
	RemoveVectoredExceptionHandler(h);
	return (void *)(uintptr_t)seen.ExceptionCode;
}

TEST_F(exc, stack_overflow)
{
	pthread_attr_t attr;
	pthread_t t;
	void *ret;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	ASSERT_EQ(0, pthread_create(&t, &attr, overflow_thread, NULL));
	ASSERT_EQ(0, pthread_join(t, &ret));
	EXPECT_EQ(EXCEPTION_STACK_OVERFLOW, (DWORD)(uintptr_t)ret);
}

/*
 * The same in a thread that never calls libwinvm, the handler added by
 * another: it has an alternate stack all the same (without one the
 * process died of the overflow with no handler run).
 */
static void *plain_overflow_thread(void *arg)
{
	if (!sigsetjmp(overflow_env, 1))
		recurse(NULL);
	return (void *)(uintptr_t)seen.ExceptionCode;
}

TEST_F(exc, stack_overflow_plain_thread)
{
	PVOID h = AddVectoredExceptionHandler(1, catch_overflow);
	int status = -1;
	pid_t pid;

	ASSERT_NE(NULL, h);
	/* In a child: without the alternate stack the overflow kills it. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		pthread_attr_t attr;
		pthread_t t;
		void *ret;

		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		if (pthread_create(&t, &attr, plain_overflow_thread, NULL) ||
		    pthread_join(t, &ret))
			_exit(2);
		_exit((DWORD)(uintptr_t)ret == EXCEPTION_STACK_OVERFLOW ? 0 : 3);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status)) TH_LOG("status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

/*
 * 77: a thread stack built the Windows way (reserved, the top committed, a
 * guard page below) grows through its guard page with no exception
 * reaching the program, until the guard would reach the lowest page: then
 * STATUS_STACK_OVERFLOW.
 */
static ucontext_t main_uc, stack_uc;
static volatile int depth_reached, overflows;
static volatile ULONG_PTR overflow_info[2];
static char recovery_stack[64 * 1024] __attribute__((aligned(16)));

/* Count every exception; a guard page's access can simply go on. */
static LONG CALLBACK count_all(EXCEPTION_POINTERS *ep)
{
	seen = *ep->ExceptionRecord;
	calls++;
	return seen.ExceptionCode == STATUS_GUARD_PAGE_VIOLATION ?
	       EXCEPTION_CONTINUE_EXECUTION : EXCEPTION_CONTINUE_SEARCH;
}

static int deep(int n)
{
	volatile int frame[250];

	frame[0] = n;
	if (n == 0)
		return frame[0];
	return deep(n - 1) + frame[0] - n;
}

static void on_windows_stack(void)
{
	depth_reached = deep(300) == 0 ? 300 : -1;
}

/* Reserve @size, commit the top two pages and make the third a guard. */
static char *windows_stack(SIZE_T size)
{
	char *s = VirtualAlloc(NULL, size, MEM_RESERVE, PAGE_READWRITE);

	if (!s ||
	    !VirtualAlloc(s + size - 2 * P, 2 * P, MEM_COMMIT,
			  PAGE_READWRITE) ||
	    !VirtualAlloc(s + size - 3 * P, P, MEM_COMMIT,
			  PAGE_READWRITE | PAGE_GUARD))
		return NULL;
	return s;
}

static void run_on(char *s, SIZE_T size, void (*fn)(void))
{
	getcontext(&stack_uc);
	stack_uc.uc_stack.ss_sp = s;
	stack_uc.uc_stack.ss_size = size;
	stack_uc.uc_link = &main_uc;
	makecontext(&stack_uc, fn, 0);
	swapcontext(&main_uc, &stack_uc);
}

TEST_F(exc, guard_stack_growth)
{
	const SIZE_T size = 1 << 20;
	MEMORY_BASIC_INFORMATION mbi;
	PVOID h = AddVectoredExceptionHandler(1, count_all);
	char *s = windows_stack(size);

	ASSERT_NE(NULL, h);
	ASSERT_NE(NULL, s);
	depth_reached = 0;
	run_on(s, size, on_windows_stack);
	EXPECT_EQ(300, depth_reached);
	EXPECT_EQ(0, calls);

	/* The stack now ends in a guard page right below what it used. */
	VirtualQuery(s, &mbi, sizeof(mbi));
	EXPECT_EQ(MEM_RESERVE, mbi.State);
	EXPECT_LT(mbi.RegionSize, size - 60 * P);
	VirtualQuery(s + mbi.RegionSize, &mbi, sizeof(mbi));
	EXPECT_EQ(PAGE_READWRITE | PAGE_GUARD, mbi.Protect);
	EXPECT_EQ(P, mbi.RegionSize);
	VirtualQuery((char *)mbi.BaseAddress + P, &mbi, sizeof(mbi));
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	EXPECT_EQ(s + size, (char *)mbi.BaseAddress + mbi.RegionSize);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
	EXPECT_TRUE(VirtualFree(s, 0, MEM_RELEASE));
}

static void back_to_main(void)
{
	setcontext(&main_uc);
}

/* Record the overflow and resume on another stack, back in the test. */
static LONG CALLBACK catch_stack_overflow(EXCEPTION_POINTERS *ep)
{
	EXCEPTION_RECORD *rec = ep->ExceptionRecord;

	if (rec->ExceptionCode != STATUS_STACK_OVERFLOW)
		return EXCEPTION_CONTINUE_SEARCH;
	overflows++;
	overflow_info[0] = rec->NumberParameters;
	overflow_info[1] = rec->ExceptionInformation[1];
	ep->ContextRecord->Rip = (DWORD64)back_to_main;
	ep->ContextRecord->Rsp = (DWORD64)(recovery_stack +
					   sizeof(recovery_stack) - 8);
	return EXCEPTION_CONTINUE_EXECUTION;
}

static int endless(int n)
{
	volatile char frame[512];

	frame[0] = n;
	if (n == INT32_MAX)	/* never: the stack ends long before */
		return 0;
	return endless(n + 1) + frame[0];
}

static void overflow_windows_stack(void)
{
	depth_reached = endless(0);
}

TEST_F(exc, guard_stack_overflow)
{
	const SIZE_T size = 16 * P;
	MEMORY_BASIC_INFORMATION mbi;
	PVOID h = AddVectoredExceptionHandler(1, catch_stack_overflow);
	char *s = windows_stack(size);

	ASSERT_NE(NULL, h);
	ASSERT_NE(NULL, s);
	overflows = 0;
	run_on(s, size, overflow_windows_stack);
	EXPECT_EQ(1, overflows);
	EXPECT_EQ(2, overflow_info[0]);
	EXPECT_EQ((ULONG_PTR)(s + P), overflow_info[1] & ~(ULONG_PTR)(P - 1));

	/* Everything but the lowest page is committed now, no guard left. */
	VirtualQuery(s, &mbi, sizeof(mbi));
	EXPECT_EQ(MEM_RESERVE, mbi.State);
	EXPECT_EQ(P, mbi.RegionSize);
	VirtualQuery(s + P, &mbi, sizeof(mbi));
	EXPECT_EQ(MEM_COMMIT, mbi.State);
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	EXPECT_EQ(size - P, mbi.RegionSize);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
	EXPECT_TRUE(VirtualFree(s, 0, MEM_RELEASE));
}

/* A probe of the thread's own stack guard grows the stack, as on Windows. */
static char *probe_target;
static volatile int probe_result;

static void probe_own_guard(void)
{
	probe_result = IsBadReadPtr(probe_target, 1);
}

TEST_F(exc, guard_stack_probe)
{
	const SIZE_T size = 16 * P;
	MEMORY_BASIC_INFORMATION mbi;
	char *s = windows_stack(size);

	ASSERT_NE(NULL, s);
	probe_target = s + size - 3 * P;
	probe_result = -1;
	run_on(s, size, probe_own_guard);
	EXPECT_EQ(FALSE, probe_result);
	VirtualQuery(probe_target, &mbi, sizeof(mbi));
	EXPECT_EQ(PAGE_READWRITE, mbi.Protect);
	VirtualQuery(probe_target - P, &mbi, sizeof(mbi));
	EXPECT_EQ(PAGE_READWRITE | PAGE_GUARD, mbi.Protect);
	EXPECT_TRUE(VirtualFree(s, 0, MEM_RELEASE));
}

/*
 * A vectored handler that continues a probe's fault somewhere else (a
 * recovery point) abandons the probe: its mask comes back, and later
 * faults are ordinary exceptions again.
 */
static ucontext_t probe_uc;
static volatile int probe_stage;
static sigset_t mask_at_recovery;

static void back_from_probe(void)
{
	pthread_sigmask(SIG_BLOCK, NULL, &mask_at_recovery);
	setcontext(&probe_uc);
}

static LONG CALLBACK redirect_probe(EXCEPTION_POINTERS *ep)
{
	EXCEPTION_RECORD *rec = ep->ExceptionRecord;

	if (rec->ExceptionCode != STATUS_ACCESS_VIOLATION ||
	    rec->ExceptionInformation[1] != 0xdeadbeef)
		return EXCEPTION_CONTINUE_SEARCH;
	ep->ContextRecord->Rip = (DWORD64)back_from_probe;
	ep->ContextRecord->Rsp = (DWORD64)(recovery_stack +
					   sizeof(recovery_stack) - 8);
	return EXCEPTION_CONTINUE_EXECUTION;
}

TEST_F(exc, probe_continued_elsewhere)
{
	PVOID h = AddVectoredExceptionHandler(1, redirect_probe);
	volatile char *v = self->a;
	sigset_t segv, old;
	DWORD prot;

	ASSERT_NE(NULL, h);
	sigemptyset(&segv);
	sigaddset(&segv, SIGSEGV);
	pthread_sigmask(SIG_BLOCK, &segv, &old);
	probe_stage = 0;
	getcontext(&probe_uc);
	if (!probe_stage) {
		probe_stage = 1;
		IsBadReadPtr((void *)0xdeadbeef, 1);
		probe_stage = 2;	/* never: the handler went elsewhere */
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	EXPECT_EQ(1, probe_stage);
	/* The probe unblocked SIGSEGV; abandoned, it put the mask back. */
	EXPECT_TRUE(sigismember(&mask_at_recovery, SIGSEGV));
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));

	/* A later guard hit is an ordinary exception. */
	h = AddVectoredExceptionHandler(1, record_continue);
	ASSERT_TRUE(VirtualProtect(self->a, P, PAGE_READWRITE | PAGE_GUARD,
				   &prot));
	v[5] = 1;
	EXPECT_EQ(1, calls);
	EXPECT_EQ(STATUS_GUARD_PAGE_VIOLATION, seen.ExceptionCode);
	EXPECT_FALSE(IsBadReadPtr(self->a, P));
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

/*
 * A handler that leaves by siglongjmp(), as ported __try/__except code
 * does, abandons its dispatch: the next exception notices, and handlers
 * removed afterwards are freed again.
 */
static sigjmp_buf veh_jump;

static LONG CALLBACK jump_out(EXCEPTION_POINTERS *ep)
{
	siglongjmp(veh_jump, 1);
}

static LONG CALLBACK search_on(EXCEPTION_POINTERS *ep)
{
	return EXCEPTION_CONTINUE_SEARCH;
}

TEST_F(exc, handler_leaves_by_longjmp)
{
	PVOID h = AddVectoredExceptionHandler(1, jump_out), h2;
	volatile char *reserved = self->a + G - P;
	struct mallinfo2 before, after;
	volatile int jumped = 0;
	DWORD old;
	int i;

	ASSERT_NE(NULL, h);
	if (!sigsetjmp(veh_jump, 1)) {
		(void)*reserved;
		ASSERT_TRUE(false) TH_LOG("the access did not fault");
	} else {
		jumped = 1;
	}
	EXPECT_EQ(1, jumped);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));

	/* An ordinary exception afterwards. */
	h = AddVectoredExceptionHandler(1, record_continue);
	ASSERT_TRUE(VirtualProtect(self->a, P, PAGE_READWRITE | PAGE_GUARD,
				   &old));
	(void)*(volatile char *)self->a;
	EXPECT_EQ(1, calls);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));

	before = mallinfo2();
	for (i = 0; i < 1000; i++) {
		h2 = AddVectoredExceptionHandler(0, search_on);
		ASSERT_NE(NULL, h2);
		ASSERT_TRUE(RemoveVectoredExceptionHandler(h2));
	}
	after = mallinfo2();
	EXPECT_LT(after.uordblks, before.uordblks + 4096)
		TH_LOG("%zu bytes more in use", after.uordblks -
		       before.uordblks);
}

/* Another thread's stack is not this thread's: its guard page is reported. */
TEST_F(exc, guard_not_own_stack)
{
	PVOID h = AddVectoredExceptionHandler(1, count_all);
	char *s = windows_stack(16 * P);
	volatile char *guard;

	ASSERT_NE(NULL, h);
	ASSERT_NE(NULL, s);
	guard = s + 13 * P;
	(void)*guard;
	EXPECT_EQ(1, calls);
	EXPECT_EQ(STATUS_GUARD_PAGE_VIOLATION, seen.ExceptionCode);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
	EXPECT_TRUE(VirtualFree(s, 0, MEM_RELEASE));
}

/* Several threads, one guard page: exactly one exception per arming. */
static int guard_hits;

static LONG CALLBACK count_guard(EXCEPTION_POINTERS *ep)
{
	if (ep->ExceptionRecord->ExceptionCode != STATUS_GUARD_PAGE_VIOLATION)
		return EXCEPTION_CONTINUE_SEARCH;
	__atomic_add_fetch(&guard_hits, 1, __ATOMIC_RELAXED);
	return EXCEPTION_CONTINUE_EXECUTION;
}

struct toucher {
	volatile char *page;
	pthread_barrier_t *start, *done;
	int rounds;
};

static void *touch_rounds(void *data)
{
	struct toucher *t = data;
	int i;

	for (i = 0; i < t->rounds; i++) {
		pthread_barrier_wait(t->start);
		(void)t->page[0];
		pthread_barrier_wait(t->done);
	}
	return NULL;
}

TEST_F_TIMEOUT(exc, guard_threads_once, 300)
{
	pthread_barrier_t start, done;
	struct toucher t = { self->a, &start, &done, 1000 };
	PVOID h = AddVectoredExceptionHandler(1, count_guard);
	pthread_t threads[4];
	int i, bad = 0;
	DWORD old;

	ASSERT_NE(NULL, h);
	pthread_barrier_init(&start, NULL, 5);
	pthread_barrier_init(&done, NULL, 5);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, touch_rounds,
					    &t));
	for (i = 0; i < t.rounds; i++) {
		ASSERT_TRUE(VirtualProtect(self->a, P,
					   PAGE_READWRITE | PAGE_GUARD, &old));
		guard_hits = 0;
		pthread_barrier_wait(&start);
		pthread_barrier_wait(&done);
		bad += guard_hits != 1;
	}
	for (i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	EXPECT_EQ(0, bad);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

/* Divide by zero arrives as the Windows integer exception. */
static LONG CALLBACK skip_div(EXCEPTION_POINTERS *ep)
{
	seen = *ep->ExceptionRecord;
	calls++;
	ep->ContextRecord->Rip += 2;	/* idivl %ecx: f7 f9 */
	return EXCEPTION_CONTINUE_EXECUTION;
}

TEST_F(exc, integer_divide_by_zero)
{
	PVOID h = AddVectoredExceptionHandler(1, skip_div);
	int q = 7;

	ASSERT_NE(NULL, h);
	__asm__ volatile("xor %%edx, %%edx\n\t"
			 "xor %%ecx, %%ecx\n\t"
			 ".byte 0xf7, 0xf9"	/* idivl %%ecx */
			 : "+a"(q) : : "rcx", "rdx", "memory");
	EXPECT_EQ(1, calls);
	EXPECT_EQ(EXCEPTION_INT_DIVIDE_BY_ZERO, seen.ExceptionCode);
	EXPECT_TRUE(RemoveVectoredExceptionHandler(h));
}

/* FlushInstructionCache and GetLargePageMinimum. */
TEST_F(exc, misc_calls)
{
	SetLastError(UNTOUCHED);
	EXPECT_TRUE(FlushInstructionCache(GetCurrentProcess(), self->a, P));
	EXPECT_EQ(UNTOUCHED, GetLastError());
	EXPECT_FALSE(FlushInstructionCache(NULL, self->a, P));
	EXPECT_EQ(ERROR_INVALID_HANDLE, GetLastError());
	EXPECT_EQ(2 << 20, GetLargePageMinimum());
}

TEST_HARNESS_MAIN
