/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the winvm selftests: thin ioctl wrappers that return
 * 0 or -errno, fault probes, and readers for /proc.
 */
#ifndef WINVM_SELFTEST_UTIL_H
#define WINVM_SELFTEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/winvm.h>

#define PAGE		0x1000UL
#define GRAN		0x10000UL

/* Poison for output fields: a kernel that forgets to write one is caught. */
#define POISON64	0xccccccccccccccccULL
#define POISON32	0xccccccccU

static inline int wv_open(void)
{
	return open("/dev/winvm", O_RDWR | O_CLOEXEC);
}

static inline int wv_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline int wv_alloc(int fd, uint64_t addr, uint64_t size, uint32_t flags,
			   uint32_t prot, uint64_t *out_addr,
			   uint64_t *out_size)
{
	struct winvm_alloc_args args = {
		.addr = addr,
		.size = size,
		.flags = flags,
		.prot = prot,
		.out_addr = POISON64,
		.out_size = POISON64,
	};
	int ret = wv_ioctl(fd, WINVM_IOC_ALLOC, &args);

	if (out_addr)
		*out_addr = args.out_addr;
	if (out_size)
		*out_size = args.out_size;
	return ret;
}

static inline char *wv_reserve(int fd, uint64_t size, uint32_t prot)
{
	uint64_t addr;

	if (wv_alloc(fd, 0, size, WINVM_ALLOC_RESERVE, prot, &addr, NULL))
		return NULL;
	return (char *)(uintptr_t)addr;
}

static inline int wv_commit(int fd, void *addr, uint64_t size, uint32_t prot)
{
	return wv_alloc(fd, (uintptr_t)addr, size, WINVM_ALLOC_COMMIT, prot,
			NULL, NULL);
}

static inline int wv_free(int fd, void *addr, uint64_t size, uint32_t flags,
			  uint64_t *out_addr, uint64_t *out_size)
{
	struct winvm_free_args args = {
		.addr = (uintptr_t)addr,
		.size = size,
		.flags = flags,
		.out_addr = POISON64,
		.out_size = POISON64,
	};
	int ret = wv_ioctl(fd, WINVM_IOC_FREE, &args);

	if (out_addr)
		*out_addr = args.out_addr;
	if (out_size)
		*out_size = args.out_size;
	return ret;
}

static inline int wv_release(int fd, void *addr)
{
	return wv_free(fd, addr, 0, WINVM_FREE_RELEASE, NULL, NULL);
}

static inline int wv_decommit(int fd, void *addr, uint64_t size)
{
	return wv_free(fd, addr, size, WINVM_FREE_DECOMMIT, NULL, NULL);
}

static inline int wv_query(int fd, const void *addr,
			   struct winvm_query_args *q)
{
	memset(q, 0xcc, sizeof(*q));
	q->addr = (uintptr_t)addr;
	q->flags = 0;
	return wv_ioctl(fd, WINVM_IOC_QUERY, q);
}

/*
 * Fault probes. A probe arms a sigsetjmp buffer, touches one byte, and
 * reports whether the access completed; the SIGSEGV handler only jumps
 * back while a probe is armed and records the siginfo it got. Per thread,
 * so that threads may probe at the same time.
 */
static __thread sigjmp_buf probe_env;
static __thread volatile sig_atomic_t probe_armed;
static __thread siginfo_t probe_info;

static void probe_handler(int sig, siginfo_t *info, void *uc)
{
	(void)uc;
	if (!probe_armed) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	probe_info = *info;
	probe_armed = 0;
	siglongjmp(probe_env, 1);
}

static inline void probe_setup(void)
{
	struct sigaction sa = {
		.sa_sigaction = probe_handler,
		.sa_flags = SA_SIGINFO | SA_NODEFER,
	};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

/*
 * The accesses go through volatile pointers so the compiler keeps them;
 * checkpatch's dislike of volatile does not apply to probes of memory
 * whose accessibility is the point of the test.
 */
static inline bool try_read(const void *addr)
{
	memset(&probe_info, 0, sizeof(probe_info));
	if (sigsetjmp(probe_env, 1))
		return false;
	probe_armed = 1;
	(void)*(const volatile char *)addr;
	probe_armed = 0;
	return true;
}

static inline bool try_write(void *addr, char value)
{
	memset(&probe_info, 0, sizeof(probe_info));
	if (sigsetjmp(probe_env, 1))
		return false;
	probe_armed = 1;
	*(volatile char *)addr = value;
	probe_armed = 0;
	return true;
}

/* Calls @addr, which must hold a RET instruction if it is executable. */
static inline bool try_exec(void *addr)
{
	void (*fn)(void) = (void (*)(void))addr;

	memset(&probe_info, 0, sizeof(probe_info));
	if (sigsetjmp(probe_env, 1))
		return false;
	probe_armed = 1;
	fn();
	probe_armed = 0;
	return true;
}

/* Value of a "Key:   N kB" line of a /proc file, or -1. */
static inline long proc_kb(const char *path, const char *key)
{
	size_t len = strlen(key);
	char line[256];
	long val = -1;
	FILE *f;

	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, len) && line[len] == ':') {
			val = strtol(line + len + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return val;
}

/* Number of VMAs of this process. */
static inline long vma_count(void)
{
	long n = 0;
	int c;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

#endif /* WINVM_SELFTEST_UTIL_H */
