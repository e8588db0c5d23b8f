// SPDX-License-Identifier: GPL-2.0-only
/*
 * winvm selftests for large-page allocations (WINVM_ALLOC_LARGE_PAGES):
 * the argument rules, PMD mappings, whole-large-page operations, and the
 * clean failure when the kernel has no huge page to give.
 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "harness.h"
#include "winvm_util.h"

#define R	WINVM_PROT_READ
#define RW	(WINVM_PROT_READ | WINVM_PROT_WRITE)
#define RES	WINVM_ALLOC_RESERVE
#define COM	WINVM_ALLOC_COMMIT
#define LARGE	(RES | COM | WINVM_ALLOC_LARGE_PAGES)
#define LP	(2UL << 20)

#define SHMEM_ENABLED	"/sys/kernel/mm/transparent_hugepage/shmem_enabled"

/*
 * kB of the VMA holding @addr that are mapped by PMD, from the
 * ShmemPmdMapped line of its /proc/self/smaps entry; -1 if not found.
 */
static long pmd_mapped_kb(const void *addr)
{
	unsigned long start, end, want = (uintptr_t)addr;
	bool inside = false;
	char line[512];
	long kb = -1;
	FILE *f;

	f = fopen("/proc/self/smaps", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			inside = want >= start && want < end;
			continue;
		}
		if (inside && sscanf(line, "ShmemPmdMapped: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* Write @value to the shmem_enabled knob; returns 0 or -errno. */
static int set_shmem_enabled(const char *value)
{
	int fd = open(SHMEM_ENABLED, O_WRONLY);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* The current shmem_enabled setting (the bracketed word), or "". */
static void get_shmem_enabled(char *buf, size_t len)
{
	char line[128] = "", *open_br, *close_br;
	FILE *f = fopen(SHMEM_ENABLED, "r");

	buf[0] = '\0';
	if (!f)
		return;
	if (fgets(line, sizeof(line), f)) {
		open_br = strchr(line, '[');
		close_br = open_br ? strchr(open_br, ']') : NULL;
		if (close_br && (size_t)(close_br - open_br) < len) {
			memcpy(buf, open_br + 1, close_br - open_br - 1);
			buf[close_br - open_br - 1] = '\0';
		}
	}
	fclose(f);
}

/* Reserve and commit @n read-write large pages; NULL on failure. */
static char *lp_alloc(int fd, unsigned long n)
{
	uint64_t addr;

	if (wv_alloc(fd, 0, n * LP, LARGE, RW, &addr, NULL))
		return NULL;
	return (char *)(uintptr_t)addr;
}

FIXTURE(large) {
	int fd;
	struct winvm_info info;
};

FIXTURE_SETUP(large)
{
	self->fd = wv_open();
	if (self->fd < 0 && (errno == ENOENT || errno == ENODEV))
		SETUP_SKIP("/dev/winvm not present: load winvm.ko");
	ASSERT_LE(0, self->fd);
	memset(&self->info, 0xcc, sizeof(self->info));
	ASSERT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_GET_INFO, &self->info));
	if (!(self->info.features & WINVM_FEATURE_LARGE_PAGES))
		SETUP_SKIP("kernel without transparent huge pages");
	probe_setup();
}

FIXTURE_TEARDOWN(large)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* Assert that GET_INFO reports the PMD size as the large-page size. */
TEST_F(large, info)
{
	EXPECT_EQ(LP, self->info.large_page_size);
	EXPECT_EQ(WINVM_FEATURE_LARGE_PAGES,
		  self->info.features & WINVM_FEATURE_LARGE_PAGES);
}

/*
 * Assert that a large-page allocation is large-page aligned, reads zero,
 * keeps what is written, and is mapped by PMDs, before and after the
 * first write (a read maps the PMD read-only; the write must not leave it
 * split into PTEs).
 */
TEST_F(large, pmd_mapped)
{
	uint64_t addr = POISON64, size = POISON64;
	char *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 2 * LP, LARGE, RW, &addr, &size));
	EXPECT_EQ(2 * LP, size);
	EXPECT_EQ(0, addr % LP);
	p = (char *)(uintptr_t)addr;

	EXPECT_EQ(0, p[0]);
	EXPECT_EQ(0, p[LP + 5]);
	EXPECT_EQ(2 * LP / 1024, pmd_mapped_kb(p));
	memset(p, 0x5a, 2 * LP);
	EXPECT_EQ(0x5a, p[LP - 1]);
	EXPECT_EQ(0x5a, p[2 * LP - 1]);
	EXPECT_EQ(2 * LP / 1024, pmd_mapped_kb(p));
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert that a large-page allocation is one committed region to query. */
TEST_F(large, query)
{
	struct winvm_query_args q;
	uint64_t addr;
	char *p;

	p = lp_alloc(self->fd, 2);
	ASSERT_NE(NULL, p);
	addr = (uintptr_t)p;
	ASSERT_EQ(0, wv_query(self->fd, p + LP + 3 * PAGE, &q));
	EXPECT_EQ(addr, q.out_alloc_base);
	EXPECT_EQ(WINVM_STATE_COMMIT, q.out_state);
	EXPECT_EQ(RW, q.out_prot);
	EXPECT_EQ(RW, q.out_alloc_prot);
	EXPECT_EQ(LP - 3 * PAGE, q.out_region_size);
	EXPECT_EQ(WINVM_TYPE_PRIVATE, q.out_type);
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/* Assert the argument rules: whole large pages, reserve and commit. */
TEST_F(large, bad_arguments)
{
	uint64_t addr = POISON64;
	char *p;

	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, LP + PAGE, LARGE, RW, &addr,
				    NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, LP / 2, LARGE, RW, &addr,
				    NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, LP,
				    RES | WINVM_ALLOC_LARGE_PAGES, RW, &addr,
				    NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, LP,
				    COM | WINVM_ALLOC_LARGE_PAGES, RW, &addr,
				    NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, LP, LARGE,
				    RW | WINVM_PROT_GUARD, &addr, NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, 0, LP, LARGE,
				    RW | WINVM_PROT_NOCACHE, &addr, NULL));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, LP + GRAN, LP, LARGE, RW, &addr,
				    NULL));
	EXPECT_EQ(POISON64, addr);

	/* A fixed, aligned address is fine where nothing is mapped. */
	p = mmap(NULL, 4 * LP, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	p = (char *)(((uintptr_t)p + LP - 1) & ~(LP - 1));
	ASSERT_EQ(0, munmap(p, LP));
	EXPECT_EQ(0, wv_alloc(self->fd, (uintptr_t)p, LP, LARGE, RW, &addr,
			      NULL));
	EXPECT_EQ((uintptr_t)p, addr);
	p[1] = 1;
	EXPECT_EQ(LP / 1024, pmd_mapped_kb(p));
	/* Its neighbour is the program's: taken, so EEXIST. */
	EXPECT_EQ(-EEXIST, wv_alloc(self->fd, (uintptr_t)p + LP, LP, LARGE,
				    RW, NULL, NULL));
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/*
 * Assert that operations on a large-page allocation must cover whole large
 * pages and leave everything as it was when they do not.
 */
TEST_F(large, whole_pages_only)
{
	struct winvm_protect_args pa = {
		.prot = R,
	};
	struct winvm_query_args q;
	char *p;

	p = lp_alloc(self->fd, 2);
	ASSERT_NE(NULL, p);
	p[0] = 7;

	EXPECT_EQ(-EINVAL, wv_decommit(self->fd, p, PAGE));
	EXPECT_EQ(-EINVAL, wv_decommit(self->fd, p + LP / 2, LP));
	EXPECT_EQ(-EINVAL, wv_free(self->fd, p + LP, PAGE, WINVM_FREE_RELEASE,
				   NULL, NULL));
	EXPECT_EQ(-EINVAL, wv_commit(self->fd, p, PAGE, R));
	EXPECT_EQ(-EINVAL, wv_commit(self->fd, p, LP, RW | WINVM_PROT_GUARD));
	EXPECT_EQ(-EINVAL, wv_alloc(self->fd, (uintptr_t)p, PAGE,
				    WINVM_ALLOC_RESET, 0, NULL, NULL));
	pa.addr = (uintptr_t)p;
	pa.size = PAGE;
	EXPECT_EQ(-EINVAL, wv_ioctl(self->fd, WINVM_IOC_PROTECT, &pa));
	pa.size = LP;
	pa.prot = RW | WINVM_PROT_GUARD;
	EXPECT_EQ(-EINVAL, wv_ioctl(self->fd, WINVM_IOC_PROTECT, &pa));

	ASSERT_EQ(0, wv_query(self->fd, p, &q));
	EXPECT_EQ(2 * LP, q.out_region_size);
	EXPECT_EQ(RW, q.out_prot);
	EXPECT_EQ(7, p[0]);
	EXPECT_TRUE(try_write(p + LP - 1, 1));
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/*
 * Assert that a whole large page can be made read-only (writes fault as
 * on any winvm page winvm refuses, SEGV_MAPERR; contents stay) and
 * writable again.
 */
TEST_F(large, protect)
{
	struct winvm_protect_args pa = {
		.size = LP,
		.prot = R,
		.out_old_prot = POISON32,
	};
	char *p = lp_alloc(self->fd, 2);

	ASSERT_NE(NULL, p);
	memset(p, 0x33, 2 * LP);
	pa.addr = (uintptr_t)p + LP;
	ASSERT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_PROTECT, &pa));
	EXPECT_EQ(RW, pa.out_old_prot);

	EXPECT_FALSE(try_write(p + LP + 100, 1));
	EXPECT_EQ(SIGSEGV, probe_info.si_signo);
	EXPECT_EQ(SEGV_MAPERR, probe_info.si_code);
	EXPECT_EQ(p + LP + 100, probe_info.si_addr);
	EXPECT_TRUE(try_read(p + 2 * LP - 1));
	EXPECT_EQ(0x33, p[2 * LP - 1]);
	EXPECT_TRUE(try_write(p + LP - 1, 1));

	pa.prot = RW;
	ASSERT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_PROTECT, &pa));
	EXPECT_EQ(R, pa.out_old_prot);
	EXPECT_TRUE(try_write(p + LP + 100, 2));
	EXPECT_EQ(0x33, p[LP + 101]);
	EXPECT_EQ(2 * LP / 1024, pmd_mapped_kb(p));
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/*
 * Assert that decommitting a whole large page frees it (accesses fault
 * with SEGV_MAPERR) and that committing it again gives a zeroed, huge,
 * PMD-mapped page.
 */
