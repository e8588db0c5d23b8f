# SPDX-License-Identifier: GPL-2.0-only
#
# Turns the raw output of the benchmark programs into results.json, the
# report and the plot data (in data, for bench/scaling.gp), following
# bench/spec.  Run by bench/report:
#   awk -v spec=FILE -v causes=FILE -v dest=DIR -v data=DIR -v wine=STATUS \
#       -v quick=0|1 -v trials=N -v date=DATE -f bench/report.awk \
#       RAW/machine.txt RAW/linux.txt RAW/winvm.txt [RAW/wine.txt]
# The table goes to stdout.  The heap's entries (workload HEAP) get a
# section of their own in the report.

BEGIN {
	HEAP = 11
}

function impl_of(file, n, parts) {
	n = split(file, parts, "/")
	sub(/\.txt$/, "", parts[n])
	return parts[n]
}

# JSON string literal.
function js(s) {
	gsub(/\\/, "\\\\", s)
	gsub(/"/, "\\\"", s)
	gsub(/\t/, " ", s)
	return "\"" s "\""
}

function num(x, fmt) {
	return x == "" ? "null" : sprintf(fmt, x)
}

# Value of a reference (see bench/spec), "" if not measured; sets REL to
# its relative spread (interquartile range over median; 0 for exact ones).
function value(ref, p, n, t) {
	REL = 0
	n = split(ref, p, ":")
	if (p[1] == "const")
		return p[2]
	if (p[1] == "scale") {
		if (!((p[2], p[3]) in med))
			return ""
		t = p[4] < cpus ? p[4] : cpus
		REL = rel[p[2], p[3]]
		return med[p[2], p[3]] / t
	}
	if (p[1] == "geo")
		return geomean(p[2], p[3])
	if (n == 3 && p[2] == "I")
		return ((p[1], p[3]) in info) ? info[p[1], p[3]] + 0 : ""
	if (!((p[1], p[2]) in med))
		return ""
	REL = rel[p[1], p[2]]
	return med[p[1], p[2]]
}

# The geometric mean of IMPL's figures PRE{A+B+...}POST, "" unless all were
# measured; sets REL to the largest of their relative spreads.
function geomean(impl, pattern, pre, post, n, parts, i, k, sum, worst) {
	if (!match(pattern, /\{[^}]*\}/))
		return ""
	pre = substr(pattern, 1, RSTART - 1)
	post = substr(pattern, RSTART + RLENGTH)
	n = split(substr(pattern, RSTART + 1, RLENGTH - 2), parts, "+")
	sum = 0
	worst = 0
	for (i = 1; i <= n; i++) {
		k = pre parts[i] post
		if (!((impl, k) in med) || med[impl, k] <= 0)
			return ""
		sum += log(med[impl, k])
		if (rel[impl, k] > worst)
			worst = rel[impl, k]
	}
	REL = worst
	return exp(sum / n)
}

function fmt_value(x, unit) {
	if (x == "")
		return "n/a"
	if (unit ~ /^ns/)
		return x >= 10000 ? sprintf("%.1f us", x / 1000) : sprintf("%.0f ns", x)
	if (unit == "KiB")
		return x >= 10240 ? sprintf("%.1f MiB", x / 1024) : sprintf("%.0f KiB", x)
	if (x == int(x))
		return sprintf("%d", x)
	return sprintf("%.1f", x)
}

function expand(line, t) {
	gsub(/%BIG/, size["BIG"], line)
	gsub(/%MID/, size["MID"], line)
	gsub(/%WALK/, size["WALK"], line)
	gsub(/%RES/, size["RES"], line)
	gsub(/%RAWFAIL/, size["RAWFAIL"], line)
	gsub(/%T/, t, line)
	return line
}

