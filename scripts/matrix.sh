#!/usr/bin/env bash
# Runs the integration suite against etcd 3.4 (Debian's etcd-server), 3.5, 3.6 and 3.7 (built
# from their Go modules at pinned patch versions), once per transport (gRPC over grpc-js, and over
# node:http2 and etcd's HTTP gateway for the suites vitest.config.ts runs on them), and writes the
# compatibility page: a table of suite x transport x etcd version. Takes about 35 minutes on 2
# cores; CI runs only 3.7 (`npm test`).
# Usage: scripts/matrix.sh [--out docs/compatibility.md]   (matrix/compatibility.md by default)
set -uo pipefail
out=$(realpath -m "${2:-$(dirname "$0")/../matrix/compatibility.md}")
[ "${1:---out}" = --out ] || { echo "usage: $0 [--out FILE]" >&2; exit 2; }
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
# Reports of an earlier run (of other versions or file names) must not end up in the table.
rm -rf matrix && mkdir -p matrix
[ -x /usr/bin/etcd ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null; }
for target in debian:/usr/bin/etcd v3.5.35 v3.6.16 v3.7.1; do
  name=${target%%:*}
  # Once per transport: vitest's JSON report does not say which project a file ran in.
  for project in grpc http2 gateway; do
    report="matrix/$name-$project"
    if [ "$name" = debian ]; then
      env ETCD_BIN=/usr/bin/etcd npx vitest run --project "$project" test/integration --reporter=json --outputFile="$report.json" >"$report.log" 2>&1
    else
      env -u ETCD_BIN ETCD_SDK_VERSION="$target" npx vitest run --project "$project" test/integration --reporter=json --outputFile="$report.json" >"$report.log" 2>&1
    fi
    echo "$target $project: $(tail -1 "$report.log" 2>/dev/null || true)"
  done
done
npx tsx scripts/matrix-table.ts --out "$out" matrix/*.json
