// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libwinvm exceptions: hardware faults, winvm guard pages and
 * RaiseException() delivered to vectored handlers with a Win32
 * EXCEPTION_RECORD and x86-64 CONTEXT.
 *
 * One handler serves the fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE) on
 * a per-thread alternate stack. It turns a fault into an exception record
 * and a context and offers them to the vectored exception handlers, then to
 * the unhandled-exception filter. EXCEPTION_CONTINUE_EXECUTION resumes with
 * the registers the handlers left in the context, after the vectored
 * continue handlers ran. What nobody handles goes to the program's own
 * handler for that signal, whether it was installed before or after
 * libwinvm: sigaction() and signal() are interposed so that libwinvm's
 * handler stays in front. With no such handler the process ends with the
 * signal's default action, as a plain crash would.
 *
 * Signals another process or thread sends (kill, sigqueue, tgkill) are not
 * exceptions: they go straight to the program's handler.
 *
 * A stack overflow is reported on the alternate stack, which a thread gets
 * from its first call into libwinvm; pthread_create() is interposed too, so
 * that a thread the program starts has one from its first instruction,
 * whether or not it ever calls libwinvm.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <linux/winvm.h>

#include "internal.h"
#include "winvm.h"

#ifndef __x86_64__
#error "libwinvm's exception support is x86-64 only (CONTEXT is the AMD64 one)"
#endif

/* glibc's own sigaction, under the name it exports for this purpose. */
extern int __sigaction(int sig, const struct sigaction *act,
		       struct sigaction *oldact);

#define ALTSTACK_SIZE	(64 * 1024)
#define UD2		0x0b0f	/* the two bytes of "ud2", little-endian */

/* Faults further than this below or above the stack pointer are not overflows. */
#define STACK_SLACK	(64 * 1024)

static const int fault_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };
#define NR_FAULT_SIGNALS (sizeof(fault_signals) / sizeof(fault_signals[0]))

/*
 * Handler lists. Readers (the signal handler, in any thread) walk them with
 * acquire loads and no lock; writers hold list_lock. An unlinked entry may
 * still be in use by a dispatch that started before, so it is freed only
 * once no dispatch is running.
 */
struct handler {
	struct handler *next;
	struct handler *dead;
	PVECTORED_EXCEPTION_HANDLER fn;
};

static struct handler *veh_head, *vch_head;
static struct handler *graveyard;
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static int dispatching;
static LPTOP_LEVEL_EXCEPTION_FILTER top_filter;

/*
 * The program's own actions for the fault signals. The signal handler reads
 * them under a sequence count; writers hold app_lock.
 */
static struct sigaction app_action[NR_FAULT_SIGNALS];
static unsigned int app_seq;
static pthread_mutex_t app_lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;

/* RaiseException() hands its record to the signal handler through this. */
static __thread struct {
	EXCEPTION_RECORD rec;
	volatile int pending;
} raised;

static __thread bool thread_ready;
static pthread_key_t altstack_key;

/*
 * The innermost winvm_try() of this thread, whose faults go back to it,
 * with the signal mask to put back (WINVM_TRY_UNBLOCK) and how many
 * dispatches this thread was in when it began: a fault of the try inside
 * a handler that dispatch() called leaves those dispatches by siglongjmp().
 */
struct try_frame {
	sigjmp_buf env;
	struct winvm_try *t;
	struct try_frame *outer;
	sigset_t old_mask;
	int depth;
};

static __thread struct try_frame *try_cur;

/*
 * This thread's dispatches in progress, with the frame address of each (up
 * to DISPATCH_FRAMES), and the alternate stack libwinvm gave the thread (0
 * if it has another or none). Dispatches nest deeper on that one stack, so
 * a dispatch on it that finds an earlier one on it at or below its own
 * frame knows that a handler left that one by longjmp(). Dispatches on
 * any other stack are never judged so.
 */
#define DISPATCH_FRAMES	32
static __thread int dispatch_depth;
static __thread uintptr_t dispatch_frame[DISPATCH_FRAMES];
static __thread uintptr_t altstack_lo, altstack_hi;

static int fault_index(int sig)
{
	size_t i;

	for (i = 0; i < NR_FAULT_SIGNALS; i++)
		if (fault_signals[i] == sig)
			return i;
	return -1;
}

static void app_action_get(int idx, struct sigaction *act)
{
	unsigned int seq;

	do {
		while ((seq = __atomic_load_n(&app_seq, __ATOMIC_ACQUIRE)) & 1)
			;
		*act = app_action[idx];
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
	} while (__atomic_load_n(&app_seq, __ATOMIC_RELAXED) != seq);
}

/* Block the fault signals sent to this thread; *old gets the mask before. */
static void block_faults(sigset_t *old)
{
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < NR_FAULT_SIGNALS; i++)
		sigaddset(&set, fault_signals[i]);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

/*
 * app_lock held. A fault signal sent to this thread while the count is odd
 * would spin in app_action_get() for good: they wait until it is even.
 */
