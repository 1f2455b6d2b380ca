# Draws the soak run's plot from its CSV (see docs/RELIABILITY.md):
#   gnuplot -e "csv='docs/soak/soak.csv'; png='docs/soak/soak.png'" docs/soak.gp
# TestSoak runs it itself when gnuplot is installed (Debian: gnuplot-nox).
set datafile separator ","
set terminal pngcairo size 1000,900 font "DejaVu Sans,10" noenhanced
set output png
set key top left opaque box
set grid
set xlabel "minutes since the start of the load"
set multiplot layout 3,1 title "numbergate soak: SQLite store, serve as a process, flows + RADIUS accounting, expiry on"
set ylabel "resident memory (MB)"
set yrange [0:*]
plot csv using ($1/60):2 skip 1 with lines lw 2 title "server RSS"
set ylabel "p99 latency per 10 s (ms)"
set yrange [0:*]
plot csv using ($1/60):12 skip 1 with lines lw 2 title "complete flow (authorize+token+verify) p99", \
     csv using ($1/60):17 skip 1 with lines lw 2 title "RADIUS accounting request p99"
set ylabel "size (MB)"
set y2label "live rows"
set y2tics
set yrange [0:*]
set y2range [0:*]
plot csv using ($1/60):($3+$4) skip 1 with lines lw 2 title "database + WAL (MB)", \
     csv using ($1/60):5 skip 1 axes x1y2 with lines title "tokens (rows)", \
     csv using ($1/60):8 skip 1 axes x1y2 with lines title "network sessions (rows)"
unset multiplot
