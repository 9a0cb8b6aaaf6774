"""Reference outputs from torchvision and timm for the C++ model tests.

Every reference model is made discriminative and well conditioned first (tests/python/real_images.py): each
convolution is rescaled on real photographs so that its channels have trained-like spreads, BatchNorm scale and
shift are randomised, and the running statistics are measured on 32 photo crops. The eval comparisons use 8 of
those crops: on them the logits differ from image to image (the C++ tests check that before comparing) and
float32 stays within ~1e-5 of float64. (On other images a deep random EfficientNet calibrated on 32 crops
amplifies the difference from its calibration set through every layer: float32 ends 10-70% from float64.)

For every architecture this writes the torchvision weights in torchvision's own BatchNorm convention (eps 1e-5,
momentum 0.1; torch.save for some, the safetensors package for others) and, in <arch>_io.safetensors, the 8
crops at 64 px with the float64 eval logits (model and input upcast) and PyTorch's own float32 logits.
resnet50 and efficientnet_b0 are also calibrated at their own resolution, 224 px (<arch>_full.pt,
<arch>_full_io.safetensors; EfficientNet-B3 and B4 at 300 and 380 px run end to end in
tests/app/check_foreign_weights.py). The recipe models (resnet50, efficientnet_b0, efficientnet_b4) get a
train-mode pass in float64 at 128 px with a fixed seed (shared dropout / stochastic-depth masks): logits, loss,
every parameter gradient, the running statistics after it.

--part K --parts N writes the share of part K of N (architectures split by their measured cost, on one
thread each), so that CTest runs the parts side by side; each part writes parameter_counts_K.json.
"""
import argparse
import copy
import json
import os
import sys

import safetensors.torch
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import real_images  # noqa: E402

# Every architecture of the zoo, in the registry's order (the C++ tests pick .pt / .safetensors by the index),
# with the library and model name its reference comes from.
SOURCES = {
    **{a: ("torchvision", a) for a in ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                       "resnext50_32x4d"]},
    "resnext101_32x4d": ("timm", "resnext101_32x4d"),  # torchvision's class, groups 32 x width 4 (= timm)
    "resnext101_32x8d": ("torchvision", "resnext101_32x8d"),
    "resnext101_64x4d": ("torchvision", "resnext101_64x4d"),
    "se_resnext101_32x4d": ("timm", "seresnext101_32x4d"),
    **{f"efficientnet_b{i}": ("torchvision", f"efficientnet_b{i}") for i in range(8)},
    **{f"efficientnet_v2_{v}": ("torchvision", f"efficientnet_v2_{v}") for v in "sml"},
    **{f"efficientnet_v2_b{i}": ("timm", f"tf_efficientnetv2_b{i}") for i in range(4)},
}
ALL = list(SOURCES)
FULL = {"resnet50": 224, "efficientnet_b0": 224}
# Train mode in float64 (gradients, running statistics): the recipe models at 128 px, one architecture per kind
# of block of the later families at 64 (tests/parity/torchvision_parity_test.cpp TorchvisionTrain).
TRAIN_CHECKED = {"resnet50": 128, "efficientnet_b0": 128, "efficientnet_b4": 128,
                 **{a: 64 for a in ["resnext50_32x4d", "se_resnext101_32x4d", "efficientnet_v2_s",
                                    "efficientnet_v2_b0"]}}
# timm's own layouts of architectures whose native layout is torchvision's (loaded through the renaming).
TIMM = {"efficientnet_b0": "efficientnet_b0", "resnet50": "resnet50", "efficientnet_v2_s": "tf_efficientnetv2_s"}
TRAIN_SEED = 1234
# Seconds each architecture's fixtures take on one thread (measured), to split the work into equal parts;
# "timm" is the timm models at the end.
COST = {"resnet50": 16, "efficientnet_v2_l": 14, "efficientnet_b0": 9, "efficientnet_b7": 9, "timm": 8,
        "efficientnet_b4": 7, "resnext101_32x8d": 7, "resnext101_64x4d": 7, "efficientnet_b6": 6,
        "se_resnext101_32x4d": 6, "efficientnet_v2_m": 6, "efficientnet_v2_s": 5, "efficientnet_b5": 5,
        "resnet152": 5, "resnext101_32x4d": 4, "resnet101": 4, "resnext50_32x4d": 3}
CALIBRATION_IMAGES = 32
TEST_IMAGES = 8


def reference(arch):
    """The reference library's model of `arch`, freshly initialised."""
    library, name = SOURCES[arch]
    if library == "timm":
        import timm
        if name.startswith("tf_efficientnetv2_b"):  # with convnets' (and torchvision's) dropout and drop path
            dropout = [0.2, 0.2, 0.3, 0.3][int(name[-1])]
            return timm.create_model(name, pretrained=False, drop_rate=dropout, drop_path_rate=0.2)
        return timm.create_model(name, pretrained=False)
    return getattr(torchvision.models, name)()


