"""The new families through the app, end to end on a tiny image folder: train_and_eval of efficientnet_v2_s (two
progressive stages) and se_resnext101_32x4d, then eval, predict and export of each run; ONNX Runtime on the
exported file gives eval's top-1 and predict's probabilities. Bad input: an unknown architecture lists all 25,
and weights in a layout the architecture does not read are refused, naming both layouts.

usage: check_new_families.py CONVNETS_BINARY WORK_DIR
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision
from PIL import Image

BIN, WORK = sys.argv[1], sys.argv[2]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
failures = []


def check(ok, what, detail=""):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
        if detail:
            print(detail[-3000:])


def run(*args, expect=0):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if expect is not None and p.returncode != expect:
        sys.exit(f"convnets {' '.join(args)} -> {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}")
    return p


def final_eval(model_dir, weights="raw"):
    rows = [json.loads(line[5:]) for line in open(os.path.join(model_dir, "log.json")) if line.startswith("DLLL ")]
    finals = [r["data"] for r in rows if r["type"] == "LOG" and r["step"] == [] and "top1_accuracy" in r["data"]
              and r["data"].get("weights", "raw") == weights]
    return finals[-1]


# Three classes of 50x40 photos-like JPEGs: a colour per class, noise, a gradient.
DATA = os.path.join(WORK, "data")
rng = np.random.default_rng(3)
for split in ("train", "val"):
    for c, colour in enumerate([(200, 60, 40), (40, 160, 60), (50, 70, 200)]):
        os.makedirs(os.path.join(DATA, split, f"kind{c}"))
        for i in range(6):
            base = np.array(colour, np.float32) * (0.6 + 0.4 * np.linspace(0, 1, 50))[None, :, None]
            pixels = np.clip(np.repeat(base, 40, 0) + rng.normal(0, 25, (40, 50, 3)), 0, 255).astype(np.uint8)
            # val as PNG: decoded exactly as PIL decodes it (JPEG decoders differ by +-1), so ONNX Runtime sees
            # predict's pixels.
            name = os.path.join(DATA, split, f"kind{c}", f"{i}.png" if split == "val" else f"{i}.jpg")
            Image.fromarray(pixels).save(name, **({} if split == "val" else {"quality": 92}))

MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)


def preprocess(path, size):
    """convnets' eval transform in the "center" crop mode with crop_pct 0.875: the shorter side to
    size * 256 / 224 with PIL's bilinear, the centre size x size."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    shorter = size * 256 // 224
    rw, rh = w * shorter // min(w, h), h * shorter // min(w, h)
    left, top = (rw - size) // 2, (rh - size) // 2
    img = img.resize((rw, rh), Image.BILINEAR).crop((left, top, left + size, top + size))
    return ((np.asarray(img, np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1)


# The recipes' learning rates on batches of 6 blow the weights up within a few updates: eval logits in the
# thousands, a model so unstable that float32 summation order alone (batch 1 vs 18, AVX2 vs AVX-512) flips its
# top-1 by tens of logits, so no two runtimes could agree on its probabilities. A learning rate of 1e-5 keeps
# the logits of order 1 and the comparison below meaningful; the flow (train, eval, predict, export) is the same.
cases = {
    # V2-S: 2 progressive stages (40 then 48 px from a base of 32), eval at 48 in the "center" crop mode. The
    # recipe's BatchNorm momentum 0.01 and EMA 0.9999 would leave the running statistics and the average at the
    # initialisation after 6 updates (eval logits in the thousands, every probability 0 or 1): faster ones here.
    "efficientnet_v2_s": ["--image_size", "48", "--eval_image_size", "48", "--n_stages", "2", "--base_image_size",
                          "32", "--num_iter", "2", "--eval_crop_mode", "center", "--eval_crop_pct", "0.875",
                          "--interpolation", "bilinear", "--bn_momentum", "0.5", "--ema_decay", "0.5",
                          "--lr_init", "1e-5"],
    "se_resnext101_32x4d": ["--image_size", "32", "--eval_image_size", "32", "--num_iter", "1", "--lr_init", "1e-5"],
}
for arch, extra in cases.items():
    run_dir = os.path.join(WORK, arch)
    p = run("train_and_eval", "--arch", arch, "--data_dir", DATA, "--model_dir", run_dir, "--batch_size", "6",
            "--workers", "1", "--lr_warmup_epochs", "0", "--augmentation", "none", *extra)
    if arch == "efficientnet_v2_s":
        check("stage 1/2: image size 40" in p.stdout and "stage 2/2: image size 48" in p.stdout,
              f"{arch}: two progressive stages (40, 48 px)", p.stdout)
    config = open(os.path.join(run_dir, "config.yaml")).read()
    check("num_classes: 3" in config, f"{arch}: three classes taken from the image folder")
    trained = final_eval(run_dir)
    size = 48 if arch == "efficientnet_v2_s" else 32

    p = run("eval", "--model_dir", run_dir)
    evaluated = final_eval(run_dir)
    check(evaluated["images"] == 18 and evaluated["top1_accuracy"] == trained["top1_accuracy"],
          f"{arch}: eval reproduces train_and_eval's top-1 ({evaluated['top1_accuracy']})", p.stdout + p.stderr)

    out = os.path.join(WORK, arch + "_predictions.json")
    run("predict", "--model_dir", run_dir, "--to_predict", os.path.join(DATA, "val"), "--topk", "3",
        "--predict_output", out)
    predictions = {os.path.relpath(r["file"], os.path.join(DATA, "val")): r["top"] for r in json.load(open(out))}
    # Class c is the c-th folder in sorted order, kind<c>: every class number with its own folder's name.
    check(len(predictions) == 18 and all(t["name"] == f"kind{t['class']}" for r in predictions.values() for t in r),
          f"{arch}: predict names each class by its folder", json.dumps(predictions)[:1000])

    onnx_path = os.path.join(WORK, arch + ".onnx")
    p = run("export", "--model_dir", run_dir, "--onnx_output", onnx_path)
    onnx.checker.check_model(onnx.load(onnx_path), full_check=True)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    files = sorted(predictions)
    batch = np.stack([preprocess(os.path.join(DATA, "val", f), size) for f in files])
    logits = session.run(["logits"], {"input": batch})[0]
    labels = np.array([int(f.split("/")[0][-1]) for f in files])
    top1 = float((logits.argmax(1) == labels).mean())
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    worst = max(abs(t["probability"] - probabilities[i][t["class"]]) for i, f in enumerate(files)
                for t in predictions[f])
    # export and predict run the EMA weights when the run has them; eval reports both.
    exported = final_eval(run_dir, "ema") if "(ema weights" in p.stdout else evaluated
    check(abs(top1 - exported["top1_accuracy"]) < 1e-12 and worst < 1e-4,
          f"{arch}: ONNX Runtime on the export: top-1 {top1} = eval's for the same weights, probabilities within "
          f"{worst:.1e} of predict's (bound 1e-4)", p.stdout)

# Bad input.
p = run("info", "--arch", "resnet51", expect=None)
names = ["resnet18", "resnext101_32x4d", "se_resnext101_32x4d", "efficientnet_b7", "efficientnet_v2_s",
         "efficientnet_v2_l", "efficientnet_v2_b3"]
check(p.returncode != 0 and all(n in p.stderr for n in names) and p.stderr.count(",") >= 24,
      "an unknown --arch lists all 25 architectures", p.stderr)
tv_v2 = os.path.join(WORK, "tv_efficientnet_v2_s.pt")
torch.save(torchvision.models.efficientnet_v2_s().state_dict(), tv_v2)
p = run("predict", "--arch", "efficientnet_v2_b0", "--weights", tv_v2, "--to_predict", os.path.join(DATA, "val"),
        expect=None)
check(p.returncode != 0 and "torchvision's EfficientNet layout" in p.stderr and "timm's EfficientNetV2 layout"
      in p.stderr, "torchvision V2 weights into efficientnet_v2_b0 (timm's layout): refused, naming both layouts",
      p.stderr)
import timm  # noqa: E402
timm_v1 = os.path.join(WORK, "timm_efficientnet_b0.pt")
torch.save(timm.create_model("efficientnet_b0", pretrained=False).state_dict(), timm_v1)
p = run("predict", "--arch", "efficientnet_v2_s", "--weights", timm_v1, "--to_predict", os.path.join(DATA, "val"),
        expect=None)
check(p.returncode != 0 and "timm's EfficientNet layout" in p.stderr and "efficientnet_v2_s reads" in p.stderr,
      "timm V1 weights into efficientnet_v2_s: refused, naming the layout", p.stderr)

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
shutil.rmtree(WORK, ignore_errors=True)
print("all new-family checks passed")
