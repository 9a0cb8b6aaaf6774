"""CPU inference side by side, one run, interleaved repetitions, medians: convnets' inference form (the
oneDNN plan, and LibTorch's fused ops) and its eager model (`convnets inference_benchmark`), PyTorch eager,
torch.compile (inductor, freezing on), ONNX Runtime on convnets' own export and on torchvision's, and OpenVINO on convnets' export (f32 precision hint,
latency hint, the shape made static per batch), for each model and batch size; fp32, and bf16 where the CPU
has native bf16 (convnets --amp, PyTorch autocast).

usage: .venv/bin/python bench/cpu_inference_bench.py --binary build/app/convnets [--models resnet50,efficientnet_b0]
       [--batches 1,32] [--reps 5] [--seconds 4] [--threads N] [--no-compile] [--json out.json]
       [--plan-layouts nhwc,nchw8c,nchw16c] [--autotune] [--direct] [--int8]
Prints a Markdown table (images/s, median of the repetitions) and the ratios to the faster of ONNX Runtime and
OpenVINO, and to PyTorch eager. OpenVINO is skipped when it is not installed (scripts/setup.sh --test installs it).
--int8 adds the int8 rows: convnets' int8 plan (`inference_benchmark --int8`, calibrated by `convnets quantize` on
64 random-pixel images: the ranges matter for accuracy, not for speed), ONNX Runtime on convnets' QDQ export (its
default, and with session.x64quantprecision=1, its exact U8U8 mode), OpenVINO on the same file, and ONNX Runtime's
own quantize_static (QDQ, per-channel, S8S8) of the torchvision float32 export, with a second table of ratios.
"""
import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch
import torchvision

try:
    import openvino
except ImportError:  # the comparison runs without it
    openvino = None

parser = argparse.ArgumentParser()
parser.add_argument("--binary", required=True)
parser.add_argument("--models", default="resnet50,efficientnet_b0")
parser.add_argument("--batches", default="1,32")
parser.add_argument("--reps", type=int, default=5)
parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per contender and repetition")
parser.add_argument("--threads", type=int, default=os.cpu_count())
parser.add_argument("--no-compile", action="store_true")
parser.add_argument("--json")
parser.add_argument("--autotune", action="store_true",
                    help="also time the oneDNN plan with --cpu_autotune (each convolution's fastest implementation)")
parser.add_argument("--direct", action="store_true",
                    help="also time the oneDNN plan with --cpu_winograd false (every convolution direct)")
parser.add_argument("--int8", action="store_true", help="also the int8 rows (see above)")
parser.add_argument("--plan-layouts", default="",
                    help="also time the oneDNN plan in these activation layouts (nhwc,nchw8c,nchw16c)")
args = parser.parse_args()
torch.set_num_threads(args.threads)
work = tempfile.mkdtemp(prefix="cpu_bench_")
atexit.register(shutil.rmtree, work, ignore_errors=True)  # weights and exports: up to a GB per run
bf16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


# Per-call latencies (ms) of each contender at batch 1, over all repetitions: Python contenders record every
# call; convnets' inference_benchmark reports its own percentiles per run (the median of the runs is kept).
latencies = {}


def timed(fn, batch, seconds, key=None):
    """images/s of fn() over about `seconds` after a warm-up; records each call's latency under `key`."""
    for _ in range(3):
        fn()
    n, start = 0, time.perf_counter()
    calls = latencies.setdefault(key, []) if key else None
    while time.perf_counter() - start < seconds or n < 3:
        t0 = time.perf_counter()
        fn()
        if calls is not None:
            calls.append((time.perf_counter() - t0) * 1e3)
        n += 1
    return n * batch / (time.perf_counter() - start)


