#!/usr/bin/env bash
# Runs the whole test suite (`npm test`: the type-check and vitest) on Node 22 and 24, the Node
# binaries test/runtimes pins, one version after the other (about 10 minutes each on 2 cores).
# Pick versions with arguments: scripts/node-versions.sh 24. Each run's output goes to
# matrix/node-<version>.log; the script exits non-zero when a run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
npx tsx test/runtimes/install.ts || exit 1
mkdir -p matrix
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(22 24)
failed=0
for v in "${versions[@]}"; do
  bin="$PWD/test/runtimes/node_modules/node$v/bin"
  [ -x "$bin/node" ] || { echo "no Node $v in test/runtimes (its package.json pins node22 and node24)"; failed=1; continue; }
  log="matrix/node-$v.log"
  # npm, npx, vitest's workers and every test's child processes run on the node first in PATH.
  if PATH="$bin:$PATH" npm test >"$log" 2>&1; then result=passed; else result=FAILED; failed=1; fi
  echo "Node $("$bin/node" --version) $result: $(grep -E '^vitest: ' "$log" | tail -1)"
done
exit $failed
