"""Markdown tables from side_by_side.py's bench.jsonl: images/s of every system per case, and convnets'
ratio to each PyTorch variant (> 1: convnets is faster).

usage: make_table.py OUT/bench.jsonl
"""
import json
import sys
from collections import defaultdict


def main():
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    by_case = defaultdict(dict)  # "train/rn50" -> system -> row
    problems = []
    for r in rows:
        parts = r["case"].split("/")
        case, system = "/".join(parts[:-1]), parts[-1]
        if "error" in r or "skipped" in r:
            problems.append(f"- {r['case']}: {r.get('error') or r.get('skipped')}".replace("\n", " ")[:400])
            continue
        by_case[case][system] = r
    systems = ["convnets", "torch_eager"] + sorted(
        {s for c in by_case.values() for s in c if s.startswith("torch_compile")})
    head = "| case | batch | " + " | ".join(f"{s} img/s" for s in systems) + " | " + \
           " | ".join(f"vs {s}" for s in systems[1:]) + " |"
    print(head)
    print("|" + "---|" * (2 + 2 * len(systems) - 1))
    for case in sorted((c for c in by_case if not c.startswith("loader")),
                       key=lambda c: (not c.startswith("train"), c)):
        got = by_case[case]
        any_row = next(iter(got.values()))
        cells = [case, str(any_row.get("batch", ""))]
        for s in systems:
            cells.append(f"{got[s]['images_per_s']:.0f}" if s in got else "-")
        ours = got.get("convnets", {}).get("images_per_s")
        for s in systems[1:]:
            theirs = got.get(s, {}).get("images_per_s")
            cells.append(f"{ours / theirs:.2f}x" if ours and theirs else "-")
        print("| " + " | ".join(cells) + " |")
    loader = by_case.get("loader/rn50", {}).get("convnets_jpeg_tfrecords")
    synthetic = by_case.get("train/rn50", {}).get("convnets")
    if loader:
        ratio = f" = {loader['images_per_s'] / synthetic['images_per_s']:.0%} of synthetic data" if synthetic else ""
        print(f"\nResNet-50 training fed by JPEG TFRecords ({loader['workers']} decode workers): "
              f"{loader['images_per_s']:.0f} images/s{ratio}")
    lat = [(c, s, r) for c, g in by_case.items() for s, r in g.items() if "latency_ms_p99" in r and r["batch"] == 1]
    if lat:
        print("\nbatch-1 latency (ms): avg / p50 / p99")
        for c, s, r in sorted(lat):
            print(f"- {c} {s}: {r['latency_ms_avg']:.2f} / {r['latency_ms_p50']:.2f} / {r['latency_ms_p99']:.2f}")
    compile_times = [(c, s, r.get("first_step_s", r.get("first_call_s"))) for c, g in by_case.items()
                     for s, r in g.items() if s.startswith("torch_compile")]
    if compile_times:
        print("\ntorch.compile: first step (compilation included), s")
        for c, s, t in sorted(compile_times):
            print(f"- {c} {s}: {t:.1f}")
    if problems:
        print("\nnot measured:")
        print("\n".join(problems))


if __name__ == "__main__":
    main()
