/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the selftests of libwinvm's Win32 API (win32,
 * exceptions, heap, global).
 */
#ifndef WINVM_SELFTEST_WIN32_UTIL_H
#define WINVM_SELFTEST_WIN32_UTIL_H

#include <stdbool.h>

#include <windows.h>

/* A marker no API call sets: proves SetLastError only happens on failure. */
#define UNTOUCHED	0xdeadbeef

static inline bool all_zero(const void *p, SIZE_T size)
{
	const unsigned char *c = p;

	while (size)
		if (c[--size])
			return false;
	return true;
}

#endif /* WINVM_SELFTEST_WIN32_UTIL_H */
