"""`convnets export` end to end: a trained model on Fashion-MNIST exported to ONNX and a Triton model
repository; ONNX Runtime gets the top-1 that `convnets eval` reported on the same validation split; the Triton
config parses as Triton's ModelConfig and agrees with the ONNX file; the metadata says how to preprocess; bad
requests are clear errors that leave no file behind.

usage: check_export.py CONVNETS_BINARY WORK_DIR
"""
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf import text_format
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import fashion_subset  # noqa: E402

BIN, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
# 12,000 train and the first 2,000 test images (tests/python/fashion_subset.py).
FASHION = fashion_subset.write(os.path.join(WORK, "fashion_mnist"))
failures = []


def check(ok, what, detail=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok or not detail else "\n" + detail[-3000:]), flush=True)
    if not ok:
        failures.append(what)


def run(*args, expect=0):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, errors="replace", timeout=900)
    if expect is not None and p.returncode != expect:
        sys.exit(f"convnets {' '.join(args)} -> {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}")
    return p


def final_data(path):
    events = [json.loads(l[5:]) for l in open(path) if l.startswith("DLLL ")]
    return [e["data"] for e in events if e["type"] == "LOG" and e["step"] == []][-1]


def tfrecords(path):
    """(encoded image, label) of a TFRecord file written by prepare_data (ImageNet schema, labels 1..N)."""
    import tensorflow as tf  # the reference reader; imported late (slow)
    for raw in tf.data.TFRecordDataset(path):
        ex = tf.train.Example.FromString(raw.numpy())
        feature = ex.features.feature
        yield feature["image/encoded"].bytes_list.value[0], feature["image/class/label"].int64_list.value[0] - 1


DATA, A = os.path.join(WORK, "fm"), os.path.join(WORK, "run")
run("prepare_data", "--format", "fashion_mnist", "--input", FASHION, "--output", DATA, "--train_shards", "2")
run("train", "--arch", "resnet18", "--num_classes", "10", "--data_dir", DATA, "--image_size", "32",
    "--eval_image_size", "32", "--workers", "2", "--crop_sampler", "resized_crop", "--lr_warmup_epochs", "0",
    "--batch_size", "64", "--num_iter", "40", "--iter_unit", "batch", "--eval_batch_size", "500", "--lr_init", "0.5",
    "--model_dir", A)
run("eval", "--model_dir", A, "--eval_batch_size", "500")
evaluated = final_data(os.path.join(A, "log.json"))
# The forms of the model (inference form: BatchNorm folded, by default the oneDNN plan, or LibTorch's fused oneDNN
# ops; training form: eager) give the same top-1 and top-5 on the whole validation split.
p = run("eval", "--model_dir", A, "--eval_batch_size", "500", "--inference_form", "false")
eager = final_data(os.path.join(A, "log.json"))
p = run("eval", "--model_dir", A, "--eval_batch_size", "500", "--cpu_inference", "fused")
fused = final_data(os.path.join(A, "log.json"))
for form, result in (("oneDNN plan", evaluated), ("fused", fused)):
    check(eager["top1_accuracy"] == result["top1_accuracy"] and eager["top5_accuracy"] == result["top5_accuracy"]
          and 0.2 < result["top1_accuracy"] < 1.0 and result["form"].startswith("inference form")
          and eager["form"] == "eager model",
          f"eval top-1 / top-5 equal: {result['top1_accuracy']} / {result['top5_accuracy']} ({form}: {result['form']}) "
          f"vs {eager['top1_accuracy']} / {eager['top5_accuracy']} (eager)")
check("oneDNN plan" in evaluated["form"] and "fused oneDNN kernels" in fused["form"],
      f"eval names the kernels it ran: {evaluated['form']!r}, {fused['form']!r}")

# int8: eval --int8 needs a calibration; quantize writes one from the train split; int8 keeps the accuracy of
# this briefly trained model (measured: 0.7 pp from float32's 32%; bound 2.5 pp: 255 levels for the signed
# input, say, costs far more).
p = run("eval", "--model_dir", A, "--int8", expect=None)
check(p.returncode != 0 and "convnets quantize" in p.stderr, "eval --int8 without a calibration names convnets quantize",
      p.stderr)
