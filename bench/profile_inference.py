"""Where one forward of convnets' inference form spends its time on the CPU: oneDNN's own execution times
(ONEDNN_VERBOSE=2) per primitive and implementation, against the measured latency; the rest is outside
oneDNN's kernels (primitive creation, allocation, the framework). Also counts the primitives created during
the timed forwards (oneDNN's own cache hits and misses included): the oneDNN plan creates none, LibTorch's
fused ops look theirs up on every call.

usage: python bench/profile_inference.py --binary build/app/convnets [--arch resnet50] [--batch 1] [--iters 5]
       [--threads 2] [--cpu_inference plan|fused] [--int8]
Reads both verbose formats: oneDNN 3.2's (the plan) and LibTorch's bundled oneDNN's ("v1,primitive,").
"""
import argparse
import atexit
import collections
import json
import os
import shutil
import subprocess
import tempfile

parser = argparse.ArgumentParser()
parser.add_argument("--binary", required=True)
parser.add_argument("--arch", default="resnet50")
parser.add_argument("--batch", type=int, default=1)
parser.add_argument("--iters", type=int, default=5)
parser.add_argument("--threads", type=int, default=os.cpu_count())
parser.add_argument("--cpu_inference", default="plan", choices=["plan", "fused"])
parser.add_argument("--int8", action="store_true", help="the int8 plan (random weights, synthetic calibration)")
args = parser.parse_args()

model_dir = tempfile.mkdtemp(prefix="profile_")
atexit.register(shutil.rmtree, model_dir, ignore_errors=True)
warmup = 2
env = dict(os.environ, ONEDNN_VERBOSE="2", OMP_NUM_THREADS=str(args.threads))
p = subprocess.run([args.binary, "inference_benchmark", "--arch", args.arch, "--batch_sizes", str(args.batch),
                    "--num_iter", str(args.iters), "--iter_unit", "batch", "--warmup_steps", str(warmup),
                    "--model_dir", model_dir, "--cpu_inference", args.cpu_inference] + (["--int8"] if args.int8 else []),
                   capture_output=True, text=True, env=env, check=True)
events = [json.loads(l[5:]) for l in open(os.path.join(model_dir, "log.json")) if l.startswith("DLLL ")]
latency = [e["data"]["latency_avg"] for e in events if e["type"] == "LOG" and "latency_avg" in e["data"]][-1]



def fields(line):
    """onednn_verbose,[v1,primitive,]exec|create:...,cpu,kind,impl,...,ms -> the list without v1,primitive."""
    f = line.split(",")
    return [f[0]] + f[3:] if f[1:3] == ["v1", "primitive"] else f


# Every forward starts with the stem convolution (3 input channels): split the lines there, keep the timed ones.
events_all = [fields(l) for l in p.stdout.splitlines() if l.startswith("onednn_verbose,")]
events_all = [l for l in events_all if len(l) > 5 and (l[1] == "exec" or l[1].startswith("create"))]
lines = [l for l in events_all if l[1] == "exec"]
starts = [i for i, l in enumerate(lines) if l[3] == "convolution" and "_ic3oc" in "_" + l[-2]]
assert len(starts) == warmup + args.iters, f"{len(starts)} forwards in the log, expected {warmup + args.iters}"
timed = lines[starts[warmup]:]
per_forward = len([l for l in lines[starts[-1]:] if l[3] == "convolution"])
# Creations after the first timed forward began (exec and create lines interleave in one stream).
first_timed = events_all.index(timed[0])
creates = collections.Counter(l[1] for l in events_all[first_timed:] if l[1].startswith("create"))
totals, counts = collections.Counter(), collections.Counter()
for l in timed:
    key = f"{l[3]} ({l[4]})"
    totals[key] += float(l[-1]) / args.iters
    counts[key] += 1 / args.iters
inside = sum(totals.values())
print(f"{args.arch}, batch {args.batch}, {args.threads} threads, {args.cpu_inference}: {latency:.1f} ms per forward "
      f"({per_forward} convolutions); primitives created per timed forward: "
      + (", ".join(f"{k} {v / args.iters:.0f}" for k, v in creates.items()) or "none") + "\n")
print("| where | calls | ms per forward | share |\n|---|---|---|---|")
for key, ms in totals.most_common():
    print(f"| {key} | {counts[key]:.0f} | {ms:.1f} | {100 * ms / latency:.0f}% |")
print(f"| outside oneDNN's kernels | | {latency - inside:.1f} | {100 * (latency - inside) / latency:.0f}% |")
