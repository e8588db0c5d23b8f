// SPDX-License-Identifier: GPL-2.0-only
/*
 * The benchmark workloads, written once against the Win32 API: built with
 * libwinvm's <windows.h> for Linux (winvm) and with mingw-w64 for Windows
 * (run under Wine, the user-space emulation winvm is compared with). Only
 * the clock and threads differ per system, in bench.h; the raw-Linux
 * anchors are in anchors.c.
 *
 * Usage: workloads [-q] [-t TRIALS] [-p CPU] WORKLOAD...
 *   -q        quick sizes (make bench QUICK=1)
 *   -t N      trials per figure (default 7)
 *   -p CPU    pin the main thread to CPU
 * Workloads: alloc two_phase first_touch decommit protect guard regions
 * walk reservations threads watch (see scripts/bench for what each figure
 * is).
 */
#define _GNU_SOURCE
#define __USE_MINGW_ANSI_STDIO 1
#include <windows.h>

#ifndef _WIN32
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include <linux/winvm.h>
#endif

#include "bench.h"

#define PAGE		((SIZE_T)4096)
#define GRAN		((SIZE_T)65536)
#define MIB		((SIZE_T)1 << 20)

/*
 * Commits of more than this are split: Linux's heuristic overcommit
 * refuses a single commit larger than RAM plus swap.
 */
#define COMMIT_CHUNK	(256 * MIB)

static void touch(volatile char *p)
{
	*p = 1;
}

/*
 * Mappings of this process (lines of /proc/self/maps); -1 if unknown, as
 * under Wine, whose server opens files for its clients: "self" would be
 * wineserver.
 */
#ifdef _WIN32
static long count_maps(void)
{
	return -1;
}
#else
static long count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int c;

	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}
#endif

/*
 * Kernel slab memory in bytes (/proc/meminfo "Slab"), -1 where it would
 * not describe winvm (under Wine the kernel holds none of the state).
 */
static long long slab_bytes(void)
{
#ifdef _WIN32
	return -1;
#else
	char line[256];
	long long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Slab: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
#endif
}

/* Commit [p, p + size) read-write, in chunks the overcommit policy takes. */
static int commit_all(char *p, SIZE_T size)
{
	SIZE_T off, len;

	for (off = 0; off < size; off += len) {
		len = size - off < COMMIT_CHUNK ? size - off : COMMIT_CHUNK;
		if (!VirtualAlloc(p + off, len, MEM_COMMIT, PAGE_READWRITE))
			return -1;
	}
	return 0;
}

/* 1: VirtualAlloc(RESERVE | COMMIT, 64 KiB) + VirtualFree(RELEASE). */
static double w_alloc_release(void *arg, long ops)
{
	double t0 = bench_now();
	long i;

	for (i = 0; i < ops; i++) {
		void *p = VirtualAlloc(NULL, GRAN, MEM_RESERVE | MEM_COMMIT,
				       PAGE_READWRITE);

		if (!p || !VirtualFree(p, 0, MEM_RELEASE))
			return -1;
	}
	return (bench_now() - t0) / ops;
}

/* 2: reserve 1 MiB, commit 64 KiB, decommit it, release. */
static double w_two_phase(void *arg, long ops)
{
	double t0 = bench_now();
	long i;

	for (i = 0; i < ops; i++) {
		char *p = VirtualAlloc(NULL, MIB, MEM_RESERVE, PAGE_NOACCESS);

		if (!p || !VirtualAlloc(p, GRAN, MEM_COMMIT, PAGE_READWRITE) ||
		    !VirtualFree(p, GRAN, MEM_DECOMMIT) ||
		    !VirtualFree(p, 0, MEM_RELEASE))
			return -1;
	}
	return (bench_now() - t0) / ops;
}

/* 3: commit a region and write one byte per page; ns per page. */
static double w_first_touch(void *arg, long pages)
{
	char *p = VirtualAlloc(NULL, pages * PAGE, MEM_RESERVE, PAGE_NOACCESS);
	double t0, t;
	long i;

	if (!p || commit_all(p, pages * PAGE))
		return -1;
	t0 = bench_now();
	for (i = 0; i < pages; i++)
		touch(p + i * PAGE);
	t = bench_now() - t0;
	VirtualFree(p, 0, MEM_RELEASE);
	return t / pages;
}

