// SPDX-License-Identifier: GPL-2.0-only
/*
 * winvm protection selftests: WINVM_IOC_PROTECT, one-shot guard pages in
 * the fault path, cache attributes, and protection changes racing faults.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <ucontext.h>

#include "harness.h"
#include "winvm_util.h"

#define R	WINVM_PROT_READ
#define RW	(WINVM_PROT_READ | WINVM_PROT_WRITE)
#define RX	(WINVM_PROT_READ | WINVM_PROT_EXEC)
#define GUARD	WINVM_PROT_GUARD
#define RES	WINVM_ALLOC_RESERVE
#define COM	WINVM_ALLOC_COMMIT

static int wv_protect(int fd, void *addr, uint64_t size, uint32_t prot,
		      uint32_t *old)
{
	struct winvm_protect_args args = {
		.addr = (uintptr_t)addr,
		.size = size,
		.prot = prot,
		.out_addr = POISON64,
		.out_size = POISON64,
		.out_old_prot = POISON32,
		.out_reserved = POISON32,
	};
	int ret = wv_ioctl(fd, WINVM_IOC_PROTECT, &args);

	if (old)
		*old = args.out_old_prot;
	if (!ret && args.out_reserved)
		return -EPROTO;
	return ret;
}

static uint32_t page_prot(int fd, void *addr)
{
	struct winvm_query_args q;

	if (wv_query(fd, addr, &q) || q.out_state != WINVM_STATE_COMMIT)
		return POISON32;
	return q.out_prot;
}

static bool is_guard_signal(uint32_t access)
{
	return probe_info.si_signo == SIGSEGV &&
	       probe_info.si_code == SEGV_ACCERR &&
	       probe_info.si_errno == (int)(WINVM_GUARD_SIGNATURE | access);
}

FIXTURE(protect) {
	int fd;
	char *p;
};

FIXTURE_SETUP(protect)
{
	uint64_t addr;

	self->fd = wv_open();
	if (self->fd < 0 && (errno == ENOENT || errno == ENODEV))
		SETUP_SKIP("/dev/winvm not present: load winvm.ko");
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES, RW, &addr, NULL));
	self->p = (char *)(uintptr_t)addr;
	ASSERT_EQ(0, wv_commit(self->fd, self->p, 4 * PAGE, RW));
	probe_setup();
}

FIXTURE_TEARDOWN(protect)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* Assert that protect returns the old protection and splits the region. */
TEST_F(protect, old_and_regions)
{
	struct winvm_protect_args args = {
		.addr = (uintptr_t)self->p + PAGE + 1,
		.size = 1,
		.prot = R,
	};
	struct winvm_query_args q;
	uint32_t old;

	ASSERT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_PROTECT, &args));
	EXPECT_EQ((uintptr_t)self->p + PAGE, args.out_addr);
	EXPECT_EQ(PAGE, args.out_size);
	EXPECT_EQ(RW, args.out_old_prot);

	ASSERT_EQ(0, wv_query(self->fd, self->p, &q));
	EXPECT_EQ(PAGE, q.out_region_size);
	ASSERT_EQ(0, wv_query(self->fd, self->p + PAGE, &q));
	EXPECT_EQ(R, q.out_prot);
	EXPECT_EQ(PAGE, q.out_region_size);
	EXPECT_EQ(RW, q.out_alloc_prot);

	/* Protecting it back merges the regions again. */
	ASSERT_EQ(0, wv_protect(self->fd, self->p + PAGE, PAGE, RW, &old));
	EXPECT_EQ(R, old);
	ASSERT_EQ(0, wv_query(self->fd, self->p, &q));
	EXPECT_EQ(4 * PAGE, q.out_region_size);
}

/* Assert that the old protection is the first page's only. */
TEST_F(protect, old_is_first_page)
{
	uint32_t old;

	ASSERT_EQ(0, wv_protect(self->fd, self->p + 2 * PAGE, 2 * PAGE, RX,
				&old));
	EXPECT_EQ(RW, old);
	ASSERT_EQ(0, wv_protect(self->fd, self->p, 4 * PAGE, R, &old));
	EXPECT_EQ(RW, old);
	EXPECT_EQ(R, page_prot(self->fd, self->p + 3 * PAGE));
}

