# The upstream request rate of bench/fleet's scenarios, one panel each,
# from the per-second series fleet_sim --series writes:
#   gnuplot -e "series='DIR'" bench/fleet/plot.gp > bench/fleet.png
if (!exists("series")) series = "build-bench/fleet-series"
set terminal pngcairo size 1400,900 font "DejaVu Sans,10"
set multiplot layout 2,2 title "cwcreds fleet simulation: upstream requests per second (10,000 pods)"
set ylabel "requests/s"
set grid
set key top right

set title "Job start: all pods start within 60 s (15-minute keys)"
set xlabel "minutes after the start"
plot [0:30] series."/job-start.dat" using ($1/60):2 with lines lw 1 lc rgb "#1f77b4" title "job-start"

set title "Steady state over 24 h (1-second bins)"
set xlabel "hours"
plot [0:24] series."/steady-15m.dat" using ($1/3600):2 with lines lw 0.5 lc rgb "#1f77b4" title "15-minute keys", \
     series."/steady-1h.dat" using ($1/3600):2 with lines lw 0.5 lc rgb "#2ca02c" title "oidc, 1-hour keys"

set title "10-minute outage at 12:00, then recovery (15-minute keys)"
set xlabel "minutes after the outage began"
plot [-5:20] series."/outage.dat" using ($1/60 - 720):2 with lines lw 1 lc rgb "#d62728" title "outage"

set title "Rate limit: 429 with Retry-After: 5 above 100 requests/s"
set xlabel "minutes after the start"
plot [0:10] series."/rate-limit.dat" using ($1/60):2 with lines lw 1 lc rgb "#9467bd" title "rate-limit"
unset multiplot
