/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The subset of <windows.h> that libwinvm provides, so that Win32 source
 * using the memory API compiles unchanged with -I<libwinvm>/include.
 */
#ifndef LIBWINVM_WINDOWS_H
#define LIBWINVM_WINDOWS_H

#include "winvm.h"

#endif /* LIBWINVM_WINDOWS_H */
