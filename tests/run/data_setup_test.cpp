#include "run/data_setup.h"

#include <gtest/gtest.h>

#include "models/registry.h"

namespace convnets {

// What eval, train_and_eval and predict resize with, per architecture: each registry entry's eval size,
// interpolation and crop rule (ResNet: shorter side to size * 256 / 224, centre crop; EfficientNet: centre
// S / (S + 32) of the shorter side, then resize), whole-image decoding; and the config's overrides.
TEST(RunSetup, EvalTransformOptionsFollowEachArchitecture) {
  for (const auto& name : model_names()) {
    const ModelEntry& e = find_model(name);
    const EvalTransformOptions o = eval_transform_options(default_config(name));
    EXPECT_EQ(o.size, e.data.eval_size) << name;
    EXPECT_EQ(o.interpolation, parse_interpolation(e.data.interpolation)) << name;
    EXPECT_EQ(o.interpolation,
              e.family == ModelFamily::kResNet ? Interpolation::kBilinear : Interpolation::kBicubic)
        << name;
    EXPECT_FALSE(o.dct_scaling) << name;
    if (e.family == ModelFamily::kResNet) {
      EXPECT_EQ(o.crop, EvalCrop::kResizeShorterThenCenter) << name;
      EXPECT_EQ(o.resize_shorter, e.data.eval_size * 256 / 224) << name;
    } else {
      EXPECT_EQ(o.crop, EvalCrop::kCenterFractionThenResize) << name;
      EXPECT_DOUBLE_EQ(o.crop_fraction, static_cast<double>(e.data.eval_size) / (e.data.eval_size + 32))
          << name;
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

}  // namespace convnets
