"""Side by side on one GPU: convnets `training_benchmark` / `inference_benchmark` against the same models in
PyTorch (torchvision), eager and under torch.compile, with the same batch, synthetic data, channels_last and
bf16 autocast. Each case appends one JSON line to OUT/bench.jsonl as soon as it is measured, so a run cut
short keeps what it measured; --deadline_s skips the cases that would start after it.

The PyTorch side does what convnets' step does: forward under autocast, label-smoothed cross-entropy (0.1),
backward, the recipe's optimizer (ResNet: SGD momentum 0.875, weight decay; EfficientNet: RMSprop rho 0.9,
momentum 0.9, eps 1e-3, weight decay, plus an EMA of the weights with decay 0.9999), on one fixed batch.
Mixing is off on both sides (the B4 recipe's mixup is turned off for convnets too).

usage: side_by_side.py --convnets BIN --out DIR [--cases rn50,b0,b4] [--compile MODES] [--compile_cases rn50,b0]
                       [--skip_eager] [--deadline_s S] [--iters N] [--warmup N] [--dry_run]
--dry_run: tiny sizes on the CPU (checks the script, not speed).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torchvision

TRAIN = [  # key, arch, image size, batch
    ("rn50", "resnet50", 224, 256),
    ("b0", "efficientnet_b0", 224, 256),
    ("b4", "efficientnet_b4", 380, 64),
]
INFER_BATCHES = (1, 256)


def log(*a):
    print(*a, flush=True)


class Recorder:
    def __init__(self, out_dir, deadline):
        self.path = os.path.join(out_dir, "bench.jsonl")
        self.deadline = deadline

    def left(self):
        return self.deadline - time.time()

    def add(self, **row):
        row["time"] = time.strftime("%H:%M:%S")
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        log("RESULT", json.dumps(row))


# ---------------------------------------------------------------- convnets
def convnets_train(binary, arch, size, batch, iters, warmup, device):
    with tempfile.TemporaryDirectory() as d:
        cmd = [binary, "training_benchmark", "--arch", arch, "--batch_size", str(batch), "--image_size", str(size),
               "--num_iter", str(iters + warmup), "--iter_unit", "batch", "--warmup_steps", str(warmup),
               "--amp", "--channels_last", "--cudnn_benchmark", "--mixup_alpha", "0", "--display_every", "1000000",
               "--device", device, "--model_dir", d]
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.time() - t0
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} -> {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
        final = None
        with open(os.path.join(d, "log.json")) as f:
            for line in f:
                e = json.loads(line[5:])
                if e.get("type") == "LOG" and e.get("step") == [] and "train_throughput" in e["data"]:
                    final = e["data"]
        return {"images_per_s": final["train_throughput"], "step_ms_p50": final["train_step_latency_p50"],
                "step_ms_p99": final["train_step_latency_p99"], "wall_s": wall, "command": " ".join(cmd[:-2])}


def convnets_infer(binary, arch, size, batches, iters, warmup, device):
    cmd = [binary, "inference_benchmark", "--arch", arch, "--eval_image_size", str(size), "--batch_sizes",
           ",".join(map(str, batches)), "--num_iter", str(iters), "--iter_unit", "batch", "--warmup_steps",
           str(warmup), "--amp", "--channels_last", "--cudnn_benchmark", "--device", device]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} -> {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    rows = {}
    lines = p.stdout.splitlines()
    start = next(i for i, l in enumerate(lines) if l.split()[:2] == ["batch", "images/s"])
    for line in lines[start + 1:]:
        f = line.split()
        if len(f) == 7 and f[0].isdigit():
            rows[int(f[0])] = {"images_per_s": float(f[1]), "latency_ms_avg": float(f[2]),
                               "latency_ms_p50": float(f[3]), "latency_ms_p99": float(f[6])}
    return rows, " ".join(cmd)


# ---------------------------------------------------------------- PyTorch
def timed(fn, warmup, iters, device):
    """Seconds of the first call (compilation included), then per-call times after `warmup` more calls; the
    device is synchronised around every timed call."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t0 = time.time()
    fn()
    sync()
    first_s = time.time() - t0
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return first_s, times


def p99(times):
    return sorted(times)[min(len(times) - 1, int(0.99 * len(times)))]


def torch_model(arch):
    return getattr(torchvision.models, arch)(num_classes=1000)