/* Assert that content survives every protection change. */
TEST_F(protect, content_survives)
{
	static const uint32_t prots[] = { R, 0, RX, RW | GUARD, RW,
					  WINVM_PROT_EXEC, RW };
	size_t i;

	memset(self->p, 0x6b, 4 * PAGE);
	for (i = 0; i < sizeof(prots) / sizeof(prots[0]); i++)
		ASSERT_EQ(0, wv_protect(self->fd, self->p, 4 * PAGE, prots[i],
					NULL));
	EXPECT_EQ(0x6b, self->p[0]);
	EXPECT_EQ(0x6b, self->p[4 * PAGE - 1]);
}

/* Assert that the MMU enforces each protection. */
TEST_F(protect, enforced)
{
	char *p = self->p;

	p[0] = (char)0xc3;		/* ret */
	ASSERT_EQ(0, wv_protect(self->fd, p, PAGE, R, NULL));
	EXPECT_TRUE(try_read(p));
	EXPECT_FALSE(try_write(p, 1));
	EXPECT_EQ(p, probe_info.si_addr);
	EXPECT_FALSE(try_exec(p));

	ASSERT_EQ(0, wv_protect(self->fd, p, PAGE, 0, NULL));
	EXPECT_FALSE(try_read(p));
	EXPECT_EQ(SEGV_MAPERR, probe_info.si_code);

	ASSERT_EQ(0, wv_protect(self->fd, p, PAGE, WINVM_PROT_EXEC, NULL));
	EXPECT_TRUE(try_exec(p));
	EXPECT_FALSE(try_write(p, 1));

	ASSERT_EQ(0, wv_protect(self->fd, p, PAGE, RX, NULL));
	EXPECT_TRUE(try_exec(p));
	EXPECT_TRUE(try_read(p));
	EXPECT_FALSE(try_write(p, 1));

	ASSERT_EQ(0, wv_protect(self->fd, p, PAGE,
				RW | WINVM_PROT_EXEC, NULL));
	EXPECT_TRUE(try_write(p + 1, 1));
	EXPECT_TRUE(try_exec(p));

	ASSERT_EQ(0, wv_protect(self->fd, p, PAGE, RW, NULL));
	EXPECT_TRUE(try_write(p + 1, 1));
	EXPECT_FALSE(try_exec(p));
}

/* Assert that protect needs every page committed and changes nothing else. */
TEST_F(protect, needs_committed)
{
	EXPECT_EQ(-ENXIO, wv_protect(self->fd, self->p + 3 * PAGE, 2 * PAGE, R,
				     NULL));
	EXPECT_EQ(RW, page_prot(self->fd, self->p + 3 * PAGE));
	EXPECT_EQ(-ENXIO, wv_protect(self->fd, self->p + 8 * PAGE, PAGE, R,
				     NULL));
	EXPECT_EQ(-ENXIO, wv_protect(self->fd, self->p + GRAN, PAGE, R, NULL));
	EXPECT_EQ(-ENXIO, wv_protect(self->fd, self->p - GRAN, PAGE, R, NULL));
	ASSERT_EQ(0, wv_decommit(self->fd, self->p + PAGE, PAGE));
	EXPECT_EQ(-ENXIO, wv_protect(self->fd, self->p, 3 * PAGE, R, NULL));
	EXPECT_EQ(RW, page_prot(self->fd, self->p));
}