static void app_action_set(int idx, const struct sigaction *act)
{
	sigset_t old;

	block_faults(&old);
	__atomic_store_n(&app_seq, app_seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	app_action[idx] = *act;
	__atomic_store_n(&app_seq, app_seq + 1, __ATOMIC_RELEASE);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void altstack_free(void *mem)
{
	stack_t ss = { .ss_flags = SS_DISABLE };

	sigaltstack(&ss, NULL);
	munmap(mem, ALTSTACK_SIZE + getpagesize());
}

void winvm_thread_setup(void)
{
	long page = getpagesize();
	stack_t ss, old;
	char *mem;

	if (thread_ready)
		return;
	thread_ready = true;

	/* A thread that brought its own alternate stack keeps it. */
	if (!sigaltstack(NULL, &old) && !(old.ss_flags & SS_DISABLE))
		return;
	mem = mmap(NULL, ALTSTACK_SIZE + page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (mem == MAP_FAILED)
		return;
	mprotect(mem, page, PROT_NONE);		/* overflow guard */
	ss.ss_sp = mem + page;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL)) {
		munmap(mem, ALTSTACK_SIZE + page);
		return;
	}
	pthread_setspecific(altstack_key, mem);
	altstack_lo = (uintptr_t)ss.ss_sp;
	altstack_hi = altstack_lo + ALTSTACK_SIZE;
}

static bool on_our_altstack(uintptr_t frame)
{
	return frame - altstack_lo < altstack_hi - altstack_lo;
}

/* A thread the program starts: its setup first, then its own routine. */
struct thread_start {
	void *(*fn)(void *);
	void *arg;
};

static void *thread_begin(void *p)
{
	struct thread_start start = *(struct thread_start *)p;

	free(p);
	winvm_thread_setup();
	return start.fn(start.arg);
}

__attribute__((visibility("default")))
int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
		   void *(*fn)(void *), void *arg)
{
	static int (*next)(pthread_t *, const pthread_attr_t *,
			   void *(*)(void *), void *);
	struct thread_start *start;
	int ret;

	if (!__atomic_load_n(&next, __ATOMIC_ACQUIRE))
		__atomic_store_n(&next, dlsym(RTLD_NEXT, "pthread_create"),
				 __ATOMIC_RELEASE);
	if (!next)
		return EAGAIN;
	start = malloc(sizeof(*start));
	if (!start)
		return EAGAIN;
	start->fn = fn;
	start->arg = arg;
	ret = next(thread, attr, thread_begin, start);
	if (ret)
		free(start);
	return ret;
}

static void context_from_ucontext(CONTEXT *ctx, const ucontext_t *uc)
{
	const greg_t *g = uc->uc_mcontext.gregs;
	uint64_t csgsfs = g[REG_CSGSFS];
	uint16_t ds, es, ss;

	memset(ctx, 0, sizeof(*ctx));
	ctx->ContextFlags = CONTEXT_FULL | CONTEXT_SEGMENTS;
	ctx->Rax = g[REG_RAX];
	ctx->Rcx = g[REG_RCX];
	ctx->Rdx = g[REG_RDX];
	ctx->Rbx = g[REG_RBX];
	ctx->Rsp = g[REG_RSP];
	ctx->Rbp = g[REG_RBP];
	ctx->Rsi = g[REG_RSI];
	ctx->Rdi = g[REG_RDI];
	ctx->R8 = g[REG_R8];
	ctx->R9 = g[REG_R9];
	ctx->R10 = g[REG_R10];
	ctx->R11 = g[REG_R11];
	ctx->R12 = g[REG_R12];
	ctx->R13 = g[REG_R13];
	ctx->R14 = g[REG_R14];
	ctx->R15 = g[REG_R15];
	ctx->Rip = g[REG_RIP];
	ctx->EFlags = g[REG_EFL];

	/* cs, gs, fs and (when the kernel saved it) ss, 16 bits each. */
	__asm__("mov %%ds, %0; mov %%es, %1; mov %%ss, %2"
		: "=r"(ds), "=r"(es), "=r"(ss));
	ctx->SegCs = csgsfs & 0xffff;
	ctx->SegGs = (csgsfs >> 16) & 0xffff;
	ctx->SegFs = (csgsfs >> 32) & 0xffff;
	ctx->SegSs = (csgsfs >> 48) & 0xffff ?: ss;
	ctx->SegDs = ds;
	ctx->SegEs = es;

	if (uc->uc_mcontext.fpregs) {
		memcpy(&ctx->FltSave, uc->uc_mcontext.fpregs,
		       sizeof(ctx->FltSave));
		ctx->MxCsr = ctx->FltSave.MxCsr;
	} else {
		ctx->ContextFlags &= ~(CONTEXT_FLOATING_POINT & ~CONTEXT_AMD64);
	}
}