p = run("quantize", "--model_dir", A, "--data_dir", DATA, "--calibration_images", "50000", expect=None)
check(p.returncode != 0 and "fewer than --calibration_images 50000" in p.stderr and
      not os.path.exists(os.path.join(A, "quantization.safetensors")), "quantize asking for more images than the split has",
      p.stderr)
p = run("quantize", "--model_dir", A, "--data_dir", DATA, "--calibration_images", "512")
check(os.path.exists(os.path.join(A, "quantization.safetensors")) and "calibrating" in p.stdout and
      "512 images" in p.stdout, "quantize calibrates on 512 train images and writes quantization.safetensors", p.stdout)
run("eval", "--model_dir", A, "--eval_batch_size", "500", "--int8")
int8 = final_data(os.path.join(A, "log.json"))
check(int8["form"].startswith("int8") and abs(int8["top1_accuracy"] - evaluated["top1_accuracy"]) <= 0.025,
      f"eval --int8: top-1 {int8['top1_accuracy']} against float32 {evaluated['top1_accuracy']} ({int8['form']})")
tampered = bytearray(open(os.path.join(A, "quantization.safetensors"), "rb").read())
tampered[40:60] = b"\xff" * 20
open(os.path.join(A, "quantization.safetensors"), "wb").write(bytes(tampered))
p = run("eval", "--model_dir", A, "--int8", expect=None)
check(p.returncode != 0 and "quantization.safetensors" in p.stderr and "\ufffd" not in p.stderr,
      "a damaged quantization file is named (and its bytes are not echoed)", p.stderr)
os.remove(os.path.join(A, "quantization.safetensors"))

# Export: the ONNX file and a Triton repository (CPU instances), with Softmax / TopK outputs.
ONNX, REPO = os.path.join(WORK, "resnet18_fm.onnx"), os.path.join(WORK, "triton")
p = run("export", "--model_dir", A, "--onnx_output", ONNX, "--export_probabilities", "--export_topk", "3", "--triton_repository", REPO,
        "--triton_model_name", "fashion", "--triton_instance_kind", "cpu", "--triton_max_batch_size", "64")
check("raw weights" in p.stdout and "BatchNorm folded" in p.stdout, "export says which weights it wrote", p.stdout)
model = onnx.load(ONNX)
onnx.checker.check_model(model, full_check=True)
meta = {m.key: m.value for m in model.metadata_props}
newest = sorted(n for n in os.listdir(A) if n.startswith("checkpoint_"))[-1]
sha = hashlib.sha256(open(os.path.join(A, newest), "rb").read()).hexdigest()
check(meta.get("convnets.arch") == "resnet18" and meta.get("convnets.image_size") == "32" and
      meta.get("convnets.interpolation") == "bilinear" and meta.get("convnets.crop_fraction") == "0.888888889" and
      json.loads(meta.get("convnets.class_names", "[]"))[7] == "Sneaker" and
      meta.get("convnets.mean", "").startswith("0.485") and meta.get("convnets.weights_sha256") == sha and
      meta.get("convnets.weights", "").endswith(newest) and "convnets.version" in meta,
      "metadata_props: architecture, size, mean / std, interpolation, crop, class names, weights and SHA-256",
      json.dumps(meta)[:2000])

# ONNX Runtime over the whole validation split, preprocessed as convnets eval does (whole-image decode, shorter
# side to 36 = 32 * 256 / 224 with PIL's bilinear, centre 32), top-1 against eval's.
session = ort.InferenceSession(ONNX, providers=["CPUExecutionProvider"])
mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
images, labels = [], []
for name in sorted(os.listdir(DATA)):
    if not name.startswith("validation-"):
        continue
    for encoded, label in tfrecords(os.path.join(DATA, name)):
        img = Image.open(io.BytesIO(encoded)).convert("RGB")
        w, h = img.size
        shorter = 32 * 256 // 224
        rw, rh = w * shorter // min(w, h), h * shorter // min(w, h)
        left, top = (rw - 32) // 2, (rh - 32) // 2
        img = img.resize((rw, rh), Image.BILINEAR).crop((left, top, left + 32, top + 32))
        images.append(((np.asarray(img, np.float32) / 255 - mean) / std).transpose(2, 0, 1))
        labels.append(label)
correct, total = 0, 0
for start in range(0, len(images), 500):
    batch = np.stack(images[start:start + 500])
    logits, probabilities, classes = session.run(None, {"input": batch})
    correct += int((logits.argmax(1) == np.array(labels[start:start + 500])).sum())
    total += len(batch)