def decay_groups(model, wd, depthwise_too):
    decay, no_decay = [], []
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            is_bn = isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
            is_dw = isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
            (no_decay if is_bn or (depthwise_too and is_dw) else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def torch_train(arch, size, batch, iters, warmup, device, compile_mode=None):
    torch.manual_seed(0)
    model = torch_model(arch).to(device).to(memory_format=torch.channels_last).train()
    effnet = arch.startswith("efficientnet")
    if effnet:
        opt = torch.optim.RMSprop(decay_groups(model, 1e-5, True), lr=0.01, alpha=0.9, eps=1e-3, momentum=0.9)
        ema = [p.detach().clone() for p in model.state_dict().values() if p.is_floating_point()]
        live = [p for p in model.state_dict().values() if p.is_floating_point()]
    else:
        opt = torch.optim.SGD(decay_groups(model, 3.0517578125e-05, False), lr=0.1, momentum=0.875)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    fwd = torch.compile(model, mode=compile_mode) if compile_mode else model
    amp_dtype = torch.bfloat16

    def step():
        with torch.autocast(device_type=device, dtype=amp_dtype):
            loss = loss_fn(fwd(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if effnet:
            torch._foreach_lerp_(ema, live, 1 - 0.9999)
        return loss

    first_s, times = timed(step, warmup, iters, device)
    return {"images_per_s": batch * iters / sum(times), "step_ms_p50": 1e3 * statistics.median(times),
            "step_ms_p99": 1e3 * p99(times), "first_step_s": first_s}


def torch_infer(arch, size, batches, iters, warmup, device, compile_mode=None):
    torch.manual_seed(0)
    model = torch_model(arch).to(device).to(memory_format=torch.channels_last).eval()
    fwd = torch.compile(model, mode=compile_mode, dynamic=False) if compile_mode else model
    out = {}
    for b in batches:
        u8 = torch.randint(0, 256, (b, size, size, 3), dtype=torch.uint8, device=device)
        mean = torch.tensor([0.485, 0.456, 0.406], device=device) * 255
        std = torch.tensor([0.229, 0.224, 0.225], device=device) * 255

        def run():
            # The same work as convnets' inference step: normalise the uint8 batch on the device, forward.
            x = ((u8.float() - mean) / std).permute(0, 3, 1, 2)
            with torch.inference_mode(), torch.autocast(device_type=device, dtype=torch.bfloat16):
                return fwd(x)

        first_s, times = timed(run, warmup, iters, device)
        out[b] = {"images_per_s": b * len(times) / sum(times), "latency_ms_avg": 1e3 * statistics.mean(times),
                  "latency_ms_p50": 1e3 * statistics.median(times), "latency_ms_p99": 1e3 * p99(times),
                  "first_call_s": first_s}
    return out


# ---------------------------------------------------------------- driver
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convnets", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", default="rn50,b0,b4")
    ap.add_argument("--compile", default="", help="comma list of compile modes: default,reduce-overhead,...")
    ap.add_argument("--compile_cases", default="rn50,b0")
    ap.add_argument("--deadline_s", type=float, default=1e9)
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--skip_eager", action="store_true", help="only the torch.compile cases")
    ap.add_argument("--dry_run", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rec = Recorder(a.out, time.time() + a.deadline_s)
    device = "cpu" if a.dry_run else "cuda"
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        log("GPU:", torch.cuda.get_device_name(), "torch", torch.__version__, "cuDNN",
            torch.backends.cudnn.version(), "torchvision", torchvision.__version__)
    cases = [c for c in TRAIN if c[0] in a.cases.split(",")]
    iters, warmup = (a.iters, a.warmup) if not a.dry_run else (2, 1)

    def scaled(size, batch):
        return (size, batch) if not a.dry_run else (64, 2)

    def guarded(what, fn, need_s):
        if rec.left() < need_s:
            rec.add(case=what, skipped=f"deadline: {rec.left():.0f} s left, needs ~{need_s} s")
            return
        t0 = time.time()
        try:
            fn()
        except Exception as e:  # one case failing must not cost the others
            rec.add(case=what, error=str(e)[-1500:])
        log(f"[{what}] {time.time() - t0:.1f} s")

    # Eager first (cheap), torch.compile last (each compile costs tens of seconds).
    for key, arch, size, batch in ([] if a.skip_eager else cases):
        s, b = scaled(size, batch)
        guarded(f"train/{key}/convnets", lambda: rec.add(
            case=f"train/{key}/convnets", arch=arch, size=s, batch=b,
            **convnets_train(a.convnets, arch, s, b, iters, warmup, device)), 30)
        guarded(f"train/{key}/torch_eager", lambda: rec.add(
            case=f"train/{key}/torch_eager", arch=arch, size=s, batch=b,
            **torch_train(arch, s, b, iters, warmup, device)), 30)
    for key, arch, size, _ in ([] if a.skip_eager else cases):
        s = scaled(size, 1)[0]
        bs = INFER_BATCHES if not a.dry_run else (1, 2)

        def conv_inf():
            rows, cmd = convnets_infer(a.convnets, arch, s, bs, 2 * iters, warmup, device)
            for b, r in rows.items():
                rec.add(case=f"infer/{key}/b{b}/convnets", arch=arch, size=s, batch=b, command=cmd, **r)

        def torch_inf():
            for b, r in torch_infer(arch, s, bs, 2 * iters, warmup, device).items():
                rec.add(case=f"infer/{key}/b{b}/torch_eager", arch=arch, size=s, batch=b, **r)

        guarded(f"infer/{key}/convnets", conv_inf, 20)
        guarded(f"infer/{key}/torch_eager", torch_inf, 20)
    for mode in [m for m in a.compile.split(",") if m]:
        for key, arch, size, batch in cases:
            if key not in a.compile_cases.split(","):
                continue
            s, b = scaled(size, batch)
            guarded(f"train/{key}/torch_compile_{mode}", lambda: rec.add(
                case=f"train/{key}/torch_compile_{mode}", arch=arch, size=s, batch=b,
                **torch_train(arch, s, b, iters, warmup, device, compile_mode=mode)), 120)
        for key, arch, size, _ in cases:
            if key not in a.compile_cases.split(","):
                continue
            s = scaled(size, 1)[0]
            bs = INFER_BATCHES if not a.dry_run else (1, 2)

            def torch_inf_c():
                for b, r in torch_infer(arch, s, bs, 2 * iters, warmup, device, compile_mode=mode).items():
                    rec.add(case=f"infer/{key}/b{b}/torch_compile_{mode}", arch=arch, size=s, batch=b, **r)

            guarded(f"infer/{key}/torch_compile_{mode}", torch_inf_c, 90)


if __name__ == "__main__":
    sys.exit(main())
