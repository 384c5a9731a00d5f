#!/usr/bin/env bash
# npm run compile: the CLI as single-file executables in dist/, each runnable alone on a Linux x86-64
# host with nothing else installed:
#   dist/anysrc       bun build --compile (the Bun runtime inside; the poller's Worker a second entry point)
#   dist/anysrc-deno  deno compile with the permissions below baked in
set -euo pipefail
cd "$(dirname "$0")/.."
bin=node_modules/.bin
mkdir -p dist
# Deno trusts only its bundled (Mozilla) roots unless told otherwise. A build host whose registry
# traffic goes through its own CA, as npm's does here with the system bundle, would fail every
# download (denort, esbuild for `deno bundle`). The system store goes first, then Mozilla's.
export DENO_TLS_CA_STORE=${DENO_TLS_CA_STORE:-system,mozilla}

# Both entry points share a directory: inside an executable the Worker is found beside main.
entries=(apps/relay/src/main.ts apps/relay/src/poller_worker.ts)
"$bin/bun" build --compile --conditions=anysrc-source "${entries[@]}" --outfile dist/anysrc >/dev/null
echo "compile: dist/anysrc ($(du -h dist/anysrc | cut -f1), bun $("$bin/bun" --version))"

# What anysrc-deno may do, and nothing more (the launcher grants the same per command):
#   ffi   libc (sockets, TUN, epoll)        env  ANYSRC_RUNTIME, ANYSRC_DEBUG, NOTIFY_SOCKET, ANYSRC_WORKER, ANYSRC_LAUNCHER
#   run   nft and ip (rules, tproxy --rules) net  the --metrics endpoint on a loopback or wildcard address
#   read  --config / --receivers files under /etc, /usr/local/etc, /run or /var/lib/anysrc
# A 1 MiB young generation, as the launcher gives Deno (BENCHMARKS.md: 10 000 sessions).
read_scope=/etc,/usr/local/etc,/run,/var/lib/anysrc
permissions=(--allow-ffi --allow-env=ANYSRC_RUNTIME,ANYSRC_DEBUG,NOTIFY_SOCKET,ANYSRC_WORKER,ANYSRC_LAUNCHER --allow-run=nft,ip
  "--allow-net=127.0.0.1,[::1],0.0.0.0,[::]")
v8=--v8-flags=--max-semi-space-size=1
deno_version=$("$bin/deno" --version | head -n 1)
rm -f dist/anysrc-deno
if NO_COLOR=1 "$bin/deno" compile --quiet --config deno.json --no-check "${permissions[@]}" "--allow-read=$read_scope" "$v8" \
  --include packages/sys/src/poller_worker.ts --output dist/anysrc-deno apps/relay/src/main.ts 2>dist/deno-compile.log; then
  rm -f dist/deno-compile.log
  echo "compile: dist/anysrc-deno ($(du -h dist/anysrc-deno | cut -f1), $deno_version, deno compile)"
  exit 0
fi
# deno compile builds on denort, a runtime it downloads from dl.deno.land (or takes from $DENORT_BIN).
# Where neither is at hand (an offline build host), the same program ships as a self-extracting file:
# a shell header, then a tar of the deno binary and the bundled CLI, unpacked once per version into
# the user's cache (or a private temporary directory) and run with the same baked-in permissions.
echo "compile: deno compile failed ($(grep -m 1 -o 'error sending request for url ([^)]*)' dist/deno-compile.log || grep -m 1 error dist/deno-compile.log)); building a self-extracting anysrc-deno instead" >&2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
"$bin/deno" bundle --quiet --config deno.json --platform deno --outdir "$stage/app" "${entries[@]}"
cp "$(readlink -f "$bin/deno")" "$stage/deno"
tar -C "$stage" -cf "$stage/payload.tar" deno app
hash=$(sha256sum "$stage/payload.tar" | cut -c1-16)
header=$(cat <<HEADER
#!/bin/sh
# anysrc-deno: the anysrc CLI on $deno_version, self-extracting (see tools/compile.sh in the anysrc repository).
set -eu
self=\$(readlink -f "\$0")
cache=\${XDG_CACHE_HOME:-\${HOME:-/nonexistent}/.cache}/anysrc/deno-$hash
if [ -x "\$cache/deno" ] && [ -O "\$cache" ]; then dir=\$cache
else
  if mkdir -p "\${cache%/*}" 2>/dev/null && tmp=\$(mktemp -d "\$cache.XXXXXX" 2>/dev/null); then :; else tmp=\$(mktemp -d); fi
  tail -c +@@PAYLOAD@@ "\$self" | tar -x -C "\$tmp"
  if [ "\${tmp%.*}" = "\$cache" ] && mv -T "\$tmp" "\$cache" 2>/dev/null; then dir=\$cache; else dir=\$tmp; fi
fi
exec "\$dir/deno" run --quiet --no-prompt --no-config $(printf '"%s" ' "${permissions[@]}")"--allow-read=\$dir,$read_scope" $v8 "\$dir/app/main.js" "\$@"
HEADER
)
# The header names the byte where the tar starts (1-based, as tail counts), in a fixed width.
at=$(( $(printf '%s\n' "${header/@@PAYLOAD@@/00000000}" | wc -c) + 1 ))
header=${header/@@PAYLOAD@@/$(printf '%08d' "$at")}
{ printf '%s\n' "$header"; cat "$stage/payload.tar"; } > dist/anysrc-deno
chmod +x dist/anysrc-deno
echo "compile: dist/anysrc-deno ($(du -h dist/anysrc-deno | cut -f1), $deno_version, self-extracting; why in dist/deno-compile.log)"