# Evaluate one spec line; appends to the JSON, the table and the report.
function entry(line, f, na, a, i, kv, label, lab, ref, nc, c, op, tgt,
	       v, r, ok, all, first_ratio, first_target, first_met, spread,
	       checks, anchors, others, primary, prim_val, w, wrel, what, row) {
	split(line, f, "\t")
	w = value(f[4])
	wrel = REL
	na = split(f[5], a, ",")
	anchors = ""
	delete aval
	delete arel
	delete acount
	for (i = 1; i <= na; i++) {
		kv = index(a[i], "=")
		label = substr(a[i], 1, kv - 1)
		ref = substr(a[i], kv + 1)
		aval[label] = value(ref)
		arel[label] = REL
		# Counts (an "I" line, a constant) are no times: no unit, no ratio.
		acount[label] = ref ~ /^const:/ || ref ~ /^[a-z]+:I:/
		lab[i] = label
		anchors = anchors (anchors == "" ? "" : ", ") js(label) ": " \
			  num(aval[label], "%.1f")
	}

	nc = split(f[6], c, ",")
	checks = ""
	all = "true"
	primary = ""
	for (i = 1; i <= nc; i++) {
		if (match(c[i], /(<=|>=)/)) {
			label = substr(c[i], 1, RSTART - 1)
			op = substr(c[i], RSTART, 2)
			tgt = substr(c[i], RSTART + 2) + 0
		}
		r = ""
		if (label == "abs") {
			v = w
		} else {
			v = ""
			if (w != "" && aval[label] != "" && aval[label] > 0)
				v = w / aval[label]
			r = v
		}
		ok = v == "" ? "null" : \
		     ((op == "<=" ? v <= tgt : v >= tgt) ? "true" : "false")
		if (ok == "false")
			all = "false"
		if (i == 1) {
			first_ratio = r
			first_target = tgt
			first_met = ok
			primary = label
		}
		checks = checks (checks == "" ? "" : ", ") \
			 "{\"against\": " js(label) ", \"" \
			 (label == "abs" ? "value" : "ratio") "\": " \
			 num(v, "%.4g") ", \"op\": " js(op) ", \"target\": " \
			 tgt ", \"met\": " ok "}"
	}
	if (first_met == "null")
		all = "null"

	# Spread: the larger relative IQR of winvm's figure and the anchor's.
	spread = ""
	if (w != "") {
		spread = wrel
		if (primary != "abs" && arel[primary] > spread)
			spread = arel[primary]
	}

	printf "%s    {\"name\": %s, \"workload\": %d, \"unit\": %s, \"op\": %s, " \
	       "\"winvm\": %s, \"anchors\": {%s}, \"ratio\": %s, " \
	       "\"target\": %s, \"met\": %s, \"spread\": %s, \"checks\": [%s]}", \
	       nentries++ ? ",\n" : "", js(f[1]), f[2], js(f[3]), js(f[7]),
	       num(w, "%.1f"), anchors, num(first_ratio, "%.3f"),
	       first_target, all, num(spread, "%.3f"), checks > json

	prim_val = primary == "abs" ? first_target : aval[primary]
	printf "%-38s %12s %12s %-28s %7s %6s %5s %6s\n", f[1],
	       fmt_value(w, f[3]), fmt_value(prim_val, f[3]),
	       primary == "abs" ? "(absolute)" : primary,
	       first_ratio == "" ? "-" : sprintf("%.2f", first_ratio),
	       (primary == "abs" ? "" : "x") (first_target ""),
	       all == "true" ? "yes" : all == "false" ? "NO" : "n/a",
	       spread == "" ? "-" : sprintf("%.0f%%", 100 * spread)

	others = ""
	for (i = 1; i <= na; i++) {
		if (lab[i] == primary)
			continue
		label = lab[i]
		v = fmt_value(aval[label], acount[label] ? "" : f[3])
		if (w != "" && aval[label] > 0 && f[3] ~ /^ns/ && !acount[label])
			v = v sprintf(" (%.2fx)", w / aval[label])
		others = others (others == "" ? "" : ", ") label " " v
	}
	checks_md = ""
	for (i = 2; i <= nc; i++)
		checks_md = checks_md "; " c[i]
	what = f[7]
	gsub(/\|/, "\\|", what)
	row = sprintf("| %s | `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n",
		f[2], f[1], what, fmt_value(w, f[3]),
		primary == "abs" ? "-" : primary " " fmt_value(prim_val, f[3]),
		first_ratio == "" ? "-" : sprintf("%.2f", first_ratio),
		(primary == "abs" ? "value " : "") c[1] checks_md,
		all == "true" ? "yes" : all == "false" ? "**no**" : "n/a",
		spread == "" ? "-" : sprintf("%.0f%%", 100 * spread), others)
	if (f[2] == HEAP) {
		heap_rows = heap_rows row
		nheap++
		nheap_met += all == "true"
	} else {
		md_rows = md_rows row
	}
	if (all == "false")
		missed[++nmissed] = f[1]
	if (all == "null")
		unmeasured[++nunmeasured] = f[1]
}

