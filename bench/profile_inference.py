"""Where one forward of convnets' inference form spends its time on the CPU: oneDNN's own execution times
(ONEDNN_VERBOSE) per primitive and implementation, against the measured latency; the rest is outside oneDNN's
kernels (primitive descriptor creation on every call, pooling, allocation, the framework).

usage: python bench/profile_inference.py --binary build/app/convnets [--arch resnet50] [--batch 1] [--iters 5]
       [--threads 2]
"""
import argparse
import collections
import json
import os
import subprocess
import tempfile

parser = argparse.ArgumentParser()
parser.add_argument("--binary", required=True)
parser.add_argument("--arch", default="resnet50")
parser.add_argument("--batch", type=int, default=1)
parser.add_argument("--iters", type=int, default=5)
parser.add_argument("--threads", type=int, default=os.cpu_count())
args = parser.parse_args()

model_dir = tempfile.mkdtemp(prefix="profile_")
warmup = 2
env = dict(os.environ, ONEDNN_VERBOSE="1", OMP_NUM_THREADS=str(args.threads))
p = subprocess.run([args.binary, "inference_benchmark", "--arch", args.arch, "--batch_sizes", str(args.batch),
                    "--num_iter", str(args.iters), "--iter_unit", "batch", "--warmup_steps", str(warmup),
                    "--model_dir", model_dir], capture_output=True, text=True, env=env, check=True)
events = [json.loads(l[5:]) for l in open(os.path.join(model_dir, "log.json")) if l.startswith("DLLL ")]
latency = [e["data"]["latency_avg"] for e in events if e["type"] == "LOG" and "latency_avg" in e["data"]][-1]

# Every forward starts with the stem convolution (3 input channels): split the lines there, keep the timed ones.
lines = [l.split(",") for l in p.stdout.splitlines() if l.startswith("onednn_verbose,v1,primitive,exec")]
starts = [i for i, l in enumerate(lines) if l[5] == "convolution" and "_ic3oc" in "_" + l[-2]]
assert len(starts) == warmup + args.iters, f"{len(starts)} forwards in the log, expected {warmup + args.iters}"
timed = lines[starts[warmup]:]
per_forward = len([l for l in lines[starts[-1]:] if l[5] == "convolution"])
totals, counts = collections.Counter(), collections.Counter()
for l in timed:
    key = f"{l[5]} ({l[6]})"
    totals[key] += float(l[-1]) / args.iters
    counts[key] += 1 / args.iters
inside = sum(totals.values())
print(f"{args.arch}, batch {args.batch}, {args.threads} threads: {latency:.1f} ms per forward "
      f"({per_forward} convolutions)\n")
print("| where | calls | ms per forward | share |\n|---|---|---|---|")
for key, ms in totals.most_common():
    print(f"| {key} | {counts[key]:.0f} | {ms:.1f} | {100 * ms / latency:.0f}% |")
print(f"| outside oneDNN's kernels | | {latency - inside:.1f} | {100 * (latency - inside) / latency:.0f}% |")
