// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapbench: allocator workloads in the style of mimalloc-bench, written
 * once against a three-function shim over one allocator and built, like
 * workloads.c, with libwinvm's <windows.h> for Linux and with mingw-w64 for
 * Windows (run under Wine, whose HeapAlloc is an anchor). On Linux each
 * workload runs in a process of its own, so that each peak RSS is that
 * workload's.
 *
 * Usage: heapbench [-q] [-t TRIALS] [-w 0] [-d DIV] [-p CPU]
 *                  [-a ALLOCATOR[=LABEL][,ALLOCATOR[=LABEL]]] [-j THREADS]
 *                  WORKLOAD...
 *   -q, -t, -w, -d, -p  as for the other programs (bench.h)
 *   -a ALLOCATOR  process: HeapAlloc, HeapReAlloc and HeapFree on
 *                 GetProcessHeap() (the default); global: GlobalAlloc
 *                 (GMEM_FIXED), GlobalReAlloc(GMEM_MOVEABLE) and GlobalFree
 *                 (LocalAlloc and friends are the same code in libwinvm);
 *                 malloc: the C library's, or whatever LD_PRELOAD puts in
 *                 front of it (libmimalloc.so.2, libjemalloc.so.2).
 *                 LABEL names it in the figures' keys (default: its
 *                 name). Two alternate trial by trial in each workload's
 *                 process (a line per trial: bench/report.awk takes the
 *                 median over the lines)
 *   -j THREADS    threads of the multi-threaded workloads (default: the
 *                 CPUs)
 *
 * Workloads:
 *   small_st  one thread: 1000 blocks of 16-128 bytes allocated, then
 *             freed in order; then 1000 allocated and freed in reverse
 *   small_mt  the same in THREADS threads at once
 *   larson    THREADS threads trading 16-1024 byte blocks through a shared
 *             array of 1000 slots per thread: most frees are of another
 *             thread's blocks
 *   realloc   64 buffers grown by 1-64 bytes in turn up to 4 KiB, then
 *             one grown in 25% steps from 1 KiB to 4 MiB (a round of
 *             about 8000 operations; a trial is at least one)
 *   mixed     a working set of 10000 blocks replaced at random: 80% of
 *             16-256 bytes, 15% up to 4 KiB, 4.5% up to 64 KiB, 0.5% up to
 *             1 MiB; the first and last byte of each written
 * An operation is one allocation, reallocation or free; every block is
 * written to. Figures (bench.h's format), LABEL being the allocator's:
 *   R heap.WORKLOAD.LABEL ...               ns per operation (aggregate
 *                                           over the threads)
 *   R heap.WORKLOAD.LABEL.peak_rss_kib ...  the workload's process's peak
 *                                           RSS, in KiB (the first
 *                                           allocator's label; under Wine
 *                                           the peak so far of the one
 *                                           process)
 */
#define _GNU_SOURCE
#define __USE_MINGW_ANSI_STDIO 1
#include <windows.h>

#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#include <psapi.h>
#else
#include <sys/resource.h>
#include <sys/wait.h>
#endif

#include "../bench.h"

enum allocator { PROCESS, GLOBAL, MALLOC };

static const char *const alloc_names[] = { "process", "global", "malloc" };
static enum allocator alloc_kind = PROCESS;
static HANDLE heap;

static void *xalloc(size_t size)
{
	switch (alloc_kind) {
	case MALLOC:
		return malloc(size);
	case GLOBAL:
		return GlobalAlloc(GMEM_FIXED, size);
	default:
		return HeapAlloc(heap, 0, size);
	}
}

static void *xrealloc(void *p, size_t size)
{
	switch (alloc_kind) {
	case MALLOC:
		return realloc(p, size);
	case GLOBAL:
		return GlobalReAlloc(p, size, GMEM_MOVEABLE);
	default:
		return HeapReAlloc(heap, 0, p, size);
	}
}

static void xfree(void *p)
{
	switch (alloc_kind) {
	case MALLOC:
		free(p);
		break;
	case GLOBAL:
		GlobalFree(p);
		break;
	default:
		HeapFree(heap, 0, p);
		break;
	}
}

static unsigned long peak_rss_kib(void)
{
#ifdef _WIN32
	PROCESS_MEMORY_COUNTERS pmc;

	if (!GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof(pmc)))
		return 0;
	return pmc.PeakWorkingSetSize / 1024;
#else
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
#endif
}

