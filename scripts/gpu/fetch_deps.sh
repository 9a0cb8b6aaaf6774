#!/usr/bin/env bash
# Fills .gpu/ (git-ignored) with what scripts/gpu/run.sh needs on a GPU machine that has no network:
#   .gpu/debs/      the Debian packages of our build dependencies (unpacked there with dpkg -x, never installed)
#   .gpu/fm/        a Fashion-MNIST subset in its original idx.gz format (30000 train, 10000 test images)
#   .gpu/photos/    a few photos (plasma-workspace-wallpapers, downscaled) to cut JPEG tiles from
#   .gpu/prebuilt/  this machine's convnets, test_gpu and dist_worker (stripped): the fallback when the build
#                   there fails (same torch 2.11.0+cu130 ABI)
# Run here, after scripts/build.sh. Prints the size of what will travel (the device tool carries 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=.gpu
mkdir -p "$DEST/debs" "$DEST/fm" "$DEST/photos" "$DEST/prebuilt"

# Build dependencies (headers + the shared libraries they link), as on a Debian 12 machine.
DEBS=(libjpeg62-turbo-dev libjpeg62-turbo libpng-dev libpng16-16 zlib1g-dev zlib1g libcli11-dev
      nlohmann-json3-dev libyaml-cpp-dev libyaml-cpp0.7 libgtest-dev libgmock-dev libgloo-dev)
(cd "$DEST/debs" && rm -f ./*.deb && apt-get download "${DEBS[@]}" >/dev/null)

# Fashion-MNIST subset, same format, so `convnets prepare_data --format fashion_mnist` reads it.
.venv/bin/python - "$DEST/fm" <<'PY'
import gzip, struct, sys
src, dst = "/usr/share/datasets/fashion-mnist", sys.argv[1]
for name, keep in (("train-images-idx3-ubyte", 30000), ("train-labels-idx1-ubyte", 30000),
                   ("t10k-images-idx3-ubyte", 10000), ("t10k-labels-idx1-ubyte", 10000)):
    data = gzip.open(f"{src}/{name}.gz").read()
    magic, count = struct.unpack(">II", data[:8])
    dims = (magic & 0xFF) - 1
    header = 8 + 4 * dims
    item = 1
    for d in struct.unpack(">" + "I" * dims, data[8:header]):
        item *= d
    out = data[:4] + struct.pack(">I", keep) + data[8:header] + data[header:header + keep * item]
    with gzip.open(f"{dst}/{name}.gz", "wb", compresslevel=9) as f:
        f.write(out)
PY

# Photos: the largest JPEG of the first wallpapers, downscaled to 1600 px on the long side.
if [ "$(ls "$DEST/photos" | wc -l)" -lt 8 ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download plasma-workspace-wallpapers >/dev/null && dpkg -x ./*.deb x)
  .venv/bin/python - "$tmp/x/usr/share/wallpapers" "$DEST/photos" <<'PY'
import glob, os, sys
from PIL import Image
src, dst = sys.argv[1], sys.argv[2]
photos = []
for w in sorted(glob.glob(os.path.join(src, "*"))):
    jpgs = glob.glob(os.path.join(w, "contents/images*/*.jpg"))
    if jpgs:
        photos.append(max(jpgs, key=os.path.getsize))
for i, p in enumerate(photos[:10]):
    im = Image.open(p).convert("RGB")
    im.thumbnail((1600, 1600), Image.BICUBIC)
    im.save(os.path.join(dst, f"photo_{i:02d}.jpg"), quality=92)
PY
  rm -rf "$tmp"
fi

for t in build/app/convnets build/tests/test_gpu build/tests/dist_worker; do
  [ -x "$t" ] && strip -o "$DEST/prebuilt/$(basename "$t")" "$t"
done
du -sh "$DEST"/*
echo "carried in all: $(du -sh "$DEST" | cut -f1) (+ the working tree, $(git ls-files -z | du -ch --files0-from=- | tail -1 | cut -f1))"