check(total == evaluated["images"] == 2000 and correct / total == evaluated["top1_accuracy"],
      f"ONNX Runtime top-1 on the validation split {correct}/{total} = {correct / total} equals convnets eval's "
      f"{evaluated['top1_accuracy']}")
check(classes.shape[1] == 3 and (classes[:, 0] == logits.argmax(1)).all(), "classes: the top-3 indices")

# --fp16 on the trained network and real images: ONNX Runtime CPU runs it, logits within 1e-2 of the float32
# file's, and the same top-1 wherever the float32 margin between the two best classes is not itself at the
# level of half-precision rounding (2x the image's largest logit error).
HALF = os.path.join(WORK, "resnet18_fm_fp16.onnx")
run("export", "--model_dir", A, "--onnx_output", HALF, "--export_fp16")
half_session = ort.InferenceSession(HALF, providers=["CPUExecutionProvider"])
full, half = [], []
for start in range(0, len(images), 500):
    batch = np.stack(images[start:start + 500])
    full.append(session.run(["logits"], {"input": batch})[0])
    half.append(half_session.run(["logits"], {"input": batch})[0])
full, half = np.concatenate(full).astype(np.float64), np.concatenate(half).astype(np.float64)
half_rel = float(np.linalg.norm(half - full) / np.linalg.norm(full))
best2 = -np.sort(-full, axis=1)[:, :2]
clear = (best2[:, 0] - best2[:, 1]) > 2 * np.abs(half - full).max(1)
flips = int((half.argmax(1) != full.argmax(1)).sum())
check(half_rel < 1e-2 and (half.argmax(1) == full.argmax(1))[clear].all() and clear.mean() > 0.99,
      f"fp16 file on the validation split: {half_rel:.2e} from float32 (bound 1e-2); top-1 equal on the "
      f"{int(clear.sum())} images with a clear margin ({flips} flips among all {len(full)})")

# export --int8: QDQ ONNX with our scales (the model_dir's calibration), checked by ONNX's checker; ONNX Runtime
# and OpenVINO run it, and their top-1 on the validation split stays within the int8 bound of eval --int8 above
# (2.5 pp of float32), and within it of our own int8 plan's (their roundings and ours are independent draws of
# the same quantization noise).
p = run("export", "--model_dir", A, "--onnx_output", os.path.join(WORK, "q.onnx"), "--int8", expect=None)
check(p.returncode != 0 and "convnets quantize" in p.stderr, "export --int8 without a calibration names convnets quantize",
      p.stderr)
run("quantize", "--model_dir", A, "--data_dir", DATA, "--calibration_images", "512")
run("eval", "--model_dir", A, "--eval_batch_size", "500", "--int8")
ours_int8 = final_data(os.path.join(A, "log.json"))
QDQ = os.path.join(WORK, "resnet18_fm_int8.onnx")
p = run("export", "--model_dir", A, "--onnx_output", QDQ, "--int8")
check("int8 (QDQ)" in p.stdout, "export --int8 says so", p.stdout)
qdq = onnx.load(QDQ)
onnx.checker.check_model(qdq, full_check=True)
ops = [n.op_type for n in qdq.graph.node]
convs = ops.count("Conv") + ops.count("Gemm")
int32_biases = sum(t.name.endswith(".bias_quantized") for t in qdq.graph.initializer)
check(ops.count("QuantizeLinear") == 18 and ops.count("DequantizeLinear") == 18 + convs + int32_biases and
      convs == 21 and int32_biases == 15 and
      {m.key: m.value for m in qdq.metadata_props}.get("convnets.precision") == "int8 (QDQ)",
      f"QDQ: 18 int8 values of ResNet-18 quantized, the weights of its {convs} convolutions and the int32 biases of "
      f"the 15 whose outputs are requantized dequantized ({int32_biases}); the stem, shortcuts, the last block's "
      "conv2 (the pool reads it) and the classifier keep float32 biases")
import openvino as ov
qdq_session = ort.InferenceSession(QDQ, providers=["CPUExecutionProvider"])
qdq_ov = ov.Core().compile_model(QDQ, "CPU")
ort_int8, ov_int8 = [], []
for start in range(0, len(images), 500):
    batch = np.stack(images[start:start + 500])
    ort_int8.append(qdq_session.run(["logits"], {"input": batch})[0])
    ov_int8.append(qdq_ov(batch)[qdq_ov.output(0)])
