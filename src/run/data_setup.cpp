#include "run/data_setup.h"

#include <cmath>
#include <filesystem>
#include <sstream>

#include "data/data_dir.h"
#include "data/image_folder_dataset.h"
#include "data/tfrecord_dataset.h"
#include "models/registry.h"
#include "util/file_io.h"

namespace convnets {
namespace fs = std::filesystem;

std::shared_ptr<const ImageSource> open_split(const RunConfig& config, bool train, Console& console) {
  const DataConfig& data = config.data;
  if (data.data_dir.empty()) return nullptr;
  const std::string& dir = data.data_dir;
  if (!fs::is_directory(dir)) throw std::runtime_error("data_dir '" + dir + "' does not exist");
  const std::string split = train ? "train" : "validation";
  if (has_file_with_prefix(dir, split + "-")) {
    DatasetOptions o;
    o.num_classes = config.model.num_classes;
    o.strict = data.strict_data;
    o.index_dir = data.data_idx_dir.empty() ? (fs::path(dir) / "idx").string() : data.data_idx_dir;
    o.console = &console;
    return std::make_shared<TFRecordDataset>(find_shards(dir, split, console), o);
  }
  std::vector<std::string> folders =
      train ? std::vector<std::string>{"train"} : std::vector<std::string>{"val", "validation"};
  for (const auto& f : folders) {
    const fs::path p = fs::path(dir) / f;
    if (fs::is_directory(p)) {
      auto ds = std::make_shared<ImageFolderDataset>(p.string(), data.strict_data);
      ds->set_console(console);
      if (static_cast<int64_t>(ds->classes().size()) != config.model.num_classes) {
        throw std::runtime_error("image folder '" + p.string() + "' has " +
                                 std::to_string(ds->classes().size()) +
                                 " classes, but num_classes = " + std::to_string(config.model.num_classes) +
                                 " (set by a flag, a recipe or the run's config.yaml; left unset, it is "
                                 "taken from the data)");
      }
      return ds;
    }
  }
  throw std::runtime_error("data_dir '" + dir + "' has neither '" + split + "-*' TFRecord shards nor a '" +
                           folders.front() + "' image folder; convert data with `convnets prepare_data`");
}

ResolvedData resolve_data(const RunConfig& config) {
  const ModelEntry& e = find_model(config.model.arch);
  ResolvedData d;
  d.train_size = config.train_input.image_size.value_or(e.data.train_size);
  d.eval_size = config.eval_input.eval_image_size.value_or(e.data.eval_size);
  d.crop_pct = config.eval_input.eval_crop_pct.value_or(e.data.crop_pct);
  d.crop_mode = config.eval_input.eval_crop_mode.value_or(e.data.crop_mode);
  d.interpolation = config.data.interpolation.value_or(e.data.interpolation);
  d.mean = config.data.mean.value_or(e.data.mean);
  d.std = config.data.std.value_or(e.data.std);
  return d;
}

TrainTransformOptions train_transform_options(const RunConfig& config, int64_t size,
                                              double randaug_magnitude) {
  const ResolvedData d = resolve_data(config);
  const TrainInputConfig& in = config.train_input;
  TrainTransformOptions t;
  t.size = static_cast<int>(size);
  t.interpolation = d.interpolation;
  t.sampler = in.crop_sampler;
  t.augmentation = in.augmentation;
  if (in.crop_min_area) {
    t.distorted.min_area = *in.crop_min_area;
    t.resized.min_scale = *in.crop_min_area;
  }
  t.randaugment_layers = static_cast<int>(in.randaug_layers);
  t.randaugment_magnitude = randaug_magnitude;
  return t;
}

EvalTransformOptions eval_transform_options(const RunConfig& config) {
  const ResolvedData d = resolve_data(config);
  EvalTransformOptions t;
  t.size = static_cast<int>(d.eval_size);
  t.interpolation = d.interpolation;
  // Evaluation decodes whole images, so accuracies are those torchvision computes on the same files.
  t.dct_scaling = false;
  switch (d.crop_mode) {
    case CropMode::kCenter:  // the shorter side to size / crop_pct (224 / 0.875 = 256), centre crop
      t.crop = EvalCrop::kResizeShorterThenCenter;
      t.resize_shorter = static_cast<int>(std::floor(static_cast<double>(d.eval_size) / d.crop_pct + 1e-9));
      break;
    case CropMode::kCenterCrop:
      t.crop = EvalCrop::kCenterFractionThenResize;
      t.crop_fraction = d.crop_pct;
      break;
    case CropMode::kSquash:
      t.crop = EvalCrop::kSquash;
      break;
  }
  return t;
}

namespace {
// What the loaders of both splits share: decode threads, prefetch, seed, this rank's share.
LoaderOptions base_loader_options(const RunConfig& config, int rank, int world) {
  LoaderOptions lo;
  lo.workers = static_cast<int>(config.data.workers);
  lo.prefetch = static_cast<int>(config.data.prefetch);
  lo.seed = static_cast<uint64_t>(config.iterations.seed);
  lo.rank = rank;
  lo.world_size = world;
  return lo;
}
}  // namespace

LoaderOptions eval_loader_options(const RunConfig& config, int rank, int world) {
  LoaderOptions lo = base_loader_options(config, rank, world);
  lo.batch_size = config.eval_batch_size();
  lo.train = false;
  lo.eval_transform = eval_transform_options(config);
  return lo;
}

LoaderOptions train_loader_options(const RunConfig& config, int64_t image_size, double randaug_magnitude,
                                   int rank, int world) {
  LoaderOptions lo = base_loader_options(config, rank, world);
  lo.batch_size = config.iterations.batch_size;
  lo.train = true;
  lo.train_transform = train_transform_options(config, image_size, randaug_magnitude);
  return lo;
}

}  // namespace convnets
