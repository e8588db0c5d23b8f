// SPDX-License-Identifier: GPL-2.0-only
/*
 * The raw-Linux anchors: what a careful programmer would write instead of
 * the Win32 calls of workloads.c, with plain system calls, measured the
 * same way and reported under the same keys where a workload has a direct
 * counterpart. It must not link libwinvm, which interposes sigaction() for
 * SIGSEGV: the signal anchors need the bare kernel path.
 *
 * Usage: anchors [-q] [-t TRIALS] [-p CPU] WORKLOAD...
 * Workloads: floor alloc two_phase first_touch decommit protect guard
 * regions walk reservations threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include <linux/winvm.h>

#include "bench.h"

#define PAGE		4096UL
#define GRAN		65536UL
#define MIB		(1UL << 20)

static void touch(volatile char *p)
{
	*p = 1;
}

static char *map_anon(size_t size, int prot, int flags)
{
	char *p = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

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

static long long slab_bytes(void)
{
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
}

/* The floor of one kernel entry: winvm's cheapest ioctl, and a syscall. */
static int winvm_fd = -1;

static double w_ioctl(void *arg, long ops)
{
	struct winvm_info info;
	double t0 = bench_now();
	long i;

	for (i = 0; i < ops; i++)
		if (ioctl(winvm_fd, WINVM_IOC_GET_INFO, &info))
			return -1;
	return (bench_now() - t0) / ops;
}

static double w_getppid(void *arg, long ops)
{
	double t0 = bench_now();
	long i;

	for (i = 0; i < ops; i++)
		syscall(SYS_getppid);
	return (bench_now() - t0) / ops;
}

static int open_winvm(void)
{
	if (winvm_fd < 0)
		winvm_fd = open("/dev/winvm", O_RDWR | O_CLOEXEC);
	return winvm_fd;
}

static void run_floor(void)
{
	if (open_winvm() < 0)
		bench_out("E ioctl /dev/winvm: %s\n", strerror(errno));
	else
		bench_run("ioctl", w_ioctl, NULL, bench_ops(2000, 20000));
	bench_run("getppid", w_getppid, NULL, bench_ops(2000, 20000));
}

/* 1: mmap(64 KiB, read-write) + munmap, untouched. */
static double w_mmap(void *arg, long ops)
{
	double t0 = bench_now();
	long i;

	for (i = 0; i < ops; i++) {
		char *p = map_anon(GRAN, PROT_READ | PROT_WRITE, 0);

		if (!p || munmap(p, GRAN))
			return -1;
	}
	return (bench_now() - t0) / ops;
}

/* 2: mmap(1 MiB, PROT_NONE) + mprotect + madvise(DONTNEED) + munmap. */
static double w_two_phase(void *arg, long ops)
{
	double t0 = bench_now();
	long i;

	for (i = 0; i < ops; i++) {
		char *p = map_anon(MIB, PROT_NONE, MAP_NORESERVE);

		if (!p || mprotect(p, GRAN, PROT_READ | PROT_WRITE) ||
		    madvise(p, GRAN, MADV_DONTNEED) || munmap(p, MIB))
			return -1;
	}
	return (bench_now() - t0) / ops;
}

/*
 * 3: first-touch writes, one per page: anonymous private memory with
 * huge pages off (the anchor), allowed, and shared memory (shmem, which
 * backs winvm's pages).
 */
enum touch_kind { TOUCH_ANON, TOUCH_THP, TOUCH_SHMEM };

static double w_touch(void *arg, long pages)
{
	enum touch_kind kind = *(enum touch_kind *)arg;
	size_t size = pages * PAGE;
	double t0, t;
	char *p;
	long i;
	int fd;

	if (kind == TOUCH_SHMEM) {
		fd = memfd_create("bench", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, size))
			return -1;
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (p == MAP_FAILED)
			return -1;
	} else {
		p = map_anon(size, PROT_READ | PROT_WRITE, 0);
		if (!p || madvise(p, size, kind == TOUCH_THP ? MADV_HUGEPAGE :
						    MADV_NOHUGEPAGE))
			return -1;
	}
	t0 = bench_now();
	for (i = 0; i < pages; i++)
		touch(p + i * PAGE);
	t = bench_now() - t0;
	munmap(p, size);
	return t / pages;
}

