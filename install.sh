#!/usr/bin/env bash
# Installs dockerutils: one binary, linked under the name of every user command
# (build-image, run-image, …), into $PREFIX/bin (default ~/.local).
#   bash install.sh                 # ~/.local/bin
#   PREFIX=/usr/local bash install.sh
set -euo pipefail
cd "$(dirname "$0")"
prefix=${PREFIX:-$HOME/.local}
cargo install --locked --quiet --path . --root "$prefix"
bin=$prefix/bin
for name in $("$bin/dockerutils" --list-commands); do
  ln -sf dockerutils "$bin/$name"
done
# `source dock NAME` finds this file on PATH.
install -m 0644 templates/dock "$bin/dock"
echo "installed into $bin: dockerutils dock $("$bin/dockerutils" --list-commands | tr '\n' ' ')"
case ":$PATH:" in
  *":$bin:"*) ;;
  *) echo "note: $bin is not on your PATH; add it, e.g. echo 'export PATH=\"$bin:\$PATH\"' >> ~/.bashrc" ;;
esac