# The causes file: "@ PREFIX" starts the text for entries named PREFIX...
function load_causes(line, key) {
	key = ""
	while ((getline line < causes) > 0) {
		if (line ~ /^@ /) {
			key = substr(line, 3)
			ncause++
			cause_key[ncause] = key
			continue
		}
		if (key != "")
			cause_text[ncause] = cause_text[ncause] line "\n"
	}
	close(causes)
}

function write_plot_data(n, i, nn, tt, file, floor) {
	# The floor measured between the region counts' trials, if any.
	floor = plot("winvm", "ioctl")
	if (floor == "NaN")
		floor = plot("linux", "ioctl")
	file = data "/scaling-regions.dat"
	print "# regions winvm_query wine_query ioctl winvm_toggle wine_toggle" > file
	n = split("1 1000 " size["MID"] " " size["BIG"], nn, " ")
	for (i = 1; i <= n; i++)
		printf "%s %s %s %s %s %s\n", nn[i],
		       plot("winvm", "query." nn[i]), plot("wine", "query." nn[i]),
		       floor, plot("winvm", "toggle." nn[i]),
		       plot("wine", "toggle." nn[i]) > file
	close(file)
	file = data "/scaling-threads.dat"
	print "# threads, throughput relative to one thread: ideal winvm_query" \
	      " ioctl winvm_churn mmap_churn winvm_faults anon_faults wine_query" > file
	for (tt = 1; tt <= 4; tt *= 2)
		printf "%d %d %s %s %s %s %s %s %s\n", tt, tt < cpus ? tt : cpus,
		       speedup("winvm", "mt_query.", tt),
		       speedup("linux", "mt_ioctl.", tt),
		       speedup("winvm", "mt_churn.", tt),
		       speedup("linux", "mt_churn.", tt),
		       speedup("winvm", "mt_fault_protect.", tt),
		       speedup("linux", "mt_fault_protect.", tt),
		       speedup("wine", "mt_query.", tt) > file
	close(file)
}

# The median over the runs of a guard.* line, "" if none.
function gmedian(impl, key, n, i, v, parts) {
	if (!((impl, key) in gsamples))
		return ""
	n = split(gsamples[impl, key], parts, " ")
	for (i = 1; i <= n; i++)
		v[i] = parts[i] + 0
	sort(v, n)
	return quantile(v, n, 0.5)
}

function guard_breakdown(impl, names, labels, steps, n, i, k, v, line) {
	n = split("winvm linux wine", names, " ")
	split("to_handler from_handler rearm", steps, " ")
	split("winvm (VEH), raw Linux (sigaction + mprotect), Wine (VEH)",
	      labels, ",")
	print "## Where a guard-page round trip goes" > md
	print "" > md
	print "Medians over the runs of the `guard.*` lines (clock reads " \
	      "around each step, so the parts do not add up to the figure " \
	      "exactly): from the access to the handler, from the handler " \
	      "back to the completed access, and the re-arm." > md
	print "" > md
	print "| | to handler | back to the access | re-arm |" > md
	print "| --- | --- | --- | --- |" > md
	for (i = 1; i <= n; i++) {
		sub(/^ /, "", labels[i])
		line = "| " labels[i] " |"
		for (k = 1; k <= 3; k++) {
			v = gmedian(names[i], "guard." steps[k] "_ns")
			line = line " " fmt_value(v, "ns") " |"
		}
		print line > md
	}
	print "" > md
}

function plot(impl, key) {
	return (impl, key) in med ? med[impl, key] : "NaN"
}

