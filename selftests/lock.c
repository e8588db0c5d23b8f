// SPDX-License-Identifier: GPL-2.0-only
/*
 * winvm selftests for locking pages (WINVM_IOC_LOCK, WINVM_IOC_UNLOCK) and
 * for MEM_RESET and MEM_RESET_UNDO (WINVM_ALLOC_RESET, _RESET_UNDO).
 */
#define _GNU_SOURCE
#include <sys/resource.h>
#include <sys/wait.h>

#include "harness.h"
#include "winvm_util.h"

#define R	WINVM_PROT_READ
#define RW	(WINVM_PROT_READ | WINVM_PROT_WRITE)
#define RES	WINVM_ALLOC_RESERVE
#define COM	WINVM_ALLOC_COMMIT

static int wv_lock(int fd, unsigned long cmd, void *addr, uint64_t size)
{
	struct winvm_lock_args args = {
		.addr = (uintptr_t)addr,
		.size = size,
		.out_addr = POISON64,
		.out_size = POISON64,
	};
	int ret = wv_ioctl(fd, cmd, &args);

	if (!ret && (args.out_addr != ((uintptr_t)addr & ~(PAGE - 1)) ||
		     args.out_size == POISON64))
		return -EPROTO;
	return ret;
}

static int wv_reset(int fd, void *addr, uint64_t size, uint32_t flags)
{
	return wv_alloc(fd, (uintptr_t)addr, size, flags, 0, NULL, NULL);
}

static long locked_kb(void)
{
	return proc_kb("/proc/self/status", "VmLck");
}

FIXTURE(lock) {
	int fd;
	char *p;
};

FIXTURE_SETUP(lock)
{
	uint64_t addr;

	self->fd = wv_open();
	if (self->fd < 0 && (errno == ENOENT || errno == ENODEV))
		SETUP_SKIP("/dev/winvm not present: load winvm.ko");
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, wv_alloc(self->fd, 0, GRAN, RES, RW, &addr, NULL));
	self->p = (char *)(uintptr_t)addr;
	ASSERT_EQ(0, wv_commit(self->fd, self->p, 8 * PAGE, RW));
	probe_setup();
}

FIXTURE_TEARDOWN(lock)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* Assert that locking counts against VmLck and unlocking gives it back. */
TEST_F(lock, lock_unlock)
{
	long base = locked_kb();

	memset(self->p, 3, 4 * PAGE);
	ASSERT_EQ(0, wv_lock(self->fd, WINVM_IOC_LOCK, self->p, 4 * PAGE));
	EXPECT_EQ(base + 16, locked_kb());
	/* Locking again, overlapping: only the new pages count. */
	ASSERT_EQ(0, wv_lock(self->fd, WINVM_IOC_LOCK, self->p + 2 * PAGE,
			     4 * PAGE));
	EXPECT_EQ(base + 24, locked_kb());
	EXPECT_EQ(3, self->p[PAGE]);

	ASSERT_EQ(0, wv_lock(self->fd, WINVM_IOC_UNLOCK, self->p, 6 * PAGE));
	EXPECT_EQ(base, locked_kb());
	EXPECT_EQ(-ENOLCK, wv_lock(self->fd, WINVM_IOC_UNLOCK, self->p, PAGE));
	EXPECT_EQ(3, self->p[PAGE]);
}

/* Assert that unlocking a range with an unlocked page changes nothing. */
TEST_F(lock, unlock_needs_all_locked)
{
	long base = locked_kb();

	ASSERT_EQ(0, wv_lock(self->fd, WINVM_IOC_LOCK, self->p, PAGE));
	EXPECT_EQ(-ENOLCK, wv_lock(self->fd, WINVM_IOC_UNLOCK, self->p,
				   2 * PAGE));
	EXPECT_EQ(base + 4, locked_kb());
	EXPECT_EQ(0, wv_lock(self->fd, WINVM_IOC_UNLOCK, self->p, PAGE));
}

