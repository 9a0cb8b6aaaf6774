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
};

struct PrepareReport {
  std::vector<std::string> files;  // shards written, in order
  int64_t train_records = 0, validation_records = 0;
};

// Fashion-MNIST (or MNIST) IDX files from `idx_dir` (train-images-idx3-ubyte[.gz],
// train-labels-idx1-ubyte[.gz], t10k-*): 28x28 grayscale becomes RGB JPEG, labels 0..9 are stored 1-based
// like ImageNet's. Shards: <out>/train-%05d-of-%05d, <out>/validation-%05d-of-%05d; indexes in <out>/idx/.
PrepareReport prepare_idx_dataset(const std::string& idx_dir, const ShardWriterOptions& options);

// Class names of Fashion-MNIST, index = 0-based label.
const std::vector<std::string>& fashion_mnist_classes();

}  // namespace convnets
