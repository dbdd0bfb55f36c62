"""The benchmark's ratios as a picture: one row per workload, one bar per loop (median ratio against stock
asyncio, whiskers from the lowest to the highest round), a line at 1.0. Needs matplotlib (the ``bench``
extra); nothing else in the suite does."""

from __future__ import annotations

from typing import Any


def check_available() -> None:
    """SystemExit with a clear message when matplotlib is missing (called before a long run)."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        raise SystemExit("--chart needs matplotlib: pip install 'multiloop-asyncio[bench]' (or matplotlib)") from None


def _rows(doc: dict[str, Any]) -> tuple[list[str], list[str], dict[tuple[str, str], tuple[float, float, float]]]:
    loops = [c for c in doc["meta"]["loops"] if c != doc["meta"]["baseline"]]
    labels: list[str] = []
    values: dict[tuple[str, str], tuple[float, float, float]] = {}
    for bench in doc["benchmarks"]:
        name = bench["name"]
        cells = {r["loop"]: r for r in doc["results"] if r["benchmark"] == name}
        kinds = [("ratio", name)]
        if bench.get("report_cpu"):
            kinds += [("cpu_ratio", f"{name} (user CPU/op)"), ("thread_cpu_ratio", f"{name} (thread CPU/op)")]
        for key, label in kinds:
            found = False
            for loop in loops:
                r = cells.get(loop, {})
                if f"{key}_median" in r:
                    values[(label, loop)] = (r[f"{key}_median"], r[f"{key}_min"], r[f"{key}_max"])
                    found = True
            if found:
                labels.append(label)
    for m in doc.get("memory", {}).get("results", []):
        if m.get("ratio") is not None and m["loop"] in loops:
            label = "memory per idle connection (stock/loop)"
            values[(label, m["loop"])] = (1 / m["ratio"], 1 / m["ratio"], 1 / m["ratio"])
            if label not in labels:
                labels.append(label)
    return labels, loops, values


def draw(doc: dict[str, Any], path: str) -> None:
    """Write ``doc`` (the suite's JSON document) as a PNG chart to ``path``."""
    check_available()
    import matplotlib  # type: ignore[import-not-found, unused-ignore]
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    labels, loops, values = _rows(doc)
    height = 0.8 / max(1, len(loops))
    fig, ax = plt.subplots(figsize=(11, 0.28 * len(labels) * max(1, len(loops)) ** 0.5 + 1.5))
    for i, loop in enumerate(loops):
        ys, meds, lo, hi = [], [], [], []
        for j, label in enumerate(labels):
            if (label, loop) in values:
                med, mn, mx = values[(label, loop)]
                ys.append(j + (i - (len(loops) - 1) / 2) * height)
                meds.append(med)
                lo.append(max(0.0, med - mn))
                hi.append(max(0.0, mx - med))
        ax.barh(ys, meds, height=height, xerr=[lo, hi], label=loop, capsize=2)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ratio vs stock asyncio, same run (>1 = better; log scale; whiskers: lowest-highest round)")
    meta = doc["meta"]
    ax.set_title(f"multiloop {meta['multiloop']} ({meta['hot_path']}), Python {meta['python']}"
                 f"{' free-threaded' if meta['free_threaded'] else ''}, {meta['cpus']} x {meta['cpu']}",
                 fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
