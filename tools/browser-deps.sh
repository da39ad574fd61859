#!/bin/sh
# Installs the browser test's npm packages (tests/browser: Converse.js, pinned in
# package-lock.json) into tests/browser/node_modules with `npm ci`. Does nothing when they are
# there already and were installed from the current lock file (node_modules/.installed-lock
# keeps a copy of it). Called by `make browser-deps` (so by make test) and by the browser
# test itself; concurrent calls wait for each other (flock). Needs npm and the npm registry.
set -eu
dir=$(cd "$(dirname "$0")/../tests/browser" && pwd)
stamp=$dir/node_modules/.installed-lock
cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null && exit 0
command -v npm >/dev/null 2>&1 || {
    echo "browser-deps: npm is not installed (tools/install-deps.sh installs it)" >&2; exit 1; }
exec 9>"$dir/.npm-ci.lock"
flock 9
cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null && exit 0
echo "browser-deps: npm ci in $dir" >&2
cd "$dir"
timeout 600 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
cp package-lock.json "$stamp"
