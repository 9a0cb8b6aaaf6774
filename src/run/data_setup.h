// The data of a run: the train / eval split of --data_dir (TFRecord shards or image folders), the resolved
// input sizes, crops and normalisation of the architecture, and the loader settings of each split.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "data/image_source.h"
#include "data/loader.h"
#include "run/config.h"
#include "util/console.h"

namespace convnets {

// The train or eval split of data_dir: TFRecords (<dir>/train-*, <dir>/validation-*) or image folders
// (<dir>/train, <dir>/val or <dir>/validation). nullptr when data_dir is empty (synthetic data). Bad records
// and stale shard sets are reported on `console`.
std::shared_ptr<const ImageSource> open_split(const RunConfig& config, bool train, Console& console);

// The configuration's input settings with the architecture's defaults filled in.
struct ResolvedData {
  int64_t train_size, eval_size;
  double crop_pct;
  CropMode crop_mode;
  Interpolation interpolation;
  std::array<double, 3> mean, std;
};
ResolvedData resolve_data(const RunConfig& config);
TrainTransformOptions train_transform_options(const RunConfig& config, int64_t size,
                                              double randaug_magnitude);
EvalTransformOptions eval_transform_options(const RunConfig& config);
// Loader settings of the eval split (eval batch, every image once) and of the train split at one
// progressive stage's image size and RandAugment magnitude; `rank` of `world` reads its share.
LoaderOptions eval_loader_options(const RunConfig& config, int rank = 0, int world = 1);
LoaderOptions train_loader_options(const RunConfig& config, int64_t image_size, double randaug_magnitude,
                                   int rank = 0, int world = 1);

}  // namespace convnets