/* Write back what the handlers may change; segment registers are not. */
static void context_to_ucontext(const CONTEXT *ctx, ucontext_t *uc)
{
	greg_t *g = uc->uc_mcontext.gregs;

	if (ctx->ContextFlags & (CONTEXT_INTEGER & ~CONTEXT_AMD64)) {
		g[REG_RAX] = ctx->Rax;
		g[REG_RCX] = ctx->Rcx;
		g[REG_RDX] = ctx->Rdx;
		g[REG_RBX] = ctx->Rbx;
		g[REG_RBP] = ctx->Rbp;
		g[REG_RSI] = ctx->Rsi;
		g[REG_RDI] = ctx->Rdi;
		g[REG_R8] = ctx->R8;
		g[REG_R9] = ctx->R9;
		g[REG_R10] = ctx->R10;
		g[REG_R11] = ctx->R11;
		g[REG_R12] = ctx->R12;
		g[REG_R13] = ctx->R13;
		g[REG_R14] = ctx->R14;
		g[REG_R15] = ctx->R15;
	}
	if (ctx->ContextFlags & (CONTEXT_CONTROL & ~CONTEXT_AMD64)) {
		g[REG_RIP] = ctx->Rip;
		g[REG_RSP] = ctx->Rsp;
		g[REG_EFL] = ctx->EFlags;
	}
	if ((ctx->ContextFlags & (CONTEXT_FLOATING_POINT & ~CONTEXT_AMD64)) &&
	    uc->uc_mcontext.fpregs) {
		XMM_SAVE_AREA32 flt = ctx->FltSave;

		/* Bits the CPU does not have would make sigreturn fail. */
		flt.MxCsr = ctx->MxCsr & (flt.MxCsr_Mask ?: 0xffbf);
		memcpy(uc->uc_mcontext.fpregs, &flt, sizeof(flt));
	}
}

static void set_params(EXCEPTION_RECORD *rec, ULONG_PTR access, void *addr)
{
	rec->NumberParameters = 2;
	rec->ExceptionInformation[0] = access;
	rec->ExceptionInformation[1] = (ULONG_PTR)addr;
}

/* Access kind of a page fault, from the x86 error code the kernel saved. */
static ULONG_PTR fault_access(const ucontext_t *uc)
{
	greg_t err = uc->uc_mcontext.gregs[REG_ERR];

	if (err & 0x10)
		return EXCEPTION_EXECUTE_FAULT;
	return err & 0x2 ? EXCEPTION_WRITE_FAULT : EXCEPTION_READ_FAULT;
}

static DWORD fpe_code(int si_code)
{
	switch (si_code) {
	case FPE_INTDIV:
		return STATUS_INTEGER_DIVIDE_BY_ZERO;
	case FPE_INTOVF:
		return STATUS_INTEGER_OVERFLOW;
	case FPE_FLTDIV:
		return STATUS_FLOAT_DIVIDE_BY_ZERO;
	case FPE_FLTOVF:
		return STATUS_FLOAT_OVERFLOW;
	case FPE_FLTUND:
		return STATUS_FLOAT_UNDERFLOW;
	case FPE_FLTRES:
		return STATUS_FLOAT_INEXACT_RESULT;
	case FPE_FLTSUB:
		return STATUS_ARRAY_BOUNDS_EXCEEDED;
	default:
		return STATUS_FLOAT_INVALID_OPERATION;
	}
}

enum carrier {
	FOREIGN,	/* sent by someone: not an exception */
	FAULT,		/* the faulting instruction runs again on return */
	GUARD,		/* a winvm guard page: the retry would succeed */
	RAISED,		/* RaiseException() */
};

/* The exception a signal stands for. */
static enum carrier make_record(int sig, const siginfo_t *si,
				const ucontext_t *uc, EXCEPTION_RECORD *rec)
{
	const greg_t *g = uc->uc_mcontext.gregs;
	char *addr = si->si_addr;

	memset(rec, 0, sizeof(*rec));
	rec->ExceptionAddress = (PVOID)g[REG_RIP];

	if (sig == SIGILL && raised.pending &&
	    *(const uint16_t *)g[REG_RIP] == UD2) {
		raised.pending = 0;
		*rec = raised.rec;
		rec->ExceptionAddress = (PVOID)g[REG_RIP];
		return RAISED;
	}
	if (si->si_code <= 0)
		return FOREIGN;

	switch (sig) {
	case SIGSEGV:
		if (si->si_code == SEGV_ACCERR &&
		    (si->si_errno & ~(WINVM_GUARD_ACCESS_MASK |
				      WINVM_GUARD_STACK)) ==
		    WINVM_GUARD_SIGNATURE) {
			rec->ExceptionCode = STATUS_GUARD_PAGE_VIOLATION;
			set_params(rec, si->si_errno & WINVM_GUARD_ACCESS_MASK,
				   addr);
			return GUARD;
		}
		if (si->si_code == SI_KERNEL) {
			/* General protection: no address, as on Windows. */
			rec->ExceptionCode = STATUS_ACCESS_VIOLATION;
			set_params(rec, EXCEPTION_READ_FAULT, (void *)~0UL);
			break;
		}
		if (addr < (char *)g[REG_RSP] + 256 &&
		    addr + STACK_SLACK > (char *)g[REG_RSP])
			rec->ExceptionCode = STATUS_STACK_OVERFLOW;
		else
			rec->ExceptionCode = STATUS_ACCESS_VIOLATION;
		set_params(rec, fault_access(uc), addr);
		break;
	case SIGBUS:
		if (si->si_code == BUS_ADRALN) {
			rec->ExceptionCode = STATUS_DATATYPE_MISALIGNMENT;
			break;
		}
		rec->ExceptionCode = STATUS_IN_PAGE_ERROR;
		set_params(rec, fault_access(uc), addr);
		rec->NumberParameters = 3;
		rec->ExceptionInformation[2] = STATUS_UNSUCCESSFUL;
		break;
	case SIGILL:
		rec->ExceptionCode = si->si_code == ILL_PRVOPC ?
				     STATUS_PRIVILEGED_INSTRUCTION :
				     STATUS_ILLEGAL_INSTRUCTION;
		break;
	default:
		rec->ExceptionCode = fpe_code(si->si_code);
		break;
	}
	return FAULT;
}

