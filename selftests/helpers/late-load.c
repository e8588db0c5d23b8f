// SPDX-License-Identifier: GPL-2.0-only
/*
 * Helper of the exceptions selftest: a program that installs its own
 * SIGSEGV handler and only then loads libwinvm (it is not linked with it),
 * and checks that a fault libwinvm does not handle still reaches its
 * handler. Exit status 0 on success.
 *
 * Usage: late-load PATH-TO-libwinvm.so
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include <windows.h>

static sigjmp_buf env;
static int calls;
static void *fault_addr;

static void handler(int sig, siginfo_t *si, void *uc)
{
	calls++;
	fault_addr = si->si_addr;
	siglongjmp(env, 1);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_sigaction = handler,
				.sa_flags = SA_SIGINFO }, now;
	LPVOID (*alloc)(LPVOID, SIZE_T, DWORD, DWORD);
	void *lib;
	char *p;

	if (argc != 2)
		return 100;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL))
		return 1;
	lib = dlopen(argv[1], RTLD_NOW);
	if (!lib) {
		fprintf(stderr, "%s\n", dlerror());
		return 2;
	}
	alloc = (LPVOID (*)(LPVOID, SIZE_T, DWORD, DWORD))dlsym(lib,
								 "VirtualAlloc");
	if (!alloc)
		return 3;
	p = alloc(NULL, 0x1000, MEM_RESERVE, PAGE_READWRITE);
	if (!p)
		return 4;
	/* libwinvm's handler is in front now, and ours is behind it. */
	if (sigaction(SIGSEGV, NULL, &now) || now.sa_sigaction == handler)
		return 5;
	if (!sigsetjmp(env, 1))
		*(volatile char *)p = 1;
	if (calls != 1 || fault_addr != p)
		return 6;
	return 0;
}
