"""End-to-end checks of the convnets modes on real Fashion-MNIST through the TFRecord path:
train_and_eval / eval / predict / benchmarks, the files a run leaves, resume after SIGKILL and SIGTERM (bit
for bit), and that PyTorch reads the exported weights and predicts what convnets predicted.

usage: check_cli.py CONVNETS_BINARY WORK_DIR
"""
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import fashion_subset  # noqa: E402

BIN, WORK = sys.argv[1], sys.argv[2]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
# 12,000 train and the first 2,000 test images (tests/python/fashion_subset.py).
FASHION = fashion_subset.write(os.path.join(WORK, "fashion_mnist"))
DATA = os.path.join(WORK, "fm")


def run(*args, expect=0):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if expect is not None and p.returncode != expect:
        sys.exit(f"convnets {' '.join(args)} -> {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}")
    return p


def dlll(path):
    with open(path) as f:
        return [json.loads(line[5:]) for line in f if line.startswith("DLLL ")]


def final_data(path):
    finals = [e for e in dlll(path) if e["type"] == "LOG" and e["step"] == []]
    assert finals, f"no final summary in {path}"
    return finals[-1]["data"]


def check(cond, what):
    if not cond:
        sys.exit("FAILED: " + what)
    print("ok:", what)


run("prepare_data", "--format", "fashion_mnist", "--input", FASHION, "--output", DATA, "--train_shards", "2")
common = ["--arch", "resnet18", "--num_classes", "10", "--data_dir", DATA, "--image_size", "32",
          "--eval_image_size", "32", "--workers", "2", "--crop_sampler", "resized_crop", "--lr_warmup_epochs", "0"]

# train_and_eval: files, logs, TensorBoard.
A = os.path.join(WORK, "a")
run("train_and_eval", *common, "--model_dir", A, "--batch_size", "64", "--num_iter", "40", "--iter_unit", "batch",
    "--eval_batch_size", "500", "--lr_init", "0.5", "--display_every", "10", "--tensorboard")
for name in ["config.yaml", "log.json", "summary.csv", "final_weights.pt", "classes.txt", "best.pt"]:
    check(os.path.exists(os.path.join(A, name)), f"train_and_eval wrote {name}")
# 40 updates end inside the first epoch: the checkpoint records that position (epochs done 0, update 40), so a
# larger num_iter continues from it.
check(any(n.startswith("checkpoint_e0000_u0000000040") for n in os.listdir(A)), "final checkpoint named by epoch/update")
check(any(n.startswith("events.out.tfevents") for n in os.listdir(os.path.join(A, "tensorboard"))), "TensorBoard file")
events = dlll(os.path.join(A, "log.json"))
check(any(e["step"] == "PARAMETER" and e["data"].get("arch") == "resnet18" for e in events), "config logged")
check(any(e["step"] == [1, 40] and {"cross_entropy", "learning_rate", "imgs_per_sec"} <= e["data"].keys()
          for e in events), "step lines (epoch, update) with the seeds' keys")
trained = final_data(os.path.join(A, "log.json"))
# Twice chance: learning happened. (The exact figure depends on the thread count, which changes the order of
# float sums: 28.8% on one thread, above 30% on two.)
check(trained["top1_accuracy"] > 0.2, f"40 updates reach > 20% top-1 (chance: 10%) (got {trained['top1_accuracy']:.4f})")
with open(os.path.join(A, "summary.csv")) as f:
    rows = f.read().splitlines()
check(rows[0].startswith("epoch,updates,train_loss") and len(rows) == 2, "summary.csv header and one epoch row")

# eval of the same checkpoint gives the same numbers.
run("eval", "--model_dir", A, "--eval_batch_size", "250")
evaluated = final_data(os.path.join(A, "log.json"))
check(abs(evaluated["top1_accuracy"] - trained["top1_accuracy"]) < 1e-12, "eval reproduces the run's top-1")
check(abs(evaluated["top5_accuracy"] - trained["top5_accuracy"]) < 1e-12, "eval reproduces the run's top-5")

