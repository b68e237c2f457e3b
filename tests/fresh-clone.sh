#!/usr/bin/env bash
# A new user's first hour: clone the repository, run the README's two
# commands, nothing else. PATH keeps every command of the caller's except
# wasm-opt, shellcheck, tshark and skopeo, so the build and the tests must install
# what they need into the clone. Then a second clean build in another
# directory must give byte-identical modules, and their sha256 must be the
# ones in envoyfilters/.
#
# Usage: tests/fresh-clone.sh [REV]   (default HEAD)
# Works in target/fresh-clone/ (mode 0700; several GB while it runs); removes it when
# it passes and keeps it for a look when it fails.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
rev=${1:-HEAD}
work=$repo/target/fresh-clone
rm -rf "$work"
mkdir -p "$work"
# The clones sit in a directory other users cannot enter, as a clone under
# root's home (0700) does: make test must pass there too.
chmod 0700 "$work"
trap 'status=$?; if [[ $status == 0 ]]; then rm -rf "$work"; else echo "fresh-clone: failed; kept $work" >&2; fi' EXIT
hidden=(wasm-opt shellcheck tshark skopeo)

# A PATH of links to the caller's commands, the hidden ones left out.
mkdir "$work/bin"
IFS=: read -ra dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
  [[ -d $dir ]] || continue
  for cmd in "$dir"/*; do
    name=${cmd##*/}
    [[ -f $cmd && -x $cmd && ! -e $work/bin/$name ]] || continue
    [[ " ${hidden[*]} " == *" $name "* ]] && continue
    ln -s "$cmd" "$work/bin/$name"
  done
done
for name in "${hidden[@]}"; do
  if PATH=$work/bin command -v "$name" >/dev/null; then
    echo "fresh-clone: $name is still on the reduced PATH" >&2
    exit 1
  fi
done

clone() {
  git clone --quiet --no-hardlinks "$repo" "$1"
  git -C "$1" checkout --quiet --detach "$rev"
}

step() { echo "fresh-clone: $*"; }

# A new user's environment: nothing of the caller's but HOME and rustup's
# home, the reduced PATH, and a cargo home of its own so no tool cargo
# installed earlier is reused.
as_new_user() {
  env -i HOME="$HOME" PATH="$work/bin" CARGO_HOME="$CARGO_HOME" LANG=C.UTF-8 \
    ${RUSTUP_HOME:+RUSTUP_HOME="$RUSTUP_HOME"} "$@"
}

# The two commands, in a clone nothing has touched.
# rustup's proxies, for a cargo home of our own.
link_proxies() {
  for proxy in cargo rustc rustup cargo-clippy cargo-fmt rustfmt clippy-driver; do
    if [[ -e $work/bin/$proxy ]]; then
      ln -s "$(readlink "$work/bin/$proxy")" "$CARGO_HOME/bin/$proxy"
    fi
  done
}

clone "$work/first"
CARGO_HOME="$work/cargo-home"
mkdir -p "$CARGO_HOME/bin"
link_proxies
cd "$work/first"
step "make demo"
as_new_user make demo
step "make test"
as_new_user make test 2>&1 | tee "$work/test.log"
# What the hidden commands did is done by the project's own copies.
for tool in .tools/wasm-opt-*/bin/wasm-opt .venv/bin/shellcheck .venv/bin/syft; do
  [[ -x $tool ]] || { echo "fresh-clone: $tool was not installed" >&2; exit 1; }
done
for test in shellcheck_is_clean pcap_that_scapy_decodes manifests_are_current \
  every_manifest_validates_against_the_istio_versions_it_claims \
  go_containerregistry_reads_the_digest_and_the_module compose_files_follow_the_compose_specification \
  every_example_serves_traffic_as_this_user; do
  grep -q "^test $test \.\.\. ok$" "$work/test.log" || { echo "fresh-clone: $test did not pass" >&2; exit 1; }
done
# As root, the tests that switch users were left out in one line, not failed:
# the clone's directory is 0700 (they run in the caller's checkout).
if [[ $(id -u) == 0 ]] && ! grep -q "^uid 101 cannot enter .*: skipped the examples' tests" "$work/test.log"; then
  echo "fresh-clone: make test did not say it skipped the uid-101 tests in a 0700 directory" >&2
  exit 1
fi

# A second clean build in another directory, with another cargo home (the
# crates' sources at another path): the same bytes. It reuses the first
# clone's wasm-opt, the same pinned version.
step "second clean build"
clone "$work/second"
ln -s "$work/first/.tools" "$work/second/.tools"
CARGO_HOME="$work/cargo-home-2"
mkdir -p "$CARGO_HOME/bin"
link_proxies
as_new_user make -C "$work/second" build >/dev/null
# The first clone's dist/ matches envoyfilters/ exactly: its make test
# passed manifests_are_current (checked above).
status=0
for module in "$work/first"/dist/*.wasm; do
  name=${module##*/}
  if ! cmp -s "$module" "$work/second/dist/$name"; then
    echo "fresh-clone: dist/$name differs between two clean builds" >&2
    status=1
  fi
done
[[ $status == 0 ]] || exit 1
modules=$(find "$work/first/dist" -name '*.wasm' | wc -l)
step "$modules modules byte-identical in two clean builds and equal to envoyfilters/"
awk '/^test result:/ { p += $4; f += $6 } END { printf "fresh-clone: make test %d passed, %d failed\n", p, f; if (p == 0 || f > 0) exit 1 }' "$work/test.log"