def convnets_runner(arch, weights, batch, size, form, amp, kernels="plan", layout="auto", key=None, extra=(),
                    quantization=None):
    def run():
        model_dir = tempfile.mkdtemp(dir=work)
        if quantization:  # --int8 reads <model_dir>/quantization.safetensors
            shutil.copy(quantization, model_dir)
        iters = max(5, int(args.seconds * 40 / batch)) if arch.startswith("efficientnet") else max(3, int(args.seconds * 12 / batch))
        cmd = [args.binary, "inference_benchmark", "--arch", arch, "--weights", weights, "--batch_sizes", str(batch),
               "--eval_image_size", str(size), "--num_iter", str(iters), "--iter_unit", "batch", "--warmup_steps", "3",
               "--model_dir", model_dir, "--inference_form", "true" if form else "false", "--cpu_inference", kernels,
               "--cpu_activation_layout", layout]
        if amp:
            cmd.append("--amp")
        cmd += list(extra)
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        rows = [json.loads(l[5:]) for l in open(os.path.join(model_dir, "log.json")) if l.startswith("DLLL ")]
        data = [r["data"] for r in rows if r["type"] == "LOG" and "throughput" in r["data"]][-1]
        if key:
            latencies.setdefault(key, []).append(tuple(data[f"latency_p{p}"] for p in (50, 90, 99)))
        return data["throughput"]
    return run


# Architectures whose reference is timm's (the rest are torchvision's, by the same name).
TIMM = {"resnext101_32x4d": "resnext101_32x4d", "se_resnext101_32x4d": "seresnext101_32x4d",
        **{f"efficientnet_v2_b{i}": f"tf_efficientnetv2_b{i}" for i in range(4)}}


def reference_model(arch):
    if arch in TIMM:
        import timm
        return timm.create_model(TIMM[arch], pretrained=False)
    return getattr(torchvision.models, arch)()


def calibration_images():
    """64 random-pixel PNGs as an image folder's train split (what `convnets quantize` reads), in the first of
    1000 class folders (the folder's class count must be the model's)."""
    from PIL import Image
    root = os.path.join(work, "calibration")
    if not os.path.exists(root):
        for c in range(1000):
            os.makedirs(os.path.join(root, "train", f"c{c:04d}"))
        rng = np.random.RandomState(0)
        for i in range(64):
            Image.fromarray(rng.randint(0, 256, (256, 256, 3), np.uint8)).save(
                os.path.join(root, "train", f"c{i:04d}", f"{i}.png"))
    return root