/* Assert the probe order: no access fails, a guard is consumed first. */
TEST_F(lock, probe_rules)
{
	struct winvm_protect_args prot = {
		.addr = (uintptr_t)self->p + PAGE,
		.size = PAGE,
		.prot = RW | WINVM_PROT_GUARD,
	};
	struct winvm_query_args q;
	long base = locked_kb();

	self->p[PAGE] = 5;
	ASSERT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_PROTECT, &prot));
	EXPECT_EQ(-EAGAIN, wv_lock(self->fd, WINVM_IOC_LOCK, self->p,
				   2 * PAGE));
	EXPECT_EQ(base, locked_kb());
	ASSERT_EQ(0, wv_query(self->fd, self->p + PAGE, &q));
	EXPECT_EQ(RW, q.out_prot);
	EXPECT_EQ(0, wv_lock(self->fd, WINVM_IOC_LOCK, self->p, 2 * PAGE));
	EXPECT_EQ(5, self->p[PAGE]);

	prot.addr = (uintptr_t)self->p + 3 * PAGE;
	prot.prot = 0;
	ASSERT_EQ(0, wv_ioctl(self->fd, WINVM_IOC_PROTECT, &prot));
	EXPECT_EQ(-EFAULT, wv_lock(self->fd, WINVM_IOC_LOCK, self->p + 2 * PAGE,
				   2 * PAGE));
	EXPECT_EQ(-EFAULT, wv_lock(self->fd, WINVM_IOC_LOCK, self->p + 7 * PAGE,
				   2 * PAGE));
	EXPECT_EQ(-ENXIO, wv_lock(self->fd, WINVM_IOC_LOCK, self->p + GRAN - PAGE,
				  2 * PAGE));
	EXPECT_EQ(-EINVAL, wv_lock(self->fd, WINVM_IOC_LOCK, self->p, 0));
	EXPECT_EQ(base + 8, locked_kb());
}

/* Assert that decommit and release unlock what they take away. */
TEST_F(lock, free_unlocks)
{
	long base = locked_kb();

	ASSERT_EQ(0, wv_lock(self->fd, WINVM_IOC_LOCK, self->p, 8 * PAGE));
	EXPECT_EQ(base + 32, locked_kb());
	ASSERT_EQ(0, wv_decommit(self->fd, self->p, 2 * PAGE));
	EXPECT_EQ(base + 24, locked_kb());
	ASSERT_EQ(0, wv_commit(self->fd, self->p, 2 * PAGE, RW));
	EXPECT_EQ(0, self->p[0]);
	ASSERT_EQ(0, wv_release(self->fd, self->p));
	EXPECT_EQ(base, locked_kb());
}

/* Assert that RLIMIT_MEMLOCK bounds what an unprivileged process locks. */
TEST_F(lock, rlimit_memlock)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit rl = { 8 * PAGE, 8 * PAGE };
		uint64_t a;
		int fd;

		/* Without CAP_IPC_LOCK the limit applies. */
		if (setrlimit(RLIMIT_MEMLOCK, &rl) || setgid(65534) ||
		    setuid(65534))
			_exit(1);
		fd = wv_open();
		if (fd < 0 || wv_alloc(fd, 0, 16 * PAGE, RES | COM, RW, &a,
				       NULL))
			_exit(2);
		if (wv_lock(fd, WINVM_IOC_LOCK, (void *)(uintptr_t)a,
			    16 * PAGE) != -EDQUOT)
			_exit(3);
		if (wv_lock(fd, WINVM_IOC_LOCK, (void *)(uintptr_t)a, 4 * PAGE))
			_exit(4);
		if (wv_lock(fd, WINVM_IOC_LOCK, (void *)(uintptr_t)a +
			    4 * PAGE, 8 * PAGE) != -EDQUOT)
			_exit(5);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* Assert that a process exiting with locked pages leaves nothing behind. */
TEST_F(lock, exit_with_locked_pages)
{
	long before = proc_kb("/proc/meminfo", "Shmem");
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = wv_open();
		uint64_t a;

		if (fd < 0 || wv_alloc(fd, 0, 8 << 20, RES | COM, RW, &a, NULL) ||
		    wv_lock(fd, WINVM_IOC_LOCK, (void *)(uintptr_t)a, 8 << 20))
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("status %#x", status);
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_LT(proc_kb("/proc/meminfo", "Shmem") - before, 1024);
}

