#!/usr/bin/env bash
# One pass of the docs/PERFORMANCE.md figures: every `numbergate bench` run
# of "How to reproduce", against fresh data directories, on loopback only.
#
#   docs/perf/pass.sh BINARY OUTDIR [MODE...]
#
# MODE is any of verify flow radius freeradius mixed idle (default: all, in
# that order). Each run's report goes to OUTDIR/MODE.txt (the table the
# bench prints, with the load average before and after) and one line per run
# to OUTDIR/summary. To compare two builds, alternate them:
#   for i in 1 2; do docs/perf/pass.sh ./nb-old out/old$i; docs/perf/pass.sh ./nb-new out/new$i; done
#
# freeradius needs Debian's freeradius package (installed, not started: this
# runs a throwaway copy of its configuration on 127.0.0.1:1813 as root, since
# it drops to the freerad user). PORTS=NN moves every port (default 38:
# 38480, 38580, 38590, 38513). GATEWAYS=N sets the RADIUS gateways of
# radius, freeradius and mixed (default 64; at most 254).
set -u
NB=$(realpath "$1"); OUT=$2; shift 2
MODES=${*:-verify flow radius freeradius mixed idle}
P=${PORTS:-38}
mkdir -p "$OUT"
W=$(mktemp -d /tmp/nbpass.XXXXXX); chmod 755 "$W"   # freeradius reads its copy as freerad
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
log() { echo "$(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg) $*" | tee -a "$OUT/summary"; }
ready() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.05; done; echo "not ready: $1" >&2; return 1; }
serve_config() { # $1: data dir
  cat <<EOC
listen: 127.0.0.1:${P}580
issuer: http://127.0.0.1:${P}580
admin_listen: 127.0.0.1:${P}590
data_dir: $1
log_level: warn
limits: {authorize_per_address: off, token_per_client: off, api_per_client: off}
network:
  radius:
    listen: 127.0.0.1:${P}513
    clients: [{cidr: 127.0.0.0/8, secret: bench-secret}]
    idle_timeout: 24h
  static:
EOC
  for i in $(seq 0 63); do printf '    - {prefix: 127.0.60.%d/32, msisdn: "+%d"}\n' $((i+1)) $((34600100000+i)); done
}
RADIUS_FLAGS="--secret bench-secret --gateways ${GATEWAYS:-64} --gateway-net 127.0.90.0/24 --subscribers 16384"
for m in $MODES; do case $m in
verify)
  "$NB" sandbox --addr 127.0.0.1:${P}480 --data "$W/sandbox" >"$W/sandbox.log" 2>&1 & S=$!
  ready http://127.0.0.1:${P}480/.well-known/openid-configuration || continue
  log "verify $NB"
  "$NB" bench verify --client "$W/sandbox/sandbox-client.json" --users 32 --tokens 80000 \
    --duration 10s --baseline 5s --pid $S >"$OUT/verify.txt" 2>&1
  kill $S; wait $S 2>/dev/null; rm -rf "$W/sandbox" ;;
flow|radius|mixed)
  D="$W/serve"; mkdir -p "$D"; serve_config "$D/data" >"$D/numbergate.yaml"
  "$NB" bench client --config "$D/numbergate.yaml" --out "$D/bench-client.json" >/dev/null
  "$NB" serve --config "$D/numbergate.yaml" >"$D/serve.log" 2>&1 & S=$!
  ready http://127.0.0.1:${P}590/readyz || continue
  log "$m $NB"
  case $m in
  flow) "$NB" bench flow --client "$D/bench-client.json" --source-net 127.0.60.0/24 \
      --users 32 --duration 10s --baseline 5s --pid $S ;;
  radius) "$NB" bench radius --radius 127.0.0.1:${P}513 $RADIUS_FLAGS \
      --duration 10s --baseline 5s --pid $S --config "$D/numbergate.yaml" ;;
  mixed) "$NB" bench mixed --client "$D/bench-client.json" --source-net 127.0.60.0/24 \
      --users 32 --flow-rate 1000 --radius 127.0.0.1:${P}513 $RADIUS_FLAGS \
      --radius-rate 10000 --duration 10s --baseline 5s --pid $S --config "$D/numbergate.yaml" ;;
  esac >"$OUT/$m.txt" 2>&1
  kill $S; wait $S 2>/dev/null; rm -rf "$D" ;;
freeradius)
  R="$W/raddb"; cp -a /etc/freeradius/3.0 "$R"; mkdir -p "$W/frlog" "$W/frrun"
  chown freerad:freerad "$W/frlog" "$W/frrun"
  sed -i "s|^logdir = .*|logdir = $W/frlog|; s|^run_dir = .*|run_dir = $W/frrun|" "$R/radiusd.conf"
  # IPv4 listeners on 127.0.0.1 only (auth 1812, acct 1813); no IPv6 ones.
  awk '/^listen \{/{buf=$0; inl=1; next} inl{buf=buf"\n"$0; if($0=="}"){inl=0; if(buf !~ /\n\tipv6addr/) print buf}; next} {print}' \
    "$R/sites-available/default" | sed 's/^\tipaddr = \*/\tipaddr = 127.0.0.1/' >"$W/default" && mv "$W/default" "$R/sites-available/default"
  sed -i "s/port = 18120/port = ${P}120/" "$R/sites-available/inner-tunnel"
  printf 'client bench {\n\tipaddr = 127.0.0.0/8\n\tsecret = bench-secret\n}\n' >>"$R/clients.conf"
  freeradius -f -d "$R" >"$W/fr.log" 2>&1 & S=$!
  sleep 2
  log "freeradius $(freeradius -v 2>/dev/null | head -1 | grep -o 'Version [0-9.]*')"
  "$NB" bench radius --radius 127.0.0.1:1813 $RADIUS_FLAGS --duration 10s --baseline 5s --pid $S >"$OUT/freeradius.txt" 2>&1
  kill $S; wait $S 2>/dev/null ;;
idle)
  : >"$OUT/idle.txt"
  for n in 1 2 3; do
    D="$W/idle"; mkdir -p "$D"; serve_config "$D/data" >"$D/numbergate.yaml"
    t0=$(date +%s%N); "$NB" serve --config "$D/numbergate.yaml" >"$D/serve.log" 2>&1 & S=$!
    ready http://127.0.0.1:${P}590/readyz; t1=$(date +%s%N); sleep 3
    echo "start $n: ready after $(( (t1-t0)/1000000 )) ms, idle RSS $(awk '/VmRSS/{printf "%.1f MB", $2/1024}' /proc/$S/status)" >>"$OUT/idle.txt"
    kill $S; wait $S 2>/dev/null; rm -rf "$D"
  done
  log "idle: $(tr '\n' ';' <"$OUT/idle.txt")" ;;
*) echo "unknown mode $m" >&2; exit 2 ;;
esac; done