# Aggregate throughput at T threads over that at one (the figures are
# aggregate ns per operation).
function speedup(impl, key, t) {
	if (!((impl, key 1) in med) || !((impl, key t) in med))
		return "NaN"
	return med[impl, key 1] / med[impl, key t]
}

# Sort v[1..n] in place (insertion sort: n is small).
function sort(v, n, i, j, x) {
	for (i = 2; i <= n; i++) {
		x = v[i]
		for (j = i - 1; j >= 1 && v[j] > x; j--)
			v[j + 1] = v[j]
		v[j + 1] = x
	}
}

# The q-quantile of sorted v[1..n], as bench.h computes it.
function quantile(v, n, q, pos, i) {
	pos = q * (n - 1) + 1
	i = int(pos)
	if (i >= n)
		return v[n]
	return v[i] + (pos - i) * (v[i + 1] - v[i])
}

# A figure printed once per process by programs run once per trial (the
# interleaved groups of bench/guest-run): its medians are the trials.
function merge_rounds(k, n, i, v, parts) {
	for (k in nlines) {
		if (nlines[k] < 2)
			continue
		n = split(samples[k], parts, " ")
		for (i = 1; i <= n; i++)
			v[i] = parts[i] + 0
		sort(v, n)
		med[k] = quantile(v, n, 0.5)
		rel[k] = 0
		if (med[k] > 0)
			rel[k] = (quantile(v, n, 0.75) - quantile(v, n, 0.25)) / med[k]
		ntrials[k] = n
	}
}

{
	impl = impl_of(FILENAME)
	if ($1 == "R") {
		med[impl, $2] = $3
		rel[impl, $2] = $3 > 0 ? ($5 - $4) / $3 : 0
		ntrials[impl, $2] = $8
		nlines[impl, $2]++
		samples[impl, $2] = samples[impl, $2] " " $3
	} else if ($1 == "I") {
		v = $0
		sub(/^I [^ ]+ ?/, "", v)
		info[impl, $2] = v
		if ($2 ~ /^seconds\./)
			done_list[impl] = done_list[impl] (done_list[impl] == "" ? "" : ", ") \
					  substr($2, 9)
		if ($2 ~ /^guard\./)
			gsamples[impl, $2] = gsamples[impl, $2] " " v
	} else if ($1 == "E") {
		v = $0
		sub(/^E /, "", v)
		errors = errors "- " impl ": " v "\n"
		if (impl == "wine" && v ~ /^wine heap/ && wine_heap_error == "")
			wine_heap_error = v
	}
	if (impl == "wine" && $1 == "R" && $2 ~ /^heap\./)
		wine_heap = 1
}

# Wine's HeapAlloc is an anchor where Wine ran and gave heap figures.
function wine_heap_status() {
	if (wine != "ran" || wine_heap)
		return wine
	return "unavailable: " (wine_heap_error != "" ? wine_heap_error : \
				"Wine gave no heap figures")
}

# The heap's section of the report: what it compares, then its entries.
function heap_section() {
	print "## Heap" > md
	print "" > md
	printf "The heap workloads (`bench/heap/heapbench.c`, in the style of " \
	       "mimalloc-bench): libwinvm's process heap against the " \
	       "allocators a Linux program would use, in this same boot, each " \
	       "workload and allocator in processes of its own, so that each " \
	       "peak RSS is that workload's: three (one for jemalloc), each " \
	       "figure the median of theirs, because under TCG a process's " \
	       "address layout alone moves a figure by up to a factor of two " \
	       "(which hot pages collide in QEMU's direct-mapped soft TLB is " \
	       "ASLR's draw). Anchors: glibc's malloc (libc6 " \
	       "%s), mimalloc (libmimalloc2.0 %s) and jemalloc (libjemalloc2 " \
	       "%s), Debian's, the last two through `LD_PRELOAD`, and Wine's " \
	       "HeapAlloc (wine64 %s, its operation counts divided by 4, all " \
	       "five workloads in one process): %s.\n\n",
	       version("libc6"), version("libmimalloc2.0"),
	       version("libjemalloc2"), version("wine64"), heap_wine > md
	print "Targets (issue 6): the geometric mean of the process heap's " \
	      "times at most 1.15x mimalloc's single-threaded and 1.3x " \
	      "multi-threaded; never slower than glibc (each workload); peak " \
	      "RSS at most 1.2x mimalloc's; Global* fixed blocks at most 1.05x " \
	      "HeapAlloc (the two alternate trial by trial in one process; " \
	      "Local* is the same code). Multi-threaded figures are aggregate, " \
	      "one thread per CPU (" cpus "); the single-threaded ones run on " \
	      "CPU 1. The allocators of a workload run one after the other, " \
	      "each in its own process, so a change in the host's load between " \
	      "them is not cancelled out as it is for the Global*/HeapAlloc " \
	      "pair; the spread is that of the processes' figures (of all " \
	      "the trials, for the pair)." > md
	print "" > md
	print "| # | entry | what | winvm | anchor | ratio | target | met | spread | other anchors |" > md
	print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |" > md
	printf "%s", heap_rows > md
	print "" > md
	printf "%d of %d heap entries met every target they could be " \
	       "measured against.\n\n", nheap_met, nheap > md
}

