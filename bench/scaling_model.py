"""Weak-scaling model on paper for data-parallel training (issue 5): how much of each step the gradient
all-reduce adds, at N GPUs, for a per-GPU step time, gradient bytes and NCCL bandwidths. Not a measurement.

Model, per optimizer step with per-GPU batch b (weak scaling: b fixed, global batch N*b):
  compute      T_c   = b / (single-GPU images/s)                               (measured: training_benchmark)
  all-reduce   T_ar  = sum over buckets of  2(N-1)/N * bytes / busBW  +  2(N-1) * alpha     (NCCL ring)
  overlap      buckets are launched during backward as they fill; backward is ~2/3 of T_c, and the last
               bucket can only start when backward ends, so the exposed time is
               max(T_last_bucket, T_ar - overlap * T_c)
  stragglers   every step waits for the slowest of N ranks: with per-rank step-time jitter sigma (relative),
               E[max] ~ T_c * sigma * sqrt(2 ln N); sigma is fitted to the seed's 8-GPU V100 point (1.65%)
  efficiency   T_c / (T_c + exposed + stragglers)
busBW is nccl-tests' "bus bandwidth" of all_reduce for large messages; alpha the per-hop latency. Across nodes
the slowest link sets busBW (NCCL's rings cross every node boundary).

usage: python3 bench/scaling_model.py
"""


import math

SIGMA = 0.0165


def efficiency(n, step_s, grad_bytes, bucket_bytes, bus_intra, bus_inter, gpus_per_node=8, alpha_intra=2e-6,
               alpha_inter=6e-6, overlap=0.6, sigma=0.0):
    if n == 1:
        return 1.0
    bus = bus_intra if n <= gpus_per_node else bus_inter
    alpha = alpha_intra if n <= gpus_per_node else alpha_inter
    buckets = []
    left = grad_bytes
    while left > 0:
        buckets.append(min(bucket_bytes, left))
        left -= bucket_bytes

    def t(nbytes):
        return 2 * (n - 1) / n * nbytes / bus + 2 * (n - 1) * alpha

    total = sum(t(x) for x in buckets)
    exposed = max(t(buckets[-1]), total - overlap * step_s)
    straggle = step_s * sigma * math.sqrt(2 * math.log(n))
    return step_s / (step_s + exposed + straggle)


def table(title, step_s, grad_bytes, gpus, published=None, **kw):
    print(f"\n{title}: step {step_s * 1e3:.0f} ms, gradients {grad_bytes / 1e6:.1f} MB")
    print("  GPUs  comm. only  + stragglers  model speedup" + ("  published speedup" if published else ""))
    for n in gpus:
        c = efficiency(n, step_s, grad_bytes, **kw)
        e = efficiency(n, step_s, grad_bytes, sigma=SIGMA, **kw)
        pub = f"  {published[n]:>17.2f}" if published and n in published else ""
        print(f"  {n:>4}  {c * 100:>9.1f}%  {e * 100:>11.1f}%  {e * n:>13.1f}{pub}")


MB = 1e6
GB = 1e9
RN50_GRADS = 25557032 * 4  # fp32 gradients, as we (and Horovod on the TF1 seed) reduce them
B0_GRADS = 5288548 * 4
B4_GRADS = 19341616 * 4

# 1. Check the model against the seeds' own published weak scaling (RN50 TF1, AMP, batch 256 per V100,
#    825 img/s on 1 GPU; DGX-1: NVLink cube mesh, nccl-tests all_reduce busBW ~ 40 GB/s on 8 GPUs).
table("RN50 AMP, V100 DGX-1 (seed README: 825 img/s at batch 256)", 256 / 825.2, RN50_GRADS, [1, 4, 8],
      published={1: 1.0, 4: 3.96, 8: 7.74}, bucket_bytes=25 * MB, bus_intra=40 * GB, bus_inter=10 * GB)
table("RN50 AMP, V100 DGX-2 (seed README: 822 img/s at batch 256; NVSwitch)", 256 / 821.9, RN50_GRADS, [1, 4, 8, 16],
      published={1: 1.0, 4: 3.94, 8: 7.84, 16: 15.17}, bucket_bytes=25 * MB, bus_intra=120 * GB, bus_inter=120 * GB,
      gpus_per_node=16)
table("EfficientNet-B4 AMP, A100 DGX (seed README: 470 img/s, batch 160 per GPU)", 160 / 470, B4_GRADS,
      [1, 8, 32, 64], published={1: 1.0, 8: 7.55, 32: 27.46, 64: 54.16}, bucket_bytes=25 * MB,
      bus_intra=230 * GB, bus_inter=90 * GB)

# 2. H100 SXM, 8 per node, the step time we assume until a GPU session measures it (see README).
for inter, name in ((350 * GB, "8x NDR 400 Gb/s per node"), (40 * GB, "2x HDR 200 Gb/s per node")):
    table(f"RN50 AMP, H100, batch 256, 3000 img/s assumed, fp32 grads, {name}", 256 / 3000, RN50_GRADS,
          [1, 8, 64, 256], bucket_bytes=25 * MB, bus_intra=450 * GB, bus_inter=inter)
    table(f"EfficientNet-B0 AMP, H100, batch 256, 6000 img/s assumed, {name}", 256 / 6000, B0_GRADS,
          [1, 8, 64, 256], bucket_bytes=25 * MB, bus_intra=450 * GB, bus_inter=inter)