TEST_F(large, decommit_recommit)
{
	long before;
	char *p;

	p = lp_alloc(self->fd, 2);
	ASSERT_NE(NULL, p);
	memset(p, 0x44, 2 * LP);
	before = proc_kb("/proc/meminfo", "ShmemHugePages");

	ASSERT_EQ(0, wv_decommit(self->fd, p, LP));
	EXPECT_EQ(before - (long)(LP / 1024),
		  proc_kb("/proc/meminfo", "ShmemHugePages"));
	EXPECT_FALSE(try_read(p + 5));
	EXPECT_EQ(SEGV_MAPERR, probe_info.si_code);
	EXPECT_EQ(0x44, p[LP]);

	ASSERT_EQ(0, wv_commit(self->fd, p, LP, RW));
	EXPECT_EQ(before, proc_kb("/proc/meminfo", "ShmemHugePages"));
	EXPECT_EQ(0, p[5]);
	EXPECT_EQ(2 * LP / 1024, pmd_mapped_kb(p));
	EXPECT_EQ(0, wv_release(self->fd, p));
	EXPECT_EQ(before - (long)(2 * LP / 1024),
		  proc_kb("/proc/meminfo", "ShmemHugePages"));
}

/* Assert that releasing one large page of two leaves the other intact. */
TEST_F(large, partial_release)
{
	struct winvm_query_args q;
	uint64_t addr;
	char *p;

	p = lp_alloc(self->fd, 2);
	ASSERT_NE(NULL, p);
	addr = (uintptr_t)p;
	memset(p, 0x55, 2 * LP);
	ASSERT_EQ(0, wv_free(self->fd, p, LP, WINVM_FREE_RELEASE, NULL, NULL));
	ASSERT_EQ(0, wv_query(self->fd, p + LP, &q));
	EXPECT_EQ(addr + LP, q.out_alloc_base);
	EXPECT_EQ(LP, q.out_region_size);
	EXPECT_EQ(0x55, p[2 * LP - 1]);
	EXPECT_EQ(0, wv_release(self->fd, p + LP));
}

