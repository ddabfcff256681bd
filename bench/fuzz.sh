#!/usr/bin/env bash
# Fuzzing (run by hand; results go in RELIABILITY.md, "Fuzzing"): builds the cargo-fuzz
# targets of fuzz/ once, then runs each for a bounded time and prints, per target, the
# executions, the corpus it ended with and the crashes (inputs that panicked, ran out of
# memory or took more than 10 s), which are kept in $out/<target>/artifacts.
#   bash bench/fuzz.sh                    # every target, 60 s each
#   FUZZ_SECONDS=300 bash bench/fuzz.sh cfg hook
# Needs cargo-fuzz (`cargo install cargo-fuzz`; installed when missing). The toolchain is
# stable: RUSTC_BOOTSTRAP=1 lets it take the -Z flags that cargo-fuzz passes. The first
# build compiles the whole library, the AWS SDK included, with instrumentation: tens of
# minutes on 2 cores (fuzz/Cargo.toml lowers the SDK's optimisation for it).
# Sanitizer: none. The code under test is safe Rust except the openat walk of the
# tar-split target, whose result the target checks; AddressSanitizer would double the
# build and slow every run for no other gain.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cfg hook registry tar_split)
target_dir=$(realpath -m "${CARGO_TARGET_DIR:-$repo/target}")/fuzz
out=$target_dir/runs
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
# All targets in one build (they share every crate; a later run rebuilds nothing).
cargo fuzz build --sanitizer none --codegen-units 16 --target-dir "$target_dir"
bin=$target_dir/x86_64-unknown-linux-gnu/release
failed=0
printf '%-10s %8s %12s %10s %12s %8s\n' target seconds executions exec/s corpus crashes
for t in "${targets[@]}"; do
  [ -x "$bin/$t" ] || { echo "$t: not built ($bin/$t)" >&2; failed=1; continue; }
  work=$out/$t
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts" "$work/tmp"
  # New inputs go to the first corpus directory (ours, in the target dir); the seeds in
  # fuzz/corpus/<target> are only read. TMPDIR: the tar-split target's layer directory.
  set +e
  TMPDIR=$work/tmp "$bin/$t" "$work/corpus" "fuzz/corpus/$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" >"$work/log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
  corpus=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$work/log" | tail -1 | cut -d' ' -f2)
  crashes=$(find "$work/artifacts" -type f | wc -l)
  printf '%-10s %8s %12s %10s %12s %8s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" \
    "${corpus:-?}" "$crashes"
  if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed=1
    echo "  $t: exit $rc; log $work/log; inputs: $(find "$work/artifacts" -type f | tr '\n' ' ')"
    grep -m3 -E 'panicked at|ERROR: libFuzzer|==ERROR' "$work/log" | sed 's/^/  /' || true
  fi
done
exit "$failed"