/*
 * 4: decommit a populated 64 KiB range and commit it again. Populating it
 * again takes page faults that are not part of the figure, so each pair is
 * timed on its own.
 */
static double w_decommit(void *arg, long ops)
{
	char *p = arg;
	double t0, sum = 0;
	SIZE_T off;
	long i;

	for (i = 0; i < ops; i++) {
		for (off = 0; off < GRAN; off += PAGE)
			touch(p + off);
		t0 = bench_now();
		if (!VirtualFree(p, GRAN, MEM_DECOMMIT) ||
		    !VirtualAlloc(p, GRAN, MEM_COMMIT, PAGE_READWRITE))
			return -1;
		sum += bench_now() - t0 - bench_clock_cost();
	}
	return sum / ops;
}

/*
 * 5: VirtualProtect one populated page of a 16 MiB committed region to
 * read-only and back; ns per pair, each pair timed on its own so that the
 * page can be written (populated) in between.
 */
static double w_protect(void *arg, long ops)
{
	char *page = arg;
	double t0, sum = 0;
	DWORD old;
	long i;

	for (i = 0; i < ops; i++) {
		touch(page);
		t0 = bench_now();
		if (!VirtualProtect(page, PAGE, PAGE_READONLY, &old) ||
		    !VirtualProtect(page, PAGE, PAGE_READWRITE, &old))
			return -1;
		sum += bench_now() - t0 - bench_clock_cost();
	}
	return sum / ops;
}

static void run_protect(void)
{
	SIZE_T size = 16 * MIB, off;
	char *p = VirtualAlloc(NULL, size, MEM_RESERVE | MEM_COMMIT,
			       PAGE_READWRITE);
	char *page = p + size / 2;
	long before, during;
	DWORD old;

	if (!p) {
		bench_out("E protect cannot commit 16 MiB\n");
		return;
	}
	for (off = 0; off < size; off += PAGE)
		touch(p + off);
	/* The mappings a protection change inside the region adds. */
	before = count_maps();
	VirtualProtect(page, PAGE, PAGE_READONLY, &old);
	during = count_maps();
	VirtualProtect(page, PAGE, PAGE_READWRITE, &old);
	if (before >= 0 && during >= 0)
		bench_out("I protect.maps_added %ld\n", during - before);
	bench_run("protect", w_protect, page, bench_ops(100, 1000));
	VirtualFree(p, 0, MEM_RELEASE);
}

static void run_decommit(void)
{
	char *p = VirtualAlloc(NULL, GRAN, MEM_RESERVE | MEM_COMMIT,
			       PAGE_READWRITE);

	if (!p) {
		bench_out("E decommit cannot allocate\n");
		return;
	}
	bench_run("decommit", w_decommit, p, bench_ops(100, 500));
	VirtualFree(p, 0, MEM_RELEASE);
}

/*
 * 9: a guard page hit, taken by a vectored handler that continues, and the
 * page armed again with VirtualProtect.
 */
static char *volatile guard_page;
static volatile long guard_hits;
static volatile double guard_in;	/* when the handler ran, if asked */

static LONG CALLBACK guard_handler(EXCEPTION_POINTERS *ep)
{
	EXCEPTION_RECORD *rec = ep->ExceptionRecord;

	if (rec->ExceptionCode != STATUS_GUARD_PAGE_VIOLATION ||
	    rec->NumberParameters < 2 ||
	    rec->ExceptionInformation[1] - (ULONG_PTR)guard_page >= PAGE)
		return EXCEPTION_CONTINUE_SEARCH;
	guard_hits++;
	if (guard_in < 0)
		guard_in = bench_now();
	return EXCEPTION_CONTINUE_EXECUTION;
}

/*
 * Where a guard round trip goes: from the access to the handler (fault,
 * signal or exception delivery), from the handler back to the completed
 * access (return, sigreturn, the access faulting again), and the re-arm.
 * Means over @ops, read with the clock, so they do not add up exactly.
 */