/* Assert that bad arguments get EINVAL. */
TEST_F(protect, bad_args)
{
	struct winvm_protect_args args = {
		.addr = (uintptr_t)self->p,
		.size = PAGE,
		.prot = R,
		.flags = 1,
	};

	EXPECT_EQ(-EINVAL, wv_ioctl(self->fd, WINVM_IOC_PROTECT, &args));
	EXPECT_EQ(-EINVAL, wv_protect(self->fd, self->p, 0, R, NULL));
	EXPECT_EQ(-EINVAL, wv_protect(self->fd, self->p, ~0ULL, R, NULL));
	EXPECT_EQ(-EINVAL, wv_protect(self->fd, self->p, PAGE,
				      WINVM_PROT_WRITE, NULL));
	EXPECT_EQ(-EINVAL, wv_protect(self->fd, self->p, PAGE, 0x40, NULL));
	EXPECT_EQ(-EINVAL, wv_protect(self->fd, self->p, PAGE, GUARD, NULL));
	EXPECT_EQ(-EINVAL, wv_protect(self->fd, self->p, PAGE,
				      WINVM_PROT_NOCACHE, NULL));
	EXPECT_EQ(-EINVAL, wv_protect(self->fd, self->p, PAGE,
				      RW | GUARD | WINVM_PROT_NOCACHE, NULL));
	EXPECT_EQ(-EINVAL, wv_protect(self->fd, self->p, PAGE,
				      RW | WINVM_PROT_NOCACHE |
				      WINVM_PROT_WRITECOMBINE, NULL));
	EXPECT_EQ(-EFAULT, wv_ioctl(self->fd, WINVM_IOC_PROTECT, NULL));
	EXPECT_EQ(RW, page_prot(self->fd, self->p));
}

/* Assert that the first access disarms a guard page, exactly once. */
TEST_F(protect, guard_one_shot)
{
	char *p = self->p;
	uint32_t old;

	p[5] = 9;
	ASSERT_EQ(0, wv_protect(self->fd, p, PAGE, RW | GUARD, &old));
	EXPECT_EQ(RW, old);
	EXPECT_EQ(RW | GUARD, page_prot(self->fd, p));

	EXPECT_FALSE(try_read(p + 5));
	EXPECT_TRUE(is_guard_signal(WINVM_ACCESS_READ));
	EXPECT_EQ(p + 5, probe_info.si_addr);
	EXPECT_EQ(RW, page_prot(self->fd, p));
	EXPECT_TRUE(try_read(p + 5));
	EXPECT_EQ(9, p[5]);

	ASSERT_EQ(0, wv_protect(self->fd, p, PAGE, RW | GUARD, &old));
	EXPECT_EQ(RW, old);
	EXPECT_FALSE(try_write(p + 7, 1));
	EXPECT_TRUE(is_guard_signal(WINVM_ACCESS_WRITE));
	EXPECT_EQ(p + 7, probe_info.si_addr);
	EXPECT_TRUE(try_write(p + 7, 1));
}

/*
 * Assert that the guard signal says WINVM_GUARD_STACK when, and only when,
 * the context asked for it and the thread's stack pointer is in the guard
 * page's allocation.
 */
static ucontext_t stack_main_uc, stack_uc;
static char *stack_guard;
static bool stack_probe_faulted;
static int stack_probe_errno;

static void probe_from_stack(void)
{
	stack_probe_faulted = !try_read(stack_guard);
	stack_probe_errno = probe_info.si_errno;
}

static void run_probe_on(char *s)
{
	getcontext(&stack_uc);
	stack_uc.uc_stack.ss_sp = s + 2 * PAGE;
	stack_uc.uc_stack.ss_size = GRAN - 2 * PAGE;
	stack_uc.uc_link = &stack_main_uc;
	makecontext(&stack_uc, probe_from_stack, 0);
	swapcontext(&stack_main_uc, &stack_uc);
}

