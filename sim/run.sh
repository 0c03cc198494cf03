#!/usr/bin/env bash
# Runs the distribution simulator for k = 10 … 10,000 and draws its plot:
# sim/results/table.md, rows.json and sim.png.
#
#   sim/run.sh [dfs-sim flags…]     (see `cargo run -p dfs-sim -- --help`)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import matplotlib' 2>/dev/null || pip install --quiet matplotlib
cargo run --quiet --release -p dfs-sim -- --out sim/results "$@"
python3 sim/plot.py sim/results/rows.json sim/results/sim.png
echo "wrote sim/results/table.md, rows.json and sim.png" >&2