for runtime, logits in (("ONNX Runtime", np.concatenate(ort_int8)), ("OpenVINO", np.concatenate(ov_int8))):
    top1 = float((logits.argmax(1) == np.array(labels)).mean())
    check(abs(top1 - evaluated["top1_accuracy"]) <= 0.025 and abs(top1 - ours_int8["top1_accuracy"]) <= 0.025,
          f"{runtime} on the QDQ file: top-1 {top1} (convnets eval --int8: {ours_int8['top1_accuracy']}, float32 "
          f"{evaluated['top1_accuracy']})")

# export --int8 --triton_repository: the repository's model is the QDQ file, its config says int8 in its name only.
INT8_REPO = os.path.join(WORK, "triton_int8")
run("export", "--model_dir", A, "--int8", "--triton_repository", INT8_REPO, "--triton_model_name", "fm_int8",
    "--triton_instance_kind", "cpu")
repo_model = onnx.load(os.path.join(INT8_REPO, "fm_int8", "1", "model.onnx"))
repo_ops = [n.op_type for n in repo_model.graph.node]
check(repo_ops.count("QuantizeLinear") == 18 and
      {m.key: m.value for m in repo_model.metadata_props}.get("convnets.precision") == "int8 (QDQ)" and
      'name: "fm_int8"' in open(os.path.join(INT8_REPO, "fm_int8", "config.pbtxt")).read(),
      "export --int8 --triton_repository: the repository holds the QDQ model")

# Quantization-aware training: --qat fine-tunes from A's final weights with the ranges A's quantization file holds
# for them, keeps a quantization file of the weights it saves (qat: true), and its evaluation is of the int8 form:
# eval --int8 on the saved weights gets its top-1 (the same int8 plan on the same weights: measured equal; 0.5 pp
# allowed for a batch-dependent kernel choice that flips a rounding).
Q = os.path.join(WORK, "qat")
qat_args = ["--arch", "resnet18", "--num_classes", "10", "--data_dir", DATA, "--image_size", "32",
            "--eval_image_size", "32", "--workers", "2", "--qat", "--finetune_from", os.path.join(A, "final_weights.pt"),
            "--batch_size", "64", "--iter_unit", "batch", "--eval_batch_size", "500", "--lr_init", "0.02",
            "--lr_warmup_epochs", "0", "--model_dir", Q]
p = run("train_and_eval", *qat_args, "--num_iter", "12")
check("quantization-aware training" in p.stdout and "calibrated for --finetune_from's weights" in p.stdout,
      "train --qat takes the ranges calibrated for --finetune_from's weights", p.stdout[-2000:])
qat_file = open(os.path.join(Q, "quantization.safetensors"), "rb").read()
qat_meta = json.loads(qat_file[8:8 + int.from_bytes(qat_file[:8], "little")])["__metadata__"]
check(qat_meta.get("qat") == "true" and qat_meta.get("s0/weights") == "raw",
      "the QAT run writes a quantization file of the weights it saved", str(qat_meta)[:500])
p = run("train_and_eval", *qat_args, "--num_iter", "16")
check("the ranges " in p.stdout and "was trained with" in p.stdout, "a resumed QAT run keeps its ranges",
      p.stdout[-2000:])
trained = final_data(os.path.join(Q, "log.json"))
run("eval", "--model_dir", Q, "--eval_batch_size", "500", "--int8")
qat_int8 = final_data(os.path.join(Q, "log.json"))
check(qat_int8["form"].startswith("int8") and abs(qat_int8["top1_accuracy"] - trained["top1_accuracy"]) <= 0.005,
      f"eval --int8 after --qat: top-1 {qat_int8['top1_accuracy']}, the QAT evaluation's {trained['top1_accuracy']}")
p = run("quantize", "--model_dir", Q, "--data_dir", DATA, "--qat", expect=None)
check(p.returncode != 0 and "--qat" in p.stderr, "quantize does not take --qat", p.stderr)