/* One run of a workload: its threads, the slots they share, the clock. */
struct run {
	struct bench_gate gate;
	int workers;
	int done;		/* workers finished */
	int bad;		/* an allocation failed */
	double end;		/* when the last one finished */
	void *volatile *slots;	/* larson's */
	unsigned long nslots;
};

struct job {
	struct run *run;
	long (*body)(struct job *job);
	int id;
	long ops;		/* to do, at least */
	long done;		/* done */
};

/* Each body does at least job->ops operations and returns how many. */
#define SMALL_N		1000

static long small_body(struct job *job)
{
	uint64_t seed = 1 + job->id;
	void *p[SMALL_N];
	long done = 0;
	int i, r;

	for (r = 0; done < job->ops; r++) {
		for (i = 0; i < SMALL_N; i++) {
			p[i] = xalloc(16 + bench_rand(&seed) % 113);
			if (!p[i])
				return -1;
			*(char *)p[i] = (char)i;
		}
		if (r & 1) {
			for (i = SMALL_N - 1; i >= 0; i--)
				xfree(p[i]);
		} else {
			for (i = 0; i < SMALL_N; i++)
				xfree(p[i]);
		}
		done += 2 * SMALL_N;
	}
	return done;
}

static long larson_body(struct job *job)
{
	struct run *run = job->run;
	uint64_t seed = 77 + job->id;
	unsigned long s;
	long done = 0;
	size_t size;
	void *p, *old;

	while (done < job->ops) {
		s = bench_rand(&seed) % run->nslots;
		size = 16 + bench_rand(&seed) % 1009;
		p = xalloc(size);
		if (!p)
			return -1;
		*(char *)p = 1;
		((char *)p)[size - 1] = 2;
		old = __atomic_exchange_n(&run->slots[s], p, __ATOMIC_ACQ_REL);
		done++;
		if (old) {
			xfree(old);
			done++;
		}
	}
	return done;
}

#define REALLOC_N	64

static long realloc_body(struct job *job)
{
	static void *bufs[REALLOC_N];
	static size_t sizes[REALLOC_N];
	uint64_t seed = 5;
	long done = 0;
	size_t size;
	void *p;
	int i, live;

	while (done < job->ops) {
		for (i = 0; i < REALLOC_N; i++) {
			bufs[i] = xalloc(16);
			if (!bufs[i])
				return -1;
			sizes[i] = 16;
		}
		done += REALLOC_N;
		do {
			for (i = 0, live = 0; i < REALLOC_N; i++) {
				if (sizes[i] >= 4096)
					continue;
				sizes[i] += 1 + bench_rand(&seed) % 64;
				p = xrealloc(bufs[i], sizes[i]);
				if (!p)
					return -1;
				bufs[i] = p;
				((char *)p)[sizes[i] - 1] = 1;
				done++;
				live++;
			}
		} while (live);
		for (i = 0; i < REALLOC_N; i++)
			xfree(bufs[i]);
		done += REALLOC_N;

		bufs[0] = xalloc(1024);
		for (size = 1024; bufs[0] && size < (4 << 20); size += size / 4) {
			p = xrealloc(bufs[0], size);
			if (!p)
				return -1;
			bufs[0] = p;
			((char *)p)[size - 1] = 1;
			done++;
		}
		if (!bufs[0])
			return -1;
		xfree(bufs[0]);
		done += 2;
	}
	return done;
}

#define MIXED_N		10000

static size_t mixed_size(uint64_t *seed)
{
	unsigned int r = bench_rand(seed) % 1000;

	if (r < 800)
		return 16 + bench_rand(seed) % 241;
	if (r < 950)
		return 257 + bench_rand(seed) % 3840;
	if (r < 995)
		return 4097 + bench_rand(seed) % 61440;
	return 65537 + bench_rand(seed) % 983040;
}