TEST_F(protect, guard_signal_says_stack)
{
	struct winvm_options opt = { .options = WINVM_OPTION_GUARD_STACK };
	uint64_t addr;
	uint32_t old;
	char *s;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES | COM, RW, &addr, NULL));
	s = (char *)(uintptr_t)addr;
	stack_guard = s + PAGE;
	ASSERT_EQ(0, wv_protect(self->fd, stack_guard, PAGE, RW | GUARD, &old));

	/* Not asked for: the signal is as it always was. */
	run_probe_on(s);
	EXPECT_TRUE(stack_probe_faulted);
	EXPECT_EQ((int)(WINVM_GUARD_SIGNATURE | WINVM_ACCESS_READ),
		  stack_probe_errno);

	/* Asked for, running on the allocation: the guard is the stack's. */
	opt.options = ~0ULL;
	EXPECT_EQ(-EINVAL, wv_ioctl(self->fd, WINVM_IOC_SET_OPTIONS, &opt));
	opt.options = WINVM_OPTION_GUARD_STACK;
	ASSERT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_SET_OPTIONS, &opt));
	ASSERT_EQ(0, wv_protect(self->fd, stack_guard, PAGE, RW | GUARD, &old));
	run_probe_on(s);
	EXPECT_TRUE(stack_probe_faulted);
	EXPECT_EQ((int)(WINVM_GUARD_SIGNATURE | WINVM_ACCESS_READ |
			WINVM_GUARD_STACK), stack_probe_errno);

	/* From the thread's own stack: a plain guard signal. */
	ASSERT_EQ(0, wv_protect(self->fd, stack_guard, PAGE, RW | GUARD, &old));
	EXPECT_FALSE(try_read(stack_guard));
	EXPECT_TRUE(is_guard_signal(WINVM_ACCESS_READ));
	EXPECT_EQ(0, wv_release(self->fd, s));
}

/* Assert that a guard page hit by an instruction fetch says so. */
TEST_F(protect, guard_exec)
{
	char *p = self->p;

	p[0] = (char)0xc3;
	ASSERT_EQ(0, wv_protect(self->fd, p, PAGE, RX | GUARD, NULL));
	EXPECT_FALSE(try_exec(p));
	EXPECT_TRUE(is_guard_signal(WINVM_ACCESS_EXEC));
	EXPECT_EQ(p, probe_info.si_addr);
	EXPECT_TRUE(try_exec(p));

	/* Guard on a non-executable page: the guard first, then the NX. */
	ASSERT_EQ(0, wv_protect(self->fd, p, PAGE, RW | GUARD, NULL));
	EXPECT_FALSE(try_exec(p));
	EXPECT_TRUE(is_guard_signal(WINVM_ACCESS_EXEC));
	EXPECT_FALSE(try_exec(p));
	EXPECT_EQ(0, probe_info.si_errno);
	EXPECT_EQ(p, probe_info.si_addr);
}

/* Assert that a committed-with-guard page and a guarded reservation work. */
TEST_F(protect, guard_at_commit)
{
	struct winvm_query_args q;
	uint64_t addr;
	char *g;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, PAGE, RES | COM, RW | GUARD, &addr,
			      NULL));
	g = (char *)(uintptr_t)addr;
	ASSERT_EQ(0, wv_query(self->fd, g, &q));
	EXPECT_EQ(RW | GUARD, q.out_alloc_prot);
	EXPECT_EQ(RW | GUARD, q.out_prot);
	EXPECT_FALSE(try_write(g, 1));
	EXPECT_TRUE(is_guard_signal(WINVM_ACCESS_WRITE));
	ASSERT_EQ(0, wv_query(self->fd, g, &q));
	EXPECT_EQ(RW, q.out_prot);
	EXPECT_EQ(RW | GUARD, q.out_alloc_prot);
	EXPECT_TRUE(try_write(g, 1));
	EXPECT_EQ(0, wv_release(self->fd, g));

	/* Recommitting a committed page with a guard arms it. */
	ASSERT_EQ(0, wv_commit(self->fd, self->p, PAGE, RW | GUARD));
	EXPECT_FALSE(try_read(self->p));
	EXPECT_TRUE(is_guard_signal(WINVM_ACCESS_READ));
}

/*
 * Assert that accesses the kernel makes for the program fail with EFAULT
 * and leave the guard armed.
 */