static void guard_breakdown(long ops)
{
	double t0, t1, t2, in = 0, out = 0, arm = 0;
	DWORD old;
	long i;

	for (i = 0; i < ops; i++) {
		guard_in = -1;
		t0 = bench_now();
		touch(guard_page);
		t1 = bench_now();
		VirtualProtect(guard_page, PAGE, PAGE_READWRITE | PAGE_GUARD,
			       &old);
		t2 = bench_now();
		in += guard_in - t0;
		out += t1 - guard_in;
		arm += t2 - t1;
	}
	guard_in = 0;
	bench_out("I guard.to_handler_ns %.0f\n", in / ops);
	bench_out("I guard.from_handler_ns %.0f\n", out / ops);
	bench_out("I guard.rearm_ns %.0f\n", arm / ops);
}

static double w_guard(void *arg, long ops)
{
	long hits = guard_hits, i;
	double t0 = bench_now();
	DWORD old;

	for (i = 0; i < ops; i++) {
		touch(guard_page);
		if (!VirtualProtect(guard_page, PAGE,
				    PAGE_READWRITE | PAGE_GUARD, &old))
			return -1;
	}
	t0 = bench_now() - t0;
	return guard_hits - hits == ops ? t0 / ops : -1;
}

static void run_guard(void)
{
	void *veh;
	DWORD old;

	guard_page = VirtualAlloc(NULL, GRAN, MEM_RESERVE | MEM_COMMIT,
				  PAGE_READWRITE);
	if (!guard_page ||
	    !VirtualProtect(guard_page, PAGE, PAGE_READWRITE | PAGE_GUARD,
			    &old)) {
		bench_out("E guard cannot set up a guard page\n");
		return;
	}
	veh = AddVectoredExceptionHandler(1, guard_handler);
	if (!bench_run("guard", w_guard, NULL, bench_ops(100, 1000)))
		guard_breakdown(bench_ops(50, 200));
	RemoveVectoredExceptionHandler(veh);
	VirtualFree(guard_page, 0, MEM_RELEASE);
}

/*
 * 12: write watch (bench.h): GetWriteWatch(WRITE_WATCH_FLAG_RESET) after
 * each round of writes; the pages written move by one every cycle.
 */
static double w_watch(void *arg, long ops)
{
	PVOID found[WATCH_WRITES + 1];
	double t0 = bench_now();
	char *p = arg;
	ULONG_PTR count;
	ULONG gran;
	long i, j;

	for (i = 0; i < ops; i++) {
		for (j = 0; j < WATCH_WRITES; j++)
			touch(p + (j * (WATCH_PAGES / WATCH_WRITES) +
				   i % (WATCH_PAGES / WATCH_WRITES)) * PAGE);
		count = WATCH_WRITES + 1;
		if (GetWriteWatch(WRITE_WATCH_FLAG_RESET, p, WATCH_PAGES * PAGE,
				  found, &count, &gran) ||
		    count != WATCH_WRITES)
			return -1;
	}
	return (bench_now() - t0) / ops;
}

static void run_watch(void)
{
	char *p = VirtualAlloc(NULL, WATCH_PAGES * PAGE, MEM_RESERVE |
			       MEM_COMMIT | MEM_WRITE_WATCH, PAGE_READWRITE);

	if (!p) {
		bench_out("E watch cannot make a write-watched region (%lu)\n",
			  (unsigned long)GetLastError());
		return;
	}
	memset(p, 1, WATCH_PAGES * PAGE);
	ResetWriteWatch(p, WATCH_PAGES * PAGE);
	bench_run("watch", w_watch, p, bench_ops(20, 200));
	VirtualFree(p, 0, MEM_RELEASE);
}

/*
 * 6, 7, 8: one reservation of N committed pages whose protection
 * alternates page by page, so that VirtualQuery sees N regions.
 */
struct regions {
	char *base;
	long n;
};

/* Where the last regions_build() that failed stopped. */
static long regions_failed_at;

