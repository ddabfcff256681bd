#!/usr/bin/env bash
# Start-up of several builds of the binary side by side (run by hand; BENCHMARKS.md,
# "Start-up"): for comparing ways of building or linking the same code, where the few
# tenths of a millisecond at stake are smaller than the drift of a shared machine's load
# between two hyperfine runs. Each round runs every command once, in turn, so that the
# load hits all alike. Same project and fake `docker` as bench/startup.sh; prints per
# command the median, mean and 10th percentile of wall time, the mean CPU (user+sys) and
# minor page faults (wait4's rusage, children included), and the median against the
# floor (`sh -c docker`).
#   bash bench/startup-ab.sh [ROUNDS] NAME=BINARY...      # ROUNDS: default 1500
#   e.g. bash bench/startup-ab.sh nopie=/tmp/a pie=/tmp/b
set -euo pipefail
rounds=1500
[[ ${1:-} =~ ^[0-9]+$ ]] && { rounds=$1; shift; }
[ $# -gt 0 ] || { sed -n '2,12p' "$0"; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/fake" "$work/benchproj/docker/dev"
printf '#!/bin/sh\nexit 0\n' > "$work/fake/docker"
chmod +x "$work/fake/docker"
printf 'FROM scratch\n' > "$work/benchproj/docker/dev/Dockerfile"
sed -n '/^cat > "$work\/benchproj\/docker\/dockerutils.cfg"/,/^CFG$/p' "$(dirname "$0")/startup.sh" |
  sed '1d;$d' > "$work/benchproj/docker/dockerutils.cfg"
cmds=("floor" "/bin/sh -c docker")
for spec in "$@"; do
  name=${spec%%=*}
  mkdir -p "$work/$name"
  for c in build-image run-image; do ln -s "$(realpath "${spec#*=}")" "$work/$name/$c"; done
  cmds+=("$name build-image" "$work/$name/build-image dev" "$name run-image" "$work/$name/run-image dev")
done
cd "$work/benchproj"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
PATH=$work/fake:$PATH python3 - "$rounds" "${cmds[@]}" <<'PY'
import os, statistics, sys, time
rounds = int(sys.argv[1])
cmds = [(sys.argv[i], sys.argv[i + 1].split()) for i in range(2, len(sys.argv), 2)]
quiet = [(os.POSIX_SPAWN_OPEN, fd, "/dev/null", os.O_WRONLY, 0) for fd in (1, 2)]
env = dict(os.environ)
res = {name: [] for name, _ in cmds}
for _ in range(rounds):
    for name, argv in cmds:
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=quiet)
        _, status, ru = os.wait4(pid, 0)
        wall = (time.perf_counter_ns() - t0) / 1e6
        assert status == 0, (name, status)
        res[name].append((wall, (ru.ru_utime + ru.ru_stime) * 1e3, ru.ru_minflt))
floor = statistics.median(x[0] for x in res["floor"])
print(f"{'command':<22}{'median ms':>10}{'mean ms':>9}{'p10 ms':>8}{'cpu ms':>8}{'faults':>8}{'x floor':>8}")
for name, _ in cmds:
    r = res[name]
    wall = sorted(x[0] for x in r)
    print(f"{name:<22}{statistics.median(wall):>10.2f}{statistics.mean(wall):>9.2f}"
          f"{wall[len(wall) // 10]:>8.2f}{statistics.mean(x[1] for x in r):>8.2f}"
          f"{statistics.mean(x[2] for x in r):>8.0f}{statistics.median(wall) / floor:>8.2f}")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
