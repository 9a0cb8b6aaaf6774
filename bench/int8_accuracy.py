"""int8 accuracy side by side on real images, one quantization each: convnets' int8 plan (`eval --int8`), and ONNX
Runtime (its default, and session.x64quantprecision=1, its exact U8U8 mode) and OpenVINO on convnets' QDQ export of
the same quantization (`export --int8`), with the float32 export as the baseline, for each model, over the whole
validation split of a TFRecord data_dir (prepare_data's schema). Prints a Markdown table (top-1, %) and the ISA
oneDNN reports. The runtimes' float32 top-1 is printed next to convnets' own: equal, or the preprocessing here is
not convnets' (then the table says so).

usage: .venv/bin/python bench/int8_accuracy.py --binary build/app/convnets --data_dir D
       --models NAME=MODEL_DIR[:WEIGHTS],...   (WEIGHTS: a file in MODEL_DIR; default its newest checkpoint)
"""
import argparse
import io
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

try:
    import openvino
except ImportError:  # the comparison runs without it
    openvino = None

parser = argparse.ArgumentParser()
parser.add_argument("--binary", required=True)
parser.add_argument("--data_dir", required=True)
parser.add_argument("--models", required=True)
parser.add_argument("--batch", type=int, default=500)
args = parser.parse_args()
work = tempfile.mkdtemp(prefix="int8_accuracy_")


def run(*a):
    p = subprocess.run([args.binary, *a], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"convnets {' '.join(a)} -> {p.returncode}\n{p.stderr[-3000:]}")
    return p


def final_data(model_dir):
    events = [json.loads(line[5:]) for line in open(os.path.join(model_dir, "log.json")) if line.startswith("DLLL ")]
    return [e["data"] for e in events if e["type"] == "LOG" and e["step"] == []][-1]


def validation_records():
    """(encoded image, label) of the validation split, in file order."""
    import tensorflow as tf  # the reference reader; imported late (slow)
    for name in sorted(os.listdir(args.data_dir)):
        if name.startswith("validation-"):
            for raw in tf.data.TFRecordDataset(os.path.join(args.data_dir, name)):
                feature = tf.train.Example.FromString(raw.numpy()).features.feature
                yield feature["image/encoded"].bytes_list.value[0], feature["image/class/label"].int64_list.value[0] - 1


def preprocess(records, meta):
    """convnets' eval transform, as the ONNX file's metadata describes it, with PIL's resampling."""
    size, fraction = int(meta["convnets.image_size"]), float(meta["convnets.crop_fraction"])
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[meta["convnets.interpolation"]]
    mean = np.array([float(v) for v in meta["convnets.mean"].split(",")], np.float32)
    std = np.array([float(v) for v in meta["convnets.std"].split(",")], np.float32)
    rule = meta["convnets.eval_crop"]
    images, labels = [], []
    for encoded, label in records:
        img = Image.open(io.BytesIO(encoded)).convert("RGB")
        w, h = img.size
        if rule.startswith("resize the shorter side"):
            shorter = int(size / fraction + 1e-9)
            rw, rh = w * shorter // min(w, h), h * shorter // min(w, h)
            left, top = (rw - size) // 2, (rh - size) // 2
            img = img.resize((rw, rh), resample).crop((left, top, left + size, top + size))
        elif rule.startswith("resize the whole image"):
            img = img.resize((size, size), resample)
        else:  # centre crop a fraction of the shorter side, then resize
            crop = max(1, int(fraction * min(w, h)))
            left, top = (w - crop + 1) // 2, (h - crop + 1) // 2
            img = img.crop((left, top, left + crop, top + crop)).resize((size, size), resample)
        images.append(((np.asarray(img, np.float32) / 255 - mean) / std).transpose(2, 0, 1))
        labels.append(label)
    return np.stack(images), np.array(labels)


def top1(predict, images, labels):
    correct = 0
    for start in range(0, len(images), args.batch):
        correct += int((predict(images[start:start + args.batch]).argmax(1) == labels[start:start + args.batch]).sum())
    return 100.0 * correct / len(images)


def ort_predict(path, exact=False):
    options = ort.SessionOptions()
    if exact:
        options.add_session_config_entry("session.x64quantprecision", "1")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(["logits"], {"input": x})[0]


def openvino_predict(path):
    core = openvino.Core()
    request = core.compile_model(core.read_model(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda x: request(x)[request.output(0)]


def main():
    records = None
    rows = []
    isa = ""
    for item in args.models.split(","):
        name, spec = item.split("=", 1)
        model_dir, _, weights = spec.partition(":")
        weights_args = ["--weights", os.path.join(model_dir, weights)] if weights else []
        common = ["--model_dir", model_dir, *weights_args]
        fp32, qdq = os.path.join(work, name + ".onnx"), os.path.join(work, name + "_int8.onnx")
        run("export", *common, "--onnx_output", fp32)
        run("export", *common, "--onnx_output", qdq, "--int8")
        meta = {m.key: m.value for m in onnx.load(fp32).metadata_props}
        if records is None:
            records = list(validation_records())
        images, labels = preprocess(records, meta)
        run("eval", *common, "--data_dir", args.data_dir, "--eval_batch_size", str(args.batch))
        ours_fp32 = 100.0 * final_data(model_dir)["top1_accuracy"]
        run("eval", *common, "--data_dir", args.data_dir, "--eval_batch_size", str(args.batch), "--int8")
        result = final_data(model_dir)
        isa = result["form"].split(" on ")[-1].rstrip(")")
        row = {"model": name, "convnets float32": ours_fp32, "ONNX Runtime float32": top1(ort_predict(fp32), images, labels),
               "convnets int8": 100.0 * result["top1_accuracy"],
               "ONNX Runtime int8": top1(ort_predict(qdq), images, labels),
               "ONNX Runtime int8 exact": top1(ort_predict(qdq, exact=True), images, labels)}
        if openvino:
            row["OpenVINO int8"] = top1(openvino_predict(qdq), images, labels)
        rows.append(row)
        print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if k != "model"), flush=True)
    columns = [k for k in rows[0] if k != "model"]
    print(f"\ntop-1 %, {len(records)} validation images; convnets' int8 plan on {isa}; onnxruntime {ort.__version__}"
          f", openvino {openvino.__version__ if openvino else 'not installed'}\n")
    print("| model | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for row in rows:
        print(f"| {row['model']} | " + " | ".join(f"{row[c]:.2f}" for c in columns) + " |")
    mismatched = [r["model"] for r in rows if abs(r["convnets float32"] - r["ONNX Runtime float32"]) > 0.05]
    if mismatched:
        print(f"\nnote: float32 top-1 differs for {', '.join(mismatched)}: this script's preprocessing is not "
              "exactly convnets'; compare the int8 columns with their own float32 column")


if __name__ == "__main__":
    main()
