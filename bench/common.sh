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
  exe=$target/debug/dockerutils
else
  cargo build --release --quiet
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
}
