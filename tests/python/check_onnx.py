"""An exported model through the ONNX checker, ONNX Runtime and OpenVINO (CPU), against convnets' own logits and
torchvision's on the same weights and photos.

usage: check_onnx.py MODEL.onnx MODEL_FP16.onnx|- IO.safetensors NUM_CLASSES [--openvino]
Both runtimes compute on one thread: CTest runs a test per core.
IO holds `input` (8 normalised photo crops), `ours` (convnets' eager float32 logits), `reference` (float64
logits: torchvision's, or at sizes the fixtures lack, convnets' float64 eager model, which equals torchvision's
to 1e-10 in tests/infer), `reference_fp32` and `reference_fp16` (PyTorch's own float32 and float16 logits; the
latter only with a float16 file). `-` for MODEL_FP16 skips the float16 file.

Bounds (relative error ||a - b|| / ||b|| over the batch):
- float32 file (ONNX Runtime, and OpenVINO with its f32 precision hint) vs ours and vs torchvision: 1e-4, or 4x PyTorch's own float32 error against float64 when that is
  larger (random calibrated networks that amplify rounding; the C++ parity tests use the same rule);
- float16 file against float64: 1e-2, or 4x PyTorch's own float16 error when that is larger (the same rule: these
  random calibrated networks amplify half precision's 2^-11 rounding far beyond a trained network; the trained
  Fashion-MNIST model in tests/app/check_export.py is held to 1e-2 itself), top-1 equal on every photo whose float64
  margin between the two best classes exceeds twice 4x PyTorch's float16 error on it (elsewhere a flip is rounding).
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort
import safetensors.numpy

model_path, fp16_path, io_path, num_classes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with_openvino = "--openvino" in sys.argv[5:]
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def top5_sets(logits):
    return [set(np.argsort(-row)[:5].tolist()) for row in logits]


io = safetensors.numpy.load_file(io_path)
x, ours, reference = io["input"], io["ours"], io["reference"]
# Each float32 runtime is held to 8x the larger float32 error of the two we already have (PyTorch's and
# convnets', which agree within 10-20%), or 1e-4: runtimes sum in different orders and approximate activations
# differently (ONNX Runtime's float32 error on EfficientNet-B4 at 380 px on an AVX2 CPU measured 4.7x
# PyTorch's, 8e-5 to 1e-4; an export error, a wrong padding or a float16 weight, is 1e-3 and more). Two
# runtimes each within `bound` of the float64 reference are within 2 * bound of each other.
bound = max(1e-4, 8 * max(rel(io["reference_fp32"], reference), rel(ours, reference)))
pair_bound = 2 * bound

model = onnx.load(model_path)
onnx.checker.check_model(model, full_check=True)
check(model.ir_version == 8 and [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17],
      f"IR version {model.ir_version}, opset {[o.version for o in model.opset_import]}: 8 and 17; checker passes")
graph_input = model.graph.input[0]
dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
check(graph_input.name == "input" and dims == ["batch", 3, x.shape[2], x.shape[3]],
      f"input 'input' [batch, 3, H, W]: {dims}")
outputs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
check(outputs.get("logits") == ["batch", num_classes] and "probabilities" in outputs and "classes" in outputs,
      f"outputs {outputs}")
op_types = {n.op_type for n in model.graph.node}
check("BatchNormalization" not in op_types and "Dropout" not in op_types,
      f"inference form: no BatchNormalization, no Dropout ({sorted(op_types)})")

options = ort.SessionOptions()
options.intra_op_num_threads = options.inter_op_num_threads = 1
session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
logits, probabilities, classes = session.run(None, {"input": x})
check(rel(logits, reference) < bound,
      f"ONNX Runtime vs the float64 reference: {rel(logits, reference):.2e} (bound {bound:.1e}; PyTorch "
      f"{rel(io['reference_fp32'], reference):.2e}, convnets {rel(ours, reference):.2e})")
check(rel(logits, ours) < pair_bound, f"ONNX Runtime vs convnets: {rel(logits, ours):.2e} (bound {pair_bound:.1e})")
check((logits.argmax(1) == ours.argmax(1)).all() and (logits.argmax(1) == reference.argmax(1)).all(),
      f"top-1 equal: {logits.argmax(1).tolist()}")
check(top5_sets(logits) == top5_sets(ours) == top5_sets(reference), "top-5 sets equal")
check(len(set(logits.argmax(1).tolist())) >= 3, "the photos get different classes (the check can fail)")
softmax = np.exp(logits - logits.max(1, keepdims=True))
softmax /= softmax.sum(1, keepdims=True)
check(np.abs(probabilities - softmax).max() < 1e-6, "probabilities are the softmax of the logits")
check((classes == np.argsort(-probabilities, axis=1)[:, :classes.shape[1]]).all() and
      classes.dtype == np.int64 and classes.shape[1] == min(5, num_classes), f"classes: top-{classes.shape[1]} indices")

# --openvino: OpenVINO (the other CPU runtime our users serve with) on the same file, in float32, held to
# the same bounds as ONNX Runtime (the C++ test asks for it on one architecture per kind of op).
if with_openvino:
    import openvino
    compiled = openvino.Core().compile_model(model_path, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                                 "INFERENCE_NUM_THREADS": 1})
    ov_logits = compiled({"input": x})[compiled.output("logits")]
    check(rel(ov_logits, ours) < pair_bound and (ov_logits.argmax(1) == ours.argmax(1)).all(),
          f"OpenVINO {openvino.__version__.split('-')[0]} vs convnets: {rel(ov_logits, ours):.2e} "
          f"(bound {pair_bound:.1e}), top-1 equal")

# The batch dimension is dynamic: 1, 7 and 13 images through the same file.
for n in (1, 7, 13):
    batch = np.concatenate([x] * ((n + len(x) - 1) // len(x)))[:n]
    expected = np.concatenate([ours] * ((n + len(x) - 1) // len(x)))[:n]
    got = session.run(["logits"], {"input": batch})[0]
    check(got.shape == (n, num_classes) and rel(got, expected) < pair_bound, f"batch {n}: {rel(got, expected):.2e}")

if fp16_path == "-":
    sys.exit(1 if failures else 0)

# Half precision: float32 in and out, float16 weights and compute.
half = onnx.load(fp16_path)
onnx.checker.check_model(half, full_check=True)
weights = [t for t in half.graph.initializer if t.data_type != onnx.TensorProto.INT64]
check(all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights) and
      half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT and
      half.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT,
      "fp16 file: float16 weights, float32 input and output")
half_logits = ort.InferenceSession(fp16_path, options, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
half_bound = max(1e-2, 4 * rel(io["reference_fp16"], reference))
# A top-1 can only flip where the float64 margin between the two best classes is within twice the image's
# error; the images whose margin exceeds 2x (4x PyTorch's own float16 error on that image) must keep theirs.
pt_error = np.abs(io["reference_fp16"].astype(np.float64) - reference).max(1)
best2 = -np.sort(-reference, axis=1)[:, :2]
stable = (best2[:, 0] - best2[:, 1]) > 2 * 4 * pt_error
check(rel(half_logits, reference) < half_bound and (half_logits.argmax(1) == reference.argmax(1))[stable].all(),
      f"fp16 vs float64: {rel(half_logits, reference):.2e} (bound {half_bound:.1e}; PyTorch float16 "
      f"{rel(io['reference_fp16'], reference):.2e}), top-1 equal on the {int(stable.sum())} of {len(x)} photos "
      f"whose margin exceeds the error")
sys.exit(1 if failures else 0)
