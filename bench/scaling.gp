# SPDX-License-Identifier: GPL-2.0-only
#
# The scaling workloads of a benchmark run, from the data bench/report.awk
# writes in RAW: gnuplot -e "data='RAW'; dir='DEST'" bench/scaling.gp
# makes DEST/scaling.png.

set terminal pngcairo size 1200,480 font "sans,10"
set output dir . "/scaling.png"
set datafile missing "NaN"
set key top left
set grid
set multiplot layout 1,2

set title "VirtualQuery / VirtualProtect against regions"
set logscale x
set logscale y
set xlabel "regions in the process"
set ylabel "ns per call (median)"
set xrange [0.5:2e6]
plot data . "/scaling-regions.dat" using 1:2 with linespoints lw 2 title "winvm VirtualQuery", \
     "" using 1:3 with linespoints lw 2 title "Wine VirtualQuery", \
     "" using 1:4 with lines dt 2 lw 2 title "no-op ioctl (floor)", \
     "" using 1:5 with linespoints lw 2 title "winvm VirtualProtect", \
     "" using 1:6 with linespoints lw 2 title "Wine VirtualProtect"

set title "Throughput against threads, relative to one thread"
unset logscale x
unset logscale y
set xlabel "threads"
set ylabel "aggregate throughput / one thread's"
set xrange [0.8:4.2]
set xtics (1, 2, 4)
set yrange [0:*]
plot data . "/scaling-threads.dat" using 1:2 with lines dt 2 lw 2 title "perfect scaling (min(T, CPUs))", \
     "" using 1:3 with linespoints lw 2 title "winvm VirtualQuery", \
     "" using 1:4 with linespoints lw 2 title "no-op ioctl", \
     "" using 1:9 with linespoints lw 2 title "Wine VirtualQuery", \
     "" using 1:5 with linespoints lw 2 title "winvm alloc+free", \
     "" using 1:6 with linespoints lw 2 title "mmap+munmap", \
     "" using 1:7 with linespoints lw 2 title "winvm faults, protect loop", \
     "" using 1:8 with linespoints lw 2 title "anon faults, mprotect loop"

unset multiplot