/* Build N regions; on failure, report how far it got. */
static int regions_build(struct regions *r, long n, const char *key)
{
	SIZE_T size = n * PAGE;
	long long slab0 = slab_bytes(), slab1;
	double t0;
	DWORD old;
	long i;

	r->n = n;
	r->base = VirtualAlloc(NULL, size, MEM_RESERVE, PAGE_NOACCESS);
	if (!r->base || commit_all(r->base, size)) {
		bench_out("E %s cannot commit %ld pages (error %lu)\n", key, n,
			  (unsigned long)GetLastError());
		regions_failed_at = 1;
		if (r->base)
			VirtualFree(r->base, 0, MEM_RELEASE);
		r->base = NULL;
		return -1;
	}
	t0 = bench_now();
	for (i = 1; i < n; i += 2) {
		if (!VirtualProtect(r->base + i * PAGE, PAGE, PAGE_READONLY,
				    &old)) {
			bench_out("E %s VirtualProtect failed after %ld regions (error %lu)\n",
				  key, i, (unsigned long)GetLastError());
			bench_out("I %s.failed_at %ld\n", key, i);
			regions_failed_at = i;
			VirtualFree(r->base, 0, MEM_RELEASE);
			r->base = NULL;
			return -1;
		}
	}
	bench_out("I %s.made %ld\n", key, n);
	if (n > 1)
		bench_out("I %s.build_ns_per_call %.1f\n", key,
			  (bench_now() - t0) / (n / 2));
	slab1 = slab_bytes();
	if (slab0 >= 0 && slab1 >= 0)
		bench_out("I %s.slab_bytes_per_region %.1f\n", key,
			  (double)(slab1 - slab0) / n);
	return 0;
}

/* VirtualQuery of random addresses inside the regions. */
static double w_query(void *arg, long ops)
{
	struct regions *r = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	MEMORY_BASIC_INFORMATION mbi;
	double t0 = bench_now();
	long i;

	for (i = 0; i < ops; i++) {
		char *a = r->base + bench_rand(&seed) % (r->n * PAGE);

		if (VirtualQuery(a, &mbi, sizeof(mbi)) != sizeof(mbi))
			return -1;
	}
	return (bench_now() - t0) / ops;
}

/*
 * VirtualProtect of a read-write page between two read-only ones to
 * read-only (three regions merge) and back (they split again); ns per
 * call, at a steady region count.
 */
static double w_toggle(void *arg, long ops)
{
	struct regions *r = arg;
	uint64_t seed = 12345;
	double t0 = bench_now();
	DWORD old;
	long i;

	for (i = 0; i < ops; i++) {
		long pg = 2 + 2 * (long)(bench_rand(&seed) % ((r->n - 3) / 2));
		char *a = r->base + pg * PAGE;

		if (!VirtualProtect(a, PAGE, PAGE_READONLY, &old) ||
		    !VirtualProtect(a, PAGE, PAGE_READWRITE, &old))
			return -1;
	}
	return (bench_now() - t0) / (2 * ops);
}

#define NR_SIZES	4

static const long *region_sizes(void)
{
	static const long full[NR_SIZES] = { 1, 1000, 100000, 1000000 };
	static const long quick[NR_SIZES] = { 1, 1000, 3000, 10000 };

	return bench_quick ? quick : full;
}

#ifdef _WIN32
/* Under Wine: one region count after the other. */
static void run_regions(void)
{
	const long *sizes = region_sizes();
	long failed_at = 0;
	struct regions r;
	char key[64];
	int i;

	for (i = 0; i < NR_SIZES; i++) {
		snprintf(key, sizeof(key), "regions.%ld", sizes[i]);
		if (failed_at) {
			/* Where a smaller count failed, a larger one fails. */
			bench_out("E %s not tried: %ld regions failed\n", key,
				  sizes[i - 1]);
			bench_out("I %s.failed_at %ld\n", key, failed_at);
			continue;
		}
		if (regions_build(&r, sizes[i], key)) {
			failed_at = regions_failed_at;
			continue;
		}
		snprintf(key, sizeof(key), "query.%ld", sizes[i]);
		bench_run(key, w_query, &r, bench_ops(500, 10000));
		if (sizes[i] >= 1000) {
			snprintf(key, sizeof(key), "toggle.%ld", sizes[i]);
			bench_run(key, w_toggle, &r, bench_ops(100, 1000));
		}
		VirtualFree(r.base, 0, MEM_RELEASE);
	}
}
#else
/*
 * On Linux each region count lives in a child process of its own (its own
 * winvm context), built once; the parent then asks each for one trial in
 * turn, and measures the no-op ioctl floor between them. The figures this
 * workload compares (1M against 1000 regions, a query against the floor)
 * are taken seconds apart at most, so the host's load drifts alike for
 * them: measured one size after the other, they were minutes apart.
 */
