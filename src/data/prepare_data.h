// `convnets prepare_data`: converts datasets into ImageNet-schema TFRecord shards plus DALI index files, so
// every dataset takes the same input path as ImageNet.
#pragma once
#include <string>
#include <vector>

namespace convnets {

struct ShardWriterOptions {
  std::string output_dir{};
  int train_shards = 4;
  int validation_shards = 1;
  int jpeg_quality = 95;
  // IDX datasets: the names of labels 0..9 (empty: Fashion-MNIST's). Written to <out>/classes.txt.
  std::vector<std::string> class_names{};
  // An output directory that already holds train-* / validation-* files other than those this run writes
  // (another shard count) is refused, unless `overwrite` (then they are removed first).
  bool overwrite = false;
};

struct PrepareReport {
  std::vector<std::string> files;  // shards written, in order
  int64_t train_records = 0, validation_records = 0;
  int64_t reencoded = 0;             // PNG, grayscale or CMYK inputs stored as RGB JPEG
  std::vector<std::string> skipped;  // "path: reason" of inputs that are not readable images
  std::vector<std::string> classes;  // label order; also written to <out>/classes.txt
};

// Fashion-MNIST (or MNIST) IDX files from `idx_dir` (train-images-idx3-ubyte[.gz],
// train-labels-idx1-ubyte[.gz], t10k-*): 28x28 grayscale becomes RGB JPEG, labels 0..9 are stored 1-based
// like ImageNet's. Shards: <out>/train-%05d-of-%05d, <out>/validation-%05d-of-%05d; indexes in <out>/idx/.
PrepareReport prepare_idx_dataset(const std::string& idx_dir, const ShardWriterOptions& options);

// An image folder: <root>/train/<class>/<image> and optionally <root>/val (or validation)/<class>/<image>.
// Classes are the sorted directory names of train; labels are stored 1-based in that order. JPEG bytes are
// kept as they are unless grayscale or CMYK; PNGs and those are re-encoded as RGB JPEG (as
// build_imagenet_data.py does). Files that are neither JPEG nor PNG, or corrupt, are listed in `skipped`
// with a warning on stderr. Train files are shuffled with a fixed seed; shards are written one at a time.
PrepareReport prepare_image_folder(const std::string& root, const ShardWriterOptions& options);

// Class names of Fashion-MNIST, index = 0-based label.
const std::vector<std::string>& fashion_mnist_classes();

}  // namespace convnets