/* Assert that MEM_RESET keeps pages committed and drops their contents. */
TEST_F(lock, reset)
{
	struct winvm_query_args q;
	long before;

	memset(self->p, 0x55, 8 * PAGE);
	before = proc_kb("/proc/self/status", "RssShmem");
	ASSERT_EQ(0, wv_reset(self->fd, self->p, 4 * PAGE, WINVM_ALLOC_RESET));
	EXPECT_LE(proc_kb("/proc/self/status", "RssShmem"), before - 16 + 256);
	ASSERT_EQ(0, wv_query(self->fd, self->p, &q));
	EXPECT_EQ(WINVM_STATE_COMMIT, q.out_state);
	EXPECT_EQ(RW, q.out_prot);
	EXPECT_EQ(8 * PAGE, q.out_region_size);
	EXPECT_TRUE(try_read(self->p));
	EXPECT_EQ(0, self->p[0]);
	EXPECT_EQ(0x55, self->p[4 * PAGE]);

	/* Reserved pages: nothing to do. Past the allocation: refused. */
	EXPECT_EQ(0, wv_reset(self->fd, self->p + 9 * PAGE, PAGE,
			      WINVM_ALLOC_RESET));
	ASSERT_EQ(0, wv_query(self->fd, self->p + 9 * PAGE, &q));
	EXPECT_EQ(WINVM_STATE_RESERVE, q.out_state);
	EXPECT_EQ(-ENXIO, wv_reset(self->fd, self->p + GRAN - PAGE, 2 * PAGE,
				   WINVM_ALLOC_RESET));
	EXPECT_EQ(-EINVAL, wv_reset(self->fd, self->p, PAGE,
				    WINVM_ALLOC_RESET | COM));
	EXPECT_EQ(-EINVAL, wv_reset(self->fd, NULL, PAGE, WINVM_ALLOC_RESET));
	EXPECT_EQ(-EINVAL, wv_reset(self->fd, self->p, 0, WINVM_ALLOC_RESET));
}

/* Assert that MEM_RESET_UNDO reports lost contents, once. */
TEST_F(lock, reset_undo)
{
	const uint32_t undo = WINVM_ALLOC_RESET_UNDO;

	EXPECT_EQ(0, wv_reset(self->fd, self->p, 8 * PAGE, undo));
	ASSERT_EQ(0, wv_reset(self->fd, self->p + 2 * PAGE, PAGE,
			      WINVM_ALLOC_RESET));
	EXPECT_EQ(0, wv_reset(self->fd, self->p, 2 * PAGE, undo));
	EXPECT_EQ(-ENODATA, wv_reset(self->fd, self->p, 8 * PAGE, undo));
	EXPECT_EQ(0, wv_reset(self->fd, self->p, 8 * PAGE, undo));
	EXPECT_EQ(-ENXIO, wv_reset(self->fd, self->p + 7 * PAGE, 2 * PAGE,
				   undo));
	/* Decommitting forgets the reset. */
	ASSERT_EQ(0, wv_reset(self->fd, self->p, PAGE, WINVM_ALLOC_RESET));
	ASSERT_EQ(0, wv_decommit(self->fd, self->p, PAGE));
	ASSERT_EQ(0, wv_commit(self->fd, self->p, PAGE, RW));
	EXPECT_EQ(0, wv_reset(self->fd, self->p, PAGE, undo));
}

/* Assert that MEM_RESET leaves locked pages alone. */
TEST_F(lock, reset_keeps_locked)
{
	memset(self->p, 0x77, 2 * PAGE);
	ASSERT_EQ(0, wv_lock(self->fd, WINVM_IOC_LOCK, self->p, PAGE));
	ASSERT_EQ(0, wv_reset(self->fd, self->p, 2 * PAGE, WINVM_ALLOC_RESET));
	EXPECT_EQ(0x77, self->p[0]);
	EXPECT_EQ(0, self->p[PAGE]);
}

TEST_HARNESS_MAIN
