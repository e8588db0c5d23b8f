// SPDX-License-Identifier: GPL-2.0-only
/*
 * Allocation failures in every winvm call: make the 1st, 2nd, ... memory
 * allocation of a call fail (/proc/thread-self/fail-nth) until the call
 * makes no more, and check after each that the call either failed leaving
 * the address space exactly as it was, or succeeded with exactly the
 * result of an undisturbed run. Leaks are kmemleak's to find (run-tests
 * scans at the end). Needs a kernel with CONFIG_FAULT_INJECTION_DEBUG_FS,
 * FAILSLAB and FAIL_PAGE_ALLOC (the debug kernel); skips elsewhere.
 */
#define _GNU_SOURCE
#include <sys/mount.h>
#include <sys/wait.h>

#include "harness.h"
#include "winvm_util.h"

#define RW	(WINVM_PROT_READ | WINVM_PROT_WRITE)
#define R	WINVM_PROT_READ
#define RWX	(RW | WINVM_PROT_EXEC)
#define RES	WINVM_ALLOC_RESERVE
#define COM	WINVM_ALLOC_COMMIT
#define WINDOW	0x3a0000000000ULL
#define SNAP	64
#define MAX_NTH	400

static int write_str(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	close(fd);
	return n < 0 ? -errno : 0;
}

static int fail_nth_fd(void)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d/fail-nth", gettid());
	return open(path, O_RDWR);
}