struct region_child {
	pid_t pid;
	int cmd;	/* parent -> child: w(arm up), q(uery), t(oggle), x (exit) */
	int res;	/* child -> parent: a double per command */
	long n;
};

static void region_child_loop(long n, int cmd, int res)
{
	long q = bench_ops(500, 10000), t = bench_ops(100, 1000), made;
	struct regions r;
	char key[64], c;
	double v;

	snprintf(key, sizeof(key), "regions.%ld", n);
	made = regions_build(&r, n, key) ? -regions_failed_at : n;
	if (write(res, &made, sizeof(made)) != sizeof(made) || made != n)
		_exit(0);
	while (read(cmd, &c, 1) == 1 && c != 'x') {
		if (c == 'w')
			v = w_query(&r, q / 4) + (n >= 1000 ? w_toggle(&r, t / 4) : 0);
		else if (c == 'q')
			v = w_query(&r, q);
		else
			v = w_toggle(&r, t);
		if (write(res, &v, sizeof(v)) != sizeof(v))
			break;
	}
	_exit(0);
}

static double region_ask(struct region_child *c, char what)
{
	double v = -1;

	if (write(c->cmd, &what, 1) != 1 ||
	    read(c->res, &v, sizeof(v)) != sizeof(v))
		return -1;
	return v;
}

/*
 * Start the child c[i] holding @n regions; false (and where it stopped) if
 * it failed. The child closes its elder siblings' pipes, so that each pipe
 * has one process at each end.
 */
static int region_child_start(struct region_child *c, int i, long n,
			      long *failed)
{
	int to[2], from[2], j;
	long made = 0;

	if (pipe(to) || pipe(from))
		return 0;
	fflush(stdout);
	c[i].n = n;
	c[i].pid = fork();
	if (c[i].pid == 0) {
		for (j = 0; j < i; j++) {
			close(c[j].cmd);
			close(c[j].res);
		}
		close(to[1]);
		close(from[0]);
		region_child_loop(n, to[0], from[1]);
	}
	c += i;
	close(to[0]);
	close(from[1]);
	c->cmd = to[1];
	c->res = from[0];
	if (c->pid > 0 && read(c->res, &made, sizeof(made)) == sizeof(made) &&
	    made == n)
		return 1;
	*failed = made < 0 ? -made : 1;
	close(c->cmd);
	close(c->res);
	if (c->pid > 0)
		waitpid(c->pid, NULL, 0);
	return 0;
}

static double w_floor(void *arg, long ops)
{
	struct winvm_info info;
	int fd = *(int *)arg;
	double t0 = bench_now();
	long i;

	for (i = 0; i < ops; i++)
		if (ioctl(fd, WINVM_IOC_GET_INFO, &info))
			return -1;
	return (bench_now() - t0) / ops;
}