TEST_F(protect, guard_kernel_access)
{
	struct iovec local, remote;
	char buf[8];
	int zero;

	ASSERT_EQ(0, wv_protect(self->fd, self->p, PAGE, RW | GUARD, NULL));
	zero = open("/dev/zero", O_RDONLY);
	ASSERT_LE(0, zero);
	EXPECT_EQ(-1, read(zero, self->p, 8));
	EXPECT_EQ(EFAULT, errno);
	close(zero);

	local.iov_base = buf;
	local.iov_len = sizeof(buf);
	remote.iov_base = self->p;
	remote.iov_len = sizeof(buf);
	EXPECT_EQ(-1, process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	EXPECT_EQ(EFAULT, errno);

	EXPECT_EQ(RW | GUARD, page_prot(self->fd, self->p));
	EXPECT_FALSE(try_read(self->p));
	EXPECT_TRUE(is_guard_signal(WINVM_ACCESS_READ));
}

/* Assert that a thread that cannot take the guard signal dies of it. */
TEST_F(protect, guard_with_sigsegv_blocked)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, wv_protect(self->fd, self->p, PAGE, RW | GUARD, NULL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = wv_open();
		uint64_t a;
		sigset_t set;

		if (fd < 0 || wv_alloc(fd, 0, PAGE, RES | COM, RW | GUARD, &a,
				       NULL))
			_exit(1);
		sigemptyset(&set);
		sigaddset(&set, SIGSEGV);
		sigprocmask(SIG_BLOCK, &set, NULL);
		*(volatile char *)(uintptr_t)a = 1;
		_exit(2);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGSEGV, WTERMSIG(status));
}

/* Several threads hit one armed guard page at once. */
struct guard_race {
	char *page;
	pthread_barrier_t *start, *done;
	int rounds;
	int hits;
};

static void *guard_racer(void *data)
{
	struct guard_race *race = data;
	int i;

	for (i = 0; i < race->rounds; i++) {
		pthread_barrier_wait(race->start);
		if (!try_read(race->page)) {
			if (is_guard_signal(WINVM_ACCESS_READ))
				__atomic_add_fetch(&race->hits, 1,
						   __ATOMIC_RELAXED);
			else
				__atomic_add_fetch(&race->hits, 1000,
						   __ATOMIC_RELAXED);
			/* Retried after the handler: must succeed now. */
			if (!try_read(race->page))
				__atomic_add_fetch(&race->hits, 1000,
						   __ATOMIC_RELAXED);
		}
		pthread_barrier_wait(race->done);
	}
	return NULL;
}

static void guard_exactly_once(struct __test_metadata *_metadata, int fd,
			       char *page, int nthreads, int rounds)
{
	pthread_barrier_t start, done;
	struct guard_race race = { page, &start, &done, rounds, 0 };
	pthread_t threads[8];
	int i, bad = 0;

	pthread_barrier_init(&start, NULL, nthreads + 1);
	pthread_barrier_init(&done, NULL, nthreads + 1);
	for (i = 0; i < nthreads; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, guard_racer,
					    &race));
	for (i = 0; i < rounds; i++) {
		ASSERT_EQ(0, wv_protect(fd, page, PAGE, RW | GUARD, NULL));
		race.hits = 0;
		pthread_barrier_wait(&start);
		pthread_barrier_wait(&done);
		if (race.hits != 1)
			bad++;
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	EXPECT_EQ(0, bad) TH_LOG("%d threads: %d of %d rounds wrong",
				 nthreads, bad, rounds);
}

/* Assert exactly one guard signal per arming, however many threads race. */
TEST_F_TIMEOUT(protect, guard_threads, 300)
{
	guard_exactly_once(_metadata, self->fd, self->p, 2, 2000);
	guard_exactly_once(_metadata, self->fd, self->p, 4, 1000);
	guard_exactly_once(_metadata, self->fd, self->p, 8, 500);
}

/* Writers race one thread that flips a page between writable and not. */
struct flip_race {
	char *page;
	volatile int stop;
};

static void *flip_writer(void *data)
{
	struct flip_race *race = data;

	while (!race->stop)
		try_write(race->page + 64, 1);
	return NULL;
}

