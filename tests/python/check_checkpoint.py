"""A convnets training checkpoint in Python: torch.load(weights_only=True), then ckpt["state_dict"] into
torchvision's resnet18 (strict)."""
import sys

import torch
import torchvision


def main():
    ckpt = torch.load(sys.argv[1], weights_only=True)
    model = torchvision.models.resnet18(num_classes=10)
    model.load_state_dict(ckpt["state_dict"], strict=True)
    assert int(ckpt["meta"]["epoch"]) == 3, ckpt["meta"]
    assert len(ckpt["optimizer"]) > 0
    print("sections:", sorted(ckpt))


if __name__ == "__main__":
    main()
