"""torchvision / timm weights through the app give torchvision's / timm's answers, on real photographs (JPEG and
PNG files):

- `convnets predict --weights <torchvision state dict>`: for four architectures at 64 px (basic and bottleneck
  ResNets, EfficientNets of both BatchNorm conventions), and for resnet50, efficientnet_b0 and efficientnet_b4
  at their own resolution, the top-5 classes and
  probabilities of every image equal torchvision's (+-1e-4) on PIL's decode and the same crop / resize. Each
  reference model is calibrated on these very images (real_images.py), so it answers differently per image.
  The file carries no convnets metadata: the app must run it in torchvision's BatchNorm convention (eps 1e-5,
  1e-3 for efficientnet_b5..b7), and forcing the recipe's eps 1e-3 on efficientnet_b1 must visibly change
  the answer (the test can fail).
- timm's efficientnet_b0 (renamed on load, timm's eps 1e-5) the same way.
- `convnets eval --weights <torchvision .pt>` on TFRecords of the same photos labelled with torchvision's own
  top-1: top-1 accuracy 1.
- Weights convnets wrote carry their convention: `train` from scratch, then predict with final_weights.pt alone
  (no model_dir) uses the recipe's eps 1e-3 recorded in the file.

usage: check_foreign_weights.py CONVNETS_BINARY WORK_DIR
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
import torchvision
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import real_images  # noqa: E402

BIN, WORK = sys.argv[1], sys.argv[2]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
IMAGES = os.path.join(WORK, "images")
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"$ {' '.join(cmd)}\n-> {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        sys.exit("FAILED: a command exited with an unexpected status")
    return p


# Photographs as files: JPEGs of several shapes, and PNGs (16-bit RGB, palette, grey + alpha).
os.makedirs(IMAGES)
rng = np.random.default_rng(5)
shapes = [(320, 240), (240, 320), (400, 300), (301, 257), (512, 384), (256, 256), (333, 500), (640, 427)]
for i, (w, h) in enumerate(shapes):
    crop = real_images.crops(1, max(w, h), seed=50 + i, min_frac=0.5)[0].resize((w, h), Image.BICUBIC)
    crop.save(os.path.join(IMAGES, f"photo_{i}.jpg"), quality=92)
png_source = real_images.crops(3, 280, seed=70)
rgb16 = (np.asarray(png_source[0]).astype(np.uint16) * 257).astype(">u2")
Image.fromarray(np.asarray(png_source[0])).save(os.path.join(IMAGES, "photo_rgb.png"))
png_source[1].quantize(128).save(os.path.join(IMAGES, "photo_palette.png"))
Image.fromarray(np.dstack([np.asarray(png_source[2].convert("L")),
                           rng.integers(0, 256, (280, 280), dtype=np.uint8)]), "LA").save(
    os.path.join(IMAGES, "photo_gray_alpha.png"))
FILES = sorted(os.path.join(IMAGES, f) for f in os.listdir(IMAGES))


def preprocess(path, arch, size):
    """convnets' eval transform with PIL on PIL's decode (torchvision's loader): ResNet: shorter side to
    size * 256 / 224, centre size crop, bilinear; EfficientNet: centre crop of size / (native + 32) of the
    shorter side, bicubic resize to size."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    short = min(w, h)
    if arch.startswith("resnet"):
        shorter = size * 256 // 224
        rw, rh = w * shorter // short, h * shorter // short
        left, top = (rw - size) // 2, (rh - size) // 2
        out = img.resize((rw, rh), Image.BILINEAR).crop((left, top, left + size, top + size))
    else:
        native = {"efficientnet_b%d" % i: s for i, s in enumerate([224, 240, 260, 300, 380, 456, 528, 600])}[arch]
        crop = int(native / (native + 32) * short)
        oy, ox = ((h - crop) + 1) // 2, ((w - crop) + 1) // 2
        out = img.crop((ox, oy, ox + crop, oy + crop)).resize((size, size), Image.BICUBIC)
    return out


def reference_model(arch, x, seed, timm_model=False):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    if timm_model:
        import timm
        model = timm.create_model(arch, pretrained=False)
    else:
        model = getattr(torchvision.models, arch)()
    real_images.scale_activations(model, x, generator)
    real_images.randomize_affine(model, generator)
    real_images.calibrate(model, x)
    return model


def predict(weights, arch, size, extra=()):
    out = os.path.join(WORK, "predictions.json")
    run([BIN, "predict", "--arch", arch, "--weights", weights, "--to_predict", IMAGES, "--topk", "5",
         "--eval_image_size", str(size), "--predict_output", out, *extra])
    with open(out) as f:
        rows = json.load(f)
    return {os.path.basename(r["file"]): r["top"] for r in rows}


def compare(ours, probs, tag):
    """Our top-5 is torchvision's top-5 (up to classes whose probabilities tie within 1e-4, whose order rounding
    may swap), and each of our probabilities equals torchvision's for that class within the worst difference."""
    worst, worst_relative, same = 0.0, 0.0, True
    for i, path in enumerate(FILES):
        top = ours[os.path.basename(path)]
        fifth = float(probs[i].topk(5).values[-1])
        for t in top:
            reference = float(probs[i][t["class"]])
            worst = max(worst, abs(t["probability"] - reference))
            worst_relative = max(worst_relative, abs(t["probability"] - reference) / reference)
            same = same and reference >= fifth - 1e-4
    return same, worst, worst_relative


def check_arch(arch, size, seed, timm_model=False, eps_probe=False):
    x = real_images.to_batch([preprocess(f, arch, size) for f in FILES])
    model = reference_model(arch, x, seed, timm_model)
    with torch.no_grad():
        logits = model(x)
    probs = logits.softmax(1)
    distinct = len(set(logits.argmax(1).tolist()))
    weights = os.path.join(WORK, f"{'timm_' if timm_model else ''}{arch}_{size}.pt")
    torch.save(model.state_dict(), weights)
    same, worst, _ = compare(predict(weights, arch, size), probs, arch)
    who = "timm" if timm_model else "torchvision"
    check(distinct >= 3 and same and worst <= 1e-4,
          f"{who} {arch} at {size} px through predict ({len(FILES)} JPEG/PNG photos, {distinct} different top-1): "
          f"top-5 equal, probabilities within {worst:.1e} <= 1e-4")
    if eps_probe:
        _, _, moved = compare(predict(weights, arch, size, ["--bn_eps", "1e-3"]), probs, arch)
        check(moved > 0.05, f"{arch} with the recipe's eps 1e-3 forced instead: probabilities move by up to "
                            f"{moved:.0%} of their value (> 5%; the convention matters)")
    return model, x, logits


# At 64 px one model per weight convention and block: ResNet's basic and bottleneck blocks, EfficientNet's eps
# 1e-5 (B0..B4) and 1e-3 (B5..B7). Every architecture's logits equal torchvision's in tests/parity; what this
# adds is the file-to-answer path (decode, crop, the convention read from a bare state dict).
for index, arch in enumerate(["resnet18", "resnet101", "efficientnet_b1", "efficientnet_b5"]):
    check_arch(arch, 64, seed=10 + index, eps_probe=arch == "efficientnet_b1")
for arch, size in (("resnet50", 224), ("efficientnet_b0", 224), ("efficientnet_b4", 380)):
    model, x, logits = check_arch(arch, size, seed=40)
    # eval on TFRecords of the same photos, labelled with torchvision's own answers.
    folder = os.path.join(WORK, f"folder_{arch}")
    # prepare_data re-encodes PNG as JPEG (as the seeds' build script does): lossy, so JPEGs only.
    jpegs = [(path, label) for path, label in zip(FILES, logits.argmax(1).tolist()) if path.endswith(".jpg")]
    classes = sorted({label for _, label in jpegs})  # prepare_data numbers the sorted folders 0, 1, ...
    for path, label in jpegs:
        for split in ("train", "val"):
            d = os.path.join(folder, split, f"c{classes.index(label):04d}")
            os.makedirs(d, exist_ok=True)
            shutil.copy(path, d)
    # Map the dense folder classes back to torchvision's class ids with a 1000-class head: a permutation
    # of the classifier rows puts class `label` at index classes.index(label).
    state = {k: v.clone() for k, v in model.state_dict().items()}
    head = "fc" if arch.startswith("resnet") else "classifier.1"
    order = classes + [c for c in range(1000) if c not in classes]
    for suffix in ("weight", "bias"):
        state[f"{head}.{suffix}"] = state[f"{head}.{suffix}"][order]
    weights = os.path.join(WORK, f"{arch}_permuted.pt")
    torch.save(state, weights)
    data = os.path.join(WORK, f"tf_{arch}")
    run([BIN, "prepare_data", "--format", "image_folder", "--input", folder, "--output", data])
    model_dir = os.path.join(WORK, f"eval_{arch}")
    run([BIN, "eval", "--arch", arch, "--weights", weights, "--data_dir", data, "--eval_image_size", str(size),
         "--model_dir", model_dir, "--num_classes", "1000", "--workers", "1"])
    events = [json.loads(l[5:]) for l in open(os.path.join(model_dir, "log.json")) if l.startswith("DLLL ")]
    final = [e["data"] for e in events if e["type"] == "LOG" and e["step"] == [] and "top1_accuracy" in e["data"]]
    top1 = final[-1]["top1_accuracy"] if final else None
    check(top1 == 1.0, f"eval --weights torchvision {arch} at {size} px: top-1 {top1} against torchvision's "
                       f"own answers on the same JPEG photos")
check_arch("efficientnet_b0", 64, seed=90, timm_model=True)

# Our own weights carry their convention: a from-scratch EfficientNet trains with the recipe's eps 1e-3, and
# predict with final_weights.pt alone (no model_dir, no config.yaml) must use it.
run_dir = os.path.join(WORK, "own")
fm = os.path.join(WORK, "fm")
run([BIN, "prepare_data", "--output", fm, "--train_shards", "1"])
run([BIN, "train", "--arch", "efficientnet_b0", "--num_classes", "10", "--data_dir", fm, "--model_dir", run_dir,
     "--image_size", "32", "--batch_size", "8", "--num_iter", "2", "--iter_unit", "batch", "--workers", "1",
     "--augmentation", "none", "--lr_warmup_epochs", "0"])
config = open(os.path.join(run_dir, "config.yaml")).read()
check("bn_eps: 0.001" in config, "train from scratch: config.yaml records the recipe's bn_eps 0.001")
p = run([BIN, "predict", "--arch", "efficientnet_b0", "--num_classes", "10", "--weights",
         os.path.join(run_dir, "final_weights.pt"), "--to_predict", FILES[0], "--eval_image_size", "32"])
check("BatchNorm eps 0.001, momentum 0.01 (weights metadata)" in p.stdout,
      "predict with our final_weights.pt alone: eps 0.001 from the file's metadata")
loaded = torch.load(os.path.join(run_dir, "final_weights.pt"), weights_only=True)
reference = torchvision.models.efficientnet_b0(num_classes=10)
check(reference.load_state_dict(loaded, strict=True) is not None, "final_weights.pt (with metadata) loads in torchvision")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all foreign-weights checks passed")
