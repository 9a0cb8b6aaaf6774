"""Real photographs for the tests: the photo wallpapers of Debian's plasma-workspace-wallpapers package
(installed by scripts/setup.sh), cut into crops. Models whose BatchNorm statistics are calibrated on these
give different answers for different images, unlike random inputs through a random initialisation."""
import glob
import os

import numpy as np
import torch
from PIL import Image

WALLPAPERS = "/usr/share/wallpapers"
# The photographs among them (the others are drawings and gradients).
PHOTOS = ["BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
          "OneStandsOut", "Path", "Shell", "summer_1am"]
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def photo_paths():
    paths = []
    for name in PHOTOS:
        jpgs = sorted(glob.glob(os.path.join(WALLPAPERS, name, "contents/images*/*.jpg")))
        if jpgs:
            paths.append(max(jpgs, key=os.path.getsize))
    if len(paths) < 8:
        raise SystemExit(f"only {len(paths)} photos under {WALLPAPERS}: install plasma-workspace-wallpapers "
                         "(scripts/setup.sh does)")
    return paths


_cache = {}


def _photo(path, long_side=1024):
    if path not in _cache:
        im = Image.open(path).convert("RGB")
        im.thumbnail((long_side, long_side), Image.BICUBIC)
        _cache[path] = im
    return _cache[path]


def crops(n, size, seed, min_frac=0.25):
    """n square crops (PIL, size x size) of random windows of the photos, cycling through them."""
    rng = np.random.default_rng(seed)
    paths = photo_paths()
    out = []
    for i in range(n):
        im = _photo(paths[(i + seed) % len(paths)])
        side = int(min(im.size) * rng.uniform(min_frac, 1.0))
        x = int(rng.integers(0, im.width - side + 1))
        y = int(rng.integers(0, im.height - side + 1))
        out.append(im.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC))
    return out


def to_batch(images):
    """PIL images -> normalised float32 NCHW."""
    arr = np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in images])
    x = torch.from_numpy(arr).permute(0, 3, 1, 2)
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def randomize_affine(model, generator):
    """Non-trivial BatchNorm scale and shift (an initialisation has 1 and 0)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.normal_(0.0, 0.1, generator=generator)


def scale_activations(model, images, generator, low=0.05, high=1.0, skip_gates=False):
    """A data-dependent rescaling of every convolution (one pass, in forward order): each output channel's
    standard deviation on `images` becomes a log-uniform draw from [low, high], as in trained networks, where
    channels differ in scale but none collapses. A random initialisation does collapse some channels (e.g.
    EfficientNet's depthwise convolutions at low resolution: variance 1e-6), and BatchNorm then multiplies
    any deviation from the calibration images by up to 1/sqrt(eps): such a model's float32 logits are 10-70%
    from float64, which no test can use."""
    def hook(module, inputs, output):
        # skip_gates: convolutions on 1x1 maps (squeeze-excitation gates) keep their initialisation. Rescaled on
        # 16 pooled vectors, a gate becomes a step function of its input: a deep SE-ResNeXt's float32 logits end
        # 1-50% from float64 (2e-5 without). (EfficientNet's gates are fine either way, and the fixtures made
        # with them rescaled are kept as they are.)
        if skip_gates and output.shape[2] * output.shape[3] == 1:
            return output
        std = output.transpose(0, 1).reshape(output.shape[1], -1).std(1).clamp_min(1e-12)
        target = torch.exp(torch.empty(output.shape[1]).uniform_(float(np.log(low)), float(np.log(high)),
                                                                  generator=generator))
        factor = (target / std).to(output.dtype)
        module.weight.mul_(factor.view(-1, *([1] * (module.weight.dim() - 1))))
        if module.bias is not None:
            module.bias.mul_(factor)
        return output * factor.view(1, -1, 1, 1)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    _train_without_noise(model)
    with torch.no_grad():
        model(images)
    for h in handles:
        h.remove()
    model.eval()
    return model


def _train_without_noise(model):
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout) or type(m).__name__ in ("StochasticDepth", "DropPath"):
            m.eval()


def calibrate(model, images):
    """BatchNorm running statistics measured in eval mode, layer by layer in one pass over `images`: each
    layer's statistics are those of its input as the already calibrated layers before it produce it. (Statistics
    gathered in train mode describe train-mode inputs; at low resolution and in deep EfficientNets the
    mismatch compounds until eval-mode logits explode.) The model is left in eval mode."""
    def pre_hook(module, inputs):
        x = inputs[0]
        module.running_mean.copy_(x.mean((0, 2, 3)))
        module.running_var.copy_(x.var((0, 2, 3), unbiased=True))

    model.eval()
    handles = [m.register_forward_pre_hook(pre_hook) for m in model.modules()
               if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        model(images)
    for h in handles:
        h.remove()
    return model
