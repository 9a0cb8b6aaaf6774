"""The GPU checks that need several processes or the whole binary (scripts/gpu/run.sh runs this on a GPU
machine; --dry_run runs the same commands on the CPU to check the script itself):

1. NCCL: 1 rank runs our whole NCCL path and equals Gloo bit for bit. 2 ranks sharing the one GPU: NCCL
   refuses two ranks on one device ("Duplicate GPU"), so this records what happened; the multi-rank checks
   below use NCCL if it worked, else Gloo on CUDA tensors.
2. dist_worker, 2 ranks x batch 4 on the GPU == 1 process x batch 8 (fp32, TF32 off): max |diff| <= 1e-5.
3. fp16 GradScaler with 2 ranks: rank 1's loss is made infinite at step 2; both ranks skip that update and
   halve the scale; the weights equal 1 process with the same overflow (<= 1e-2, the AMP bound of the
   data-parallel tests) and differ from a run without the overflow.
4. `convnets train` under torchrun, 2 ranks x batch 32 with --sync_bn == 1 process x batch 64, 6 updates on
   Fashion-MNIST (fp32, TF32 off). A ResNet at initialisation turns fp32 rounding into ~1e-2 relative gradient
   noise, and the first updates amplify it (docs/gpu.md), so no two summation orders agree to 1e-5 after a
   few updates. The bound is measured in the same run: 1 process against itself with another summation order
   (contiguous instead of channels_last; on the GPU also cuDNN autotuning, on the CPU one thread instead of
   two); 2 ranks must land within 4x the largest of those distances from 1 process. The exact check of the
   averaging itself is check 2.
5. A short real training run (Fashion-MNIST, bf16 AMP, then fp16 AMP with loss scaling): the loss falls and
   the eval top-1 is sane.

usage: check_gpu_cli.py CONVNETS DIST_WORKER FASHION_MNIST_IDX_DIR WORK_DIR [--dry_run]
Prints one "ok"/"FAIL" line per check and a final JSON line ("GPU_CHECKS {...}") with the numbers.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import torch

BIN, WORKER, FM_IDX, WORK = sys.argv[1:5]
DRY = "--dry_run" in sys.argv
DEVICE = "cpu" if DRY else "cuda"
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
failures, numbers = [], {}


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "OMPI_", "TORCHELASTIC_")) and
           k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "2"
    return env


def torchrun(n, args):
    return [sys.executable, "-m", "torch.distributed.run", "--no-python", "--standalone", "--nproc-per-node", str(n),
            *args]


def run(cmd, timeout=300):
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", (e.stdout or b"").decode(errors="replace"), (e.stderr or b"").decode(errors="replace")
    took = time.time() - t0
    if rc != 0:
        print(f"$ {' '.join(cmd)}\n-> {rc} after {took:.0f} s\nstdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}", flush=True)
    return rc, out, err


def load(path):
    return torch.load(path, weights_only=True) if os.path.exists(path) else None


def max_diff(a, b, skip=("bn.running", "scaler.")):
    if a is None or b is None:
        return float("inf")
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if not k.startswith(skip))


def worker(n, tag, args, timeout=120):
    out = os.path.join(WORK, tag + ".pt")
    cmd = [WORKER, "--out", out, "--device", DEVICE, "--timeout_s", "30", *args]
    rc, o, e = run(torchrun(n, cmd), timeout)
    return rc, o + e, load(out)


# 1. NCCL, two ranks on one GPU.
backend = "gloo"
if not DRY:
    # One rank runs our whole NCCL path (store, communicator, bucketed all-reduce on NCCL's stream, waits)
    # even where two cannot share the GPU: it must equal the Gloo run bit for bit (a 1-rank sum is exact).
    rc_n, _, nccl1 = worker(1, "nccl1", ["--backend", "nccl", "--steps", "3", "--batch", "8"], timeout=90)
    rc_g, _, gloo1 = worker(1, "gloo1", ["--backend", "gloo", "--steps", "3", "--batch", "8"], timeout=90)
    d = max_diff(nccl1, gloo1, skip=("__none__",))
    check(rc_n == 0 and rc_g == 0 and d == 0, f"NCCL, 1 rank on the GPU: runs, equals Gloo bit for bit ({d:.1e})")
    rc, text, got = worker(2, "nccl", ["--backend", "nccl", "--steps", "2", "--batch", "4"], timeout=90)
    duplicate = "Duplicate GPU" in text or "duplicate" in text.lower()
    numbers["nccl_two_ranks_one_gpu"] = "worked" if rc == 0 else ("refused: duplicate GPU" if duplicate else f"failed ({rc})")
    check(rc == 0 or duplicate, f"NCCL, 2 ranks on one GPU: {numbers['nccl_two_ranks_one_gpu']} "
                                "(NCCL >= 2.5 refuses two ranks on one device)")
    if rc == 0:
        backend = "nccl"
numbers["multi_rank_backend"] = backend + ("" if DRY else " on CUDA tensors")

# 2. Gloo (or NCCL) on CUDA: 2 ranks == 1 process.
rc1, _, ref = worker(1, "w1", ["--backend", "gloo", "--steps", "4", "--batch", "8"])
rc2, _, got = worker(2, "w2", ["--backend", backend, "--steps", "4", "--batch", "4"])
d = max_diff(ref, got)
numbers["two_ranks_vs_one_fp32_max_abs_diff"] = d
check(rc1 == 0 and rc2 == 0 and d <= 1e-5, f"{backend}: 2 ranks x batch 4 == 1 process x batch 8 on {DEVICE} "
                                           f"(max |diff| {d:.2e} <= 1e-5)")

# 3. fp16 GradScaler with an overflow on one rank.
if not DRY:
    flags = ["--fp16", "--steps", "4", "--overflow_step", "1"]
    rc1, t1, ref = worker(1, "fp16_w1", ["--backend", "gloo", "--batch", "8", "--overflow_rank", "0", *flags])
    rc2, t2, got = worker(2, "fp16_w2", ["--backend", backend, "--batch", "4", "--overflow_rank", "1", *flags])
    rc3, _, clean = worker(2, "fp16_w2_clean", ["--backend", backend, "--batch", "4", "--fp16", "--steps", "4"])
    skipped = re.findall(r"rank (\d) step 2: skipped, scale 512", t2)
    applied = re.findall(r"rank (\d) step [134]: applied", t2)
    check(rc2 == 0 and sorted(skipped) == ["0", "1"] and len(applied) == 6,
          f"fp16 + GradScaler, 2 ranks ({backend}), inf on rank 1 at step 2: both ranks skip it and back off to 512 "
          f"({len(skipped)} ranks skipped, {len(applied)} updates applied)")
    d = max_diff(ref, got)
    d_clean = max_diff(clean, got)
    numbers["fp16_overflow_two_ranks_vs_one_max_abs_diff"] = d
    numbers["fp16_overflow_vs_no_overflow_max_abs_diff"] = d_clean
    check(got is not None and float(got["scaler.scale"]) == 512 and int(got["scaler.skipped"]) == 1,
          "fp16: rank 0's saved scaler state: scale 512, 1 skipped step")
    check(d <= 1e-2 and d_clean > 1e-4, f"fp16 with the overflow: 2 ranks == 1 process ({d:.2e} <= 1e-2) and "
                                         f"differ from the run without it ({d_clean:.2e})")

# Fashion-MNIST TFRecords from the carried idx files.
DATA = os.path.join(WORK, "fm")
rc, _, _ = run([BIN, "prepare_data", "--format", "fashion_mnist", "--input", FM_IDX, "--output", DATA,
                "--train_shards", "4"])
check(rc == 0, "prepare_data: Fashion-MNIST TFRecords")

# 4. convnets train under torchrun: 2 ranks == 1 process.
common = ["train", "--arch", "resnet18", "--num_classes", "10", "--data_dir", DATA, "--image_size", "32",
          "--crop_sampler", "resized_crop", "--lr_warmup_epochs", "0", "--lr_init", "0.01", "--num_iter", "6",
          "--iter_unit", "batch", "--workers", "4", "--tf32=false", "--cudnn_benchmark=false", "--display_every",
          "1", "--device", DEVICE, "--seed", "3"]
one = os.path.join(WORK, "cli_one")
two = os.path.join(WORK, "cli_two")
rc1, o1, _ = run([BIN, *common, "--batch_size", "64", "--model_dir", one])
alternatives = [["--channels_last=false"], ["--cudnn_benchmark=true"] if not DRY else ["--threads_1"]]
floor, rc0 = 0.0, 0
for i, alt in enumerate(alternatives):
    alt_dir = os.path.join(WORK, f"cli_one_alt{i}")
    env_threads = alt == ["--threads_1"]
    cmd = [BIN, *common, "--batch_size", "64", *([] if env_threads else alt), "--model_dir", alt_dir]
    if env_threads:
        cmd = ["env", "OMP_NUM_THREADS=1", *cmd]
    rc, _, _ = run(cmd)
    rc0 = rc0 or rc
    floor = max(floor, max_diff(load(os.path.join(one, "final_weights.pt")),
                                load(os.path.join(alt_dir, "final_weights.pt")), skip=("__none__",)))
rc2, o2, e2 = run(torchrun(2, [BIN, *common, "--batch_size", "32", "--sync_bn", "--cuda_device", "0",
                                "--dist_backend", backend, "--model_dir", two]), timeout=300)
a, b = load(os.path.join(one, "final_weights.pt")), load(os.path.join(two, "final_weights.pt"))
d = max_diff(a, b, skip=("__none__",)) if a and b else float("inf")
numbers["cli_two_ranks_vs_one_max_abs_diff"] = d
numbers["cli_summation_order_floor_max_abs_diff"] = floor
check(rc1 == 0 and rc2 == 0 and "data parallel: 2 ranks" in o2,
      f"convnets train under torchrun, 2 ranks sharing {DEVICE} via {backend} with SyncBatchNorm")
check(rc0 == 0 and d <= 4 * floor + 1e-6,
      f"2 ranks x 32 == 1 process x 64 after the updates: weights and BN statistics max |diff| {d:.2e} <= 4 x "
      f"{floor:.2e} (1 process against itself in another summation order)")

# 5. Short real training runs.
def train_run(tag, extra, epochs):
    model_dir = os.path.join(WORK, tag)
    recipe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../recipes/fashion_mnist_resnet18.yaml")
    args = [BIN, "train_and_eval", "--recipe", recipe, "--data_dir", DATA, "--model_dir", model_dir, "--workers", "8",
            "--batch_size", "256", "--device", DEVICE, *extra]
    if DRY:  # a few updates at 32 px: the script's plumbing, not convergence
        args += ["--num_iter", "6", "--iter_unit", "batch", "--image_size", "32", "--eval_image_size", "32",
                 "--display_every", "2"]
    else:
        args += ["--num_iter", str(epochs), "--display_every", "20"]
    t0 = time.time()
    rc, out, _ = run(args, timeout=400)
    took = time.time() - t0
    events = []
    log = os.path.join(model_dir, "log.json")
    if os.path.exists(log):
        events = [json.loads(l[5:]) for l in open(log) if l.startswith("DLLL ")]
    losses = [e["data"]["cross_entropy"] for e in events if e["type"] == "LOG" and len(e.get("step", [])) == 2]
    final = next((e["data"] for e in reversed(events) if e["type"] == "LOG" and e.get("step") == []), {})
    return rc, took, losses, final


for tag, extra, epochs, floor in (("fm_bf16", ["--amp"], 2, 0.80), ("fm_fp16", ["--amp", "--amp_dtype", "fp16"], 1, 0.70)):
    if DRY and tag == "fm_fp16":
        continue
    rc, took, losses, final = train_run(tag, extra, epochs)
    top1 = final.get("top1_accuracy", 0)
    numbers[tag] = {"seconds": round(took, 1), "first_loss": losses[0] if losses else None,
                    "last_loss": losses[-1] if losses else None, "top1": top1,
                    "train_images_per_s": final.get("train_throughput")}
    falls = len(losses) >= 2 and losses[-1] < 0.8 * losses[0]
    check(rc == 0 and falls and (DRY or top1 >= floor),
          f"Fashion-MNIST {' '.join(extra)}, {epochs} epoch(s) of 30000 images at 64 px: loss "
          f"{losses[0] if losses else float('nan'):.3f} -> {losses[-1] if losses else float('nan'):.3f}, "
          f"top-1 {top1:.4f} (>= {floor} expected), {took:.0f} s")

print("GPU_CHECKS " + json.dumps(numbers), flush=True)
if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all GPU checks passed")
