"""C++ -> Python -> C++ round trip: loads the C++-written state dicts into the reference library's model
(torchvision, or timm for the architectures whose layout is timm's) strictly, with torch.load(weights_only=True)
and the safetensors package, then writes them back from that model's own state_dict() with torch.save and
safetensors, for the C++ side to compare bit for bit."""
import sys

import safetensors.torch
import torch
import torchvision

TIMM = {"resnext101_32x4d": "resnext101_32x4d", "se_resnext101_32x4d": "seresnext101_32x4d",
        **{f"efficientnet_v2_b{i}": f"tf_efficientnetv2_b{i}" for i in range(4)}}


def main():
    arch, directory = sys.argv[1], sys.argv[2]
    if arch in TIMM:
        import timm
        model = timm.create_model(TIMM[arch], pretrained=False)
    else:
        model = getattr(torchvision.models, arch)()
    from_pt = torch.load(f"{directory}/cpp.pt", weights_only=True)
    model.load_state_dict(from_pt, strict=True)
    torch.save(model.state_dict(), f"{directory}/python.pt")
    from_st = safetensors.torch.load_file(f"{directory}/cpp.safetensors")
    model.load_state_dict(from_st, strict=True)
    for key, value in from_pt.items():
        if not torch.equal(value, from_st[key]):
            sys.exit(f"{key}: .pt and .safetensors differ")
    safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                                f"{directory}/python.safetensors")
    print(f"python round trip ok: {len(from_pt)} tensors")


if __name__ == "__main__":
    main()