static void run_first_touch(void)
{
	static enum touch_kind kinds[] = { TOUCH_ANON, TOUCH_THP, TOUCH_SHMEM };
	static const char *const keys[] = {
		"first_touch", "first_touch_thp", "first_touch_shmem"
	};
	long pages = (bench_quick ? 16 : 256) * MIB / PAGE;
	int i;

	/* The extra anchors only set the scene: a quarter of the size. */
	for (i = 0; i < 3; i++)
		bench_run(keys[i], w_touch, &kinds[i], i ? pages / 4 : pages);
}

/*
 * 4: drop a populated 64 KiB range: madvise(DONTNEED) (the anchor), and
 * Wine's way, mmap(MAP_FIXED, PROT_NONE) then mprotect back to read-write.
 */
static int decommit_wine_style;

static double w_decommit(void *arg, long ops)
{
	char *p = arg;
	double t0, sum = 0;
	size_t off;
	long i;

	for (i = 0; i < ops; i++) {
		for (off = 0; off < GRAN; off += PAGE)
			touch(p + off);
		t0 = bench_now();
		if (decommit_wine_style) {
			if (mmap(p, GRAN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
				 MAP_FIXED | MAP_NORESERVE, -1, 0) != p ||
			    mprotect(p, GRAN, PROT_READ | PROT_WRITE))
				return -1;
		} else if (madvise(p, GRAN, MADV_DONTNEED)) {
			return -1;
		}
		sum += bench_now() - t0 - bench_clock_cost();
	}
	return sum / ops;
}

static void run_decommit(void)
{
	char *p = map_anon(GRAN, PROT_READ | PROT_WRITE, 0);
	long ops = bench_ops(100, 500);

	if (!p)
		return;
	decommit_wine_style = 0;
	bench_run("decommit", w_decommit, p, ops);
	decommit_wine_style = 1;
	bench_run("decommit_mmap_fixed", w_decommit, p, ops);
	munmap(p, GRAN);
}

/* 5: mprotect one populated page of a 16 MiB region RO and back. */
static double w_protect(void *arg, long ops)
{
	char *page = arg;
	double t0, sum = 0;
	long i;

	for (i = 0; i < ops; i++) {
		touch(page);
		t0 = bench_now();
		if (mprotect(page, PAGE, PROT_READ) ||
		    mprotect(page, PAGE, PROT_READ | PROT_WRITE))
			return -1;
		sum += bench_now() - t0 - bench_clock_cost();
	}
	return sum / ops;
}

static void run_protect(void)
{
	size_t size = 16 * MIB, off;
	char *p = map_anon(size, PROT_READ | PROT_WRITE, 0);
	char *page = p + size / 2;
	long before, during;

	if (!p)
		return;
	for (off = 0; off < size; off += PAGE)
		touch(p + off);
	before = count_maps();
	mprotect(page, PAGE, PROT_READ);
	during = count_maps();
	mprotect(page, PAGE, PROT_READ | PROT_WRITE);
	bench_out("I protect.maps_added %ld\n", during - before);
	bench_run("protect", w_protect, page, bench_ops(100, 1000));
	munmap(p, size);
}

/*
 * 9: the signal anchors. "guard": what a careful programmer writes for a
 * guard page with plain system calls: the page is PROT_NONE, the SIGSEGV
 * handler mprotects it back and returns, the access is retried, and the
 * loop arms it again. "sigsegv": the bare kernel round trip (fault, signal
 * delivery, sigreturn) with no system call in the handler: it points the
 * faulting instruction's base register at a scratch byte.
 */
