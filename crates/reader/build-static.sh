#!/usr/bin/env bash
# Builds the reader that a pull back runs on a dock (src/main.rs) as a static binary — it
# runs in an empty container, with no libc to load — and prints its path. One place for
# install.sh, tests/run.sh and bench/common.sh.
#   bash crates/reader/build-static.sh [--release]
# Needs glibc's static libraries (Debian: libc6-dev, which gcc brings). `--target` with
# the host's triple keeps RUSTFLAGS off the build scripts and out of the main build's
# directory; where transfer-image looks for it is src/transfer/dock_reader.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
host=$(rustc -vV | sed -n 's/^host: //p')
profile=debug
[ "${1:-}" = --release ] && profile=release
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --locked --quiet ${1:+"$1"} -p dockerutils-reader --target "$host"
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
echo "$target/$host/$profile/dockerutils-reader"