/*
 * Assert that once a protection change returns, no fault that raced it can
 * leave the page more accessible than the new protection.
 */
TEST_F_TIMEOUT(protect, changes_race_faults, 120)
{
	struct flip_race race = { self->p, 0 };
	pthread_t threads[3];
	int i, leaks = 0;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, flip_writer,
					    &race));
	for (i = 0; i < 3000; i++) {
		ASSERT_EQ(0, wv_protect(self->fd, self->p, PAGE, RW, NULL));
		ASSERT_EQ(0, wv_protect(self->fd, self->p, PAGE, R, NULL));
		if (try_write(self->p, 1))
			leaks++;
	}
	race.stop = 1;
	for (i = 0; i < 3; i++)
		pthread_join(threads[i], NULL);
	EXPECT_EQ(0, leaks);
}

/* Assert that cache attributes belong to the allocation, as on Windows. */
TEST_F(protect, cache_attributes)
{
	const uint32_t nc = WINVM_PROT_NOCACHE;
	struct winvm_query_args q;
	uint64_t addr;
	uint32_t old;
	char *a;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, 2 * PAGE, RES | COM, RW | nc, &addr,
			      NULL));
	a = (char *)(uintptr_t)addr;
	ASSERT_EQ(0, wv_query(self->fd, a, &q));
	EXPECT_EQ(RW | nc, q.out_alloc_prot);
	EXPECT_EQ(RW | nc, q.out_prot);
	EXPECT_EQ(2 * PAGE, q.out_region_size);

	ASSERT_EQ(0, wv_protect(self->fd, a, PAGE, RW, &old));
	EXPECT_EQ(RW | nc, old);
	ASSERT_EQ(0, wv_query(self->fd, a, &q));
	EXPECT_EQ(RW | nc, q.out_prot);
	EXPECT_EQ(2 * PAGE, q.out_region_size);

	ASSERT_EQ(0, wv_protect(self->fd, a, PAGE, R, &old));
	EXPECT_EQ(RW | nc, old);
	ASSERT_EQ(0, wv_query(self->fd, a, &q));
	EXPECT_EQ(R | nc, q.out_prot);
	EXPECT_EQ(PAGE, q.out_region_size);
	EXPECT_EQ(0, wv_release(self->fd, a));

	/* Not per page: ignored on an allocation without it. */
	ASSERT_EQ(0, wv_protect(self->fd, self->p, PAGE,
				R | WINVM_PROT_WRITECOMBINE, &old));
	EXPECT_EQ(RW, old);
	EXPECT_EQ(R, page_prot(self->fd, self->p));
}

/*
 * Assert that page-by-page protection changes over a large region need no
 * VMA each: far more alternating runs than vm.max_map_count allows VMAs.
 */
TEST_F_TIMEOUT(protect, fragmentation, 600)
{
	const long pages = 100000;
	struct winvm_query_args q;
	long before, i, regions = 0;
	uint64_t addr;
	char *a, *p;

	ASSERT_EQ(0, wv_alloc(self->fd, 0, pages * PAGE, RES | COM, RW, &addr,
			      NULL));
	a = (char *)(uintptr_t)addr;
	before = vma_count();
	for (i = 0; i < pages; i += 2)
		ASSERT_EQ(0, wv_protect(self->fd, a + i * PAGE, PAGE, R, NULL));
	EXPECT_EQ(before, vma_count());

	for (p = a; p < a + pages * PAGE; p += q.out_region_size) {
		ASSERT_EQ(0, wv_query(self->fd, p, &q));
		ASSERT_EQ(PAGE, q.out_region_size);
		ASSERT_EQ(((p - a) / PAGE) % 2 ? RW : R, q.out_prot);
		regions++;
	}
	EXPECT_EQ(pages, regions);
	EXPECT_TRUE(try_write(a + PAGE, 1));
	EXPECT_FALSE(try_write(a + 2 * PAGE, 1));
	EXPECT_EQ(0, wv_release(self->fd, a));
}

TEST_HARNESS_MAIN
