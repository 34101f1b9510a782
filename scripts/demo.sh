#!/usr/bin/env sh
# One command from a fresh clone to a running demo: install (if needed), build, start.
set -eu
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ]; then
  echo "Installing dependencies (sqlite3 compiles from source: a few minutes the first time)..."
  npm install --no-audit --no-fund
fi
[ -f dist/cli-bundle/main.js ] || npm run build
exec node bin/handrail.js demo "$@"