/*
 * Case 77: a guard page hit in the allocation that holds the thread's stack
 * pointer is that thread's stack growing, which Windows handles without an
 * exception: the page below becomes the guard page and the access is
 * retried. The lowest page of the allocation stays reserved, as the
 * stack's hard end: when the guard would have to move onto it (or cannot
 * be committed), there is no room left and the hit becomes
 * STATUS_STACK_OVERFLOW. True if the stack grew. The module says which
 * hits are the stack's (WINVM_GUARD_STACK); one too old to say is asked whether
 * the stack pointer's allocation is the page's.
 */
static bool grow_stack(const siginfo_t *si, const ucontext_t *uc,
		       EXCEPTION_RECORD *rec)
{
	uintptr_t page = rec->ExceptionInformation[1] & ~(PAGE - 1);
	struct winvm_query_args hit = { .addr = page };
	struct winvm_query_args sp = {
		.addr = uc->uc_mcontext.gregs[REG_RSP],
	};
	struct winvm_alloc_args commit = {
		.addr = page - PAGE,
		.size = PAGE,
		.flags = WINVM_ALLOC_COMMIT,
	};
	bool flagged;
	int fd;

	fd = winvm_fault_fd(&flagged);
	if (fd < 0 || (flagged && !(si->si_errno & WINVM_GUARD_STACK)) ||
	    ioctl(fd, WINVM_IOC_QUERY, &hit))
		return false;
	if (!flagged && (ioctl(fd, WINVM_IOC_QUERY, &sp) ||
			 !(hit.out_flags & sp.out_flags & WINVM_QUERY_WINVM) ||
			 hit.out_alloc_base != sp.out_alloc_base))
		return false;
	commit.prot = hit.out_prot | WINVM_PROT_GUARD;
	if (page - PAGE > hit.out_alloc_base &&
	    !ioctl(fd, WINVM_IOC_ALLOC, &commit))
		return true;
	rec->ExceptionCode = STATUS_STACK_OVERFLOW;
	return false;
}

static LONG call_list(struct handler **head, EXCEPTION_POINTERS *ptrs)
{
	struct handler *h;

	for (h = __atomic_load_n(head, __ATOMIC_ACQUIRE); h;
	     h = __atomic_load_n(&h->next, __ATOMIC_ACQUIRE))
		if (h->fn(ptrs) == EXCEPTION_CONTINUE_EXECUTION)
			return EXCEPTION_CONTINUE_EXECUTION;
	return EXCEPTION_CONTINUE_SEARCH;
}

/*
 * Offer an exception to the vectored handlers, then (with @filter) to the
 * unhandled-exception filter. Returns EXCEPTION_CONTINUE_EXECUTION (resume
 * with ptrs->ContextRecord), EXCEPTION_CONTINUE_SEARCH (nobody took it) or
 * EXCEPTION_EXECUTE_HANDLER (the filter wants the process to end).
 */
static LONG dispatch(EXCEPTION_POINTERS *ptrs, bool filter_too)
{
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	LPTOP_LEVEL_EXCEPTION_FILTER filter;
	LONG ret;

	while (on_our_altstack(here) && dispatch_depth > 0 &&
	       dispatch_depth <= DISPATCH_FRAMES &&
	       on_our_altstack(dispatch_frame[dispatch_depth - 1]) &&
	       dispatch_frame[dispatch_depth - 1] <= here) {
		dispatch_depth--;
		__atomic_sub_fetch(&dispatching, 1, __ATOMIC_SEQ_CST);
	}
	__atomic_add_fetch(&dispatching, 1, __ATOMIC_SEQ_CST);
	if (dispatch_depth < DISPATCH_FRAMES)
		dispatch_frame[dispatch_depth] = here;
	dispatch_depth++;
	ret = call_list(&veh_head, ptrs);
	if (ret != EXCEPTION_CONTINUE_EXECUTION && filter_too) {
		filter = __atomic_load_n(&top_filter, __ATOMIC_ACQUIRE);
		ret = filter ? filter(ptrs) : EXCEPTION_CONTINUE_SEARCH;
		if (ret != EXCEPTION_CONTINUE_EXECUTION &&
		    ret != EXCEPTION_EXECUTE_HANDLER)
			ret = EXCEPTION_CONTINUE_SEARCH;
	}
	if (ret == EXCEPTION_CONTINUE_EXECUTION)
		call_list(&vch_head, ptrs);
	dispatch_depth--;
	__atomic_sub_fetch(&dispatching, 1, __ATOMIC_SEQ_CST);
	return ret;
}