static char *volatile fault_page;
static char scratch;
static volatile long fault_hits;
static volatile double fault_in;	/* when the handler ran, if asked */

static void on_segv_mprotect(int sig, siginfo_t *si, void *uc)
{
	if ((char *)si->si_addr - fault_page >= (long)PAGE ||
	    (char *)si->si_addr < fault_page)
		abort();
	if (fault_in < 0)
		fault_in = bench_now();
	mprotect(fault_page, PAGE, PROT_READ | PROT_WRITE);
	fault_hits++;
}

/* The breakdown workloads.c gives for winvm's guard pages. */
static void guard_breakdown(long ops)
{
	double t0, t1, t2, in = 0, out = 0, arm = 0;
	long i;

	for (i = 0; i < ops; i++) {
		fault_in = -1;
		t0 = bench_now();
		touch(fault_page);
		t1 = bench_now();
		mprotect(fault_page, PAGE, PROT_NONE);
		t2 = bench_now();
		in += fault_in - t0;
		out += t1 - fault_in;
		arm += t2 - t1;
	}
	fault_in = 0;
	bench_out("I guard.to_handler_ns %.0f\n", in / ops);
	bench_out("I guard.from_handler_ns %.0f\n", out / ops);
	bench_out("I guard.rearm_ns %.0f\n", arm / ops);
}

static void on_segv_redirect(int sig, siginfo_t *si, void *p)
{
	ucontext_t *uc = p;

	uc->uc_mcontext.gregs[REG_RBX] = (greg_t)&scratch;
	fault_hits++;
}

static double w_guard(void *arg, long ops)
{
	long hits = fault_hits, i;
	double t0 = bench_now();

	for (i = 0; i < ops; i++) {
		touch(fault_page);
		if (mprotect(fault_page, PAGE, PROT_NONE))
			return -1;
	}
	t0 = bench_now() - t0;
	return fault_hits - hits == ops ? t0 / ops : -1;
}

static double w_sigsegv(void *arg, long ops)
{
	long hits = fault_hits, i;
	double t0 = bench_now();

	for (i = 0; i < ops; i++)
		__asm__ volatile("movb $1, (%%rbx)"
				 : : "b"(fault_page) : "memory");
	t0 = bench_now() - t0;
	return fault_hits - hits == ops ? t0 / ops : -1;
}

static void run_guard(void)
{
	struct sigaction sa = { .sa_flags = SA_SIGINFO };
	long ops = bench_ops(100, 1000);

	fault_page = map_anon(GRAN, PROT_NONE, 0);
	if (!fault_page)
		return;
	sigemptyset(&sa.sa_mask);
	sa.sa_sigaction = on_segv_mprotect;
	sigaction(SIGSEGV, &sa, NULL);
	if (!bench_run("guard", w_guard, NULL, ops))
		guard_breakdown(bench_ops(50, 200));
	mprotect(fault_page, PAGE, PROT_NONE);
	sa.sa_sigaction = on_segv_redirect;
	sigaction(SIGSEGV, &sa, NULL);
	bench_run("sigsegv", w_sigsegv, NULL, ops);
	signal(SIGSEGV, SIG_DFL);
	munmap(fault_page, GRAN);
}

/*
 * 6, 7, 8: N pages of one anonymous mapping with alternating protection:
 * N VMAs, which the default vm.max_map_count caps at 65530.
 */
struct regions {
	char *base;
	long n;
};

static int regions_build(struct regions *r, long n, const char *key)
{
	long long slab0 = slab_bytes(), slab1;
	long maps0 = count_maps(), i;

	r->n = n;
	r->base = map_anon(n * PAGE, PROT_READ | PROT_WRITE, MAP_NORESERVE);
	if (!r->base)
		return -1;
	for (i = 1; i < n; i += 2) {
		if (mprotect(r->base + i * PAGE, PAGE, PROT_READ)) {
			bench_out("E %s mprotect failed after %ld regions: %s\n",
				  key, i, strerror(errno));
			bench_out("I %s.failed_at %ld\n", key, i);
			munmap(r->base, n * PAGE);
			r->base = NULL;
			return -1;
		}
	}
	slab1 = slab_bytes();
	bench_out("I %s.made %ld\n", key, n);
	bench_out("I %s.maps_added %ld\n", key, count_maps() - maps0);
	if (slab0 >= 0 && slab1 >= 0)
		bench_out("I %s.slab_bytes_per_region %.1f\n", key,
			  (double)(slab1 - slab0) / n);
	return 0;
}

