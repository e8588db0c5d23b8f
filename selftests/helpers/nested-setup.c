// SPDX-License-Identifier: GPL-2.0-only
/*
 * Helper of the exceptions selftest: a thread that existed before libwinvm
 * was loaded (so it has no alternate stack) takes an exception whose
 * handler raises a nested one (which gives the thread its alternate stack
 * in the middle of the dispatch) and then removes itself. The outer
 * dispatch is still walking the handler list: the handler must not be
 * freed under it. Exit status 0 on success.
 *
 * Usage: nested-setup PATH-TO-libwinvm.so
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <windows.h>

#define NESTED	0xe0000001

static PVOID (*add)(ULONG, PVECTORED_EXCEPTION_HANDLER);
static ULONG (*rem)(PVOID);
static void (*raise_exc)(DWORD, DWORD, DWORD, const ULONG_PTR *);
static PVOID self;
static volatile int go, result = 20;

static LONG CALLBACK outer(EXCEPTION_POINTERS *ep)
{
	void *m;

	if (ep->ExceptionRecord->ExceptionCode == NESTED)
		return EXCEPTION_CONTINUE_EXECUTION;
	raise_exc(NESTED, 0, 0, NULL);
	/* Removed while its own dispatch runs: it must survive that. */
	rem(self);
	m = malloc(24);
	result = m == self ? 21 : 0;
	memset(m, 0xa5, 24);
	ep->ContextRecord->Rip += 2;	/* past the faulting movb (8a 07) */
	return EXCEPTION_CONTINUE_SEARCH;
}

static LONG CALLBACK resume(EXCEPTION_POINTERS *ep)
{
	return EXCEPTION_CONTINUE_EXECUTION;
}

static void *thread(void *arg)
{
	while (!go)
		usleep(1000);
	__asm__ volatile("movb (%0), %%al" : : "D"(16L) : "rax", "memory");
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	void *lib;

	void *hole;

	/*
	 * A hole left above the thread's stack, so that the alternate stack
	 * mapped later lands above it: the case a comparison of frame
	 * addresses across stacks gets wrong.
	 */
	hole = mmap(NULL, 1 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	if (argc != 2 || hole == MAP_FAILED ||
	    pthread_create(&t, NULL, thread, NULL))
		return 100;
	munmap(hole, 1 << 20);
	lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
	if (!lib)
		return 2;
	add = (PVOID (*)(ULONG, PVECTORED_EXCEPTION_HANDLER))
		dlsym(lib, "AddVectoredExceptionHandler");
	rem = (ULONG (*)(PVOID))dlsym(lib, "RemoveVectoredExceptionHandler");
	raise_exc = (void (*)(DWORD, DWORD, DWORD, const ULONG_PTR *))
		dlsym(lib, "RaiseException");
	if (!add || !rem || !raise_exc)
		return 3;
	self = add(1, outer);
	if (!self || !add(0, resume))
		return 4;
	go = 1;
	pthread_join(t, NULL);
	return result;
}