def discriminative(arch, index, size, calibration_images, seed):
    """The reference `arch` (seeded), rescaled and calibrated on photo crops at `size`; also returns the crops."""
    torch.manual_seed(index)
    generator = torch.Generator().manual_seed(100 + index)
    model = reference(arch)
    crops = real_images.to_batch(real_images.crops(calibration_images, size, seed=seed))
    real_images.scale_activations(model, crops[:16], generator, skip_gates=arch == "se_resnext101_32x4d")
    real_images.randomize_affine(model, generator)
    real_images.calibrate(model, crops)
    return model, crops, generator


def eval_io(model, images):
    """Float64 reference logits (a float64 copy of the model on the float32 input upcast) and float32 ones."""
    model.eval()
    with torch.no_grad():
        logits32 = model(images)
        logits64 = copy.deepcopy(model).double()(images.double())
        # PyTorch's own half-precision error sets the bound for exported float16 files (tests/python/check_onnx.py).
        logits16 = copy.deepcopy(model).half()(images.half()).float()
    return {"input": images, "eval_logits": logits64, "eval_logits_fp32": logits32, "eval_logits_fp16": logits16}


def parts(n):
    """ALL and "timm" split into n lists of about equal cost (largest first, each to the cheapest part)."""
    shares, totals = [[] for _ in range(n)], [0] * n
    for item in sorted(ALL + ["timm"], key=lambda a: -COST.get(a, 2)):
        k = totals.index(min(totals))
        shares[k].append(item)
        totals[k] += COST.get(item, 2)
    return shares


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--part", type=int, default=0)
    parser.add_argument("--parts", type=int, default=1)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    mine = parts(args.parts)[args.part]
    counts = {}
    for index, arch in enumerate(ALL):
        if arch not in mine:
            continue
        model, crops, generator = discriminative(arch, index, 64, CALIBRATION_IMAGES, seed=index)
        counts[arch] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        state = model.state_dict()
        if index % 2 == 0:
            torch.save(state, os.path.join(args.out, f"{arch}.pt"))
        else:
            safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()},
                                        os.path.join(args.out, f"{arch}.safetensors"))
        io = eval_io(model, crops[:TEST_IMAGES])
        if arch in TRAIN_CHECKED:
            size = TRAIN_CHECKED[arch]
            train = copy.deepcopy(model).double().train()
            x = real_images.to_batch(real_images.crops(4, size, seed=2000 + index)).double()
            target = torch.randint(0, 1000, (4,), generator=generator)
            torch.manual_seed(TRAIN_SEED)
            logits = train(x)
            loss = torch.nn.functional.cross_entropy(logits, target)
            loss.backward()
            io.update({"train_input": x, "target": target, "train_logits": logits.detach(),
                       "train_loss": loss.detach().reshape(1)})
            for name, p in train.named_parameters():
                io["grad." + name] = p.grad
            for name, b in train.named_buffers():
                if "running" in name:
                    io["after_train." + name] = b
        safetensors.torch.save_file({k: v.contiguous() for k, v in io.items()},
                                    os.path.join(args.out, f"{arch}_io.safetensors"))
        if arch in FULL:
            full, full_crops, _ = discriminative(arch, index, FULL[arch], 16, seed=3000 + index)
            torch.save(full.state_dict(), os.path.join(args.out, f"{arch}_full.pt"))
            safetensors.torch.save_file({k: v.contiguous() for k, v in eval_io(full, full_crops[:TEST_IMAGES]).items()},
                                        os.path.join(args.out, f"{arch}_full_io.safetensors"))
        top1 = io["eval_logits"].argmax(1).tolist()
        print(f"{arch}: {counts[arch]} parameters; top-1 of the 8 test photos: {top1}", flush=True)
    with open(os.path.join(args.out, f"parameter_counts_{args.part}.json"), "w") as f:
        json.dump(counts, f)
    if "timm" in mine:
        make_timm_fixtures(args.out)


def make_timm_fixtures(out):
    """timm's own layouts of architectures whose native layout is torchvision's: EfficientNet-B0 (conv_stem,
    blocks.S.B.conv_dw, ...), its ResNet-50, and tf_efficientnetv2_s (TensorFlow padding, eps 1e-3)."""
    import timm
    for arch, name in TIMM.items():
        torch.manual_seed(7)
        generator = torch.Generator().manual_seed(7)
        model = timm.create_model(name, pretrained=False)
        crops = real_images.to_batch(real_images.crops(CALIBRATION_IMAGES, 64, seed=77))
        real_images.scale_activations(model, crops[:16], generator)
        real_images.randomize_affine(model, generator)  # timm's BatchNormAct2d subclasses BatchNorm2d
        real_images.calibrate(model, crops)
        torch.save(model.state_dict(), os.path.join(out, f"timm_{arch}.pt"))
        safetensors.torch.save_file({k: v.contiguous() for k, v in eval_io(model, crops[:TEST_IMAGES]).items()},
                                    os.path.join(out, f"timm_{arch}_io.safetensors"))
    print("timm fixtures written", flush=True)


if __name__ == "__main__":
    main()
