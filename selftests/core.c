// SPDX-License-Identifier: GPL-2.0-only
/*
 * winvm core selftests: reserve, commit, decommit, release and query on
 * /dev/winvm, at the ioctl level.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"
#include "winvm_util.h"

#define RW	(WINVM_PROT_READ | WINVM_PROT_WRITE)
#define RX	(WINVM_PROT_READ | WINVM_PROT_EXEC)
#define RWX	(WINVM_PROT_READ | WINVM_PROT_WRITE | WINVM_PROT_EXEC)
#define R	WINVM_PROT_READ
#define RES	WINVM_ALLOC_RESERVE
#define COM	WINVM_ALLOC_COMMIT

/*
 * The per-process RSS counters lag: each thread batches up to 64 updates
 * before folding them in (SPLIT_RSS_COUNTING).
 */
#define RSS_SLACK_KB	(64 * 4)

FIXTURE(winvm) {
	int fd;
	struct winvm_info info;
};

FIXTURE_SETUP(winvm)
{
	self->fd = wv_open();
	if (self->fd < 0 && (errno == ENOENT || errno == ENODEV))
		SETUP_SKIP("/dev/winvm not present: load winvm.ko");
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_GET_INFO, &self->info));
	probe_setup();
}

#define MAX_MAP_COUNT	"/proc/sys/vm/max_map_count"

/* A sysctl's value, or -1. */
static long sysctl_read(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int sysctl_write(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	int ret;

	if (!f)
		return -errno;
	ret = fprintf(f, "%ld", v) < 0;
	return fclose(f) || ret ? -EIO : 0;
}

/* vm.max_map_count as a test found it before lowering it (0: untouched). */
static long saved_max_map_count;

FIXTURE_TEARDOWN(winvm)
{
	if (saved_max_map_count)
		sysctl_write(MAX_MAP_COUNT, saved_max_map_count);
	if (self->fd >= 0)
		close(self->fd);
}

/* Assert that the module reports the Windows address-space parameters. */
TEST_F(winvm, get_info)
{
	struct winvm_info info;

	memset(&info, 0xcc, sizeof(info));
	ASSERT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_GET_INFO, &info));
	EXPECT_EQ(WINVM_API_VERSION, info.api_version);
	EXPECT_EQ(PAGE, info.page_size);
	EXPECT_EQ(GRAN, info.granularity);
	EXPECT_EQ(0x10000, info.min_address);
	EXPECT_EQ(0x7ffffffeffffULL, info.max_address);
	EXPECT_TRUE(info.features & WINVM_FEATURE_PARTIAL_RELEASE);
}

/* Assert that a reservation is 64 KiB aligned and reported as reserved. */
TEST_F(winvm, reserve_query)
{
	struct winvm_query_args q;
	uint64_t addr, size;
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 0xfffc, RES, 0, &addr, &size));
	p = (char *)(uintptr_t)addr;
	EXPECT_EQ(0, addr % GRAN);
	EXPECT_EQ(0x10000, size);

	ASSERT_EQ(0, wv_query(self->fd, p + 0x123, &q));
	EXPECT_EQ(WINVM_QUERY_WINVM, q.out_flags);
	EXPECT_EQ(addr, q.out_base);
	EXPECT_EQ(addr, q.out_alloc_base);
	EXPECT_EQ(0x10000, q.out_region_size);
	EXPECT_EQ(0, q.out_alloc_prot);
	EXPECT_EQ(0, q.out_prot);
	EXPECT_EQ(WINVM_STATE_RESERVE, q.out_state);
	EXPECT_EQ(WINVM_TYPE_PRIVATE, q.out_type);
	EXPECT_EQ(addr + 0x123, q.addr);

	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that reserved pages fault on every kind of access. */
