"""Reference outputs from torchvision and timm for the C++ model tests.

For every architecture this writes torchvision weights (torch.save for some, the safetensors package for others)
plus, in <arch>_io.safetensors, an input batch and torchvision's eval-mode logits. For resnet50, efficientnet_b0
and efficientnet_b4 it also records train-mode logits, loss, every parameter gradient and the BN running stats
after one train-mode forward, drawn with a fixed seed so that dropout / stochastic-depth masks are shared.

Recipe hyper-parameters that differ from torchvision's defaults are set on the reference to ours first
(EfficientNet BN eps 1e-3 / momentum 0.01); architecture and names are torchvision's, unchanged.
"""
import argparse
import json
import os

import safetensors.torch
import torch
import torchvision

ALL = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"] + [f"efficientnet_b{i}" for i in range(8)]
TRAIN_CHECKED = {"resnet50": 96, "efficientnet_b0": 96, "efficientnet_b4": 96}
TRAIN_SEED = 1234


def randomize_batch_norm(model, generator):
    """Non-trivial BN affine and running statistics, so eval mode is not an identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.normal_(0.0, 0.1, generator=generator)
                m.running_mean.normal_(0.0, 0.1, generator=generator)
                m.running_var.uniform_(0.5, 1.5, generator=generator)


def recipe_batch_norm(model, arch):
    if arch.startswith("efficientnet"):
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eps, m.momentum = 1e-3, 0.01


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    counts = {}
    for index, arch in enumerate(ALL):
        torch.manual_seed(index)
        generator = torch.Generator().manual_seed(100 + index)
        model = getattr(torchvision.models, arch)()
        counts[arch] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        recipe_batch_norm(model, arch)
        randomize_batch_norm(model, generator)
        state = model.state_dict()
        if index % 2 == 0:
            torch.save(state, os.path.join(args.out, f"{arch}.pt"))
        else:
            safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()},
                                        os.path.join(args.out, f"{arch}.safetensors"))
        size = TRAIN_CHECKED.get(arch, 64)
        batch = 4 if arch in TRAIN_CHECKED else 1
        io = {"input": torch.randn(batch, 3, size, size, generator=generator)}
        model.eval()
        with torch.no_grad():
            io["eval_logits"] = model(io["input"])
        if arch in TRAIN_CHECKED:
            model.train()
            io["target"] = torch.randint(0, 1000, (batch,), generator=generator)
            torch.manual_seed(TRAIN_SEED)
            logits = model(io["input"])
            loss = torch.nn.functional.cross_entropy(logits, io["target"])
            loss.backward()
            io["train_logits"] = logits.detach()
            io["train_loss"] = loss.detach().reshape(1)
            for name, p in model.named_parameters():
                io["grad." + name] = p.grad
            for name, b in model.named_buffers():
                if "running" in name:
                    io["after_train." + name] = b
        safetensors.torch.save_file({k: v.contiguous() for k, v in io.items()},
                                    os.path.join(args.out, f"{arch}_io.safetensors"))
        print(f"{arch}: {counts[arch]} parameters", flush=True)
    with open(os.path.join(args.out, "parameter_counts.json"), "w") as f:
        json.dump(counts, f)

    # timm's own EfficientNet-B0 layout (conv_stem, blocks.S.B.conv_dw, ...) and its ResNet-50.
    import timm
    for arch in ["efficientnet_b0", "resnet50"]:
        torch.manual_seed(7)
        generator = torch.Generator().manual_seed(7)
        model = timm.create_model(arch, pretrained=False)
        recipe_batch_norm(model, arch)  # timm's BatchNormAct2d subclasses BatchNorm2d
        randomize_batch_norm(model, generator)
        model.eval()
        x = torch.randn(2, 3, 64, 64, generator=generator)
        with torch.no_grad():
            logits = model(x)
        torch.save(model.state_dict(), os.path.join(args.out, f"timm_{arch}.pt"))
        safetensors.torch.save_file({"input": x, "eval_logits": logits}, os.path.join(args.out, f"timm_{arch}_io.safetensors"))
    print("timm fixtures written", flush=True)


if __name__ == "__main__":
    main()
