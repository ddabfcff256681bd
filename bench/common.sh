# Sourced by every bench/*.sh: the repository, a release build, hyperfine, and a way to
# put the user commands on a PATH the way install.sh does.
# DOCKERUTILS_BENCH_PROFILE=dev uses the debug build instead (no release build: for a
# shared machine, or a benchmark where our binary is not what is timed).
cd "$(dirname "$0")/.."
repo=$PWD
# Absolute: command links live in temp dirs (cargo takes a relative one from here).
target=$(realpath -m "${CARGO_TARGET_DIR:-$repo/target}")
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
if [ "${DOCKERUTILS_BENCH_PROFILE:-release}" = dev ]; then
  cargo build --quiet
  bash crates/reader/build-static.sh >/dev/null
  exe=$target/debug/dockerutils
else
  cargo build --release --quiet
  bash crates/reader/build-static.sh --release >/dev/null
  exe=$target/release/dockerutils
fi
mkdir -p "$repo/target/bench"

# install_commands DIR [NAME...]: links NAMEs (default: every user command and
# dockerutils) to the built binary in DIR.
install_commands() {
  local dir=$1
  shift
  local names=("$@")
  [ ${#names[@]} -gt 0 ] || names=($("$exe" --list-commands) dockerutils)
  mkdir -p "$dir"
  for c in "${names[@]}"; do ln -s "$exe" "$dir/$c"; done
  # As install.sh: build-image and run-image are the daily binary's.
  local daily=${exe%/*}/dockerutils-daily
  for c in $("$daily" --list-commands); do
    [ -L "$dir/$c" ] && ln -sf "$daily" "$dir/$c"
  done
}

# build_layered_image CONTEXT IMAGE: ~200 MB of real files (the system's libraries) in 4
# layers and a small top layer (`top.txt`, which a benchmark changes for its one-layer
# update), built as IMAGE. A stamp in each layer: no layer of an earlier run (or of any
# other image) is reused, on any engine, so a first transfer really sends everything.
build_layered_image() {
  local ctx=$1 image=$2
  mkdir -p "$ctx/files"
  python3 - "$ctx/files" <<'PY'
import os, shutil, sys
dest, total, limit, n = sys.argv[1], 0, 200_000_000, 0
for root, _, files in os.walk("/usr/lib/x86_64-linux-gnu"):
    for f in sorted(files):
        src = os.path.join(root, f)
        if os.path.islink(src) or not os.path.isfile(src):
            continue
        part = os.path.join(dest, str(n % 4))
        n += 1
        os.makedirs(part, exist_ok=True)
        shutil.copyfile(src, os.path.join(part, f"{total}-{f}"))
        total += os.path.getsize(src)
        if total >= limit:
            sys.exit(0)
PY
  for n in 0 1 2 3; do date +%s%N > "$ctx/files/$n/.stamp"; done
  printf 'one\n' > "$ctx/top.txt"
  cat > "$ctx/Dockerfile" <<'DF'
FROM scratch
COPY files/0 /files/0
COPY files/1 /files/1
COPY files/2 /files/2
COPY files/3 /files/3
COPY top.txt /top.txt
DF
  docker build -q -t "$image" "$ctx" >/dev/null
}

# bench_home_on_dock WORK: a home of the benchmark's own in WORK/home, the commands on PATH
# (WORK/bin), and the test dock registered there as `benchdock`; sets `dock` (user@ip)
# and `ssh_opts` (plain ssh to it, for the pipes timed against ours).
bench_home_on_dock() {
  local work=$1
  mkdir -p "$work/bin" "$work/home"
  install_commands "$work/bin"
  export HOME=$work/home PATH=$work/bin:$PATH
  register-dock "$DOCKERUTILS_TEST_DOCK_IP" benchdock -u "$DOCKERUTILS_TEST_DOCK_USER" >/dev/null
  dock=$DOCKERUTILS_TEST_DOCK_USER@$DOCKERUTILS_TEST_DOCK_IP
  ssh_opts="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=error"
}