/* Let fail-nth fail sleeping allocations too, quietly. */
static bool setup_injection(void)
{
	static const char *const knobs[][2] = {
		{ "/sys/kernel/debug/failslab/ignore-gfp-wait", "N" },
		{ "/sys/kernel/debug/failslab/verbose", "0" },
		{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N" },
		{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N" },
		{ "/sys/kernel/debug/fail_page_alloc/min-order", "0" },
		{ "/sys/kernel/debug/fail_page_alloc/verbose", "0" },
	};
	size_t i;
	int fd = fail_nth_fd();

	if (fd < 0)
		return false;
	close(fd);
	if (access("/sys/kernel/debug/failslab", F_OK))
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	for (i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++)
		if (write_str(knobs[i][0], knobs[i][1]))
			return false;
	return true;
}

/*
 * What the process's winvm state looks like, region by region, and which
 * pages of the window are marked written if it is write-watched.
 */
struct snapshot {
	struct winvm_query_args q[2 * SNAP];
	int n;
	__u64 written[16];
	long nwritten;
};

static void walk(int fd, uint64_t addr, struct snapshot *s)
{
	int i;

	for (i = 0; i < SNAP; i++) {
		struct winvm_query_args *q = &s->q[s->n];

		if (wv_query(fd, (void *)(uintptr_t)addr, q) ||
		    !q->out_region_size)
			return;
		s->n++;
		if (!(q->out_flags & WINVM_QUERY_WINVM) &&
		    q->out_state != WINVM_STATE_FREE)
			return;	/* past winvm's memory */
		addr = q->out_base + q->out_region_size;
	}
}

static void snap(int fd, struct snapshot *s)
{
	struct winvm_watch_args w = {
		.addr = WINDOW, .size = 16 * PAGE, .buf = (uintptr_t)s->written,
		.count = 16, .flags = WINVM_WATCH_REPORT,
	};

	s->n = 0;
	walk(fd, 0x10000, s);
	walk(fd, WINDOW, s);
	memset(s->written, 0, sizeof(s->written));
	s->nwritten = wv_ioctl(fd, WINVM_IOC_WATCH, &w) ? -1 : w.out_count;
}

static bool same(const struct snapshot *a, const struct snapshot *b)
{
	return a->n == b->n && !memcmp(a->q, b->q, a->n * sizeof(a->q[0])) &&
	       a->nwritten == b->nwritten &&
	       !memcmp(a->written, b->written, sizeof(a->written));
}

/*
 * Every page of every committed, readable region of winvm's must really be
 * readable: a VMA lost in the middle of a region shows on no other page.
 */
static bool usable(const struct snapshot *s)
{
	uint64_t off;
	int i;

	for (i = 0; i < s->n; i++) {
		const struct winvm_query_args *q = &s->q[i];

		if (!(q->out_flags & WINVM_QUERY_WINVM) ||
		    q->out_state != WINVM_STATE_COMMIT ||
		    !(q->out_prot & (WINVM_PROT_READ | WINVM_PROT_EXEC)) ||
		    (q->out_prot & WINVM_PROT_GUARD))
			continue;
		for (off = 0; off < q->out_region_size; off += PAGE)
			if (!try_read((void *)(uintptr_t)(q->out_base + off)))
				return false;
	}
	return true;
}

/*
 * A scenario prepares the context without injection, then does the one
 * call under test. 0 or -errno.
 */
struct scenario {
	const char *name;
	int (*prepare)(int fd);
	int (*op)(int fd);
};

static char *base(void)
{
	return (char *)(uintptr_t)WINDOW;
}

static int none(int fd)
{
	return 0;
}

static int reserve_fixed(int fd)
{
	return wv_alloc(fd, WINDOW, 16 * PAGE, RES, RW, NULL, NULL);
}

static int reserve_committed(int fd)
{
	return reserve_fixed(fd) ?: wv_commit(fd, base(), 4 * PAGE, RW);
}

static int op_reserve_any(int fd)
{
	return wv_alloc(fd, 0, 3 * PAGE, RES | COM, RW, NULL, NULL);
}

static int op_reserve_exec(int fd)
{
	return wv_alloc(fd, WINDOW + GRAN, 2 * PAGE, RES | COM, RWX, NULL,
			NULL);
}

static int op_commit(int fd)
{
	return wv_commit(fd, base() + 6 * PAGE, 4 * PAGE, RW);
}

static int op_protect(int fd)
{
	struct winvm_protect_args a = {
		.addr = WINDOW + PAGE, .size = 2 * PAGE, .prot = R,
	};

	return wv_ioctl(fd, WINVM_IOC_PROTECT, &a);
}

static int op_protect_exec(int fd)
{
	struct winvm_protect_args a = {
		.addr = WINDOW + PAGE, .size = PAGE, .prot = RWX,
	};

	return wv_ioctl(fd, WINVM_IOC_PROTECT, &a);
}

static int op_decommit(int fd)
{
	return wv_decommit(fd, base() + PAGE, 2 * PAGE);
}

static int op_partial_release(int fd)
{
	return wv_free(fd, base() + 2 * PAGE, PAGE, WINVM_FREE_RELEASE, NULL,
		       NULL);
}

static int op_release(int fd)
{
	return wv_release(fd, base());
}

static int op_lock(int fd)
{
	struct winvm_lock_args a = { .addr = WINDOW, .size = 4 * PAGE };

	return wv_ioctl(fd, WINVM_IOC_LOCK, &a);
}

static int op_reset(int fd)
{
	return wv_alloc(fd, WINDOW, 4 * PAGE, WINVM_ALLOC_RESET, 0, NULL, NULL);
}

/* Faults: the first touch allocates a page, a guard hit a tree node. */
static int op_touch(int fd)
{
	return try_write(base() + PAGE, 1) ? 0 : -EFAULT;
}

static int watched_committed(int fd)
{
	return wv_alloc(fd, WINDOW, 16 * PAGE, RES | COM | WINVM_ALLOC_WRITE_WATCH,
			RW, NULL, NULL);
}

/* The first write to a write-watched page records it. */
static int op_watched_touch(int fd)
{
	return try_write(base() + PAGE, 1) ? 0 : -EFAULT;
}

static int op_watch_reset(int fd)
{
	__u64 addrs[4];
	struct winvm_watch_args a = {
		.addr = WINDOW, .size = 16 * PAGE, .buf = (uintptr_t)addrs,
		.count = 4, .flags = WINVM_WATCH_REPORT | WINVM_WATCH_RESET,
	};

	if (!try_write(base() + PAGE, 1) || !try_write(base() + 3 * PAGE, 1))
		return -EFAULT;
	return wv_ioctl(fd, WINVM_IOC_WATCH, &a) ?: a.out_count == 2 ? 0 :
	       -EPROTO;
}

static int guard_prepared(int fd)
{
	struct winvm_protect_args a = {
		.addr = WINDOW, .size = PAGE, .prot = RW | WINVM_PROT_GUARD,
	};

	return reserve_committed(fd) ?: wv_ioctl(fd, WINVM_IOC_PROTECT, &a);
}

static int op_guard(int fd)
{
	/* The guard signal, then the access completes. */
	if (try_write(base(), 1))
		return -EPROTO;
	return try_write(base(), 1) ? 0 : -EFAULT;
}

static const struct scenario scenarios[] = {
	{ "reserve, new arena", none, op_reserve_any },
	{ "reserve in an existing arena", op_reserve_any, op_reserve_any },
	{ "reserve at an address", none, reserve_fixed },
	{ "reserve executable", reserve_fixed, op_reserve_exec },
	{ "commit", reserve_committed, op_commit },
	{ "protect", reserve_committed, op_protect },
	{ "protect to executable", reserve_committed, op_protect_exec },
	{ "decommit", reserve_committed, op_decommit },
	{ "partial release", reserve_committed, op_partial_release },
	{ "release", reserve_committed, op_release },
	{ "lock", reserve_committed, op_lock },
	{ "reset", reserve_committed, op_reset },
	{ "first touch", reserve_committed, op_touch },
	{ "guard hit", guard_prepared, op_guard },
	{ "write-watched first write", watched_committed, op_watched_touch },
	{ "write watch reset", watched_committed, op_watch_reset },
};

enum { CONSISTENT, INCONSISTENT, NOT_REACHED, BROKEN };

/*
 * In a child: prepare, then run the op with its @nth allocation failing.
 * Compare with @want, the state after an undisturbed run.
 */
static int one_run(const struct scenario *sc, int nth,
		   const struct snapshot *want, struct snapshot *out)
{
	struct snapshot before, after;
	int fd, nfd, ret;
	char buf[16];
	ssize_t n;

	probe_setup();
	fd = wv_open();
	if (fd < 0 || sc->prepare(fd))
		return BROKEN;
	snap(fd, &before);
	if (nth) {
		nfd = fail_nth_fd();
		snprintf(buf, sizeof(buf), "%d", nth);
		if (nfd < 0 || write(nfd, buf, strlen(buf)) < 0)
			return BROKEN;
		ret = sc->op(fd);
		n = pread(nfd, buf, sizeof(buf) - 1, 0);
		/* Reset, so that the checks below do not trip over it. */
		write(nfd, "0", 1);
		if (n <= 0)
			return BROKEN;
		buf[n] = 0;
		if (atoi(buf))
			return NOT_REACHED;
	} else {
		ret = sc->op(fd);
		if (ret)
			return BROKEN;
	}
	snap(fd, &after);
	if (out)
		*out = after;
	if (!usable(&after))
		return INCONSISTENT;
	if (!nth)
		return CONSISTENT;
	if (ret)
		return same(&before, &after) ? CONSISTENT : INCONSISTENT;
	return same(want, &after) ? CONSISTENT : INCONSISTENT;
}

/* Run one_run() in a fresh child and bring its verdict back. */
static int run_child(const struct scenario *sc, int nth,
		     struct snapshot *want)
{
	struct snapshot *shared;
	int status, verdict;
	pid_t pid;

	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return BROKEN;
	pid = fork();
	if (pid == 0)
		_exit(one_run(sc, nth, want, nth ? NULL : shared));
	waitpid(pid, &status, 0);
	verdict = WIFEXITED(status) ? WEXITSTATUS(status) : BROKEN;
	if (!nth && verdict == CONSISTENT)
		*want = *shared;
	munmap(shared, sizeof(*shared));
	return verdict;
}

FIXTURE(failnth) {
	int unused;
};

FIXTURE_SETUP(failnth)
{
	if (access("/dev/winvm", F_OK))
		SETUP_SKIP("/dev/winvm not present: load winvm.ko");
	if (!setup_injection())
		SETUP_SKIP("no fail-nth fault injection in this kernel");
}

FIXTURE_TEARDOWN(failnth)
{
}

/*
 * Assert that failing each allocation of each call, in turn, leaves the
 * process either as before the call or as after a clean one.
 */
TEST_F_TIMEOUT(failnth, every_allocation, 1800)
{
	struct snapshot *want = malloc(sizeof(*want));
	int points = 0;
	size_t i;

	ASSERT_NE(NULL, want);
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		const struct scenario *sc = &scenarios[i];
		int nth, verdict;

		ASSERT_EQ(CONSISTENT, run_child(sc, 0, want))
			TH_LOG("%s: the undisturbed run failed", sc->name);
		for (nth = 1; nth <= MAX_NTH; nth++) {
			verdict = run_child(sc, nth, want);
			if (verdict == NOT_REACHED)
				break;
			EXPECT_EQ(CONSISTENT, verdict)
				TH_LOG("%s: allocation %d failed: %s", sc->name,
				       nth, verdict == BROKEN ? "the run broke" :
				       "inconsistent state");
			points++;
		}
		EXPECT_LT(nth, MAX_NTH) TH_LOG("%s: no end in sight", sc->name);
	}
	printf("# fail-nth: %d injection points in %zu calls\n", points,
	       sizeof(scenarios) / sizeof(scenarios[0]));
	free(want);
}

/* Assert that opening the device survives each allocation failing. */
TEST_F(failnth, open)
{
	int nth, points = 0;

	for (nth = 1; nth <= MAX_NTH; nth++) {
		int nfd = fail_nth_fd(), fd, left;
		char buf[16];
		ssize_t n;

		ASSERT_LE(0, nfd);
		snprintf(buf, sizeof(buf), "%d", nth);
		ASSERT_LT(0, write(nfd, buf, strlen(buf)));
		fd = wv_open();
		n = pread(nfd, buf, sizeof(buf) - 1, 0);
		write(nfd, "0", 1);
		close(nfd);
		ASSERT_LT(0, n);
		buf[n] = 0;
		left = atoi(buf);
		if (fd >= 0)
			close(fd);
		else
			EXPECT_EQ(ENOMEM, errno);
		if (left)
			break;
		points++;
	}
	EXPECT_LT(nth, MAX_NTH);
	printf("# fail-nth: %d injection points in open\n", points);
}

TEST_HARNESS_MAIN