TEST_F(winvm, reserve_inaccessible)
{
	char *p = wv_reserve(self->fd, 2 * PAGE, RW);

	ASSERT_NE(NULL, p);
	EXPECT_FALSE(try_read(p));
	EXPECT_EQ(SIGSEGV, probe_info.si_signo);
	EXPECT_EQ(SEGV_MAPERR, probe_info.si_code);
	EXPECT_EQ(p, probe_info.si_addr);
	EXPECT_FALSE(try_write(p + PAGE + 7, 1));
	EXPECT_EQ(SEGV_MAPERR, probe_info.si_code);
	EXPECT_EQ(p + PAGE + 7, probe_info.si_addr);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that committed pages read as zero and keep what is written. */
TEST_F(winvm, commit_zero_and_writable)
{
	char *p;
	int i;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 4 * PAGE, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	for (i = 0; i < 4; i++) {
		ASSERT_TRUE(try_read(p + i * PAGE));
		EXPECT_EQ(0, p[i * PAGE]);
		EXPECT_EQ(0, p[i * PAGE + PAGE - 1]);
		ASSERT_TRUE(try_write(p + i * PAGE, 'a' + i));
	}
	for (i = 0; i < 4; i++)
		EXPECT_EQ('a' + i, p[i * PAGE]);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that committing one page splits the query into three regions. */
TEST_F(winvm, commit_splits_regions)
{
	struct winvm_query_args q;
	uint64_t addr, size;
	char *p = wv_reserve(self->fd, GRAN, RW);

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, wv_alloc(self->fd, (uintptr_t)p + PAGE, PAGE, COM, R,
			      &addr, &size));
	EXPECT_EQ((uintptr_t)p + PAGE, addr);
	EXPECT_EQ(PAGE, size);

	ASSERT_EQ(0, wv_query(self->fd, p, &q));
	EXPECT_EQ(WINVM_STATE_RESERVE, q.out_state);
	EXPECT_EQ(PAGE, q.out_region_size);
	EXPECT_EQ(RW, q.out_alloc_prot);

	ASSERT_EQ(0, wv_query(self->fd, p + PAGE + 5, &q));
	EXPECT_EQ((uintptr_t)p + PAGE, q.out_base);
	EXPECT_EQ((uintptr_t)p, q.out_alloc_base);
	EXPECT_EQ(WINVM_STATE_COMMIT, q.out_state);
	EXPECT_EQ(R, q.out_prot);
	EXPECT_EQ(RW, q.out_alloc_prot);
	EXPECT_EQ(PAGE, q.out_region_size);

	ASSERT_EQ(0, wv_query(self->fd, p + 2 * PAGE, &q));
	EXPECT_EQ(WINVM_STATE_RESERVE, q.out_state);
	EXPECT_EQ(GRAN - 2 * PAGE, q.out_region_size);
	EXPECT_EQ(0, q.out_prot);

	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that committing neighbouring runs of equal protection merges them. */
TEST_F(winvm, commit_merges_regions)
{
	struct winvm_query_args q;
	char *p = wv_reserve(self->fd, GRAN, RW);

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, wv_commit(self->fd, p + 2 * PAGE, PAGE, RW));
	ASSERT_EQ(0, wv_commit(self->fd, p, PAGE, RW));
	ASSERT_EQ(0, wv_commit(self->fd, p + PAGE, PAGE, RW));
	ASSERT_EQ(0, wv_query(self->fd, p, &q));
	EXPECT_EQ(3 * PAGE, q.out_region_size);
	EXPECT_EQ(WINVM_STATE_COMMIT, q.out_state);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that commit covers every page touched by [addr, addr + size). */
TEST_F(winvm, commit_rounds_to_pages)
{
	uint64_t addr, size;
	char *p = wv_reserve(self->fd, GRAN, RW);

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, wv_alloc(self->fd, (uintptr_t)p + PAGE - 1, 2, COM, RW,
			      &addr, &size));
	EXPECT_EQ((uintptr_t)p, addr);
	EXPECT_EQ(2 * PAGE, size);
	EXPECT_TRUE(try_write(p, 1));
	EXPECT_TRUE(try_write(p + 2 * PAGE - 1, 1));
	EXPECT_FALSE(try_read(p + 2 * PAGE));
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that committing committed pages keeps their content. */
TEST_F(winvm, recommit_keeps_content)
{
	struct winvm_query_args q;
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 2 * PAGE, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	memset(p, 0x5a, 2 * PAGE);
	ASSERT_EQ(0, wv_commit(self->fd, p, 2 * PAGE, RW));
	EXPECT_EQ(0x5a, p[0]);
	ASSERT_EQ(0, wv_commit(self->fd, p, PAGE, R));
	EXPECT_EQ(0x5a, p[PAGE - 1]);
	ASSERT_EQ(0, wv_query(self->fd, p, &q));
	EXPECT_EQ(R, q.out_prot);
	EXPECT_EQ(PAGE, q.out_region_size);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that a read-only page faults on write and keeps its content. */
TEST_F(winvm, readonly_enforced)
{
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, PAGE, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	p[10] = 42;
	ASSERT_EQ(0, wv_commit(self->fd, p, PAGE, R));
	EXPECT_TRUE(try_read(p + 10));
	EXPECT_EQ(42, p[10]);
	EXPECT_FALSE(try_write(p + 10, 1));
	EXPECT_EQ(SIGSEGV, probe_info.si_signo);
	EXPECT_EQ(p + 10, probe_info.si_addr);
	EXPECT_EQ(42, p[10]);
	ASSERT_EQ(0, wv_commit(self->fd, p, PAGE, RW));
	EXPECT_TRUE(try_write(p + 10, 7));
	EXPECT_EQ(7, p[10]);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that a committed no-access page faults and keeps its content. */
TEST_F(winvm, noaccess_enforced)
{
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, PAGE, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	p[0] = 9;
	ASSERT_EQ(0, wv_commit(self->fd, p, PAGE, 0));
	EXPECT_FALSE(try_read(p));
	EXPECT_EQ(SEGV_MAPERR, probe_info.si_code);
	EXPECT_FALSE(try_write(p, 1));
	ASSERT_EQ(0, wv_commit(self->fd, p, PAGE, R));
	EXPECT_EQ(9, p[0]);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that only executable pages run code; the others fault. */
TEST_F(winvm, exec_enforced)
{
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 2 * PAGE, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	p[0] = (char)0xc3;		/* ret */
	p[PAGE] = (char)0xc3;
	EXPECT_FALSE(try_exec(p));
	EXPECT_EQ(SEGV_ACCERR, probe_info.si_code);
	EXPECT_EQ(p, probe_info.si_addr);

	ASSERT_EQ(0, wv_commit(self->fd, p, PAGE, RX));
	EXPECT_TRUE(try_exec(p));
	EXPECT_FALSE(try_exec(p + PAGE));
	EXPECT_TRUE(try_write(p + PAGE + 1, 1));
	EXPECT_FALSE(try_write(p + 1, 1));

	ASSERT_EQ(0, wv_commit(self->fd, p, 2 * PAGE, RWX));
	EXPECT_TRUE(try_exec(p));
	EXPECT_TRUE(try_exec(p + PAGE));
	EXPECT_TRUE(try_write(p + 1, 1));

	ASSERT_EQ(0, wv_commit(self->fd, p, PAGE, RW));
	EXPECT_FALSE(try_exec(p));
	EXPECT_TRUE(try_exec(p + PAGE));
	EXPECT_EQ((char)0xc3, p[0]);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that exec toggles do not leave a trail of VMAs behind. */
TEST_F(winvm, exec_toggle_no_vma_growth)
{
	long before, after;
	char *p;
	int i;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 64 * PAGE, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	before = vma_count();
	for (i = 0; i < 64; i += 2) {
		ASSERT_EQ(0, wv_commit(self->fd, p + i * PAGE, PAGE, RX));
		ASSERT_EQ(0, wv_commit(self->fd, p + i * PAGE, PAGE, RW));
	}
	after = vma_count();
	EXPECT_EQ(before, after);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/*
 * Assert that making pages executable never takes access away meanwhile:
 * while one thread flips a range between RW and RWX, another reads and
 * writes it without a fault. (The VMA becomes executable before the pages
 * are: a fault in between used to get SIGSEGV.)
 */
struct flipper {
	int fd;
	char *p;
	int stop;
	int failed;
	int flips;
};

/*
 * The window is short: 40000 flips (10 s at most) saw 10 of 230000 probes
 * fault with the previous module.
 */
static void *flip_exec(void *data)
{
	struct flipper *f = data;
	time_t until = time(NULL) + 10;

	for (; f->flips < 40000 && time(NULL) < until; f->flips++)
		if (wv_commit(f->fd, f->p, 8 * PAGE, f->flips & 1 ? RW : RWX))
			f->failed++;
	__atomic_store_n(&f->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

TEST_F_TIMEOUT(winvm, exec_change_keeps_access, 120)
{
	struct flipper f = { .fd = self->fd };
	unsigned long probes = 0, lost = 0;
	pthread_t t;
	int i;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 8 * PAGE, RES | COM, RW,
			      (uint64_t *)&f.p, NULL));
	ASSERT_EQ(0, pthread_create(&t, NULL, flip_exec, &f));
	while (!__atomic_load_n(&f.stop, __ATOMIC_ACQUIRE)) {
		for (i = 0; i < 8; i++, probes++)
			if (!try_read(f.p + i * PAGE) ||
			    !try_write(f.p + i * PAGE + 1, (char)i))
				lost++;
	}
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(0, f.failed);
	EXPECT_EQ(0, lost) TH_LOG("%lu of %lu probes faulted in %d flips",
				  lost, probes, f.flips);
	EXPECT_EQ(0, wv_release(self->fd, f.p));
}

/* Assert that commit outside one allocation fails with ENXIO. */
TEST_F(winvm, commit_outside_allocation)
{
	char *p = wv_reserve(self->fd, 2 * PAGE, RW);

	ASSERT_NE(NULL, p);
	EXPECT_EQ(-ENXIO, wv_commit(self->fd, p + PAGE, 2 * PAGE, RW));
	EXPECT_EQ(-ENXIO, wv_commit(self->fd, p + 2 * PAGE, PAGE, RW));
	EXPECT_FALSE(try_read(p + PAGE));
	EXPECT_EQ(0, wv_release(self->fd, p));
	EXPECT_EQ(-ENXIO, wv_commit(self->fd, p, PAGE, RW));
}

/* Assert that reserving over an allocation conflicts, even unaligned. */
TEST_F(winvm, reserve_conflict)
{
	uint64_t addr = POISON64;
	char *p = wv_reserve(self->fd, PAGE, RW);

	ASSERT_NE(NULL, p);
	EXPECT_EQ(-EEXIST, wv_alloc(self->fd, (uintptr_t)p + 0x1000, PAGE,
				    RES | COM, RW, &addr, NULL));
	EXPECT_EQ(POISON64, addr);
	/* The unused rest of the 64 KiB granule is not reservable either. */
	EXPECT_EQ(-EEXIST, wv_alloc(self->fd, (uintptr_t)p + 0x8000, PAGE,
				    RES, RW, NULL, NULL));
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that reserving over a mapping winvm did not make conflicts. */
TEST_F(winvm, reserve_over_linux_mapping)
{
	char *m = mmap(NULL, 4 * GRAN, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	uintptr_t a;

	ASSERT_NE(MAP_FAILED, m);
	a = ((uintptr_t)m + GRAN - 1) & ~(GRAN - 1);
	EXPECT_EQ(-EEXIST, wv_alloc(self->fd, a, GRAN, RES, RW, NULL, NULL));
	munmap(m, 4 * GRAN);
}

/* Assert that a released range can be reserved again at the same address. */
TEST_F(winvm, reserve_fixed_reuse)
{
	uint64_t addr, again;
	char *p = wv_reserve(self->fd, 2 * PAGE, RWX);

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, wv_release(self->fd, p));
	ASSERT_EQ(0, wv_alloc(self->fd, (uintptr_t)p, PAGE, RES | COM, RWX,
			      &addr, NULL));
	EXPECT_EQ((uintptr_t)p, addr);
	ASSERT_EQ(0, wv_release(self->fd, p));
	/* An address in the middle of a granule rounds down to it. */
	ASSERT_EQ(0, wv_alloc(self->fd, (uintptr_t)p + 0x1234, 0x10, RES, RW,
			      &again, NULL));
	EXPECT_EQ((uintptr_t)p, again);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that a fixed reservation far from others gets its own space. */
TEST_F(winvm, reserve_fixed_free_space)
{
	uintptr_t a = 0x300000000000ULL;
	struct winvm_query_args q;
	uint64_t addr, size;

	ASSERT_EQ(0, wv_alloc(self->fd, a + 5, 3 * PAGE, RES | COM, RW,
			      &addr, &size));
	EXPECT_EQ(a, addr);
	EXPECT_EQ(4 * PAGE, size);	/* up to the page holding a+5+3P-1 */
	EXPECT_TRUE(try_write((char *)a + 4 * PAGE - 1, 1));
	EXPECT_FALSE(try_read((char *)a + 4 * PAGE));
	ASSERT_EQ(0, wv_query(self->fd, (char *)a + 4 * PAGE, &q));
	EXPECT_EQ(WINVM_STATE_FREE, q.out_state);
	EXPECT_EQ(0, wv_release(self->fd, (void *)a));
	ASSERT_EQ(0, wv_query(self->fd, (void *)a, &q));
	EXPECT_EQ(WINVM_STATE_FREE, q.out_state);
}

/* Assert that MEM_TOP_DOWN places a reservation above bottom-up ones. */
TEST_F(winvm, reserve_top_down)
{
	uint64_t low, high;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES, RW, &low, NULL));
	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES | WINVM_ALLOC_TOP_DOWN,
			      RW, &high, NULL));
	EXPECT_GT(high, low);
	EXPECT_GT(high, 0x100000000ULL);
	EXPECT_EQ(0, high % GRAN);
	EXPECT_EQ(0, wv_release(self->fd, (void *)(uintptr_t)low));
	EXPECT_EQ(0, wv_release(self->fd, (void *)(uintptr_t)high));
}

/* Assert that a huge reservation is instant and costs no memory. */
TEST_F(winvm, reserve_one_tib)
{
	const uint64_t tib = 1ULL << 40;
	struct winvm_query_args q;
	long rss_before, rss_after;
	uint64_t addr;
	char *p;

	rss_before = proc_kb("/proc/self/status", "VmRSS");
	ASSERT_EQ(0, wv_alloc(self->fd, 0, tib, RES, RW, &addr, NULL));
	p = (char *)(uintptr_t)addr;
	ASSERT_EQ(0, wv_query(self->fd, p, &q));
	EXPECT_EQ(tib, q.out_region_size);
	ASSERT_EQ(0, wv_commit(self->fd, p + tib / 2, PAGE, RW));
	EXPECT_TRUE(try_write(p + tib / 2, 1));
	EXPECT_FALSE(try_read(p + tib - 1));
	rss_after = proc_kb("/proc/self/status", "VmRSS");
	EXPECT_LT(rss_after - rss_before, 1024);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that decommit frees memory at once and pages come back zeroed. */
TEST_F(winvm, decommit_frees_memory)
{
	const uint64_t size = 16 << 20;
	struct winvm_query_args q;
	long before, touched, after;
	uint64_t i;
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, size, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	before = proc_kb("/proc/self/status", "RssShmem");
	for (i = 0; i < size; i += PAGE)
		p[i] = 1;
	touched = proc_kb("/proc/self/status", "RssShmem");
	EXPECT_GE(touched - before, (long)(size >> 10) - RSS_SLACK_KB);

	ASSERT_EQ(0, wv_decommit(self->fd, p, size));
	after = proc_kb("/proc/self/status", "RssShmem");
	EXPECT_LE(after - before, RSS_SLACK_KB);
	ASSERT_EQ(0, wv_query(self->fd, p, &q));
	EXPECT_EQ(WINVM_STATE_RESERVE, q.out_state);
	EXPECT_EQ(size, q.out_region_size);
	EXPECT_FALSE(try_read(p + PAGE));

	ASSERT_EQ(0, wv_commit(self->fd, p, size, RW));
	for (i = 0; i < size; i += 64 * PAGE)
		ASSERT_EQ(0, p[i]);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/*
 * Assert that a page's first touch, a read or a write, finds every byte of
 * it zero, when the pages come from memory just freed full of a pattern:
 * the fault creates the page without clearing it itself where the page
 * allocator clears (init_on_alloc), so a page handed out uncleared would
 * show the pattern here.
 */
TEST_F(winvm, first_touch_whole_page_zero)
{
	const uint64_t size = 4 << 20;
	uint64_t i, j, bad = 0;
	int round;
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, size, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	for (round = 0; round < 4; round++) {
		memset(p, 0xa5, size);
		ASSERT_EQ(0, wv_decommit(self->fd, p, size));
		ASSERT_EQ(0, wv_commit(self->fd, p, size, RW));
		for (i = 0; i < size; i += PAGE) {
			/* Every other page is first written, in its middle. */
			if ((i / PAGE + round) & 1)
				p[i + PAGE / 2] = 0;
			for (j = 0; j < PAGE; j += sizeof(uint64_t))
				bad += *(uint64_t *)(p + i + j) != 0;
		}
	}
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that decommit of a range mixing committed and reserved succeeds. */
TEST_F(winvm, decommit_mixed)
{
	uint64_t addr, size;
	char *p = wv_reserve(self->fd, GRAN, RW);

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, wv_commit(self->fd, p, PAGE, RW));
	ASSERT_EQ(0, wv_free(self->fd, p, GRAN, WINVM_FREE_DECOMMIT, &addr,
			     &size));
	EXPECT_EQ((uintptr_t)p, addr);
	EXPECT_EQ(GRAN, size);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert the decommit address rules: size 0 means "from the base". */
TEST_F(winvm, decommit_rules)
{
	uint64_t addr = POISON64, size = POISON64;
	struct winvm_query_args q;
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	/* Two bytes straddling a page boundary decommit both pages. */
	ASSERT_EQ(0, wv_free(self->fd, p + 0x1fff, 2, WINVM_FREE_DECOMMIT,
			     &addr, &size));
	EXPECT_EQ((uintptr_t)p + PAGE, addr);
	EXPECT_EQ(2 * PAGE, size);
	/* Size 0 away from the base: not at base, outputs untouched. */
	addr = size = POISON64;
	EXPECT_EQ(-ENXIO, wv_free(self->fd, p + 0x1001, 0,
				  WINVM_FREE_DECOMMIT, &addr, &size));
	EXPECT_EQ(POISON64, addr);
	EXPECT_EQ(POISON64, size);
	/* Size 0 in the base page: the whole allocation. */
	ASSERT_EQ(0, wv_free(self->fd, p + 0xffe, 0, WINVM_FREE_DECOMMIT,
			     &addr, &size));
	EXPECT_EQ((uintptr_t)p, addr);
	EXPECT_EQ(GRAN, size);
	ASSERT_EQ(0, wv_query(self->fd, p, &q));
	EXPECT_EQ(WINVM_STATE_RESERVE, q.out_state);
	EXPECT_EQ(GRAN, q.out_region_size);
	/* Past the end of the allocation. */
	EXPECT_EQ(-EINVAL, wv_decommit(self->fd, p, GRAN + PAGE));
	EXPECT_EQ(0, wv_release(self->fd, p));
	/* Free memory. */
	EXPECT_EQ(-ENXIO, wv_decommit(self->fd, p, PAGE));
}

/* Assert the release rules: whole allocations from the base only. */
TEST_F(winvm, release_rules)
{
	uint64_t addr = POISON64, size = POISON64;
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	/* 54: size 0 away from the base: not at base, outputs untouched. */
	EXPECT_EQ(-ENXIO, wv_free(self->fd, p + 0x1001, 0, WINVM_FREE_RELEASE,
				  &addr, &size));
	EXPECT_EQ(POISON64, addr);
	EXPECT_EQ(POISON64, size);
	/* 56: past the end of the allocation: refused, outputs untouched. */
	addr = size = 0;
	EXPECT_EQ(-EINVAL, wv_free(self->fd, p, 0x11000, WINVM_FREE_RELEASE,
				   &addr, &size));
	EXPECT_EQ(POISON64, addr);
	EXPECT_EQ(POISON64, size);
	addr = size = 0;
	EXPECT_EQ(-EINVAL, wv_free(self->fd, p + 0x1001, 0xffff,
				   WINVM_FREE_RELEASE, &addr, &size));
	EXPECT_EQ(POISON64, addr);
	EXPECT_EQ(POISON64, size);
	EXPECT_TRUE(try_write(p + GRAN - 1, 1));
	ASSERT_EQ(0, wv_free(self->fd, p + 0xfff, 0, WINVM_FREE_RELEASE,
			     &addr, &size));
	EXPECT_EQ((uintptr_t)p, addr);
	EXPECT_EQ(GRAN, size);
	EXPECT_FALSE(try_read(p));
	EXPECT_EQ(-ENXIO, wv_release(self->fd, p));
}

/* Assert that a released range is free: reported so, and inaccessible. */
TEST_F(winvm, release_makes_free)
{
	struct winvm_query_args q;
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 2 * PAGE, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	p[0] = 1;
	ASSERT_EQ(0, wv_release(self->fd, p));
	ASSERT_EQ(0, wv_query(self->fd, p + 17, &q));
	EXPECT_EQ(0, q.out_flags);
	EXPECT_EQ((uintptr_t)p, q.out_base);
	EXPECT_EQ(0, q.out_alloc_base);
	EXPECT_EQ(0, q.out_alloc_prot);
	EXPECT_EQ(0, q.out_prot);
	EXPECT_EQ(WINVM_STATE_FREE, q.out_state);
	EXPECT_EQ(WINVM_TYPE_NONE, q.out_type);
	EXPECT_GE(q.out_region_size, GRAN);
	EXPECT_FALSE(try_read(p));
	EXPECT_EQ(SEGV_MAPERR, probe_info.si_code);
}

/*
 * Free room left by partial releases starts and ends on page boundaries:
 * placing a 64 KiB reservation there must not overlap what is still
 * allocated on either side, in either direction.
 */
TEST_F(winvm, placement_around_partial_releases)
{
	struct winvm_alloc_ex_args ex = {
		.alloc = { .size = GRAN, .flags = RES, .prot = RW },
	};
	struct winvm_query_args q;
	char *w, *a, *b;

	/* Two adjacent granules of a window known to be free. */
	ASSERT_EQ(0, wv_alloc(self->fd, 0, 4 * GRAN, RES, RW,
			      (uint64_t *)&w, NULL));
	ASSERT_EQ(0, wv_release(self->fd, w));
	a = w + GRAN;
	b = w + 2 * GRAN;
	ASSERT_EQ(0, wv_alloc(self->fd, (uintptr_t)a, GRAN, RES | COM, RW,
			      NULL, NULL));
	ASSERT_EQ(0, wv_alloc(self->fd, (uintptr_t)b, GRAN, RES | COM, RW,
			      NULL, NULL));
	a[0] = 1;
	b[GRAN - 1] = 2;
	/* Free: [a + PAGE, b + PAGE), 64 KiB, but at no granule boundary. */
	ASSERT_EQ(0, wv_free(self->fd, a + PAGE, GRAN - PAGE,
			     WINVM_FREE_RELEASE, NULL, NULL));
	ASSERT_EQ(0, wv_free(self->fd, b, PAGE, WINVM_FREE_RELEASE, NULL,
			     NULL));

	ex.lowest = (uintptr_t)a;
	ex.highest = (uintptr_t)b + GRAN - 1;
	EXPECT_EQ(-ENOMEM, wv_ioctl(self->fd, WINVM_IOC_ALLOC_EX, &ex));
	ex.alloc.flags = RES | WINVM_ALLOC_TOP_DOWN;
	EXPECT_EQ(-ENOMEM, wv_ioctl(self->fd, WINVM_IOC_ALLOC_EX, &ex));

	ASSERT_EQ(0, wv_query(self->fd, a, &q));
	EXPECT_EQ((uintptr_t)a, q.out_alloc_base);
	EXPECT_EQ(PAGE, q.out_region_size);
	EXPECT_EQ(WINVM_STATE_COMMIT, q.out_state);
	ASSERT_EQ(0, wv_query(self->fd, b + PAGE, &q));
	EXPECT_EQ((uintptr_t)b + PAGE, q.out_alloc_base);
	EXPECT_EQ(GRAN - PAGE, q.out_region_size);
	EXPECT_EQ(1, a[0]);
	EXPECT_EQ(2, b[GRAN - 1]);
	EXPECT_EQ(0, wv_release(self->fd, a));
	EXPECT_EQ(0, wv_release(self->fd, b + PAGE));
}

/* Assert NT partial release: the pieces become allocations of their own. */
TEST_F(winvm, partial_release)
{
	struct winvm_query_args q;
	uint64_t addr, size;
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	memset(p, 7, GRAN);
	ASSERT_EQ(0, wv_free(self->fd, p + 0x1001, 0xfff, WINVM_FREE_RELEASE,
			     &addr, &size));
	EXPECT_EQ((uintptr_t)p + PAGE, addr);
	EXPECT_EQ(PAGE, size);
	EXPECT_TRUE(try_write(p, 1));
	EXPECT_FALSE(try_read(p + PAGE));
	EXPECT_TRUE(try_write(p + 2 * PAGE, 1));
	EXPECT_EQ(7, p[3 * PAGE]);

	ASSERT_EQ(0, wv_query(self->fd, p + 2 * PAGE, &q));
	EXPECT_EQ((uintptr_t)p + 2 * PAGE, q.out_alloc_base);
	EXPECT_EQ(GRAN - 2 * PAGE, q.out_region_size);
	ASSERT_EQ(0, wv_query(self->fd, p + PAGE, &q));
	EXPECT_EQ(WINVM_STATE_FREE, q.out_state);
	EXPECT_EQ(PAGE, q.out_region_size);
	ASSERT_EQ(0, wv_query(self->fd, p, &q));
	EXPECT_EQ(PAGE, q.out_region_size);

	/* Release the first page: the granule start is reusable. */
	ASSERT_EQ(0, wv_free(self->fd, p + 1, 0xfff, WINVM_FREE_RELEASE, NULL,
			     NULL));
	ASSERT_EQ(0, wv_alloc(self->fd, (uintptr_t)p, PAGE, RES | COM, RW,
			      &addr, &size));
	EXPECT_EQ((uintptr_t)p, addr);
	EXPECT_EQ(PAGE, size);
	EXPECT_EQ(0, wv_release(self->fd, p + 2 * PAGE));
	EXPECT_EQ(0, wv_free(self->fd, p, PAGE, WINVM_FREE_RELEASE, NULL,
			     NULL));
}

/* Assert that decommit and release spanning two allocations are refused. */
TEST_F(winvm, free_spanning_allocations)
{
	uintptr_t a = 0x310000000000ULL;

	ASSERT_EQ(0, wv_alloc(self->fd, a, GRAN, RES | COM, RW, NULL, NULL));
	ASSERT_EQ(0, wv_alloc(self->fd, a + GRAN, GRAN, RES | COM, RW, NULL,
			      NULL));
	EXPECT_EQ(-EINVAL, wv_decommit(self->fd, (void *)a, 2 * GRAN));
	EXPECT_EQ(-EINVAL, wv_free(self->fd, (void *)a, 2 * GRAN,
				   WINVM_FREE_RELEASE, NULL, NULL));
	EXPECT_TRUE(try_write((char *)a + GRAN, 1));
	EXPECT_EQ(0, wv_release(self->fd, (void *)a));
	EXPECT_EQ(0, wv_release(self->fd, (void *)(a + GRAN)));
}

/* Assert that a free region reaches exactly to the next allocation. */
TEST_F(winvm, query_free_gap)
{
	uintptr_t a = 0x320000000000ULL;
	struct winvm_query_args q;

	ASSERT_EQ(0, wv_alloc(self->fd, a, PAGE, RES, RW, NULL, NULL));
	ASSERT_EQ(0, wv_alloc(self->fd, a + 5 * GRAN, PAGE, RES, RW, NULL,
			      NULL));
	/* The slack after the first page of the granule is free. */
	ASSERT_EQ(0, wv_query(self->fd, (void *)(a + PAGE), &q));
	EXPECT_EQ(WINVM_STATE_FREE, q.out_state);
	EXPECT_EQ(a + PAGE, q.out_base);
	EXPECT_EQ(5 * GRAN - PAGE, q.out_region_size);
	ASSERT_EQ(0, wv_query(self->fd, (void *)(a + 3 * GRAN + 9), &q));
	EXPECT_EQ(2 * GRAN, q.out_region_size);
	EXPECT_EQ(0, wv_release(self->fd, (void *)a));
	EXPECT_EQ(0, wv_release(self->fd, (void *)(a + 5 * GRAN)));
}

/* Assert that memory winvm did not allocate is described from its VMA. */
TEST_F(winvm, query_linux_mappings)
{
	struct winvm_query_args q;
	char *anon, *shared, *none;
	static int data_var;

	anon = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	shared = mmap(NULL, PAGE, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, anon);
	ASSERT_NE(MAP_FAILED, shared);
	ASSERT_NE(MAP_FAILED, none);

	ASSERT_EQ(0, wv_query(self->fd, anon + PAGE, &q));
	EXPECT_EQ(0, q.out_flags);
	EXPECT_EQ(WINVM_STATE_COMMIT, q.out_state);
	EXPECT_EQ(WINVM_TYPE_PRIVATE, q.out_type);
	EXPECT_EQ(RW, q.out_prot);
	EXPECT_EQ((uintptr_t)anon, q.out_alloc_base);
	EXPECT_GE(q.out_region_size, 2 * PAGE);

	ASSERT_EQ(0, wv_query(self->fd, shared, &q));
	EXPECT_EQ(WINVM_TYPE_MAPPED, q.out_type);
	EXPECT_EQ(R, q.out_prot);

	ASSERT_EQ(0, wv_query(self->fd, none, &q));
	EXPECT_EQ(WINVM_STATE_RESERVE, q.out_state);
	EXPECT_EQ(0, q.out_prot);

	/* This test's own code is an executable image. */
	ASSERT_EQ(0, wv_query(self->fd, (void *)(uintptr_t)&wv_query, &q));
	EXPECT_EQ(WINVM_TYPE_IMAGE, q.out_type);
	EXPECT_EQ(RX, q.out_prot);
	EXPECT_EQ(RWX | WINVM_PROT_COPY, q.out_alloc_prot);
	EXPECT_LT(q.out_alloc_base, (uintptr_t)&wv_query);
	ASSERT_EQ(0, wv_query(self->fd, &data_var, &q));
	EXPECT_EQ(WINVM_STATE_COMMIT, q.out_state);
	EXPECT_TRUE(q.out_prot & WINVM_PROT_WRITE);

	munmap(anon, 3 * PAGE);
	munmap(shared, PAGE);
	munmap(none, PAGE);
}

/* Assert that bad ioctl arguments get EINVAL and change nothing. */
TEST_F(winvm, bad_alloc_args)
{
	uint64_t first, again;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES, RW, &first, NULL));
	ASSERT_EQ(0, wv_release(self->fd, (void *)(uintptr_t)first));

	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, GRAN, 0, RW, NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, GRAN, RES | 0x80, RW, NULL,
				    NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, GRAN, RES, 0x100, NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, GRAN, RES, WINVM_PROT_WRITE,
				    NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, GRAN, RES,
				    RW | WINVM_PROT_COPY, NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, 0, RES, RW, NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, ~0ULL, RES, RW, NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, 1ULL << 47, RES, RW, NULL,
				    NULL));
	/* Wrap-around, kernel addresses, below the minimum, past the top. */
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0x7fffffff0000ULL, ~0ULL - 5,
				    RES, RW, NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0xffff888000000000ULL, GRAN,
				    RES, RW, NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0x8000, PAGE, RES, RW, NULL,
				    NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0x7fffffff0000ULL, 2 * GRAN,
				    RES, RW, NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0xffff888000000000ULL, PAGE, COM,
				    RW, NULL, NULL));

	/* Nothing was reserved: the same range comes back first. */
	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES, RW, &again, NULL));
	EXPECT_EQ(first, again);
	EXPECT_EQ(0, wv_release(self->fd, (void *)(uintptr_t)again));
}

