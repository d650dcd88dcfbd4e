#!/usr/bin/env bash
# The long robustness run: every fault on every transport, several rounds each, with longer faults
# than the short test in `npm test`, and the leak check with 1,000 forced reconnects; writes a
# table (transport x fault x check) to robustness/results.md (--out docs/robustness.md for the
# published page), the rounds' reports to robustness/results.json, and the histories (and
# porcupine's visualisation of any that is not linearizable) to robustness/artifacts/.
# Options go to scripts/robustness.ts (--rounds, --transports, --faults, --fault-ms, --plant,
# --reconnects, --out).
# Partitions from peers need root and iproute2 (network namespaces); without them they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
exec npx tsx scripts/robustness.ts "$@"
