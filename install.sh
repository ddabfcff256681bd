#!/usr/bin/env bash
# Installs dockerutils: one binary, linked under the name of every user command
# (build-image, run-image, …), and the daily binary that build-image and run-image are
# linked to instead (the same code without the AWS SDK: it starts faster), into
# $PREFIX/bin (default ~/.local), the reader a pull back runs on a dock into
# $PREFIX/lib/dockerutils, and the man pages into $PREFIX/share/man/man1.
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
# build-image and run-image: the daily binary, which starts twice as fast (src/cli/daily.rs).
for name in $("$bin/dockerutils-daily" --list-commands); do
  ln -sf dockerutils-daily "$bin/$name"
done
# The reader a pull back (`transfer-image DOCK:IMAGE`) runs on a dock, static: transfer-image
# finds it in $PREFIX/lib/dockerutils (without it, a pull uses `docker save` on the dock).
reader=$(bash crates/reader/build-static.sh --release)
install -D -m 0755 "$reader" "$prefix/lib/dockerutils/dockerutils-reader"
# `source dock NAME` finds this file on PATH.
install -m 0644 templates/dock "$bin/dock"
echo "installed into $bin: dockerutils dock $("$bin/dockerutils" --list-commands | tr '\n' ' ')"
# Man pages (`man build-image`, `man dockerutils-init`, …); init, completions, man, ssh-config and
# idle-stop are `dockerutils <command>` only, so --list-commands does not link them.
man1=$prefix/share/man/man1
"$bin/dockerutils" man --dir "$man1" >/dev/null
echo "man pages in $man1"
# The reference (the cfg keys, images, docks, …), which the man pages point to.
doc=$prefix/share/doc/dockerutils
install -d "$doc"
install -m 0644 README.md docs/*.md "$doc/"
echo "reference in $doc"
echo "TAB completion: add \`source <(dockerutils completions bash)\` to ~/.bashrc (zsh, fish: see \`dockerutils completions --help\`)"
case ":$PATH:" in
  *":$bin:"*) ;;
  *) echo "note: $bin is not on your PATH; add it, e.g. echo 'export PATH=\"$bin:\$PATH\"' >> ~/.bashrc" ;;
esac
