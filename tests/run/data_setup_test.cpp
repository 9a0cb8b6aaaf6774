#include "run/data_setup.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "data/data_dir.h"
#include "data/loader.h"
#include "models/registry.h"
#include "test_support.h"
#include "util/file_io.h"

namespace convnets {

// What eval, train_and_eval and predict resize with, per architecture: each registry entry's eval size,
// interpolation and crop rule (ResNet: shorter side to size * 256 / 224, centre crop; EfficientNet: centre
// S / (S + 32) of the shorter side, then resize), whole-image decoding; and the config's overrides.
TEST(RunSetup, EvalTransformOptionsFollowEachArchitecture) {
  for (const auto& name : model_names()) {
    const ModelEntry& e = find_model(name);
    const EvalTransformOptions o = eval_transform_options(default_config(name));
    EXPECT_EQ(o.size, e.data.eval_size) << name;
    EXPECT_EQ(o.interpolation, e.data.interpolation) << name;
    EXPECT_FALSE(o.dct_scaling) << name;
    switch (e.data.crop_mode) {
      case CropMode::kCenter:
        EXPECT_EQ(o.crop, EvalCrop::kResizeShorterThenCenter) << name;
        EXPECT_EQ(o.resize_shorter, static_cast<int>(std::floor(e.data.eval_size / e.data.crop_pct + 1e-9)))
            << name;
        break;
      case CropMode::kCenterCrop:
        EXPECT_EQ(o.crop, EvalCrop::kCenterFractionThenResize) << name;
        EXPECT_DOUBLE_EQ(o.crop_fraction, e.data.crop_pct) << name;
        break;
      case CropMode::kSquash:
        EXPECT_EQ(o.crop, EvalCrop::kSquash) << name;
        break;
    }
    if (name.rfind("resnet", 0) ==
        0) {  // the seeds' rules: ResNet 256 -> 224 bilinear; EfficientNet S / (S + 32)
      EXPECT_EQ(o.crop, EvalCrop::kResizeShorterThenCenter) << name;
      EXPECT_EQ(o.resize_shorter, e.data.eval_size * 256 / 224) << name;
      EXPECT_EQ(o.interpolation, Interpolation::kBilinear) << name;
    } else if (name.rfind("efficientnet_b", 0) == 0) {
      EXPECT_EQ(o.crop, EvalCrop::kCenterFractionThenResize) << name;
      EXPECT_DOUBLE_EQ(o.crop_fraction, static_cast<double>(e.data.eval_size) / (e.data.eval_size + 32))
          << name;
      EXPECT_EQ(o.interpolation, Interpolation::kBicubic) << name;
    }
    // And the loader of the eval split gets exactly these.
    const LoaderOptions lo = eval_loader_options(default_config(name));
    EXPECT_EQ(lo.eval_transform.interpolation, o.interpolation) << name;
    EXPECT_EQ(lo.eval_transform.size, o.size) << name;
    EXPECT_FALSE(lo.train) << name;
  }
  RunConfig c = default_config("efficientnet_b3");
  c.data.interpolation = Interpolation::kBilinear;
  c.eval_input.eval_image_size = 128;
  EXPECT_EQ(eval_transform_options(c).interpolation, Interpolation::kBilinear);
  EXPECT_EQ(eval_transform_options(c).size, 128);
}

// Every architecture normalises with ImageNet's mean and std (torchvision's and timm's constants), but
// EfficientNet V2-L (its weights, torchvision's and timm's, expect 0.5 / 0.5); mean subtracted, std divided:
// (pixel / 255 - mean) / std, in that order. The keys mean / std override them.
TEST(RunSetup, NormalisationIsImageNetsMeanThenStd) {
  for (const auto& name : model_names()) {
    const ResolvedData d = resolve_data(default_config(name));
    if (name == "efficientnet_v2_l") {
      EXPECT_EQ(d.mean, (std::array<double, 3>{0.5, 0.5, 0.5}));
      EXPECT_EQ(d.std, (std::array<double, 3>{0.5, 0.5, 0.5}));
      continue;
    }
    EXPECT_EQ(d.mean, (std::array<double, 3>{0.485, 0.456, 0.406})) << name;
    EXPECT_EQ(d.std, (std::array<double, 3>{0.229, 0.224, 0.225})) << name;
  }
  const ResolvedData custom =
      resolve_data(resolve_config("", {{"mean", "0.5,0.4,0.3"}, {"std", "0.2, 0.2, 0.1"}}));
  EXPECT_EQ(custom.mean, (std::array<double, 3>{0.5, 0.4, 0.3}));
  EXPECT_EQ(custom.std, (std::array<double, 3>{0.2, 0.2, 0.1}));
  EXPECT_THROW(resolve_config("", {{"mean", "0.5,0.4"}}), std::invalid_argument);
  const torch::Tensor pixel =
      torch::tensor({0, 128, 255}, torch::kUInt8).view({1, 1, 3, 1}).expand({1, 1, 3, 3});
  const ResolvedData d = resolve_data(default_config("resnet50"));
  const torch::Tensor x = normalize_images(pixel.contiguous(), d.mean, d.std);  // [1, 3, 1, 3]
  for (int c = 0; c < 3; ++c) {
    const double expected[3] = {(0 / 255.0 - 0.485) / 0.229, (128 / 255.0 - 0.456) / 0.224,
                                (1 - 0.406) / 0.225};
    EXPECT_NEAR(x[0][c][0][c].item<double>(), expected[c], 1e-6) << "channel " << c;
  }
}

// num_classes: the data's own count when no recipe or flag sets it (an image folder's class directories,
// classes.txt beside TFRecords), the flag's when one does; 1000 without data.
TEST(RunSetup, NumClassesComesFromTheDataUnlessSet) {
  testing::ScratchDir dir;
  for (const char* c : {"cat", "dog", "emu"})
    std::filesystem::create_directories(dir.path() / "folders/train" / c);
  EXPECT_EQ(resolve_config("", {{"data_dir", dir.file("folders")}}).model.num_classes, 3);
  EXPECT_EQ(data_class_names(dir.file("folders")), (std::vector<std::string>{"cat", "dog", "emu"}));
  EXPECT_EQ(resolve_config("", {{"data_dir", dir.file("folders")}, {"num_classes", "5"}}).model.num_classes,
            5);
  std::filesystem::create_directories(dir.path() / "records");
  write_file_atomic(dir.file("records/train-00000-of-00001"), "");
  write_file_atomic(dir.file("records/classes.txt"), "a\nb\r\n");
  EXPECT_EQ(resolve_config("", {{"data_dir", dir.file("records")}}).model.num_classes, 2);
  EXPECT_EQ(resolve_config("", {}).model.num_classes, 1000);
  EXPECT_EQ(resolve_config("", {{"data_dir", dir.file("missing")}}).model.num_classes, 1000);
}

}  // namespace convnets
