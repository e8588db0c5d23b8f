/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The measuring harness shared by the benchmark programs: a clock, trial
 * statistics, threads and the output format. It compiles for Linux (the
 * libwinvm build and the raw-Linux anchors) and for Windows (the mingw
 * build that runs under Wine), so it uses nothing but the C library and,
 * per system, its own clock and thread calls.
 *
 * Output, one line per figure, read by scripts/bench:
 *   R KEY MEDIAN P25 P75 MIN MAX TRIALS    ns per operation over the trials
 *                                          (KiB for heapbench's *.peak_rss_kib)
 *   I KEY VALUE                            anything else (counts, bytes)
 *   E KEY TEXT                             a workload that could not run
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#endif

#define BENCH_MAX_TRIALS	64
#define BENCH_MAX_THREADS	16

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#endif

/*
 * Set from the command line: trials per figure, the size scale, and a
 * divisor of operation counts (for slow runs: Wine's).
 */
static int bench_trials = 7;
static int bench_quick;
static int bench_div = 1;
static int bench_warmup = 1;

/*
 * Operations per trial: @quick or @full, divided by bench_div. Sizes
 * (regions, pages) never change with it: only how often they are measured.
 */
static long bench_ops(long quick, long full)
{
	long n = (bench_quick ? quick : full) / bench_div;

	return n < 10 ? 10 : n;
}

/* Monotonic time in nanoseconds. */
#ifdef _WIN32
static double bench_now(void)
{
	static double ns_per_tick;
	LARGE_INTEGER t;

	if (!ns_per_tick) {
		LARGE_INTEGER f;

		QueryPerformanceFrequency(&f);
		ns_per_tick = 1e9 / (double)f.QuadPart;
	}
	QueryPerformanceCounter(&t);
	return (double)t.QuadPart * ns_per_tick;
}
#else
static double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}
#endif

/*
 * What reading the clock twice costs, subtracted from workloads that time
 * each operation on its own (the ones that must do untimed work between
 * operations). The minimum of many tries: the clock itself is not noisy.
 */
static double bench_clock_cost(void)
{
	static double cost = -1;
	double t0, t1, best = 1e30;
	int i;

	if (cost >= 0)
		return cost;
	for (i = 0; i < 2000; i++) {
		t0 = bench_now();
		t1 = bench_now();
		if (t1 - t0 < best)
			best = t1 - t0;
	}
	cost = best;
	return cost;
}

