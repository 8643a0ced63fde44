# Where one cold ECR fetch goes: sourced by bench/ecr.sh (PROFILE=<out-dir>) inside its
# network namespace, after moto is up, both tools have answered and both caches are full, so
# every figure here is of the same set-up as the bench's cold row.
#
#   sudo PROFILE=/tmp/ecr-prof bash bench/ecr.sh [path/to/kubelet-keyring]
#
# Writes into $PROFILE, for kubelet-keyring (`ours`, the bench's cold command: --no-cache) and
# docker-credential-ecr-login (`go`, AWS_ECR_DISABLE_CACHE=1):
#   strace-count-{ours,go}.txt   syscall counts and time, all threads (strace -f -c)
#   strace-{ours,go}.txt         file, network, fsync, thread and futex calls with times
#                                (strace -f -tt -T), the timeline of one fetch
#   strace-full-ours.txt         every syscall of ours with times
#   strace-miss-ours.txt         ours on a cache miss with an empty cache dir (the kubelet's
#                                cold case: lock, fetch, entry written)
#   callgrind.ours, callgrind-{inclusive,self}.txt
#                                instructions by function (valgrind --tool=callgrind; useful
#                                with a binary that has symbols, e.g. built with
#                                --config profile.release.strip=false)
# and prints the summaries. Needs strace and valgrind (Debian packages).
# shellcheck shell=bash disable=SC2154
set -euo pipefail
out=$PROFILE
# The traced set of the timelines: what a cold fetch may spend on besides computing.
traced=trace=%file,%network,fsync,fdatasync,clone,clone3,futex,execve,epoll_wait,epoll_pwait,read,write
# The environment of env.sh in this shell, each tool traced directly with its stdin from the
# file: no `sh` in any figure.
. "$work/env.sh"
ours=("$BIN" --root-dir "$work/root" --no-cache)
go=(env AWS_ECR_DISABLE_CACHE=1 docker-credential-ecr-login get)
strace -f -c -S calls -o "$out/strace-count-ours.txt" "${ours[@]}" < request.json > /dev/null
strace -f -c -S calls -o "$out/strace-count-go.txt" "${go[@]}" < server.txt > /dev/null
strace -f -tt -T -e "$traced" -o "$out/strace-ours.txt" "${ours[@]}" < request.json > /dev/null
strace -f -tt -T -e "$traced" -o "$out/strace-go.txt" "${go[@]}" < server.txt > /dev/null
strace -f -tt -T -o "$out/strace-full-ours.txt" "${ours[@]}" < request.json > /dev/null
rm -rf prof-cache
strace -f -tt -T -o "$out/strace-miss-ours.txt" "$BIN" --root-dir "$work/root" --cache-dir "$work/prof-cache" \
  < request.json > /dev/null

valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.ours" "${ours[@]}" < request.json \
  > /dev/null 2> "$out/callgrind.log" || { cat "$out/callgrind.log" >&2; exit 1; }
callgrind_annotate --inclusive=yes "$out/callgrind.ours" > "$out/callgrind-inclusive.txt" 2>/dev/null
callgrind_annotate "$out/callgrind.ours" > "$out/callgrind-self.txt" 2>/dev/null

summary() {
  local f=$1
  # Processes/threads, and the wall span of the trace (first to last timestamp).
  awk '{ pids[$1] = 1 } NR == 1 { first = $2 } { last = $2 }
       END { printf "  %d threads/processes, %s .. %s\n", length(pids), first, last }' "$f"
  printf '  opened: %s\n' "$(grep -cE 'open(at)?\(' "$f")"
  grep -oE 'open(at)?\([^"]*"[^"]+"' "$f" | sed -E 's/.*"([^"]+)"/\1/' | sort | uniq -c | sort -rn | head -15 | sed 's/^/    /'
  printf '  connect: %s\n' "$(grep -c 'connect(' "$f")"
  grep -E 'connect\(' "$f" | sed -E 's/^[0-9]+ +//; s/^/    /' | head -10
  printf '  fsync/fdatasync: %s, clone/clone3: %s, futex: %s\n' \
    "$(grep -cE ' (fsync|fdatasync)\(' "$f")" "$(grep -cE ' clone3?\(' "$f")" "$(grep -c ' futex(' "$f")"
}
for who in ours go; do
  echo "== $who: syscalls by count (strace -f -c), top 15"
  sed -n '1,2p' "$out/strace-count-$who.txt"
  grep -vE '^(%|-)' "$out/strace-count-$who.txt" | sed -n '1,15p'
  grep -E 'total' "$out/strace-count-$who.txt"
  echo "== $who: timeline (strace -f -tt -T -e $traced)"
  summary "$out/strace-$who.txt"
done
echo "== ours, cache miss into an empty cache dir"
summary "$out/strace-miss-ours.txt"
# Paths shortened; the inclusive list without the call spine (main, closures, polls), which
# would fill it with 100% rows.
short() { sed -E 's#/root/.cargo/registry/src/[^/]+/##; s#/rustc/[0-9a-f]+/library/##; s# \[[^]]*\] *$##' | cut -c1-180; }
echo "== ours: callgrind ($out/callgrind-inclusive.txt)"
grep -m1 'PROGRAM TOTALS' "$out/callgrind-inclusive.txt" || true
echo "-- inclusive, top 40 below the call spine"
grep -E '^ *[0-9,]+ \(' "$out/callgrind-inclusive.txt" | grep -v 'PROGRAM TOTALS' \
  | grep -vE '\{\{closure\}\}|::poll|lang_start|below main|backtrace|/(future|function|once)\.rs:|\?\?\?:main' \
  | short | sed -n '1,40p'
echo "-- self, top 25"
grep -E '^ *[0-9,]+ \(' "$out/callgrind-self.txt" | grep -v 'PROGRAM TOTALS' | short | sed -n '1,25p'
echo "(all files in $out)"
