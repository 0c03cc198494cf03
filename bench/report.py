#!/usr/bin/env python3
"""The report of bench/run.sh: reads the result rows of every area and run
(JSON lines, the contract in bench/README.md), prints the table of medians
with ratios (Markdown, ready for the README), and writes the raw numbers
and the summary as JSON and, when matplotlib is there, a PNG: chain time
against k with the bound, and dfs against its baseline for every
throughput row.

    bench/report.py RAW.jsonl --out RESULTS.json [--png RESULTS.png] [--meta KEY=VALUE ...]
    bench/report.py --from RESULTS.json [--png RESULTS.png]   (again, from a saved run)
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys


def machine():
    """What the numbers were measured on."""
    info = {"kernel": platform.release(), "cores": os.cpu_count()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                info["os"] = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    try:
        df = subprocess.run(["df", "--output=source,fstype", os.environ.get("BENCH_WORK", "/tmp")],
                            capture_output=True, text=True, check=True).stdout.split()
        info["disk"] = f"{df[-2]} ({df[-1]})"
    except (OSError, subprocess.CalledProcessError, IndexError):
        pass
    for key, cmd in [
        ("rustc", ["rustc", "--version"]),
        ("commit", ["git", "describe", "--always", "--dirty"]),
    ]:
        try:
            info[key] = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    return info


def summarize(raw, judge=True):
    """One summary per row (in the order rows first appear): medians of the
    runs, their ratio dfs/baseline, and (when `judge`) whether it meets the
    row's target."""
    rows = {}
    for r in raw:
        if "row" not in r:
            continue
        key = (r.get("area", ""), r["row"])
        s = rows.setdefault(key, {
            "area": key[0], "row": key[1], "dfs_runs": [], "baseline_runs": [],
            **{k: v for k, v in r.items() if k not in ("area", "row", "run", "dfs", "baseline")},
        })
        if r.get("note"):
            s["note"] = r["note"]
        if isinstance(r.get("dfs"), (int, float)):
            s["dfs_runs"].append(r["dfs"])
        if isinstance(r.get("baseline"), (int, float)):
            s["baseline_runs"].append(r["baseline"])
    out = []
    for s in rows.values():
        s["dfs"] = statistics.median(s["dfs_runs"]) if s["dfs_runs"] else None
        s["baseline"] = statistics.median(s["baseline_runs"]) if s["baseline_runs"] else None
        s["ratio"] = (s["dfs"] / s["baseline"]) if s["dfs"] is not None and s["baseline"] else None
        lo, hi = s.get("min_ratio"), s.get("max_ratio")
        if judge and s["ratio"] is not None and (lo is not None or hi is not None):
            s["met"] = (lo is None or s["ratio"] >= lo) and (hi is None or s["ratio"] <= hi)
        out.append(s)
    return out


def num(x):
    if x is None:
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def target(s):
    lo, hi = s.get("min_ratio"), s.get("max_ratio")
    if lo is not None and hi is not None:
        return f"{lo:.2f}–{hi:.2f}"
    if lo is not None:
        return f"≥ {lo:g}"
    if hi is not None:
        return f"≤ {hi:g}"
    return ""