/*
 * Assert that every call that changes something refuses a read-only
 * argument before it acts: decommit, release, protect, lock, unlock, reset
 * and reset-undo each leave the committed page as it was.
 */
TEST_F(winvm, readonly_args_change_nothing)
{
	struct winvm_protect_args *prot;
	struct winvm_alloc_args *reset;
	struct winvm_free_args *free;
	struct winvm_lock_args *lock;
	struct winvm_query_args q;
	char *p, *ro;

	p = wv_reserve(self->fd, GRAN, RW);
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, wv_commit(self->fd, p, PAGE, RW));
	p[0] = 0x5a;
	ro = mmap(NULL, 5 * PAGE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	free = (void *)ro;
	*free = (struct winvm_free_args){ .addr = (uintptr_t)p,
					  .size = PAGE,
					  .flags = WINVM_FREE_DECOMMIT };
	prot = (void *)(ro + PAGE);
	*prot = (struct winvm_protect_args){ .addr = (uintptr_t)p,
					     .size = PAGE,
					     .prot = WINVM_PROT_READ };
	lock = (void *)(ro + 2 * PAGE);
	*lock = (struct winvm_lock_args){ .addr = (uintptr_t)p, .size = PAGE };
	reset = (void *)(ro + 3 * PAGE);
	*reset = (struct winvm_alloc_args){ .addr = (uintptr_t)p,
					    .size = PAGE,
					    .flags = WINVM_ALLOC_RESET };
	ASSERT_EQ(0, mprotect(ro, 5 * PAGE, PROT_READ));

	EXPECT_EQ(-EFAULT, wv_ioctl(self->fd, WINVM_IOC_FREE, free));
	EXPECT_EQ(-EFAULT, wv_ioctl(self->fd, WINVM_IOC_PROTECT, prot));
	EXPECT_EQ(-EFAULT, wv_ioctl(self->fd, WINVM_IOC_LOCK, lock));
	EXPECT_EQ(-EFAULT, wv_ioctl(self->fd, WINVM_IOC_ALLOC, reset));
	ASSERT_EQ(0, wv_query(self->fd, p, &q));
	EXPECT_EQ(WINVM_STATE_COMMIT, q.out_state);
	EXPECT_EQ(RW, q.out_prot);
	EXPECT_EQ(0x5a, p[0]);
	/* Not locked: unlocking it is refused for that, not for the argument. */
	ASSERT_EQ(0, mprotect(ro + 2 * PAGE, PAGE, PROT_READ | PROT_WRITE));
	EXPECT_NE(0, wv_ioctl(self->fd, WINVM_IOC_UNLOCK, lock));
	ASSERT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_LOCK, lock));
	ASSERT_EQ(0, mprotect(ro + 2 * PAGE, PAGE, PROT_READ));
	EXPECT_EQ(-EFAULT, wv_ioctl(self->fd, WINVM_IOC_UNLOCK, lock));
	ASSERT_EQ(0, mprotect(ro + 2 * PAGE, PAGE, PROT_READ | PROT_WRITE));
	EXPECT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_UNLOCK, lock));

	/* Reset-undo and release, refused the same way. */
	ASSERT_EQ(0, mprotect(ro, 5 * PAGE, PROT_READ | PROT_WRITE));
	reset->flags = WINVM_ALLOC_RESET_UNDO;
	free->flags = WINVM_FREE_RELEASE;
	free->size = 0;
	ASSERT_EQ(0, mprotect(ro, 5 * PAGE, PROT_READ));
	EXPECT_EQ(-EFAULT, wv_ioctl(self->fd, WINVM_IOC_ALLOC, reset));
	EXPECT_EQ(-EFAULT, wv_ioctl(self->fd, WINVM_IOC_FREE, free));
	ASSERT_EQ(0, wv_query(self->fd, p, &q));
	EXPECT_EQ(WINVM_STATE_COMMIT, q.out_state);
	EXPECT_EQ(0x5a, p[0]);
	munmap(ro, 5 * PAGE);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that bad free and query arguments get EINVAL. */