/*
 * Run the program's own handler for @sig; false if it has none. A signal
 * someone sent (@sent) that the program ignores is done with, as the
 * kernel would have done; a fault it ignores is not (the kernel makes an
 * ignored fault fatal).
 */
static bool chain(int sig, siginfo_t *si, void *uc, bool sent)
{
	struct sigaction app;
	sigset_t mask, old;
	int idx = fault_index(sig);

	app_action_get(idx, &app);
	if (!(app.sa_flags & SA_SIGINFO) && app.sa_handler == SIG_IGN)
		return sent;
	if (!(app.sa_flags & SA_SIGINFO) && app.sa_handler == SIG_DFL)
		return false;

	if (app.sa_flags & SA_RESETHAND) {
		struct sigaction dfl = { .sa_handler = SIG_DFL };

		pthread_mutex_lock(&app_lock);
		app_action_set(idx, &dfl);
		pthread_mutex_unlock(&app_lock);
	}
	mask = app.sa_mask;
	if (!(app.sa_flags & SA_NODEFER))
		sigaddset(&mask, sig);
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	if (app.sa_flags & SA_SIGINFO)
		app.sa_sigaction(sig, si, uc);
	else
		app.sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return true;
}

/*
 * End the process the way @sig's default action would: a fault re-executes
 * into it, anything else needs the signal sent again.
 */
static void die(int sig, enum carrier carrier)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t set;

	if (carrier != FAULT)
		sig = carrier == RAISED ? SIGSEGV : sig;
	__sigaction(sig, &dfl, NULL);
	if (carrier != FAULT) {
		/* Blocked, it would only be left pending. */
		sigemptyset(&set);
		sigaddset(&set, sig);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
		raise(sig);
	}
}

/*
 * winvm_copy(dst, src, n): rep movsq, then rep movsb for the tail, whose
 * faults on_fault() turns into a return of false, as the kernel's
 * exception table does for copy_to_user(): nothing to set up, so a system
 * call's outputs cost one call to copy.
 */
__asm__(".pushsection .text\n"
	".p2align 4\n"
	".globl winvm_copy\n"
	".hidden winvm_copy\n"
	".type winvm_copy, @function\n"
	"winvm_copy:\n"
	"	.cfi_startproc\n"
	"	mov %rdx, %rcx\n"
	"	shr $3, %rcx\n"
	"	rep movsq\n"
	"	mov %rdx, %rcx\n"
	"	and $7, %rcx\n"
	"	rep movsb\n"
	"	mov $1, %eax\n"
	"	ret\n"
	"winvm_copy_fault:\n"
	"	xor %eax, %eax\n"
	"	ret\n"
	"	.cfi_endproc\n"
	".size winvm_copy, . - winvm_copy\n"
	".popsection\n");

extern const char winvm_copy_fault[];

/*
 * A fault of winvm_copy()'s own access (at the 8 bytes rsi or rdi point
 * to, or a general-protection fault of a non-canonical pointer): return
 * false from it instead. Not a signal the kernel sends for something else
 * while the copy runs (an asynchronous memory-error report).
 */
static bool copy_fault(int sig, const siginfo_t *si, ucontext_t *uc)
{
	greg_t *g = uc->uc_mcontext.gregs;
	uintptr_t a = (uintptr_t)si->si_addr;

	if ((sig != SIGSEGV && sig != SIGBUS) || si->si_code <= 0 ||
	    g[REG_RIP] < (greg_t)winvm_copy ||
	    g[REG_RIP] >= (greg_t)winvm_copy_fault)
		return false;
	if (!(sig == SIGSEGV && si->si_code == SI_KERNEL) &&
	    a - (uintptr_t)g[REG_RSI] >= 8 && a - (uintptr_t)g[REG_RDI] >= 8)
		return false;
	g[REG_RIP] = (greg_t)winvm_copy_fault;
	return true;
}

/*
 * Whether a fault belongs to winvm_try() @f: a memory fault at an address
 * it covers, or one with no address (a general-protection fault of a
 * non-canonical address), not one of a handler that interrupted it.
 */
static bool try_owns(const struct try_frame *f, int sig, const siginfo_t *si)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	int i;

	if (!f || (sig != SIGSEGV && sig != SIGBUS) || si->si_code <= 0)
		return false;
	if (si->si_code == SI_KERNEL)
		return true;
	for (i = 0; i < 2; i++)
		if (f->t->len[i] && a - f->t->start[i] < f->t->len[i])
			return true;
	return false;
}

