/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The kselftest harness (taken from linux-source at build time) and what
 * the winvm selftests add to it.
 */
#ifndef WINVM_SELFTEST_HARNESS_H
#define WINVM_SELFTEST_HARNESS_H

#include <stdio.h>
#include <unistd.h>

#include "kselftest_harness.h"

/*
 * The 6.1 harness runs a test's body even when its FIXTURE_SETUP skipped,
 * so a setup that skips ends the test's child at once instead: exit status
 * 255 is how the harness reports a skip.
 */
#define SETUP_SKIP(fmt, ...) SKIP(_exit(255), fmt, ##__VA_ARGS__)

/*
 * A test runs in a child that ends with _exit(), which drops what stdio
 * still buffers: stdout goes out line by line, so that what a test prints
 * (the "# fail-nth: N injection points" lines make check counts) arrives.
 */
static void __attribute__((constructor)) wv_stdout_by_line(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
}

#endif /* WINVM_SELFTEST_HARNESS_H */