# predict on JPEGs of the test set; PyTorch (torchvision resnet18 + PIL transforms) agrees.
with gzip.open(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz")) as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
pred_dir = os.path.join(WORK, "to_predict")
os.makedirs(pred_dir)
for i in range(6):
    Image.fromarray(images[i]).convert("RGB").save(os.path.join(pred_dir, f"img{i}.jpg"), quality=95)
p = run("predict", "--model_dir", A, "--to_predict", pred_dir, "--topk", "3")
ours = {}
current = None
for line in p.stdout.splitlines():
    if line.endswith(".jpg"):
        current = os.path.basename(line)
    elif current and line.strip().startswith("1."):
        parts = line.split()
        ours[current] = (int(parts[1]), float(parts[2].rstrip("%")) / 100, " ".join(parts[3:]))
check(len(ours) == 6, "predict printed six images")
names = open(os.path.join(DATA, "classes.txt")).read().splitlines()
check(all(ours[k][2] == names[ours[k][0]] for k in ours), "predict names the classes")
model = torchvision.models.resnet18(num_classes=10)
model.load_state_dict(torch.load(os.path.join(A, "final_weights.pt"), weights_only=True))
model.eval()
mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
for name, (cls, prob, _) in sorted(ours.items()):
    img = Image.open(os.path.join(pred_dir, name)).convert("RGB").resize((36, 36), Image.BILINEAR)
    img = img.crop((2, 2, 34, 34))
    x = (torch.from_numpy(np.asarray(img)).float() / 255 - mean) / std
    with torch.no_grad():
        probs = torch.softmax(model(x.permute(2, 0, 1)[None]), 1)[0]
    check(int(probs.argmax()) == cls and abs(float(probs[cls]) - prob) < 0.03,
          f"PyTorch agrees on {name}: class {cls}, p {prob:.4f} vs {float(probs[cls]):.4f}")

# predict --int8 with a calibration of 256 train images: the int8 model's top-1 and probabilities (measured:
# the same classes, probabilities within 0.02 on this briefly trained model).
run("quantize", "--model_dir", A, "--data_dir", DATA, "--calibration_images", "256")
p = run("predict", "--model_dir", A, "--to_predict", pred_dir, "--topk", "3", "--int8", "--output", "json")
int8 = {os.path.basename(e["file"]): e for e in json.loads(p.stdout)}
print("int8 vs float32:", {k: (e["top"][0]["class"], round(e["top"][0]["probability"], 4), ours[k][1])
                            for k, e in int8.items()})
check(len(int8) == 6 and all(e["top"][0]["class"] == ours[k][0] and abs(e["top"][0]["probability"] - ours[k][1]) < 0.05
                             for k, e in int8.items()) and "int8" in p.stderr,
      "predict --int8: the float32 model's classes, probabilities within 0.05")
p = run("inference_benchmark", "--model_dir", A, "--batch_sizes", "2", "--num_iter", "2", "--iter_unit", "batch",
        "--warmup_steps", "1", "--int8")
check("oneDNN int8 plan" in p.stderr + p.stdout, "inference_benchmark --int8 times the model_dir's int8 plan")
os.remove(os.path.join(A, "quantization.safetensors"))

# finetune_from: torchvision weights with a 1000-class head start a 10-class run; the new head stays fresh.
tv = torchvision.models.resnet18()
torch.save(tv.state_dict(), os.path.join(WORK, "tv_resnet18.pt"))
F = os.path.join(WORK, "f")
p = run("train", *common, "--model_dir", F, "--batch_size", "16", "--num_iter", "1", "--iter_unit", "batch",
        "--lr_init", "0", "--finetune_from", os.path.join(WORK, "tv_resnet18.pt"))
check("kept the fresh init of 2 (shape differs)" in p.stdout, "finetune_from reports the skipped head")
tuned = torch.load(os.path.join(F, "final_weights.pt"), weights_only=True)
check(torch.equal(tuned["layer3.1.conv2.weight"], tv.state_dict()["layer3.1.conv2.weight"]),
      "finetune_from loaded torchvision's kernels")

# Resume: SIGKILL at a random moment and SIGTERM both continue bit for bit.
resume_args = [*common, "--batch_size", "16", "--num_iter", "16", "--iter_unit", "batch", "--grad_accum_steps", "2",
               "--checkpoint_every_steps", "8", "--ema_decay", "0.9", "--mixup_alpha", "0.2", "--cutmix_alpha", "1.0",
               "--display_every", "2"]
B = os.path.join(WORK, "b")
run("train", *resume_args, "--model_dir", B)
reference = open(os.path.join(B, "final_weights.pt"), "rb").read()
reference_ema = open(os.path.join(B, "final_weights_ema.pt"), "rb").read()


def start(model_dir):
    return subprocess.Popen([BIN, "train", *resume_args, "--model_dir", model_dir], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_for_checkpoint(model_dir, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        if os.path.isdir(model_dir) and any(n.startswith("checkpoint_") for n in os.listdir(model_dir)):
            return True
        time.sleep(0.05)
    return False


rng = random.Random(int(time.time()))
C = os.path.join(WORK, "c")
proc = start(C)
check(wait_for_checkpoint(C, proc), "a checkpoint appears before the SIGKILL")
time.sleep(rng.uniform(0.0, 1.5))
proc.send_signal(signal.SIGKILL)
proc.wait()
left = sorted(n for n in os.listdir(C) if n.startswith("checkpoint_"))
print("killed with", left)
run("train", *resume_args, "--model_dir", C)
check(open(os.path.join(C, "final_weights.pt"), "rb").read() == reference, "SIGKILL + resume: identical weights")
check(open(os.path.join(C, "final_weights_ema.pt"), "rb").read() == reference_ema, "SIGKILL + resume: identical EMA")
check(not any(n.endswith(".tmp") for n in os.listdir(C)), "no temporary files left behind")

D = os.path.join(WORK, "d")
proc = start(D)
check(wait_for_checkpoint(D, proc), "training is under way before the SIGTERM")
proc.send_signal(signal.SIGTERM)
out, _ = proc.communicate(timeout=120)
check(proc.returncode == 0 and "stopped after update" in out, f"SIGTERM: checkpoint and exit 0 (rc {proc.returncode})")
run("train", *resume_args, "--model_dir", D)
check(open(os.path.join(D, "final_weights.pt"), "rb").read() == reference, "SIGTERM + resume: identical weights")
p = run("train", *resume_args, "--model_dir", D)
check("resuming from" in p.stdout and open(os.path.join(D, "final_weights.pt"), "rb").read() == reference,
      "a finished run started again changes nothing")

# The same with an EfficientNet, whose dropout and stochastic depth draw from torch's generator every step:
# the checkpoint's RNG state must be restored for the resumed run to draw the same masks.
eff_args = ["--arch", "efficientnet_b0", "--num_classes", "10", "--data_dir", DATA, "--image_size", "32",
            "--eval_image_size", "32", "--workers", "1", "--crop_sampler", "resized_crop", "--lr_warmup_epochs", "0",
            "--augmentation", "none", "--batch_size", "8", "--num_iter", "24", "--iter_unit", "batch",
            "--checkpoint_every_steps", "4", "--display_every", "2"]
G = os.path.join(WORK, "g")
run("train", *eff_args, "--model_dir", G)
eff_reference = open(os.path.join(G, "final_weights.pt"), "rb").read()
H = os.path.join(WORK, "h")
proc = subprocess.Popen([BIN, "train", *eff_args, "--model_dir", H], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True)
check(wait_for_checkpoint(H, proc), "efficientnet_b0: training is under way before the SIGTERM")
proc.send_signal(signal.SIGTERM)
out, _ = proc.communicate(timeout=120)
check(proc.returncode == 0 and "stopped after update" in out, "efficientnet_b0: SIGTERM stops with a checkpoint")
p = run("train", *eff_args, "--model_dir", H)
check("resuming from" in p.stdout and open(os.path.join(H, "final_weights.pt"), "rb").read() == eff_reference,
      "efficientnet_b0 (dropout, stochastic depth): SIGTERM + resume gives identical weights")

# Benchmarks (synthetic data).
E = os.path.join(WORK, "e")
run("training_benchmark", "--arch", "resnet18", "--image_size", "64", "--batch_size", "8", "--num_iter", "6",
    "--iter_unit", "batch", "--warmup_steps", "2", "--model_dir", E)
bench = final_data(os.path.join(E, "log.json"))
check(bench["timed_steps"] == 4 and bench["train_throughput"] > 0, "training_benchmark times the post-warm-up steps")
run("inference_benchmark", "--arch", "resnet18", "--eval_image_size", "64", "--batch_sizes", "1,4", "--num_iter", "5",
    "--iter_unit", "batch", "--warmup_steps", "1", "--model_dir", E)
rows = [e["data"] for e in dlll(os.path.join(E, "log.json")) if e["type"] == "LOG" and "latency_p99" in e["data"]]
check([r["batch_size"] for r in rows] == [1, 4], "inference_benchmark sweeps the batch sizes")
check(all(0 < r["latency_p50"] <= r["latency_p99"] and r["throughput"] > 0 for r in rows), "latency percentiles")
# --int8 on random weights: calibrated on synthetic images, which it says.
p = run("inference_benchmark", "--arch", "resnet18", "--eval_image_size", "64", "--batch_sizes", "1", "--num_iter",
        "2", "--iter_unit", "batch", "--warmup_steps", "1", "--model_dir", os.path.join(WORK, "e8"), "--int8")
check("synthetic images" in p.stderr and "oneDNN int8 plan" in p.stderr + p.stdout,
      "inference_benchmark --int8 on random weights says it calibrated on synthetic images")

# Bad input: clear errors, non-zero exit.
p = run("train", *common[:4], "--data_dir", os.path.join(WORK, "missing"), "--model_dir", os.path.join(WORK, "x"),
        expect=None)
check(p.returncode != 0 and "missing' does not exist" in p.stderr, "a missing data_dir is named")
p = run("train", "--batch_size", "0", "--model_dir", os.path.join(WORK, "x"), expect=None)
check(p.returncode != 0 and "batch_size" in p.stderr, "an out-of-range flag is named")
p = run("eval", "--arch", "resnet18", "--num_classes", "10", "--data_dir", DATA, "--weights", os.path.join(A, "config.yaml"),
        expect=None)
check(p.returncode != 0 and "config.yaml" in p.stderr, "a weights file that is not one is named")
print("all CLI checks passed")
