#!/usr/bin/env bash
# The long robustness run: every fault on every transport, several rounds each, with longer faults
# than the short test in `npm test`; writes a table (transport x fault x check) to
# robustness/results.md, the rounds' reports to robustness/results.json, and the histories (and
# porcupine's visualisation of any that is not linearizable) to robustness/artifacts/.
# Options go to scripts/robustness.ts (--rounds, --transports, --faults, --fault-ms, --plant, --out).
# Partitions from peers need root and iproute2 (network namespaces); without them they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
exec npx tsx scripts/robustness.ts "$@"