def table(summary):
    lines = [
        "| row | dfs | baseline, same run | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for s in summary:
        unit = s.get("unit", "")
        base = f"{num(s['baseline'])} {unit}" if s["baseline"] is not None else "–"
        if s.get("baseline_name") and s["baseline"] is not None:
            base = f"{s['baseline_name']} {base}"
        ratio = f"{s['ratio']:.3f}" if s["ratio"] is not None else "–"
        tgt = target(s)
        if "met" in s:
            tgt += " met" if s["met"] else " **not met**"
        dfs = f"{num(s['dfs'])} {unit}" if s["dfs"] is not None else s.get("note", "–")
        lines.append(f"| {s['row']} | {dfs} | {base} | {ratio} | {tgt.strip()} |")
    return "\n".join(lines)


def plot(summary, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"warning: matplotlib is missing; no {path}", file=sys.stderr)
        return False
    chain = [s for s in summary if s.get("plot") == "chain" and s["dfs"] is not None]
    bars = [s for s in summary if s.get("plot") == "bars" and s["dfs"] is not None
            and s["baseline"] is not None]
    cols = 4
    bar_lines = (len(bars) + cols - 1) // cols
    panels = (1 if chain else 0) + bar_lines
    if panels == 0:
        return False
    fig = plt.figure(figsize=(16, 4.5 * panels))
    grid = fig.add_gridspec(panels, cols)
    line = 0
    if chain:
        ax = fig.add_subplot(grid[0, : cols - 1])
        ratio_ax = fig.add_subplot(grid[0, cols - 1])
        bound = {}
        for series in sorted({s.get("series", "") for s in chain}):
            pts = sorted((s["k"], s["dfs"], min(s["dfs_runs"]), max(s["dfs_runs"]))
                         for s in chain if s.get("series", "") == series)
            ks = [p[0] for p in pts]
            med = [p[1] for p in pts]
            err = [[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]]
            label = {"tc": "dfs, links shaped by tc", "throttle": "dfs, node throttle"}.get(series, series)
            line2d = ax.errorbar(ks, med, yerr=err, marker="o", capsize=4, label=label)
            ratio_ax.plot(ks, [s["ratio"] for s in sorted(
                (s for s in chain if s.get("series", "") == series and s["ratio"] is not None),
                key=lambda s: s["k"])], marker="o", color=line2d[0].get_color(), label=label)
            for s in chain:
                if s.get("series", "") == series and s["baseline"] is not None:
                    bound[s["k"]] = s["baseline"]
        if bound:
            ks = sorted(bound)
            ax.plot(ks, [bound[k] for k in ks], "k--", label="bound S/B + (k−1)·c/B")
        first = chain[0]
        if {"size_mib", "chunk_mib", "mbit"} <= first.keys():
            ax.set_title(f"chain distribution: S = {first['size_mib']} MiB, c = {first['chunk_mib']} MiB, "
                         f"B = {first['mbit']} Mbit/s per sending node (median, min–max of runs)")
        ax.set_xlabel("k (nodes receiving the file)")
        ax.set_ylabel("seconds")
        ax.set_xticks(sorted({s["k"] for s in chain}))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
        ratio_ax.axhspan(1.0, 1.05, color="tab:green", alpha=0.15, label="target 1.00–1.05")
        ratio_ax.axhline(1.0, color="k", linestyle="--", linewidth=1)
        ratio_ax.set_title("measured / bound")
        ratio_ax.set_xlabel("k")
        ratio_ax.set_xticks(sorted({s["k"] for s in chain}))
        ratio_ax.grid(alpha=0.3)
        ratio_ax.legend(fontsize=8)
        line = 1
    for i, s in enumerate(bars):
        ax = fig.add_subplot(grid[line + i // cols, i % cols])
        names = ["dfs", s.get("baseline_name", "baseline")]
        values = [s["dfs"], s["baseline"]]
        spans = [(min(s["dfs_runs"]), max(s["dfs_runs"])),
                 (min(s["baseline_runs"]), max(s["baseline_runs"]))]
        err = [[v - lo for v, (lo, _) in zip(values, spans)], [hi - v for v, (_, hi) in zip(values, spans)]]
        ax.bar(names, values, yerr=err, capsize=4, color=["tab:blue", "tab:gray"])
        for x, v in enumerate(values):
            ax.annotate(num(v), (x, v), ha="center", va="bottom", fontsize=9,
                        xytext=(0, 3), textcoords="offset points")
        heading = s["row"] if len(s["row"]) <= 40 else s["row"][:38] + "…"
        tgt = f", target {target(s)}" if target(s) else ""
        ax.set_title(f"{heading}\nratio {s['ratio']:.2f}{tgt}", fontsize=10)
        ax.set_ylabel(s.get("unit", ""))
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", nargs="?", help="result rows, one JSON object a line")
    parser.add_argument("--from", dest="saved", help="a results JSON written before")
    parser.add_argument("--out", help="where to write the results JSON")
    parser.add_argument("--png", help="where to draw the PNG")
    parser.add_argument("--meta", nargs="*", default=[], help="KEY=VALUE settings of the run")
    args = parser.parse_args()

    if args.saved:
        saved = json.load(open(args.saved))
        raw, meta, mach = saved["raw"], saved["settings"], saved["machine"]
    elif args.raw:
        raw = [json.loads(line) for line in open(args.raw) if line.strip()]
        meta = dict(m.split("=", 1) for m in args.meta)
        mach = machine()
    else:
        parser.error("give RAW.jsonl or --from RESULTS.json")
    quick = meta.get("quick") == "1"
    summary = summarize(raw, judge=not quick)
    failures = [r for r in raw if "failed" in r]

    print(f"machine: {mach.get('cpu', '?')}, {mach.get('cores', '?')} cores, "
          f"{mach.get('memory_gib', '?')} GiB, disk {mach.get('disk', '?')}, {mach.get('os', '?')}, "
          f"kernel {mach.get('kernel', '?')}; commit {mach.get('commit', '?')}")
    print(f"runs: {meta.get('runs', '?')}{' (quick)' if meta.get('quick') == '1' else ''}, "
          f"load average before {meta.get('load_before', '?')}, after {meta.get('load_after', '?')}; "
          "medians; ratio = dfs / baseline")
    if quick:
        print("quick pass: every row tiny, so the targets are not judged")
    print()
    print(table(summary))
    for f in failures:
        print(f"\narea {f['area']} failed in run {f['run']} (exit {f['failed']}): its rows may be missing",
              file=sys.stderr)

    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": mach, "settings": meta, "summary": summary, "raw": raw}, f, indent=1)
        print(f"\nraw numbers: {args.out}")
    if args.png:
        title = f"dfs benchmarks, {mach.get('cores', '?')} cores ({mach.get('cpu', '?')}), " \
                f"median of {meta.get('runs', '?')} run(s)"
        if plot(summary, args.png, title):
            print(f"plot: {args.png}")


if __name__ == "__main__":
    main()