/* Assert that large pages can be locked and unlocked. */
TEST_F(large, lock)
{
	struct winvm_lock_args la = {
		.size = LP,
	};
	char *p = lp_alloc(self->fd, 1);

	ASSERT_NE(NULL, p);
	la.addr = (uintptr_t)p;
	p[9] = 9;
	ASSERT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_LOCK, &la));
	EXPECT_EQ(9, p[9]);
	EXPECT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_UNLOCK, &la));
	EXPECT_EQ(0, wv_release(self->fd, p));
}

/*
 * Assert that a large-page allocation fails with ENOBUFS, leaving no trace
 * (no VMA, no commit charge), when the kernel will not give shmem huge
 * pages (shmem_enabled=deny), and works again afterwards.
 */
TEST_F(large, no_huge_pages)
{
	char saved[32];
	long vmas, charged;
	uint64_t addr = POISON64;
	int ret;

	get_shmem_enabled(saved, sizeof(saved));
	if (!saved[0] || set_shmem_enabled("deny"))
		SKIP(return, "cannot change %s (not root?)", SHMEM_ENABLED);

	vmas = vma_count();
	charged = proc_kb("/proc/meminfo", "Committed_AS");
	ret = wv_alloc(self->fd, 0, 2 * LP, LARGE, RW, &addr, NULL);
	ASSERT_EQ(0, set_shmem_enabled(saved));
	EXPECT_EQ(-ENOBUFS, ret);
	EXPECT_EQ(POISON64, addr);
	EXPECT_EQ(vmas, vma_count());
	/* Other processes move Committed_AS too: allow them a little. */
	EXPECT_GT(charged + (long)(LP / 1024),
		  proc_kb("/proc/meminfo", "Committed_AS"));

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 2 * LP, LARGE, RW, &addr, NULL));
	EXPECT_EQ(0, wv_release(self->fd, (void *)(uintptr_t)addr));
}

/*
 * Assert that small pages are never reserved in a large-page arena: the
 * space a partial release freed there stays unusable for them.
 */
TEST_F(large, arenas_not_shared)
{
	uint64_t big, small;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 2 * LP, LARGE, RW, &big, NULL));
	ASSERT_EQ(0, wv_free(self->fd, (void *)(uintptr_t)big, LP,
			     WINVM_FREE_RELEASE, NULL, NULL));
	EXPECT_EQ(-EEXIST, wv_alloc(self->fd, big, GRAN, RES, RW, NULL, NULL));
	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES | COM, RW, &small,
			      NULL));
	EXPECT_TRUE(small + GRAN <= big || small >= big + 2 * LP);
	EXPECT_EQ(0, wv_release(self->fd, (void *)(uintptr_t)(big + LP)));
	EXPECT_EQ(0, wv_release(self->fd, (void *)(uintptr_t)small));
}

TEST_HARNESS_MAIN