function version(pkg) {
	return info["machine", "version." pkg] != "" ? \
	       info["machine", "version." pkg] : "not installed"
}

END {
	merge_rounds()
	cpus = info["machine", "cpus"] + 0
	if (cpus < 1)
		cpus = 1
	if (quick) {
		size["BIG"] = 10000; size["MID"] = 3000; size["WALK"] = 1000
		size["RES"] = 5000; size["RAWFAIL"] = "none"
	} else {
		size["BIG"] = 1000000; size["MID"] = 100000; size["WALK"] = 10000
		size["RES"] = 200000; size["RAWFAIL"] = 100000
	}
	json = dest "/results.json"
	md = dest "/report.md"

	heap_wine = wine_heap_status()
	printf "{\n  \"kernel\": %s,\n  \"cpus\": %d,\n  \"wine\": %s,\n", \
	       js(info["machine", "kernel"]), cpus, js(wine) > json
	printf "  \"heap_wine\": %s,\n  \"heap_anchors\": {\"glibc\": %s, " \
	       "\"mimalloc\": %s, \"jemalloc\": %s, \"wine\": %s},\n",
	       js(heap_wine), js(version("libc6")), js(version("libmimalloc2.0")),
	       js(version("libjemalloc2")), js(version("wine64")) > json
	printf "  \"thp\": %s,\n  \"max_map_count\": %d,\n" \
	       "  \"overcommit_memory\": %d,\n  \"mem_total_kb\": %d,\n" \
	       "  \"cpu_model\": %s,\n  \"kernel_cmdline_extra\": %s,\n" \
	       "  \"host_cpus\": %d,\n  \"host_loadavg_before\": %s,\n" \
	       "  \"host_loadavg_after\": %s,\n" \
	       "  \"trials\": %d,\n  \"quick\": %s,\n  \"date\": %s,\n" \
	       "  \"workloads\": [\n", js(info["machine", "thp"]),
	       info["machine", "max_map_count"],
	       info["machine", "overcommit_memory"],
	       info["machine", "mem_total_kb"], js(info["machine", "cpu_model"]),
	       js(info["machine", "cmdline_extra"]),
	       info["machine", "host_cpus"],
	       js(info["machine", "host_loadavg_before"]),
	       js(info["machine", "host_loadavg_after"]), trials,
	       quick ? "true" : "false", js(date) > json

	printf "%-38s %12s %12s %-28s %7s %6s %5s %6s\n", "entry", "winvm",
	       "anchor", "anchor name", "ratio", "target", "met", "spread"
	while ((getline line < spec) > 0) {
		if (line ~ /^#/ || line == "")
			continue
		if (line ~ /%T/) {
			entry(expand(line, 1))
			entry(expand(line, 2))
			entry(expand(line, 4))
		} else {
			entry(expand(line, ""))
		}
	}
	close(spec)
	printf "\n  ]\n}\n" > json
	close(json)

	load_causes()
	write_plot_data()

	print "# winvm benchmarks" > md
	print "" > md
	printf "Written by `make bench%s` (scripts/bench) on %s; do not edit: " \
	       "the next run rewrites it.\n\n", quick ? " QUICK=1" : "", date > md
	printf "Machine: the test VM (QEMU TCG, %s), kernel %s, %d CPUs, " \
	       "%d MiB, THP `%s` (defrag `%s`), vm.max_map_count %d, " \
	       "vm.overcommit_memory %d; extra kernel parameters: `%s`. " \
	       "Every figure is the median of %d trials in this one boot.\n\n",
	       info["machine", "cpu_model"], info["machine", "kernel"], cpus,
	       info["machine", "mem_total_kb"] / 1024, info["machine", "thp"],
	       info["machine", "thp_defrag"], info["machine", "max_map_count"],
	       info["machine", "overcommit_memory"],
	       info["machine", "cmdline_extra"], trials > md
	printf "The host running QEMU has %d CPUs; its load average (1, 5, " \
	       "15 min) was %s before the run and %s after: a load above the " \
	       "host's CPU count means the guest's CPUs did not always run, " \
	       "which hurts the thread workloads most.\n\n",
	       info["machine", "host_cpus"],
	       info["machine", "host_loadavg_before"],
	       info["machine", "host_loadavg_after"] > md
	cut = ""
	if (index(errors, "wine: wine cut off"))
		cut = " (cut off at the end of its time budget, having run: " \
		      done_list["wine"] ")"
	printf "Wine: %s%s.\n\n", wine, cut > md
	print "Ratio = winvm / anchor (lower is better) for the first target of " \
	      "each entry; further targets follow it. \"value\" targets are on " \
	      "winvm's own figure. Spread = the larger interquartile range of " \
	      "the trials of winvm's figure and of the anchor's, relative to " \
	      "the median. Other anchors show winvm's ratio to each in " \
	      "parentheses. Times are what the emulated machine shows: only " \
	      "ratios carry over to real hardware." > md
	print "" > md
	print "| # | entry | what | winvm | anchor | ratio | target | met | spread | other anchors |" > md
	print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |" > md
	printf "%s", md_rows > md
	print "" > md
	print "![scaling](scaling.png)" > md
	print "" > md
	print "Left: VirtualQuery and VirtualProtect cost against the number of " \
	      "regions (log-log). Right: aggregate throughput at 1, 2 and 4 " \
	      "threads over that at one thread (the VM has " cpus " CPUs, so " \
	      "perfect scaling stops at " cpus ")." > md
	print "" > md
	heap_section()
	printf "%d of %d entries met every target they could be measured " \
	       "against; %d missed one, %d could not be measured.\n\n",
	       nentries - nmissed - nunmeasured, nentries, nmissed,
	       nunmeasured > md
	for (i = 1; i <= nmissed; i++)
		printf "- missed: `%s`\n", missed[i] > md
	for (i = 1; i <= nunmeasured; i++)
		printf "- not measured: `%s`\n", unmeasured[i] > md
	if (nmissed + nunmeasured)
		print "" > md

	if (nmissed) {
		print "## Why the misses miss, and what would fix them" > md
		print "" > md
		# Each miss takes the block with the longest matching prefix.
		for (i = 1; i <= nmissed; i++) {
			best = 0
			for (k = 1; k <= ncause; k++) {
				if (index(missed[i], cause_key[k]) != 1)
					continue
				if (!best)
					best = k
				else if (length(cause_key[k]) > length(cause_key[best]))
					best = k
			}
			if (best)
				hits[best] = hits[best] (hits[best] == "" ? "" : ", ") \
					     "`" missed[i] "`"
		}
		for (k = 1; k <= ncause; k++)
			if (hits[k] != "")
				printf "### %s\n\n%s\n", hits[k], cause_text[k] > md
	}
	guard_breakdown()
	if (errors != "") {
		print "## What the programs reported" > md
		print "" > md
		printf "%s", errors > md
	}
	close(md)
	printf "\n%d of %d entries met every target (%d missed, %d not measured)\n",
	       nentries - nmissed - nunmeasured, nentries, nmissed, nunmeasured
}
