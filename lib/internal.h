/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libwinvm internals shared between its source files; not installed.
 */
#ifndef LIBWINVM_INTERNAL_H
#define LIBWINVM_INTERNAL_H

/*
 * Give the calling thread what exception delivery needs (an alternate
 * signal stack); cheap after the first call in a thread. Every entry point
 * calls it, so any thread that uses libwinvm can report a stack overflow.
 */
void winvm_thread_setup(void);

#endif /* LIBWINVM_INTERNAL_H */