/* The mprotect counterpart of workloads.c's w_toggle: merge and split. */
static double w_toggle(void *arg, long ops)
{
	struct regions *r = arg;
	uint64_t seed = 12345;
	double t0 = bench_now();
	long i;

	for (i = 0; i < ops; i++) {
		long pg = 2 + 2 * (long)(bench_rand(&seed) % ((r->n - 3) / 2));
		char *a = r->base + pg * PAGE;

		if (mprotect(a, PAGE, PROT_READ) ||
		    mprotect(a, PAGE, PROT_READ | PROT_WRITE))
			return -1;
	}
	return (bench_now() - t0) / (2 * ops);
}

/* Reading the whole of /proc/self/maps; ns per line (per VMA). */
static double w_maps(void *arg, long ops)
{
	static char buf[1 << 16];
	long lines = 0;
	double t0 = bench_now();
	ssize_t got, i;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((got = read(fd, buf, sizeof(buf))) > 0)
		for (i = 0; i < got; i++)
			lines += buf[i] == '\n';
	close(fd);
	t0 = bench_now() - t0;
	*(long *)arg = lines;
	return lines ? t0 / lines : -1;
}

static void run_regions(void)
{
	/* 100000 fails past vm.max_map_count: so would anything larger. */
	static const long full[] = { 1000, 10000, 100000 };
	static const long quick[] = { 1000, 10000 };
	const long *sizes = bench_quick ? quick : full;
	int i, count = bench_quick ? 2 : 3;
	struct regions r;
	char key[64];

	for (i = 0; i < count; i++) {
		snprintf(key, sizeof(key), "regions.%ld", sizes[i]);
		if (regions_build(&r, sizes[i], key))
			continue;
		snprintf(key, sizeof(key), "toggle.%ld", sizes[i]);
		bench_run(key, w_toggle, &r, bench_ops(100, 1000));
		munmap(r.base, r.n * PAGE);
	}
}

/* 8: the anchor of a VirtualQuery walk: /proc/self/maps with as many VMAs. */
static void run_walk(void)
{
	long n = bench_quick ? 1000 : 10000, lines;
	struct regions r;
	char key[64];

	snprintf(key, sizeof(key), "walkregions.%ld", n);
	if (regions_build(&r, n, key))
		return;
	snprintf(key, sizeof(key), "maps_read.%ld", n);
	bench_run(key, w_maps, &lines, 1);
	bench_out("I %s.lines %ld\n", key, lines);
	munmap(r.base, r.n * PAGE);
}

/*
 * 6: reservations with a guard page, the Linux way: mmap 64 KiB
 * read-write and mprotect its first page to PROT_NONE (two VMAs each),
 * until mmap or mprotect fails.
 */
static char *reserve_guard(void)
{
	char *p = map_anon(GRAN, PROT_READ | PROT_WRITE, MAP_NORESERVE);

	if (p && mprotect(p, PAGE, PROT_NONE)) {
		munmap(p, GRAN);
		p = NULL;
	}
	return p;
}

static double w_reserve_guard(void *arg, long ops)
{
	double t0 = bench_now();
	long i;

	for (i = 0; i < ops; i++) {
		char *p = reserve_guard();

		if (!p || munmap(p, GRAN))
			return -1;
	}
	return (bench_now() - t0) / ops;
}