def int8_files(arch, weights, tv_onnx, size):
    """convnets' quantization and QDQ export of `weights`, and ONNX Runtime's quantize_static of tv_onnx."""
    from onnxruntime import quantization as q
    model_dir = os.path.join(work, arch + "_int8")
    common = ["--arch", arch, "--weights", weights, "--num_classes", "1000", "--model_dir", model_dir]
    subprocess.run([args.binary, "quantize", *common, "--data_dir", calibration_images(), "--calibration_images", "64",
                    "--eval_image_size", str(size)], check=True, capture_output=True)
    qdq = os.path.join(work, arch + "_convnets_int8.onnx")
    subprocess.run([args.binary, "export", *common, "--onnx_output", qdq, "--int8", "--export_image_size", str(size)],
                   check=True, capture_output=True)

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            rng = np.random.RandomState(0)
            self.batches = iter([{"input": rng.randn(8, 3, size, size).astype(np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.batches, None)
    static = os.path.join(work, arch + "_ort_quantize_static.onnx")
    q.quantize_static(tv_onnx, static, Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                      activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8)
    return os.path.join(model_dir, "quantization.safetensors"), qdq, static


def main():
    results = {}
    for arch in args.models.split(","):
        size = 224
        model = reference_model(arch).eval()
        weights = os.path.join(work, arch + ".pt")
        torch.save(model.state_dict(), weights)
        ours_onnx = os.path.join(work, arch + "_convnets.onnx")
        subprocess.run([args.binary, "export", "--arch", arch, "--weights", weights, "--onnx_output", ours_onnx,
                        "--export_image_size", str(size)],
                       check=True, capture_output=True)
        tv_onnx = os.path.join(work, arch + "_torchvision.onnx")
        x1 = torch.randn(1, 3, size, size)
        torch.onnx.export(model, x1, tv_onnx, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}}, opset_version=17, dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        sessions = {name: ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                    for name, path in (("ort_convnets", ours_onnx), ("ort_torchvision", tv_onnx))}
        if args.int8:
            quantization, qdq, static = int8_files(arch, weights, tv_onnx, size)
            exact = ort.SessionOptions()
            exact.intra_op_num_threads = args.threads
            exact.add_session_config_entry("session.x64quantprecision", "1")
            sessions["ort_int8_qdq"] = ort.InferenceSession(qdq, options, providers=["CPUExecutionProvider"])
            sessions["ort_int8_qdq_u8u8"] = ort.InferenceSession(qdq, exact, providers=["CPUExecutionProvider"])
            sessions["ort_int8_quantize_static"] = ort.InferenceSession(static, options,
                                                                        providers=["CPUExecutionProvider"])
        cl = model.to(memory_format=torch.channels_last)
        compiled = None
        if not args.no_compile:
            import torch._inductor.config as inductor
            inductor.freezing = True
            compiled = torch.compile(cl)
        for batch in map(int, args.batches.split(",")):
            x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
            xn = x.contiguous().numpy()
            lat = (lambda name: (arch, name) if batch == 1 else None)
            contenders = {
                "convnets_inference_form": convnets_runner(arch, weights, batch, size, True, False,
                                                           key=lat("convnets_inference_form")),
                "convnets_fused": convnets_runner(arch, weights, batch, size, True, False, "fused",
                                                  key=lat("convnets_fused")),
                "convnets_eager": convnets_runner(arch, weights, batch, size, False, False),
            }
            if args.autotune:
                contenders["convnets_autotuned"] = convnets_runner(arch, weights, batch, size, True, False,
                                                                   key=lat("convnets_autotuned"),
                                                                   extra=["--cpu_autotune"])
            if args.direct:
                contenders["convnets_plan_direct"] = convnets_runner(arch, weights, batch, size, True, False,
                                                                     extra=["--cpu_winograd", "false"])
            for layout in filter(None, args.plan_layouts.split(",")):
                contenders["convnets_plan_" + layout] = convnets_runner(arch, weights, batch, size, True, False,
                                                                        "plan", layout)

            def eager():
                with torch.inference_mode():
                    cl(x)
            contenders["pytorch_eager"] = lambda: timed(eager, batch, args.seconds)
            if compiled is not None:
                def comp():
                    with torch.inference_mode():
                        compiled(x)
                with torch.inference_mode():
                    compiled(x)  # compile outside the timing
                contenders["torch_compile"] = lambda: timed(comp, batch, args.seconds)
            for name, session in sessions.items():
                contenders[name] = (lambda s, k: lambda: timed(lambda: s.run(None, {"input": xn}), batch, args.seconds,
                                                               k))(session, lat(name))
            if openvino is not None:
                core = openvino.Core()
                ov_model = core.read_model(ours_onnx)
                ov_model.reshape({"input": [batch, 3, size, size]})
                request = core.compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                               "PERFORMANCE_HINT": "LATENCY",
                                                               "INFERENCE_NUM_THREADS": args.threads}).create_infer_request()
                contenders["openvino_convnets"] = lambda: timed(lambda: request.infer({"input": xn}), batch, args.seconds,
                                                                lat("openvino_convnets"))
                if args.int8:
                    ov_int8 = core.read_model(qdq)
                    ov_int8.reshape({"input": [batch, 3, size, size]})
                    request8 = core.compile_model(ov_int8, "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                                   "INFERENCE_NUM_THREADS": args.threads}
                                                  ).create_infer_request()
                    contenders["openvino_int8_qdq"] = lambda: timed(lambda: request8.infer({"input": xn}), batch,
                                                                    args.seconds)
            if args.int8:
                contenders["convnets_int8"] = convnets_runner(arch, weights, batch, size, True, False,
                                                              extra=["--int8", "--num_classes", "1000"],
                                                              quantization=quantization)
            if bf16:
                contenders["convnets_inference_form_bf16"] = convnets_runner(arch, weights, batch, size, True, True)

                def eager_bf16():
                    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
                        cl(x)
                contenders["pytorch_eager_bf16"] = lambda: timed(eager_bf16, batch, args.seconds)
            samples = {name: [] for name in contenders}
            for rep in range(args.reps):  # interleaved: every contender once per repetition
                for name, run in contenders.items():
                    samples[name].append(run())
                print(f"{arch} batch {batch} rep {rep + 1}/{args.reps}: " +
                      ", ".join(f"{n} {v[-1]:.1f}" for n, v in samples.items()), file=sys.stderr, flush=True)
            results[f"{arch}/{batch}"] = {n: statistics.median(v) for n, v in samples.items()}
    names = sorted({n for r in results.values() for n in r}, key=lambda n: list(next(iter(results.values()))).index(n)
                   if n in next(iter(results.values())) else 99)
    print(f"\nimages/s, median of {args.reps} interleaved repetitions, {args.threads} threads, "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}, "
          f"openvino {openvino.__version__ if openvino else 'not installed'}, "
          f"bf16 {'native' if bf16 else 'not native (skipped)'}\n")
    print("| model, batch | " + " | ".join(names) +
          " | convnets / ONNX Runtime (best export) | convnets / OpenVINO | convnets / PyTorch eager |" +
          (" autotuned / faster of ORT, OpenVINO |" if args.autotune else ""))
    print("|---" * (len(names) + 4 + args.autotune) + "|")
    for key, r in results.items():
        best_ort = max(r.get("ort_convnets", 0), r.get("ort_torchvision", 0))
        ours = r["convnets_inference_form"]
        ov = f"{ours / r['openvino_convnets']:.2f}x" if "openvino_convnets" in r else "–"
        print(f"| {key.replace('/', ', ')} | " + " | ".join(f"{r[n]:.1f}" if n in r else "–" for n in names) +
              f" | {ours / best_ort:.2f}x | {ov} | {ours / r['pytorch_eager']:.2f}x |" +
              (f" {r['convnets_autotuned'] / max(best_ort, r.get('openvino_convnets', 0)):.2f}x |"
               if args.autotune else ""))
    if args.int8:
        print("\nint8: convnets' int8 plan against the faster of ONNX Runtime (its default on the QDQ file, its exact "
              "U8U8 mode, its own quantize_static) and OpenVINO on the QDQ file, and against convnets' float32 plan\n")
        print("| model, batch | convnets_int8 | best ONNX Runtime int8 | openvino_int8_qdq | "
              "int8 / faster of them | int8 / convnets float32 |")
        print("|---|---|---|---|---|---|")
        for key, r in results.items():
            best = max(r.get(n, 0) for n in ("ort_int8_qdq", "ort_int8_qdq_u8u8", "ort_int8_quantize_static"))
            rival = max(best, r.get("openvino_int8_qdq", 0))
            print(f"| {key.replace('/', ', ')} | {r['convnets_int8']:.1f} | {best:.1f} | "
                  f"{r.get('openvino_int8_qdq', float('nan')):.1f} | {r['convnets_int8'] / rival:.2f}x | "
                  f"{r['convnets_int8'] / r['convnets_inference_form']:.2f}x |")
    if latencies:
        print("\nbatch-1 latency, ms, p50 / p90 / p99 (convnets: the median of its runs' own percentiles)\n")
        lat_names = [n for n in ("convnets_inference_form", "convnets_autotuned", "convnets_fused", "ort_convnets",
                                 "ort_torchvision", "openvino_convnets") if any(k[1] == n for k in latencies)]
        print("| model | " + " | ".join(lat_names) + " |")
        print("|---" * (len(lat_names) + 1) + "|")
        for arch in args.models.split(","):
            cells = []
            for n in lat_names:
                v = latencies.get((arch, n))
                if not v:
                    cells.append("–")
                elif isinstance(v[0], tuple):
                    cells.append(" / ".join(f"{statistics.median(r[i] for r in v):.1f}" for i in range(3)))
                else:
                    q = np.percentile(v, [50, 90, 99])
                    cells.append(" / ".join(f"{x:.1f}" for x in q))
            print(f"| {arch} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "results": results,
                       "latency_ms": {f"{a}/{n}": v for (a, n), v in latencies.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