static long mixed_body(struct job *job)
{
	static void *slots[MIXED_N];
	uint64_t seed = 9;
	unsigned long s;
	long done = 0;
	size_t size;

	memset(slots, 0, sizeof(slots));
	/* At least until the working set is full. */
	while (done < job->ops || done < 2 * MIXED_N) {
		s = bench_rand(&seed) % MIXED_N;
		if (slots[s]) {
			xfree(slots[s]);
			done++;
		}
		size = mixed_size(&seed);
		slots[s] = xalloc(size);
		if (!slots[s])
			return -1;
		((char *)slots[s])[0] = 1;
		((char *)slots[s])[size - 1] = 1;
		done++;
	}
	for (s = 0; s < MIXED_N; s++) {
		if (slots[s]) {
			xfree(slots[s]);
			done++;
		}
	}
	return done;
}

/* A worker is done: the clock stops when the last one is. */
static void *worker(void *arg)
{
	struct job *job = arg;
	struct run *run = job->run;
	double now;

	bench_gate_wait(&run->gate);
	job->done = job->body(job);
	now = bench_now();
	if (job->done < 0)
		run->bad = 1;
	if (__atomic_add_fetch(&run->done, 1, __ATOMIC_ACQ_REL) == run->workers)
		run->end = now;
	return NULL;
}

struct workload {
	const char *name;
	long (*body)(struct job *job);
	int threaded;
	unsigned long slots;	/* shared slots per thread */
	long quick, full;	/* operations (per thread), for bench_ops() */
};

static const struct workload workloads[] = {
	{ "small_st", small_body, 0, 0, 20000, 200000 },
	{ "small_mt", small_body, 1, 0, 10000, 100000 },
	{ "larson", larson_body, 1, 1000, 4000, 40000 },
	{ "realloc", realloc_body, 0, 0, 1, 8000 },
	{ "mixed", mixed_body, 0, 0, 20000, 50000 },
};

static int nthreads;

/* One trial: ns per operation over all the threads' operations. */
static double w_run(void *arg, long ops)
{
	const struct workload *w = arg;
	struct bench_thread th[BENCH_MAX_THREADS];
	struct job jobs[BENCH_MAX_THREADS];
	struct run run = { .workers = w->threaded ? nthreads : 1 };
	int ncpu = bench_ncpus(), i;
	long total = 0;
	double t0;

	if (w->slots) {
		run.nslots = w->slots * run.workers;
		run.slots = calloc(run.nslots, sizeof(*run.slots));
		if (!run.slots)
			return -1;
	}
	for (i = 0; i < run.workers; i++)
		jobs[i] = (struct job){ &run, w->body, i, ops, 0 };
	if (!w->threaded) {
		t0 = bench_now();
		jobs[0].done = w->body(&jobs[0]);
		run.end = bench_now();
		run.bad = jobs[0].done < 0;
	} else {
		for (i = 0; i < run.workers; i++) {
			th[i].fn = worker;
			th[i].arg = &jobs[i];
			th[i].cpu = (i + 1) % ncpu;
			if (bench_thread_start(&th[i])) {
				/* Those started run to their end. */
				run.bad = 1;
				run.workers = i;
				break;
			}
		}
		bench_gate_open(&run.gate, run.workers);
		t0 = bench_now();
		for (i = 0; i < run.workers; i++)
			bench_thread_join(&th[i]);
	}
	for (i = 0; i < run.workers; i++)
		total += jobs[i].done;
	if (run.slots) {
		for (i = 0; (unsigned long)i < run.nslots; i++)
			if (run.slots[i])
				xfree(run.slots[i]);
		free((void *)run.slots);
	}
	return run.bad || total <= 0 ? -1 : (run.end - t0) / total;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: heapbench [-q] [-t TRIALS] [-w 0] [-d DIV] [-p CPU] [-a ALLOCATOR[=LABEL][,ALLOCATOR[=LABEL]]] [-j THREADS] WORKLOAD...\n"
		"allocators: process, global, malloc\n");
	exit(2);
}

/* The allocators of -a, and their labels. */
static enum allocator kinds[2];
static char labels[2][32];
static int nkinds;