static void run_reservations(void)
{
	long n = bench_quick ? 5000 : 200000, made = 0, i;
	char **res = calloc(n, sizeof(*res));

	if (!res)
		return;
	for (i = 0; i < n; i++) {
		res[i] = reserve_guard();
		if (!res[i]) {
			bench_out("E reservations failed at %ld: %s\n", i,
				  strerror(errno));
			break;
		}
		made++;
		if (made == 1000)
			bench_run("reserve_guard.1000", w_reserve_guard, NULL,
				  bench_ops(100, 500));
	}
	bench_out("I reservations.made %ld\n", made);
	bench_out("I reservations.wanted %ld\n", n);
	bench_out("I reservations.maps %ld\n", count_maps());
	for (i = 0; i < made; i++)
		munmap(res[i], GRAN);
	free(res);
}

/* 10: threads, as in workloads.c, with mmap/munmap/mprotect. */

/* First-touch faults on a private mapping of m->ops pages. */
static void *t_fault(void *p)
{
	struct bench_mt *m = p;
	size_t size = m->ops * PAGE;
	char *a = map_anon(size, PROT_READ | PROT_WRITE, 0);
	long i;

	if (!a || madvise(a, size, MADV_NOHUGEPAGE))
		m->bad = 1;
	bench_gate_wait(&m->gate);
	for (i = 0; a && i < m->ops; i++)
		touch(a + i * PAGE);
	bench_mt_done(m);
	if (a)
		munmap(a, size);
	return NULL;
}