TEST_F(winvm, bad_free_query_args)
{
	struct winvm_free_args f = { 0 };
	struct winvm_query_args q;
	char *p = wv_reserve(self->fd, GRAN, RW);

	ASSERT_NE(NULL, p);
	EXPECT_EQ(-EINVAL, wv_free(self->fd, p, 0, 0, NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_free(self->fd, p, 0,
				   WINVM_FREE_DECOMMIT | WINVM_FREE_RELEASE,
				   NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_free(self->fd, p, 0, 4, NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_free(self->fd, NULL, 0, WINVM_FREE_RELEASE,
				   NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_free(self->fd, p, ~0ULL, WINVM_FREE_DECOMMIT,
				   NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_free(self->fd, (void *)0xffff888000000000ULL, 0,
				   WINVM_FREE_RELEASE, NULL, NULL));
	EXPECT_EQ(-ENXIO, wv_free(self->fd, (void *)0x1000, 0,
				  WINVM_FREE_RELEASE, NULL, NULL));
	f.addr = (uintptr_t)p;
	f.flags = WINVM_FREE_RELEASE;
	f.pad = 1;
	EXPECT_EQ(-EINVAL, wv_ioctl(self->fd, WINVM_IOC_FREE, &f));

	memset(&q, 0, sizeof(q));
	q.addr = (uintptr_t)p;
	q.flags = 1;
	EXPECT_EQ(-EINVAL, wv_ioctl(self->fd, WINVM_IOC_QUERY, &q));
	q.flags = 0;
	q.addr = self->info.max_address + 1;
	EXPECT_EQ(-EINVAL, wv_ioctl(self->fd, WINVM_IOC_QUERY, &q));
	q.addr = self->info.max_address;
	EXPECT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_QUERY, &q));

	/* Still reserved. */
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that unknown commands and bad argument pointers are refused. */
TEST_F(winvm, bad_ioctl_pointers)
{
	struct winvm_alloc_args *ro;
	uint64_t first, again;

	EXPECT_EQ(-ENOTTY, wv_ioctl(self->fd, _IOWR('W', 0x9f, uint64_t),
				    &first));
	EXPECT_EQ(-ENOTTY, wv_ioctl(self->fd, 0, NULL));
	EXPECT_EQ(-EFAULT, wv_ioctl(self->fd, WINVM_IOC_ALLOC, NULL));
	EXPECT_EQ(-EFAULT, wv_ioctl(self->fd, WINVM_IOC_QUERY,
				    (void *)0xffff888000000000ULL));
	EXPECT_EQ(-EFAULT, wv_ioctl(self->fd, WINVM_IOC_GET_INFO, NULL));

	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES, RW, &first, NULL));
	ASSERT_EQ(0, wv_release(self->fd, (void *)(uintptr_t)first));

	/* A read-only argument: refused before anything is allocated. */
	ro = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	ro->size = GRAN;
	ro->flags = RES;
	ro->prot = RW;
	ASSERT_EQ(0, mprotect(ro, PAGE, PROT_READ));
	EXPECT_EQ(-EFAULT, wv_ioctl(self->fd, WINVM_IOC_ALLOC, ro));
	munmap(ro, PAGE);

	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES, RW, &again, NULL));
	EXPECT_EQ(first, again);
	EXPECT_EQ(0, wv_release(self->fd, (void *)(uintptr_t)again));
}