static void parse_allocators(const char *list)
{
	const char *p = list;
	size_t len, name;
	unsigned int i;

	for (nkinds = 0; nkinds < (int)ARRAY_SIZE(kinds); p += len + 1) {
		len = strcspn(p, ",");
		name = strcspn(p, ",=");
		for (i = 0; i < ARRAY_SIZE(alloc_names) &&
		     (strlen(alloc_names[i]) != name ||
		      strncmp(p, alloc_names[i], name)); i++)
			;
		if (i == ARRAY_SIZE(alloc_names) || len == name + 1 ||
		    len - name > sizeof(labels[0]))
			usage();
		kinds[nkinds] = i;
		if (len > name)
			snprintf(labels[nkinds], sizeof(labels[0]), "%.*s",
				 (int)(len - name - 1), p + name + 1);
		else
			strcpy(labels[nkinds], alloc_names[i]);
		nkinds++;
		if (!p[len])
			return;
	}
	usage();
}

/*
 * A workload's figures, with each allocator of -a: alternating ones a line
 * per trial, the first round warmed up; then the peak RSS.
 */
static void run_workload(const struct workload *w)
{
	int k, r, rounds = nkinds > 1 ? bench_trials : 1;
	int trials = bench_trials, warmup = bench_warmup;
	char key[96];
	double rss;

	/* malloc's runs leave libwinvm alone: its memory is not theirs. */
	for (k = 0; k < nkinds; k++) {
		if (kinds[k] != MALLOC && !(heap = GetProcessHeap())) {
			bench_out("E heap.%s no process heap (error %u)\n",
				  w->name, (unsigned int)GetLastError());
			return;
		}
	}
	if (nkinds > 1)
		bench_trials = 1;
	for (r = 0; r < rounds; r++) {
		for (k = 0; k < nkinds; k++) {
			alloc_kind = kinds[k];
			snprintf(key, sizeof(key), "heap.%s.%s", w->name,
				 labels[k]);
			bench_run(key, w_run, (void *)w,
				  bench_ops(w->quick, w->full));
		}
		bench_warmup = 0;
	}
	bench_trials = trials;
	bench_warmup = warmup;
	rss = peak_rss_kib();
	snprintf(key, sizeof(key), "heap.%s.%s.peak_rss_kib", w->name,
		 labels[0]);
	bench_report(key, &rss, 1);
}

/*
 * On Linux each workload runs in a child process of its own, forked before
 * any allocator did anything, so that its peak RSS is its own (libwinvm
 * starts afresh in a child); under Wine, where a process takes seconds to
 * start, in this one.
 */
static void run_apart(const struct workload *w)
{
#ifdef _WIN32
	run_workload(w);
#else
	pid_t pid;
	int status;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		bench_out("E heap.%s.%s fork failed\n", w->name,
			  labels[0]);
		return;
	}
	if (!pid) {
		run_workload(w);
		exit(0);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		bench_out("E heap.%s.%s its process died (status %#x)\n",
			  w->name, labels[0], status);
#endif
}

int main(int argc, char **argv)
{
	char *common[64];
	int arg, n = 1;
	unsigned int i;

#ifdef _WIN32
	/* Plain "\n" line ends, as on Linux. */
	_setmode(_fileno(stdout), _O_BINARY);
#endif
	nthreads = bench_ncpus();
	parse_allocators(alloc_names[PROCESS]);
	/* Our options, anywhere before the workloads; bench.h's the rest. */
	common[0] = argv[0];
	for (arg = 1; arg < argc && argv[arg][0] == '-'; arg++) {
		if (n + 2 >= (int)ARRAY_SIZE(common))
			usage();
		if (!strcmp(argv[arg], "-q")) {
			common[n++] = argv[arg];
			continue;
		}
		if (arg + 1 >= argc)
			usage();
		if (!strcmp(argv[arg], "-a")) {
			parse_allocators(argv[arg + 1]);
		} else if (!strcmp(argv[arg], "-j")) {
			nthreads = atoi(argv[arg + 1]);
			if (nthreads < 1 || nthreads > BENCH_MAX_THREADS)
				usage();
		} else {
			common[n++] = argv[arg];
			common[n++] = argv[arg + 1];
		}
		arg++;
	}
	if (bench_options(n, common) != n || arg >= argc)
		usage();
	bench_out("I clock_cost_ns %.1f\n", bench_clock_cost());
	for (; arg < argc; arg++) {
		for (i = 0; i < ARRAY_SIZE(workloads) &&
		     strcmp(argv[arg], workloads[i].name); i++)
			;
		if (i == ARRAY_SIZE(workloads))
			bench_out("E %s unknown workload\n", argv[arg]);
		else
			run_apart(&workloads[i]);
	}
	return 0;
}