static void run_regions(void)
{
	double v[NR_SIZES][2][BENCH_MAX_TRIALS], fl[BENCH_MAX_TRIALS];
	const long *sizes = region_sizes();
	struct region_child c[NR_SIZES];
	long failed = 0, q = bench_ops(500, 10000);
	int i, k, fd, live = 0;
	char key[64];

	for (i = 0; i < NR_SIZES; i++) {
		if (failed) {
			/* Where a smaller count failed, a larger one fails. */
			bench_out("E regions.%ld not tried: %ld regions failed\n",
				  sizes[i], sizes[i - 1]);
			bench_out("I regions.%ld.failed_at %ld\n", sizes[i],
				  failed);
			continue;
		}
		if (!region_child_start(c, live, sizes[i], &failed))
			continue;
		if (region_ask(&c[live], 'w') < 0)
			break;
		live++;
	}
	/* Opened after the children, which need not inherit it. */
	fd = open("/dev/winvm", O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		w_floor(&fd, q / 4);
	for (k = 0; k < bench_trials && k < BENCH_MAX_TRIALS; k++) {
		for (i = 0; i < live; i++) {
			v[i][0][k] = region_ask(&c[i], 'q');
			if (c[i].n >= 1000)
				v[i][1][k] = region_ask(&c[i], 't');
		}
		fl[k] = fd >= 0 ? w_floor(&fd, q) : -1;
	}
	for (i = 0; i < live; i++) {
		snprintf(key, sizeof(key), "query.%ld", c[i].n);
		bench_report(key, v[i][0], k);
		if (c[i].n >= 1000) {
			snprintf(key, sizeof(key), "toggle.%ld", c[i].n);
			bench_report(key, v[i][1], k);
		}
		if (write(c[i].cmd, "x", 1) != 1)
			kill(c[i].pid, SIGKILL);
		close(c[i].cmd);
		close(c[i].res);
		waitpid(c[i].pid, NULL, 0);
	}
	if (fd >= 0) {
		bench_report("ioctl", fl, k);
		close(fd);
	}
}
#endif

/* 8: VirtualQuery from the bottom of the address space to the top. */
static double w_walk(void *arg, long ops)
{
	MEMORY_BASIC_INFORMATION mbi;
	SYSTEM_INFO si;
	char *a = NULL, *top;
	long n = 0;
	double t0;

	GetSystemInfo(&si);
	top = si.lpMaximumApplicationAddress;
	t0 = bench_now();
	while (a < top && VirtualQuery(a, &mbi, sizeof(mbi)) == sizeof(mbi)) {
		n++;
		if ((char *)mbi.BaseAddress + mbi.RegionSize <= a)
			return -1;
		a = (char *)mbi.BaseAddress + mbi.RegionSize;
	}
	t0 = bench_now() - t0;
	*(long *)arg = n;
	return n ? t0 / n : -1;
}

static void run_walk(void)
{
	long n = bench_quick ? 1000 : 10000, seen = 0;
	struct regions r;
	char key[64];

	snprintf(key, sizeof(key), "walkregions.%ld", n);
	if (regions_build(&r, n, key))
		return;
	snprintf(key, sizeof(key), "walk.%ld", n);
	bench_run(key, w_walk, &seen, 1);
	bench_out("I %s.regions_seen %ld\n", key, seen);
	VirtualFree(r.base, 0, MEM_RELEASE);
}

/*
 * 6: many reservations, each with a guard page: every call must succeed.
 * The figure is the cost of one more reservation (reserve, commit a guard
 * page, release) with few and with all of them in place.
 */
static double w_reserve_guard(void *arg, long ops)
{
	double t0 = bench_now();
	long i;

	for (i = 0; i < ops; i++) {
		char *p = VirtualAlloc(NULL, GRAN, MEM_RESERVE, PAGE_NOACCESS);

		if (!p || !VirtualAlloc(p, PAGE, MEM_COMMIT,
					PAGE_READWRITE | PAGE_GUARD) ||
		    !VirtualFree(p, 0, MEM_RELEASE))
			return -1;
	}
	return (bench_now() - t0) / ops;
}

static void run_reservations(void)
{
	long n = bench_quick ? 5000 : 200000, few = 1000, i, made = 0;
	long ops = bench_ops(100, 500);
	char **res = calloc(n, sizeof(*res));
	long long slab0 = slab_bytes(), slab1;
	char key[64];

	if (!res)
		return;
	for (i = 0; i < n; i++) {
		char *p = VirtualAlloc(NULL, GRAN, MEM_RESERVE, PAGE_NOACCESS);

		if (!p || !VirtualAlloc(p, PAGE, MEM_COMMIT,
					PAGE_READWRITE | PAGE_GUARD)) {
			bench_out("E reservations failed at %ld (error %lu)\n",
				  i, (unsigned long)GetLastError());
			if (p)
				VirtualFree(p, 0, MEM_RELEASE);
			break;
		}
		res[made++] = p;
		if (made == few) {
			snprintf(key, sizeof(key), "reserve_guard.%ld", few);
			bench_run(key, w_reserve_guard, NULL, ops);
		}
	}
	bench_out("I reservations.made %ld\n", made);
	bench_out("I reservations.wanted %ld\n", n);
	slab1 = slab_bytes();
	if (slab0 >= 0 && slab1 >= 0 && made)
		bench_out("I reservations.slab_bytes_per_reservation %.1f\n",
			  (double)(slab1 - slab0) / made);
	bench_out("I reservations.maps %ld\n", count_maps());
	if (made == n) {
		snprintf(key, sizeof(key), "reserve_guard.%ld", n);
		bench_run(key, w_reserve_guard, NULL, ops);
	}
	for (i = 0; i < made; i++)
		VirtualFree(res[i], 0, MEM_RELEASE);
	free(res);
}

/* 10: threads (bench_mt in bench.h). */

/* First-touch faults on a private region of m->ops pages. */
static void *t_fault(void *p)
{
	struct bench_mt *m = p;
	char *a = VirtualAlloc(NULL, m->ops * PAGE, MEM_RESERVE | MEM_COMMIT,
			       PAGE_READWRITE);
	long i;

	if (!a)
		m->bad = 1;
	bench_gate_wait(&m->gate);
	for (i = 0; a && i < m->ops; i++)
		touch(a + i * PAGE);
	bench_mt_done(m);
	if (a)
		VirtualFree(a, 0, MEM_RELEASE);
	return NULL;
}

/* Loops VirtualProtect on another region until the workers are done. */
static void *t_disturb(void *p)
{
	struct bench_mt *m = p;
	DWORD old;

	bench_gate_wait(&m->gate);
	while (bench_mt_running(m)) {
		if (!VirtualProtect(m->bystander, PAGE, PAGE_READONLY, &old) ||
		    !VirtualProtect(m->bystander, PAGE, PAGE_READWRITE, &old)) {
			m->bad = 1;
			break;
		}
		touch(m->bystander);
		m->pairs++;
	}
	return NULL;
}

static void run_threads(void)
{
	static const int counts[] = { 1, 2, 4 };
	long churn = bench_ops(100, 1000), query = bench_ops(500, 20000);
	long pages = bench_quick ? 256 : 1024;
	struct bench_mt m;
	struct regions r;
	unsigned int i;
	char *by;

	if (regions_build(&r, bench_quick ? 1000 : 10000, "mtregions"))
		return;
	by = VirtualAlloc(NULL, GRAN, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	if (!by)
		return;
	for (i = 0; i < ARRAY_SIZE(counts); i++) {
		m = (struct bench_mt){ .fn = bench_mt_worker,
				       .body = w_alloc_release,
				       .threads = counts[i], .ops = churn };
		bench_mt_figure("mt_churn", &m);

		m.body = w_query;
		m.arg = &r;
		m.ops = query;
		bench_mt_figure("mt_query", &m);

		bench_mt_fault_figures(t_fault, t_disturb, by, counts[i],
				       pages);
	}
	VirtualFree(by, 0, MEM_RELEASE);
	VirtualFree(r.base, 0, MEM_RELEASE);
}

static void run_simple(const char *name)
{
	if (!strcmp(name, "alloc"))
		bench_run("alloc", w_alloc_release, NULL,
			  bench_ops(200, 2000));
	else if (!strcmp(name, "two_phase"))
		bench_run("two_phase", w_two_phase, NULL,
			  bench_ops(200, 1000));
	else if (!strcmp(name, "first_touch"))
		bench_run("first_touch", w_first_touch, NULL,
			  (long)((bench_quick ? 16 : 256) * MIB / PAGE));
	else
		bench_out("E %s unknown workload\n", name);
}

int main(int argc, char **argv)
{
	int i = bench_options(argc, argv);
	double t0;

	bench_out("I clock_cost_ns %.1f\n", bench_clock_cost());
	for (; i < argc; i++) {
		const char *w = argv[i];

		t0 = bench_now();
		if (!strcmp(w, "decommit"))
			run_decommit();
		else if (!strcmp(w, "protect"))
			run_protect();
		else if (!strcmp(w, "guard"))
			run_guard();
		else if (!strcmp(w, "regions"))
			run_regions();
		else if (!strcmp(w, "walk"))
			run_walk();
		else if (!strcmp(w, "reservations"))
			run_reservations();
		else if (!strcmp(w, "threads"))
			run_threads();
		else if (!strcmp(w, "watch"))
			run_watch();
		else
			run_simple(w);
		bench_out("I seconds.%s %.1f\n", w, (bench_now() - t0) / 1e9);
	}
	return 0;
}
