#!/usr/bin/env python3
"""Draws dfs-sim's rows.json: time until every fast node holds the file
against k, one line per design, with the bound S/B + ceil(log2 k)·c/B.

    python3 sim/plot.py sim/results/rows.json sim/results/sim.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(rows_path, png_path):
    with open(rows_path) as f:
        data = json.load(f)
    rows = data["rows"]
    designs = list(dict.fromkeys(r["design"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 5))
    for design in designs:
        mine = [r for r in rows if r["design"] == design]
        ax.plot([r["nodes"] for r in mine], [r["fast_done"] for r in mine], marker="o", label=design)
    bound = sorted({(r["nodes"], r["fast_bound"]) for r in rows})
    ax.plot([k for k, _ in bound], [b for _, b in bound], "k--", label="S/B + ⌈log₂ k⌉·c/B")
    s = data["scenario"]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("nodes k")
    ax.set_ylabel("seconds until every fast node holds the file")
    ax.set_title(
        f"{s['size'] >> 20} MiB in {s['chunk'] >> 20} MiB chunks, {s['rate'] * 8 / 1e9:g} Gbit/s links, "
        f"1 node in {s['slow_every']} at 1/{s['slow_factor']:g}"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