/* Assert that the device must be opened read-write and cannot be mmapped. */
TEST_F(winvm, open_and_mmap_rules)
{
	int fd = open("/dev/winvm", O_RDONLY);

	EXPECT_EQ(-1, fd);
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_READ, MAP_SHARED,
				   self->fd, 0));
	EXPECT_EQ(ENODEV, errno);
}

/* Assert that munmap, mremap and mprotect of winvm memory are refused. */
TEST_F(winvm, linux_calls_refused)
{
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 4 * PAGE, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	p[PAGE] = 3;
	EXPECT_EQ(-1, munmap(p + PAGE, PAGE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, mprotect(p, PAGE, PROT_READ));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(MAP_FAILED, mremap(p, PAGE, 2 * PAGE, MREMAP_MAYMOVE));
	EXPECT_EQ(MAP_FAILED, mremap(p, 4 * PAGE, PAGE, 0));
	EXPECT_EQ(3, p[PAGE]);
	/* MADV_DONTNEED only drops PTEs: the contents live on. */
	EXPECT_EQ(0, madvise(p, 4 * PAGE, MADV_DONTNEED));
	EXPECT_EQ(3, p[PAGE]);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/*
 * Assert that unmapping a whole winvm VMA behind winvm's back releases what
 * it held, and winvm keeps working.
 */
TEST_F(winvm, munmap_whole_vma_tracked)
{
	unsigned long start, end;
	struct winvm_query_args q;
	char line[512];
	FILE *maps;
	char *p;
	int found = 0;

	ASSERT_EQ(0, wv_alloc(self->fd, 0x330000000000ULL, GRAN, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	p[0] = 1;
	maps = fopen("/proc/self/maps", "r");
	ASSERT_NE(NULL, maps);
	while (fgets(line, sizeof(line), maps)) {
		if (sscanf(line, "%lx-%lx", &start, &end) == 2 &&
		    start <= (uintptr_t)p && (uintptr_t)p < end) {
			found = 1;
			EXPECT_NE(NULL, strstr(line, "/dev/winvm"));
			break;
		}
	}
	fclose(maps);
	ASSERT_TRUE(found);
	ASSERT_EQ(0, munmap((void *)start, end - start));

	ASSERT_EQ(0, wv_query(self->fd, p, &q));
	EXPECT_EQ(WINVM_STATE_FREE, q.out_state);
	EXPECT_EQ(-ENXIO, wv_release(self->fd, p));
	ASSERT_EQ(0, wv_alloc(self->fd, (uintptr_t)p, GRAN, RES | COM, RW,
			      NULL, NULL));
	EXPECT_EQ(0, p[0]);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/*
 * Assert that kernel-side accesses follow the pages' state: read(2) into
 * and process_vm_readv() from winvm memory work on committed pages and fail
 * with EFAULT on reserved or read-only ones.
 */
TEST_F(winvm, kernel_access)
{
	struct iovec local, remote;
	char buf[16] = "";
	int zero;
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 3 * PAGE, RES, RW, (uint64_t *)&p,
			      NULL));
	ASSERT_EQ(0, wv_commit(self->fd, p, PAGE, RW));
	ASSERT_EQ(0, wv_commit(self->fd, p + 2 * PAGE, PAGE, R));
	memset(p, 'x', 16);
	zero = open("/dev/zero", O_RDONLY);
	ASSERT_LE(0, zero);

	EXPECT_EQ(16, read(zero, p, 16));
	EXPECT_EQ(0, p[15]);
	EXPECT_EQ(-1, read(zero, p + PAGE, 16));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, read(zero, p + 2 * PAGE, 16));
	EXPECT_EQ(EFAULT, errno);
	close(zero);

	local.iov_base = buf;
	local.iov_len = sizeof(buf);
	remote.iov_base = p + 2 * PAGE;
	remote.iov_len = sizeof(buf);
	EXPECT_EQ(16, process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	remote.iov_base = p + PAGE;
	EXPECT_EQ(-1, process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that winvm memory shows up in maps and smaps as shmem RSS. */
TEST_F(winvm, visible_in_proc)
{
	long before, after;
	char *p;

	before = proc_kb("/proc/self/status", "RssShmem");
	ASSERT_EQ(0, wv_alloc(self->fd, 0, 4 << 20, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	memset(p, 1, 4 << 20);
	after = proc_kb("/proc/self/status", "RssShmem");
	EXPECT_GE(after - before, 4096 - RSS_SLACK_KB);
	EXPECT_EQ(0, wv_release(self->fd, p));
	EXPECT_LE(proc_kb("/proc/self/status", "RssShmem") - before,
		  RSS_SLACK_KB);
}

/* Assert that the fd is refused in a forked child, which starts afresh. */
TEST_F(winvm, fork_child_refused)
{
	struct winvm_query_args q;
	int status;
	pid_t pid;
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, PAGE, RES | COM, RW,
			      (uint64_t *)&p, NULL));
	p[0] = 5;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		if (wv_query(self->fd, p, &q) != -EPERM)
			_exit(1);
		if (wv_alloc(self->fd, 0, PAGE, RES, RW, NULL, NULL) != -EPERM)
			_exit(2);
		/* winvm memory is not inherited. */
		if (try_read(p))
			_exit(3);
		fd = wv_open();
		if (fd < 0 || wv_query(fd, p, &q) ||
		    q.out_state != WINVM_STATE_FREE)
			_exit(4);
		if (wv_alloc(fd, (uintptr_t)p, PAGE, RES | COM, RW, NULL,
			     NULL) || p[0] != 0)
			_exit(5);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(5, p[0]);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that an fd passed to another process over a socket is refused. */
TEST_F(winvm, fd_passing_refused)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = { 0 };
	struct cmsghdr *cmsg;
	struct iovec iov;
	int sv[2], status;
	char c = 0;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct winvm_query_args q;
		int fd;

		close(self->fd);
		iov.iov_base = &c;
		iov.iov_len = 1;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		if (recvmsg(sv[1], &msg, 0) != 1)
			_exit(1);
		cmsg = CMSG_FIRSTHDR(&msg);
		if (!cmsg)
			_exit(2);
		memcpy(&fd, CMSG_DATA(cmsg), sizeof(fd));
		_exit(wv_query(fd, (void *)0x10000, &q) == -EPERM ? 0 : 3);
	}
	iov.iov_base = &c;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &self->fd, sizeof(int));
	ASSERT_EQ(1, sendmsg(sv[0], &msg, 0));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(sv[0]);
	close(sv[1]);
}

/*
 * Assert that more reservations than vm.max_map_count allows VMAs work,
 * and do not cost a VMA each.
 */
TEST_F_TIMEOUT(winvm, many_reservations, 300)
{
	long before, limit = sysctl_read(MAX_MAP_COUNT);
	uint64_t *addrs;
	int i, n;

	/*
	 * As root, the limit goes down to 4096 for the test, which then needs
	 * some 6000 reservations rather than 67000: with KASAN and lockdep
	 * (the debug kernel) each call is dear.
	 */
	ASSERT_LT(0, limit);
	if (limit > 4096 && !sysctl_write(MAX_MAP_COUNT, 4096)) {
		saved_max_map_count = limit;
		limit = 4096;
	}
	n = limit + 2000;
	addrs = calloc(n, sizeof(*addrs));
	ASSERT_NE(NULL, addrs);
	before = vma_count();
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, wv_alloc(self->fd, 0, PAGE, RES | COM, RW,
				      &addrs[i], NULL));
	EXPECT_LT(vma_count() - before, 200);
	for (i = 0; i < n; i += 997)
		EXPECT_TRUE(try_write((char *)(uintptr_t)addrs[i], 1));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, wv_release(self->fd,
					(void *)(uintptr_t)addrs[i]));
	EXPECT_LE(vma_count() - before, 1);
	free(addrs);
}

/* Threads racing every operation on overlapping ranges of one allocation. */
struct race_arg {
	int fd;
	char *base;
	unsigned int seed;
	time_t until;
	int errors;
};

static void *race_worker(void *data)
{
	struct race_arg *arg = data;
	struct winvm_query_args q;
	int ret;

	while (time(NULL) < arg->until) {
		unsigned int r = rand_r(&arg->seed);
		char *p = arg->base + (r % 16) * PAGE;
		uint64_t len = (1 + (r >> 8) % 4) * PAGE;

		switch ((r >> 16) % 5) {
		case 0:
			ret = wv_commit(arg->fd, p, len, RW);
			break;
		case 1:
			ret = wv_decommit(arg->fd, p, len);
			break;
		case 2:
			ret = wv_query(arg->fd, p, &q);
			if (!ret && (q.out_region_size == 0 ||
				     q.out_alloc_base != (uintptr_t)arg->base))
				ret = -EIO;
			break;
		case 3:
			/* A probe may fault: decommit races it. */
			try_write(p, 1);
			ret = 0;
			break;
		default:
			ret = wv_commit(arg->fd, p, len, R);
			break;
		}
		/*
		 * Every range lies inside the allocation (pages 0-15 plus up
		 * to 4 pages: page 18 at most of 20), so nothing may fail.
		 */
		if (ret)
			arg->errors++;
	}
	return NULL;
}

/* Assert that concurrent operations stay consistent and never fail oddly. */
TEST_F_TIMEOUT(winvm, threads_race, 120)
{
	struct race_arg args[4];
	pthread_t threads[4];
	struct winvm_query_args q;
	char *p = wv_reserve(self->fd, 20 * PAGE, RW);
	int i;

	ASSERT_NE(NULL, p);
	for (i = 0; i < 4; i++) {
		args[i] = (struct race_arg){ self->fd, p, i + 1,
					     time(NULL) + 4, 0 };
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, race_worker,
					    &args[i]));
	}
	for (i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		EXPECT_EQ(0, args[i].errors);
	}
	/* Whatever happened, the allocation is whole and decommits cleanly. */
	ASSERT_EQ(0, wv_decommit(self->fd, p, 20 * PAGE));
	ASSERT_EQ(0, wv_query(self->fd, p, &q));
	EXPECT_EQ(WINVM_STATE_RESERVE, q.out_state);
	EXPECT_EQ(20 * PAGE, q.out_region_size);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Reservers and releasers racing for the same fixed address. */