/* Loops mprotect on the bystander page until the workers are done. */
static void *t_disturb(void *p)
{
	struct bench_mt *m = p;

	bench_gate_wait(&m->gate);
	while (bench_mt_running(m)) {
		if (mprotect(m->bystander, PAGE, PROT_READ) ||
		    mprotect(m->bystander, PAGE, PROT_READ | PROT_WRITE)) {
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
	long churn = bench_ops(100, 1000);
	long ioctls = bench_ops(500, 20000);
	long pages = bench_quick ? 256 : 1024;
	struct bench_mt m;
	unsigned int i;
	char *by;

	/* The bystander page sits inside a larger mapping: split + merge. */
	by = map_anon(16 * MIB, PROT_READ | PROT_WRITE, 0);
	if (!by)
		return;
	by += 8 * MIB;
	touch(by);
	if (open_winvm() < 0)
		ioctls = 0;
	for (i = 0; i < ARRAY_SIZE(counts); i++) {
		m = (struct bench_mt){ .fn = bench_mt_worker, .body = w_mmap,
				       .threads = counts[i], .ops = churn };
		bench_mt_figure("mt_churn", &m);

		if (ioctls) {
			m.body = w_ioctl;
			m.ops = ioctls;
			bench_mt_figure("mt_ioctl", &m);
		}

		bench_mt_fault_figures(t_fault, t_disturb, by, counts[i],
				       pages);
	}
}

/*
 * 12: write watch (bench.h) with plain system calls. "watch": what Wine
 * does, and a user-space GC with mprotect: the region is read-only, the
 * SIGSEGV handler records the page and makes it writable; taking the
 * written pages scans the record and makes the whole region read-only
 * again with one mprotect. "watch_soft_dirty": the kernel's soft-dirty
 * bits, read from /proc/self/pagemap and cleared through
 * /proc/self/clear_refs (which clears the whole process's).
 */
static char *watch_base;
static unsigned char watch_written[WATCH_PAGES];

static void on_segv_watch(int sig, siginfo_t *si, void *uc)
{
	size_t pg = ((char *)si->si_addr - watch_base) / PAGE;

	if ((char *)si->si_addr < watch_base || pg >= WATCH_PAGES)
		abort();
	watch_written[pg] = 1;
	mprotect(watch_base + pg * PAGE, PAGE, PROT_READ | PROT_WRITE);
}

static void watch_touch(long i)
{
	long j;

	for (j = 0; j < WATCH_WRITES; j++)
		touch(watch_base + (j * (WATCH_PAGES / WATCH_WRITES) +
				    i % (WATCH_PAGES / WATCH_WRITES)) * PAGE);
}

static double w_watch(void *arg, long ops)
{
	void *found[WATCH_WRITES + 1];
	double t0 = bench_now();
	long i, pg, n;

	for (i = 0; i < ops; i++) {
		watch_touch(i);
		for (n = 0, pg = 0; pg < WATCH_PAGES; pg++) {
			if (!watch_written[pg])
				continue;
			watch_written[pg] = 0;
			if (n <= WATCH_WRITES)
				found[n++] = watch_base + pg * PAGE;
		}
		if (n != WATCH_WRITES || found[0] != watch_base + i %
		    (WATCH_PAGES / WATCH_WRITES) * PAGE ||
		    mprotect(watch_base, WATCH_PAGES * PAGE, PROT_READ))
			return -1;
	}
	return (bench_now() - t0) / ops;
}

static double w_watch_soft_dirty(void *arg, long ops)
{
	static uint64_t entries[WATCH_PAGES];
	int *fds = arg;
	double t0 = bench_now();
	long i, pg, n;
	off_t off = (uintptr_t)watch_base / PAGE * sizeof(entries[0]);

	for (i = 0; i < ops; i++) {
		watch_touch(i);
		if (pread(fds[0], entries, sizeof(entries), off) !=
		    sizeof(entries))
			return -1;
		for (n = 0, pg = 0; pg < WATCH_PAGES; pg++)
			n += !!(entries[pg] & (1ULL << 55));
		if (n != WATCH_WRITES || write(fds[1], "4", 1) != 1)
			return -1;
	}
	return (bench_now() - t0) / ops;
}

static void run_watch(void)
{
	struct sigaction sa = { .sa_flags = SA_SIGINFO };
	int fds[2];

	watch_base = map_anon(WATCH_PAGES * PAGE, PROT_READ | PROT_WRITE, 0);
	if (!watch_base)
		return;
	memset(watch_base, 1, WATCH_PAGES * PAGE);
	mprotect(watch_base, WATCH_PAGES * PAGE, PROT_READ);
	sigemptyset(&sa.sa_mask);
	sa.sa_sigaction = on_segv_watch;
	sigaction(SIGSEGV, &sa, NULL);
	bench_run("watch", w_watch, NULL, bench_ops(20, 200));
	signal(SIGSEGV, SIG_DFL);

	mprotect(watch_base, WATCH_PAGES * PAGE, PROT_READ | PROT_WRITE);
	fds[0] = open("/proc/self/pagemap", O_RDONLY);
	fds[1] = open("/proc/self/clear_refs", O_WRONLY);
	if (fds[0] < 0 || fds[1] < 0 || write(fds[1], "4", 1) != 1)
		bench_out("E watch_soft_dirty: no soft-dirty bits here\n");
	else
		bench_run("watch_soft_dirty", w_watch_soft_dirty, fds,
			  bench_ops(20, 200));
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	munmap(watch_base, WATCH_PAGES * PAGE);
}

int main(int argc, char **argv)
{
	int i = bench_options(argc, argv);
	double t0;

	bench_out("I clock_cost_ns %.1f\n", bench_clock_cost());
	for (; i < argc; i++) {
		const char *w = argv[i];

		t0 = bench_now();
		if (!strcmp(w, "floor"))
			run_floor();
		else if (!strcmp(w, "alloc"))
			bench_run("alloc", w_mmap, NULL,
				  bench_ops(200, 2000));
		else if (!strcmp(w, "two_phase"))
			bench_run("two_phase", w_two_phase, NULL,
				  bench_ops(200, 1000));
		else if (!strcmp(w, "first_touch"))
			run_first_touch();
		else if (!strcmp(w, "decommit"))
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
			bench_out("E %s unknown workload\n", w);
		bench_out("I seconds.%s %.1f\n", w, (bench_now() - t0) / 1e9);
	}
	return 0;
}
