#!/usr/bin/env bash
# Runs the integration suite against etcd 3.4 (Debian's etcd-server), 3.5, 3.6 and 3.7 (built
# from their Go modules at pinned patch versions) and writes a compatibility table to
# matrix/compatibility.md. Takes 10-15 minutes; CI runs only 3.7 (`npm test`).
set -uo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
mkdir -p matrix
[ -x /usr/bin/etcd ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null; }
for target in debian:/usr/bin/etcd v3.5.35 v3.6.16 v3.7.1; do
  name=${target%%:*}
  if [ "$name" = debian ]; then
    env ETCD_BIN=/usr/bin/etcd npx vitest run test/integration --reporter=json --outputFile="matrix/$name.json" >"matrix/$name.log" 2>&1
  else
    env -u ETCD_BIN ETCD_SDK_VERSION="$target" npx vitest run test/integration --reporter=json --outputFile="matrix/$target.json" >"matrix/$target.log" 2>&1
  fi
  echo "$target: $(tail -1 "matrix/$name.log" 2>/dev/null || true)"
done
npx tsx scripts/matrix-table.ts matrix/*.json > matrix/compatibility.md
cat matrix/compatibility.md