/*
 * A fault of winvm_try() @f's function. The vectored handlers may see it
 * first, as they see the faults of Windows' SEH-guarded probes: if one
 * continues where the fault was, the access is retried; if it continues
 * elsewhere, the try is abandoned (popped, its mask put back on return).
 * Otherwise the try ends, back in winvm_try().
 */
static void try_fault(struct try_frame *f, EXCEPTION_RECORD *rec,
		      const siginfo_t *si, ucontext_t *uc, int saved_errno)
{
	EXCEPTION_POINTERS ptrs = { rec, NULL };
	int skipped;
	CONTEXT ctx;

	if (f->t->flags & WINVM_TRY_VEH) {
		context_from_ucontext(&ctx, uc);
		ptrs.ContextRecord = &ctx;
		/* A handler that leaves by longjmp() leaves the try behind. */
		try_cur = f->outer;
		if (dispatch(&ptrs, false) == EXCEPTION_CONTINUE_EXECUTION) {
			if (ctx.Rip == (DWORD64)uc->uc_mcontext.gregs[REG_RIP] &&
			    ctx.Rsp == (DWORD64)uc->uc_mcontext.gregs[REG_RSP])
				try_cur = f;
			else if (f->t->flags & WINVM_TRY_UNBLOCK)
				uc->uc_sigmask = f->old_mask;
			context_to_ucontext(&ctx, uc);
			return;
		}
		try_cur = f;
	}
	skipped = dispatch_depth - f->depth;
	if (skipped > 0) {
		__atomic_sub_fetch(&dispatching, skipped, __ATOMIC_SEQ_CST);
		dispatch_depth = f->depth;
	}
	f->t->fault = (uintptr_t)si->si_addr;
	errno = saved_errno;
	siglongjmp(f->env, 1);
}

static void on_fault(int sig, siginfo_t *si, void *ucv)
{
	EXCEPTION_RECORD rec, nested;
	EXCEPTION_POINTERS ptrs;
	ucontext_t *uc = ucv;
	enum carrier carrier;
	int saved_errno = errno;
	CONTEXT ctx;
	LONG ret;

	carrier = make_record(sig, si, uc, &rec);
	if (carrier == FOREIGN) {
		if (!chain(sig, si, ucv, true))
			die(sig, FOREIGN);
		goto out;
	}
	if (carrier == GUARD && grow_stack(si, uc, &rec))
		goto out;
	if (copy_fault(sig, si, uc))
		goto out;
	if (carrier != RAISED && try_owns(try_cur, sig, si)) {
		try_fault(try_cur, &rec, si, uc, saved_errno);
		goto out;
	}

	context_from_ucontext(&ctx, uc);
	ptrs.ExceptionRecord = &rec;
	ptrs.ContextRecord = &ctx;
	ret = dispatch(&ptrs, true);

	/* Continuing what cannot be continued is an exception of its own. */
	if (ret == EXCEPTION_CONTINUE_EXECUTION &&
	    (rec.ExceptionFlags & EXCEPTION_NONCONTINUABLE)) {
		memset(&nested, 0, sizeof(nested));
		nested.ExceptionCode = STATUS_NONCONTINUABLE_EXCEPTION;
		nested.ExceptionFlags = EXCEPTION_NONCONTINUABLE;
		nested.ExceptionRecord = &rec;
		nested.ExceptionAddress = rec.ExceptionAddress;
		ptrs.ExceptionRecord = &nested;
		dispatch(&ptrs, true);
		ret = EXCEPTION_EXECUTE_HANDLER;
	}

	if (ret == EXCEPTION_CONTINUE_EXECUTION) {
		if (carrier == RAISED && ctx.Rip == (DWORD64)rec.ExceptionAddress)
			ctx.Rip += 2;	/* past the ud2 */
		context_to_ucontext(&ctx, uc);
	} else if (ret == EXCEPTION_EXECUTE_HANDLER ||
		   carrier == RAISED || !chain(sig, si, ucv, false)) {
		die(sig, carrier);
	}
out:
	errno = saved_errno;
}

/*
 * The handler is installed with an empty mask and SA_NODEFER, so leaving
 * it by siglongjmp() needs no mask restored: sigsetjmp() saves none, and
 * costs no system call. A thread may block the fault signals, though (a
 * program's SIGSEGV handler runs with SIGSEGV blocked): a fault would then
 * end the process, so WINVM_TRY_UNBLOCK unblocks them for the call.
 */
bool winvm_try(struct winvm_try *t, void (*fn)(void *arg), void *arg)
{
	struct try_frame frame = {
		.t = t, .outer = try_cur, .depth = dispatch_depth,
	};
	sigset_t faults;
	bool ok = true;

	if (t->flags & WINVM_TRY_UNBLOCK) {
		sigemptyset(&faults);
		sigaddset(&faults, SIGSEGV);
		sigaddset(&faults, SIGBUS);
		pthread_sigmask(SIG_UNBLOCK, &faults, &frame.old_mask);
	}
	if (sigsetjmp(frame.env, 0)) {
		ok = false;
	} else {
		try_cur = &frame;
		fn(arg);
	}
	try_cur = frame.outer;
	if (t->flags & WINVM_TRY_UNBLOCK)
		pthread_sigmask(SIG_SETMASK, &frame.old_mask, NULL);
	return ok;
}