static void *fixed_worker(void *data)
{
	struct race_arg *arg = data;
	uint64_t got;
	int ret;

	while (time(NULL) < arg->until) {
		ret = wv_alloc(arg->fd, (uintptr_t)arg->base, GRAN, RES | COM,
			       RW, &got, NULL);
		if (ret == -EEXIST)
			continue;
		if (ret || got != (uintptr_t)arg->base) {
			arg->errors++;
			continue;
		}
		/* We own it now: nobody else may release it under us. */
		arg->base[0] = 1;
		if (wv_release(arg->fd, arg->base))
			arg->errors++;
	}
	return NULL;
}

/* Assert that reservations of one fixed range are mutually exclusive. */
TEST_F_TIMEOUT(winvm, threads_fixed_reserve, 120)
{
	char *a = (char *)0x340000000000ULL;
	struct race_arg args[4];
	pthread_t threads[4];
	int i;

	for (i = 0; i < 4; i++) {
		args[i] = (struct race_arg){ self->fd, a, i, time(NULL) + 3, 0 };
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, fixed_worker,
					    &args[i]));
	}
	for (i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		EXPECT_EQ(0, args[i].errors);
	}
}

/* Assert that memory comes back when a process exits with live allocations. */
TEST_F(winvm, exit_frees_memory)
{
	long before, after;
	int status;
	pid_t pid;

	before = proc_kb("/proc/meminfo", "Shmem");
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = wv_open();
		uint64_t a;

		if (fd < 0 || wv_alloc(fd, 0, 32 << 20, RES | COM, RW, &a,
				       NULL))
			_exit(1);
		memset((void *)(uintptr_t)a, 1, 32 << 20);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status));
	after = proc_kb("/proc/meminfo", "Shmem");
	EXPECT_LT(after - before, 4096);
}

TEST_HARNESS_MAIN