static void bench_out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of sorted @v (linear interpolation between ranks). */
static double bench_quantile(const double *v, int n, double q)
{
	double pos = q * (n - 1);
	int i = (int)pos;

	if (i >= n - 1)
		return v[n - 1];
	return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

/* Report the trials of one figure, in ns per operation. */
static void bench_report(const char *key, double *v, int n)
{
	if (n <= 0) {
		bench_out("E %s no trial completed\n", key);
		return;
	}
	qsort(v, n, sizeof(*v), bench_cmp_double);
	bench_out("R %s %.1f %.1f %.1f %.1f %.1f %d\n", key,
		  bench_quantile(v, n, 0.5), bench_quantile(v, n, 0.25),
		  bench_quantile(v, n, 0.75), v[0], v[n - 1], n);
}

/*
 * A figure: run @fn (which does @ops operations and returns what one took
 * on average, in ns, or a negative number on failure) once with a quarter
 * of the operations to warm up (unless -w 0), then bench_trials times.
 */
typedef double (*bench_fn)(void *arg, long ops);

static int bench_run(const char *key, bench_fn fn, void *arg, long ops)
{
	double v[BENCH_MAX_TRIALS];
	int i, n = 0;

	if (bench_warmup && fn(arg, ops >= 4 ? ops / 4 : ops) < 0) {
		bench_out("E %s the workload failed\n", key);
		return -1;
	}
	for (i = 0; i < bench_trials && i < BENCH_MAX_TRIALS; i++) {
		double t = fn(arg, ops);

		if (t < 0) {
			bench_out("E %s the workload failed in trial %d\n",
				  key, i + 1);
			return -1;
		}
		v[n++] = t;
	}
	bench_report(key, v, n);
	return 0;
}

/* xorshift64*: cheap, deterministic random numbers for addresses. */
static uint64_t bench_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

/* Threads: start one pinned to a CPU (best effort), and join it. */
struct bench_thread {
	void *(*fn)(void *arg);
	void *arg;
	int cpu;
#ifdef _WIN32
	HANDLE handle;
#else
	pthread_t tid;
#endif
};

static int bench_ncpus(void)
{
#ifdef _WIN32
	SYSTEM_INFO si;

	GetSystemInfo(&si);
	return si.dwNumberOfProcessors;
#else
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
#endif
}

static void bench_pin_self(int cpu)
{
	if (cpu < 0)
		return;
#ifdef _WIN32
	SetThreadAffinityMask(GetCurrentThread(), (DWORD_PTR)1 << cpu);
#else
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
#endif
}

#ifdef _WIN32
static DWORD WINAPI bench_trampoline(LPVOID p)
{
	struct bench_thread *t = p;

	bench_pin_self(t->cpu);
	t->fn(t->arg);
	return 0;
}

static int bench_thread_start(struct bench_thread *t)
{
	t->handle = CreateThread(NULL, 0, bench_trampoline, t, 0, NULL);
	return t->handle ? 0 : -1;
}

static void bench_thread_join(struct bench_thread *t)
{
	WaitForSingleObject(t->handle, INFINITE);
	CloseHandle(t->handle);
}
#else
static void *bench_trampoline(void *p)
{
	struct bench_thread *t = p;

	bench_pin_self(t->cpu);
	return t->fn(t->arg);
}

static int bench_thread_start(struct bench_thread *t)
{
	return pthread_create(&t->tid, NULL, bench_trampoline, t) ? -1 : 0;
}

static void bench_thread_join(struct bench_thread *t)
{
	pthread_join(t->tid, NULL);
}
#endif

/* Spinning threads may outnumber the CPUs: let the others run. */
static void bench_yield(void)
{
#ifdef _WIN32
	SwitchToThread();
#else
	sched_yield();
#endif
}

/*
 * A start line for threads: each worker checks in and spins until the
 * main thread opens the gate, so that thread creation is not timed and
 * all workers start together.
 */
struct bench_gate {
	int ready;
	int open;
	int stop;
};

static void bench_gate_wait(struct bench_gate *g)
{
	__atomic_add_fetch(&g->ready, 1, __ATOMIC_ACQ_REL);
	while (!__atomic_load_n(&g->open, __ATOMIC_ACQUIRE))
		bench_yield();
}

static void bench_gate_open(struct bench_gate *g, int workers)
{
	while (__atomic_load_n(&g->ready, __ATOMIC_ACQUIRE) < workers)
		bench_yield();
	__atomic_store_n(&g->open, 1, __ATOMIC_RELEASE);
}

/*
 * A multi-threaded figure: @threads workers, each doing @ops operations,
 * and @disturb disturbers that run until the workers are done. The
 * caller fills in what the figure is (@fn, @disturber, @body, @arg,
 * @bystander, the counts) and passes it to bench_run() with bench_mt_run;
 * a worker calls bench_mt_done() when its operations are. A figure is the
 * wall time from the gate's opening to the last worker's end over all the
 * workers' operations (aggregate), so that perfect scaling on C CPUs
 * divides the one-thread figure by min(T, C).
 */
struct bench_mt {
	void *(*fn)(void *mt);		/* a worker; bench_mt_worker runs @body */
	void *(*disturber)(void *mt);
	bench_fn body;
	void *arg;			/* the workload's */
	char *bystander;		/* a page the disturbers change */
	int threads;
	int disturb;
	long ops;
	long pairs;			/* the disturbers' operations, summed */
	/* Per trial: */
	struct bench_gate gate;
	int done;			/* workers finished */
	int bad;			/* an operation failed */
	double end;			/* when the last worker finished */
};

static inline void bench_mt_done(struct bench_mt *m)
{
	double now = bench_now();

	if (__atomic_add_fetch(&m->done, 1, __ATOMIC_ACQ_REL) == m->threads)
		m->end = now;
}

/* A worker that runs m->body on m->arg for m->ops operations. */
static inline void *bench_mt_worker(void *p)
{
	struct bench_mt *m = p;

	bench_gate_wait(&m->gate);
	if (m->body(m->arg, m->ops) < 0)
		m->bad = 1;
	bench_mt_done(m);
	return NULL;
}

/* Whether the workers of @m are all done: a disturber's loop condition. */
static inline int bench_mt_running(struct bench_mt *m)
{
	return __atomic_load_n(&m->done, __ATOMIC_ACQUIRE) < m->threads;
}

static inline double bench_mt_run(void *arg, long unused)
{
	struct bench_mt *m = arg;
	struct bench_thread th[BENCH_MAX_THREADS + 1];
	int ncpu = bench_ncpus(), i, n = m->threads + m->disturb;
	double t0;

	memset(&m->gate, 0, sizeof(m->gate));
	m->done = 0;
	m->bad = 0;
	m->end = 0;
	for (i = 0; i < n; i++) {
		th[i].fn = i < m->threads ? m->fn : m->disturber;
		th[i].arg = m;
		th[i].cpu = (i + 1) % ncpu;	/* one thread: CPU 1, as -p 1 */
		if (bench_thread_start(&th[i])) {
			/* Those started run to their end, not the figure. */
			m->bad = 1;
			break;
		}
	}
	n = i;
	bench_gate_open(&m->gate, n);
	t0 = bench_now();
	for (i = 0; i < n; i++)
		bench_thread_join(&th[i]);
	return m->bad ? -1 : (m->end - t0) / ((double)m->ops * m->threads);
}

/* Figure PREFIX.THREADS: @m run by bench_run(). */
static inline void bench_mt_figure(const char *prefix, struct bench_mt *m)
{
	char key[64];

	snprintf(key, sizeof(key), "%s.%d", prefix, m->threads);
	bench_run(key, bench_mt_run, m, 1);
}

/*
 * Figures mt_fault.THREADS and mt_fault_protect.THREADS: @fault in
 * @threads workers, alone, then with @disturber changing the protection
 * of @bystander all along.
 */
static inline void bench_mt_fault_figures(void *(*fault)(void *),
					  void *(*disturber)(void *),
					  char *bystander, int threads,
					  long pages)
{
	struct bench_mt m = {
		.fn = fault,
		.disturber = disturber,
		.bystander = bystander,
		.threads = threads,
		.ops = pages,
	};

	bench_mt_figure("mt_fault", &m);
	m.disturb = 1;
	bench_mt_figure("mt_fault_protect", &m);
	bench_out("I mt_fault_protect.%d.protect_pairs %ld\n", threads,
		  m.pairs);
}

/*
 * Parse the common options: -t TRIALS, -q (quick sizes), -d DIV (divide
 * operation counts), -w 0 (no warm-up run), -p CPU (pin the main thread).
 * Returns the index
 * of the first workload name.
 */
static int bench_options(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-q")) {
			bench_quick = 1;
		} else if (!strcmp(argv[i], "-w") && i + 1 < argc) {
			bench_warmup = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "-d") && i + 1 < argc) {
			bench_div = atoi(argv[++i]);
			if (bench_div < 1)
				bench_div = 1;
		} else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
			bench_pin_self(atoi(argv[++i]));
		} else if (!strcmp(argv[i], "-t") && i + 1 < argc) {
			bench_trials = atoi(argv[++i]);
			if (bench_trials < 1 || bench_trials > BENCH_MAX_TRIALS)
				bench_trials = 7;
		} else {
			break;
		}
	}
	return i;
}

/*
 * 12, write watch: a cycle writes one byte to each of WATCH_WRITES pages
 * spread over a WATCH_PAGES-page region, then takes the written pages and
 * resets them, as a garbage collector does between collections.
 */
#define WATCH_PAGES	4096
#define WATCH_WRITES	64

#endif /* BENCH_H */
