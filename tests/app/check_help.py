"""Each subcommand's --help lists the key groups of its mode and none of the others' keys.

usage: check_help.py CONVNETS_BINARY
"""
import subprocess
import sys

BIN = sys.argv[1]


def help_of(mode):
    p = subprocess.run([BIN, mode, "--help"], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        sys.exit(f"{mode} --help -> {p.returncode}\n{p.stderr}")
    return p.stdout


def check(cond, what, text=""):
    if not cond:
        sys.exit("FAILED: " + what + ("\n" + text[-3000:] if text else ""))
    print("ok:", what)


# (mode, flags that must be there, flags that must not)
cases = [
    ("train", ["--lr_init", "--mixup_alpha", "--model_dir", "--sync_bn", "--finetune_from", "--eval_image_size",
               "--checkpoint_every_steps", "--qat", "--calibration_images"],
     ["--to_predict", "--batch_sizes", "--weights", "--topk", "--int8"]),
    ("train_and_eval", ["--epochs_between_eval", "--eval_batch_size"], ["--to_predict", "--weights"]),
    ("training_benchmark", ["--warmup_steps", "--batch_size", "--amp", "--qat"],
     ["--to_predict", "--keep_checkpoints", "--weights", "--eval_image_size"]),
    ("eval", ["--weights", "--data_dir", "--eval_batch_size", "--dist_backend", "--int8"],
     ["--mixup_alpha", "--lr_init", "--n_stages", "--to_predict", "--finetune_from", "--calibration_images",
      "--qat"]),
    ("predict", ["--to_predict", "--topk", "--output", "--weights", "--class_names", "--int8"],
     ["--mixup_alpha", "--bucket_size_mb", "--lr_init", "--num_iter", "--sync_bn", "--finetune_from",
      "--calibration_method"]),
    ("quantize", ["--calibration_images", "--calibration_method", "--calibration_percentile", "--calibration_split",
                  "--data_dir", "--weights", "--model_dir"],
     ["--int8", "--lr_init", "--to_predict", "--num_iter", "--mixup_alpha", "--qat"]),
    ("inference_benchmark", ["--batch_sizes", "--num_iter", "--weights", "--amp", "--int8"],
     ["--mixup_alpha", "--data_dir", "--to_predict", "--lr_init"]),
]
for mode, present, absent in cases:
    text = help_of(mode)
    missing = [f for f in present if f + " " not in text and f + "\n" not in text]
    extra = [f for f in absent if f + " " in text or f + "\n" in text]
    check(not missing and not extra, f"{mode} --help: its keys ({len(present)} checked) and none of {absent}",
          f"missing {missing}, unexpected {extra}\n{text}")
# Keys come in titled groups.
text = help_of("train")
check("Optimisation:" in text and "Learning-rate schedule:" in text and "Data parallel:" in text,
      "train --help groups its keys", text)
# One flag style: every subcommand takes --snake_case (the old hyphenated spellings still work).
for mode, flag in (("prepare_data", "--train_shards"), ("info", "--image_size")):
    check(flag in help_of(mode), f"{mode} --help lists {flag}")
p = subprocess.run([BIN, "info", "--arch", "resnet18", "--image-size", "64"], capture_output=True, text=True)
check(p.returncode == 0 and "resnet18 at 64x64" in p.stdout, "info --image-size still works", p.stderr)
# A key of another mode is named as such, with the modes that take it and what this mode uses instead.
p = subprocess.run([BIN, "eval", "--model_dir", "/nonexistent", "--image_size", "64"], capture_output=True, text=True)
check(p.returncode != 0 and "eval does not take --image_size (a key of the Training input group, taken by train, "
      "train_and_eval, training_benchmark); eval uses --eval_image_size" in p.stderr,
      "eval --image_size: which modes take it, and eval's key instead", p.stderr)
p = subprocess.run([BIN, "predict", "--lr_init=0.1"], capture_output=True, text=True)
check(p.returncode != 0 and "predict does not take --lr_init (a key of the Optimisation group, taken by train" in p.stderr,
      "predict --lr_init=0.1 names the modes that take it", p.stderr)
p = subprocess.run([BIN, "eval", "--no_such_key", "1"], capture_output=True, text=True)
check(p.returncode != 0 and "eval: unknown option --no_such_key" in p.stderr, "an unknown option is named", p.stderr)
# Keys export spelled otherwise before they became configuration keys: the new name, not "unknown option".
for old, new in (("--output", "--onnx_output"), ("--model_name", "--triton_model_name"), ("--topk", "--export_topk")):
    p = subprocess.run([BIN, "export", "--weights", "/nonexistent", old, "x"], capture_output=True, text=True)
    check(p.returncode != 0 and f"export does not take {old}: it was renamed, use {new}" in p.stderr,
          f"export {old} names its new spelling {new}", p.stderr)
print("all help checks passed")