# The Triton repository: config.pbtxt parses as Triton's ModelConfig (tritonclient's model_config_pb2, loaded by
# path: its package would pull in gRPC) and agrees with the ONNX file.
pb2_path = None
for root in sys.path:
    candidate = os.path.join(root, "tritonclient", "grpc", "model_config_pb2.py")
    if os.path.exists(candidate):
        pb2_path = candidate
        break
spec = importlib.util.spec_from_file_location("model_config_pb2", pb2_path)
model_config_pb2 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(model_config_pb2)
config = text_format.Parse(open(os.path.join(REPO, "fashion", "config.pbtxt")).read(), model_config_pb2.ModelConfig())
onnx_io = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim][1:]
           for v in list(model.graph.input) + list(model.graph.output)}
onnx_types = {v.name: v.type.tensor_type.elem_type for v in list(model.graph.input) + list(model.graph.output)}
triton_type = {onnx.TensorProto.FLOAT: model_config_pb2.TYPE_FP32, onnx.TensorProto.INT64: model_config_pb2.TYPE_INT64}
tensors = list(config.input) + list(config.output)
check(config.name == "fashion" and config.backend == "onnxruntime" and config.max_batch_size == 64 and
      [t.name for t in config.input] == ["input"] and [t.name for t in config.output] == ["logits", "probabilities", "classes"]
      and all(list(t.dims) == onnx_io[t.name] and t.data_type == triton_type[onnx_types[t.name]] for t in tensors),
      "config.pbtxt: Triton's ModelConfig, inputs and outputs as in the ONNX file", str(config))
check(list(config.dynamic_batching.preferred_batch_size) == [8, 16, 32, 64] and
      config.dynamic_batching.max_queue_delay_microseconds == 100 and
      config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU and
      config.output[0].label_filename == "labels.txt",
      "dynamic batching, a CPU instance group, the label file")
labels_txt = open(os.path.join(REPO, "fashion", "labels.txt")).read().splitlines()
check(labels_txt == open(os.path.join(A, "classes.txt")).read().splitlines() and
      open(os.path.join(REPO, "fashion", "1", "model.onnx"), "rb").read() == open(ONNX, "rb").read(),
      "labels.txt holds the class names; 1/model.onnx is the exported file")
p = run("export", "--model_dir", A, "--triton_repository", os.path.join(WORK, "gpu_repo"), "--triton_tensorrt_fp16")
gpu = text_format.Parse(open(os.path.join(WORK, "gpu_repo", "resnet18", "config.pbtxt")).read(),
                        model_config_pb2.ModelConfig())
accelerator = gpu.optimization.execution_accelerators.gpu_execution_accelerator[0]
check(gpu.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU and accelerator.name == "tensorrt"
      and accelerator.parameters["precision_mode"] == "FP16" and gpu.max_batch_size == 128,
      "GPU repository: KIND_GPU, TensorRT FP16 accelerator, max_batch_size 128 by default")

# Errors: clear messages, and no file left behind.
out = os.path.join(WORK, "none.onnx")
p = run("export", "--arch", "resnet51", "--weights", os.path.join(A, "final_weights.pt"), "--onnx_output", out, expect=None)
check(p.returncode != 0 and "resnet51" in p.stderr and "resnet18" in p.stderr and not os.path.exists(out),
      "an unknown architecture is named, with the known ones", p.stderr)
p = run("export", "--arch", "resnet34", "--num_classes", "10", "--weights", os.path.join(A, "final_weights.pt"),
        "--onnx_output", out, expect=None)
check(p.returncode != 0 and "final_weights.pt" in p.stderr and "missing" in p.stderr and not os.path.exists(out),
      "weights of another architecture are refused, naming the file and the mismatch", p.stderr[-1500:])
blocked = os.path.join(WORK, "not_a_dir")
open(blocked, "w").close()
p = run("export", "--model_dir", A, "--onnx_output", os.path.join(blocked, "m.onnx"), expect=None)
check(p.returncode != 0 and "not_a_dir" in p.stderr and not any(n.startswith(".m.onnx") for n in os.listdir(WORK)),
      "an unwritable output path is an error naming it, with no partial file", p.stderr)
p = run("export", "--model_dir", A, expect=None)
check(p.returncode != 0 and "--onnx_output" in p.stderr, "export without --onnx_output or --triton_repository is refused",
      p.stderr)

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
shutil.rmtree(WORK, ignore_errors=True)
print("all export checks passed")