struct copy {
	void *dst;
	const void *src;
	size_t n;
};

static void copy_fn(void *arg)
{
	struct copy *c = arg;

	memcpy(c->dst, c->src, c->n);
}

bool winvm_copy_ex(void *dst, const void *src, size_t n, unsigned int flags,
		   uintptr_t *fault)
{
	struct copy c = { dst, src, n };
	struct winvm_try t = {
		.start = { (uintptr_t)dst, (uintptr_t)src },
		.len = { n, n },
		.flags = flags,
	};

	if (winvm_try(&t, copy_fn, &c))
		return true;
	if (fault)
		*fault = t.fault;
	return false;
}

/*
 * fork() while another thread holds list_lock or app_lock would leave them
 * held for good in the child: the forking thread takes both first, with
 * the fault signals blocked so that none of its own handlers waits on
 * them, and both sides let go. The mask is the forker's: forks wait on
 * list_lock one at a time.
 */
static sigset_t fork_mask;

static void exceptions_prepare(void)
{
	sigset_t old;

	block_faults(&old);
	pthread_mutex_lock(&list_lock);
	pthread_mutex_lock(&app_lock);
	fork_mask = old;
}

static void exceptions_after_fork(void)
{
	sigset_t old = fork_mask;

	pthread_mutex_unlock(&app_lock);
	pthread_mutex_unlock(&list_lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

__attribute__((constructor)) static void exceptions_init(void)
{
	struct sigaction sa = {
		.sa_sigaction = on_fault,
		.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART,
	};
	size_t i;

	pthread_key_create(&altstack_key, altstack_free);
	pthread_atfork(exceptions_prepare, exceptions_after_fork,
		       exceptions_after_fork);
	winvm_thread_setup();

	sigemptyset(&sa.sa_mask);
	pthread_mutex_lock(&app_lock);
	for (i = 0; i < NR_FAULT_SIGNALS; i++) {
		struct sigaction old;

		if (!__sigaction(fault_signals[i], &sa, &old))
			app_action_set(i, &old);
	}
	installed = true;
	pthread_mutex_unlock(&app_lock);
}

/*
 * sigaction() and signal() for the fault signals record the program's
 * handler, which libwinvm calls for what it does not handle, and leave
 * libwinvm's own installed. Other signals go straight to glibc.
 */
__attribute__((visibility("default")))
int sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
	struct sigaction copy, prev;
	int idx = fault_index(sig);

	if (idx < 0 || !__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
		return __sigaction(sig, act, oldact);

	/* The program's memory faults here, not with app_lock held. */
	if (act)
		copy = *act;
	pthread_mutex_lock(&app_lock);
	app_action_get(idx, &prev);
	if (act)
		app_action_set(idx, &copy);
	pthread_mutex_unlock(&app_lock);
	if (oldact)
		*oldact = prev;
	return 0;
}

/* signal() and sysv_signal(): @flags, @sig blocked in the handler or not. */
static sighandler_t set_handler(int sig, sighandler_t handler, int flags)
{
	struct sigaction act = { .sa_handler = handler, .sa_flags = flags };
	struct sigaction old;

	if (sig <= 0 || sig >= NSIG || handler == SIG_ERR) {
		errno = EINVAL;
		return SIG_ERR;
	}
	sigemptyset(&act.sa_mask);
	if (!(flags & SA_NODEFER))
		sigaddset(&act.sa_mask, sig);
	if (sigaction(sig, &act, &old))
		return SIG_ERR;
	return old.sa_handler;
}

__attribute__((visibility("default")))
sighandler_t signal(int sig, sighandler_t handler)
{
	return set_handler(sig, handler, SA_RESTART);
}

/*
 * The other ways to install a handler (bsd_signal, sysv_signal, sigset,
 * ssignal, sigignore), each with its semantics, through sigaction() so
 * that the fault signals' handlers stay behind libwinvm's.
 */
__attribute__((visibility("default")))
sighandler_t bsd_signal(int sig, sighandler_t handler)
{
	return signal(sig, handler);
}

/* System V's: reset to SIG_DFL when delivered, not blocked meanwhile. */
__attribute__((visibility("default")))
sighandler_t sysv_signal(int sig, sighandler_t handler)
{
	return set_handler(sig, handler, SA_RESETHAND | SA_NODEFER);
}

__attribute__((visibility("default")))
sighandler_t __sysv_signal(int sig, sighandler_t handler)
{
	return sysv_signal(sig, handler);
}

/* glibc's ssignal() is BSD's signal(); sigignore() sets SIG_IGN. */
__attribute__((visibility("default")))
sighandler_t ssignal(int sig, sighandler_t handler)
{
	return signal(sig, handler);
}

__attribute__((visibility("default")))
int sigignore(int sig)
{
	struct sigaction act = { .sa_handler = SIG_IGN };

	sigemptyset(&act.sa_mask);
	return sigaction(sig, &act, NULL);
}

/*
 * sigset(): SIG_HOLD blocks @sig; anything else becomes its disposition
 * and unblocks it. Returns SIG_HOLD if @sig was blocked, else the previous
 * disposition.
 */
__attribute__((visibility("default")))
sighandler_t sigset(int sig, sighandler_t disp)
{
	struct sigaction act = { .sa_handler = disp }, old;
	sigset_t one, prev;

	if (sig <= 0 || sig >= NSIG || disp == SIG_ERR) {
		errno = EINVAL;
		return SIG_ERR;
	}
	sigemptyset(&one);
	sigaddset(&one, sig);
	if (disp == SIG_HOLD) {
		if (sigaction(sig, NULL, &old) ||
		    pthread_sigmask(SIG_BLOCK, &one, &prev))
			return SIG_ERR;
	} else {
		sigemptyset(&act.sa_mask);
		sigaddset(&act.sa_mask, sig);
		if (sigaction(sig, &act, &old) ||
		    pthread_sigmask(SIG_UNBLOCK, &one, &prev))
			return SIG_ERR;
	}
	return sigismember(&prev, sig) ? SIG_HOLD : old.sa_handler;
}

static PVOID add_handler(struct handler **head, ULONG first,
			 PVECTORED_EXCEPTION_HANDLER fn)
{
	struct handler *h, **pos;

	winvm_thread_setup();
	if (!fn)
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->fn = fn;

	pthread_mutex_lock(&list_lock);
	pos = head;
	if (!first)
		while (*pos)
			pos = &(*pos)->next;
	h->next = *pos;
	__atomic_store_n(pos, h, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&list_lock);
	return h;
}

static ULONG remove_handler(struct handler **head, PVOID handle)
{
	struct handler **pos, *h;
	ULONG found = 0;

	pthread_mutex_lock(&list_lock);
	for (pos = head; *pos; pos = &(*pos)->next) {
		if (*pos == handle) {
			h = *pos;
			__atomic_store_n(pos, h->next, __ATOMIC_RELEASE);
			h->dead = graveyard;
			graveyard = h;
			found = 1;
			break;
		}
	}
	/* Free what no dispatch can still be walking. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&dispatching, __ATOMIC_SEQ_CST)) {
		while (graveyard) {
			h = graveyard;
			graveyard = h->dead;
			free(h);
		}
	}
	pthread_mutex_unlock(&list_lock);
	return found;
}

PVOID WINAPI AddVectoredExceptionHandler(ULONG First,
					 PVECTORED_EXCEPTION_HANDLER Handler)
{
	return add_handler(&veh_head, First, Handler);
}

ULONG WINAPI RemoveVectoredExceptionHandler(PVOID Handle)
{
	return remove_handler(&veh_head, Handle);
}

PVOID WINAPI AddVectoredContinueHandler(ULONG First,
					PVECTORED_EXCEPTION_HANDLER Handler)
{
	return add_handler(&vch_head, First, Handler);
}

ULONG WINAPI RemoveVectoredContinueHandler(PVOID Handle)
{
	return remove_handler(&vch_head, Handle);
}

LPTOP_LEVEL_EXCEPTION_FILTER WINAPI SetUnhandledExceptionFilter(
	LPTOP_LEVEL_EXCEPTION_FILTER lpTopLevelExceptionFilter)
{
	winvm_thread_setup();
	return __atomic_exchange_n(&top_filter, lpTopLevelExceptionFilter,
				   __ATOMIC_ACQ_REL);
}

/*
 * The record is handed to the signal handler through a ud2 trap, so that
 * handlers see (and may change) a real register context, and continuing
 * resumes right after the trap.
 */
void WINAPI RaiseException(DWORD dwExceptionCode, DWORD dwExceptionFlags,
			   DWORD nNumberOfArguments, const ULONG_PTR *lpArguments)
{
	EXCEPTION_RECORD *rec = &raised.rec;
	sigset_t ill, old;

	winvm_thread_setup();
	memset(rec, 0, sizeof(*rec));
	rec->ExceptionCode = dwExceptionCode;
	rec->ExceptionFlags = dwExceptionFlags & EXCEPTION_NONCONTINUABLE;
	if (lpArguments) {
		if (nNumberOfArguments > EXCEPTION_MAXIMUM_PARAMETERS)
			nNumberOfArguments = EXCEPTION_MAXIMUM_PARAMETERS;
		rec->NumberParameters = nNumberOfArguments;
		memcpy(rec->ExceptionInformation, lpArguments,
		       nNumberOfArguments * sizeof(ULONG_PTR));
	}
	/* A thread that blocks SIGILL would die of the ud2: not for this. */
	sigemptyset(&ill);
	sigaddset(&ill, SIGILL);
	pthread_sigmask(SIG_UNBLOCK, &ill, &old);
	raised.pending = 1;
	__asm__ volatile("ud2" ::: "memory");
	raised.pending = 0;
	if (sigismember(&old, SIGILL))
		pthread_sigmask(SIG_SETMASK, &old, NULL);
}
