// eval, predict and export on a training checkpoint that holds EMA weights: each runs (and says it runs) the
// EMA weights, and predict's probabilities are the softmax over classes of the model's logits on images
// normalised with the architecture's mean and std, computed here without the library's pipeline.
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <cmath>
#include <filesystem>

#include "data/transforms.h"
#include "infer/export_model.h"
#include "infer/modes.h"
#include "models/inference_graph.h"
#include "models/registry.h"
#include "run/checkpoint_file.h"
#include "run/data_setup.h"
#include "test_support.h"
#include "train/trainer.h"
#include "util/state_dict.h"

namespace convnets {
namespace {

class ReaderModes : public ::testing::Test {
 protected:
  // One short training run with a fast EMA (decay 0.5), shared by the tests: its raw and EMA weights differ.
  static void SetUpTestSuite() {
    dir_ = new testing::ScratchDir();
    testing::write_image_folder(dir_->path() / "data", 3, 6, 40);
    RunConfig c = train_config();
    testing::RecordingConsole quiet;
    run_training(c, TrainMode::kTrain, {.console = &quiet});
    const auto checkpoints = checkpoints_newest_first(dir_->file("run"));
    ASSERT_FALSE(checkpoints.empty());
    checkpoint_ = new std::string(checkpoints.front());
    const TensorSections sections = load_checkpoint(*checkpoint_);
    save_safetensors(dir_->file("raw.safetensors"), section(sections, "state_dict"));
    save_safetensors(dir_->file("ema.safetensors"), section(sections, "ema_state_dict"));
  }
  static void TearDownTestSuite() {
    delete checkpoint_;
    delete dir_;
  }

  static RunConfig train_config() {
    // No num_classes: the image folder's three class directories set it.
    return resolve_config("", {{"arch", "resnet18"},
                               {"data_dir", dir_->file("data")},
                               {"model_dir", dir_->file("run")},
                               {"image_size", "32"},
                               {"eval_image_size", "32"},
                               {"batch_size", "6"},
                               {"num_iter", "3"},
                               {"ema_decay", "0.5"},
                               {"lr_warmup_epochs", "0"},
                               {"lr_init", "0.5"},
                               {"workers", "1"}});
  }
  // What a reader mode gets: the run's configuration, and the given extra keys.
  static RunConfig reader_config(std::vector<std::pair<std::string, std::string>> extra) {
    std::vector<std::pair<std::string, std::string>> flags = {
        {"arch", "resnet18"},      {"num_classes", "3"}, {"data_dir", dir_->file("data")},
        {"eval_image_size", "32"}, {"batch_size", "6"},  {"warmup_steps", "0"}};
    flags.insert(flags.end(), extra.begin(), extra.end());
    return resolve_config("", flags);
  }
  static ConvNetPtr model_from(const std::string& weights_file) {
    ConvNetPtr m = create_model("resnet18", {.num_classes = 3});
    load_state_dict(*m, load_safetensors(weights_file).tensors);
    m->eval();
    return m;
  }

  static testing::ScratchDir* dir_;
  static std::string* checkpoint_;
};
testing::ScratchDir* ReaderModes::dir_ = nullptr;
std::string* ReaderModes::checkpoint_ = nullptr;

TEST_F(ReaderModes, EvalRunsTheEmaWeightsAndReportsThemApart) {
  testing::RecordingConsole console;
  const EvalModeResult from_run =
      run_eval_mode(reader_config({{"model_dir", dir_->file("run")}}), {&console});
  ASSERT_TRUE(from_run.ema.has_value()) << "the checkpoint's EMA weights were not evaluated";
  const EvalModeResult ema =
      run_eval_mode(reader_config({{"weights", dir_->file("ema.safetensors")}}), {&console});
  const EvalModeResult raw =
      run_eval_mode(reader_config({{"weights", dir_->file("raw.safetensors")}}), {&console});
  EXPECT_FALSE(ema.ema.has_value());
  EXPECT_EQ(from_run.ema->images, 18);
  EXPECT_DOUBLE_EQ(from_run.ema->loss, ema.raw.loss);
  EXPECT_EQ(from_run.ema->correct1, ema.raw.correct1);
  EXPECT_DOUBLE_EQ(from_run.raw.loss, raw.raw.loss);
  EXPECT_NE(ema.raw.loss, raw.raw.loss) << "raw and EMA weights must differ for this test to mean anything";
}

TEST_F(ReaderModes, PredictGivesTheEmaModelsSoftmaxOverClasses) {
  const std::vector<std::string> images = {dir_->file("data/val/class0/0.jpg"),
                                           dir_->file("data/val/class1/1.jpg"),
                                           dir_->file("data/val/class2/2.jpg")};
  std::filesystem::create_directories(dir_->file("to_predict"));
  for (size_t i = 0; i < images.size(); ++i)
    std::filesystem::copy_file(images[i], dir_->file("to_predict/" + std::to_string(i) + ".jpg"));
  testing::RecordingConsole console;
  const PredictResult r = run_predict(
      reader_config(
          {{"model_dir", dir_->file("run")}, {"to_predict", dir_->file("to_predict")}, {"topk", "3"}}),
      {&console});
  EXPECT_NE(console.out.find("(EMA weights)"), std::string::npos) << console.out;
  ASSERT_EQ(r.predictions.size(), 3u);
  // The folder names travel with the run: classes.txt beside the checkpoints, and predict's names.
  const std::vector<std::string> names = {"class0", "class1", "class2"};
  EXPECT_EQ(testing::lines_of(dir_->file("run/classes.txt")), names);
  EXPECT_EQ(r.class_names, names);

  // The reference: the EMA model on (pixel / 255 - mean) / std with ImageNet's mean and std written out here,
  // and the softmax over the three classes in double.
  const ConvNetPtr ema = model_from(dir_->file("ema.safetensors"));
  const ConvNetPtr raw = model_from(dir_->file("raw.safetensors"));
  const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
  EvalTransformOptions t = eval_transform_options(reader_config({}));
  double max_raw_difference = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const ImageU8 img = eval_transform(decode_image(read_file(images[i])), t);
    torch::Tensor x = torch::empty({1, 3, img.height, img.width}, torch::kFloat);
    auto a = x.accessor<float, 4>();
    for (int y = 0; y < img.height; ++y)
      for (int xx = 0; xx < img.width; ++xx)
        for (int ch = 0; ch < 3; ++ch)
          a[0][ch][y][xx] = static_cast<float>(
              (img.pixels[static_cast<size_t>((y * img.width + xx) * 3 + ch)] / 255.0 - mean[ch]) / std[ch]);
    torch::NoGradGuard no_grad;
    auto softmax = [](const torch::Tensor& logits) {
      std::vector<double> p(3);
      double sum = 0;
      for (int k = 0; k < 3; ++k) sum += p[static_cast<size_t>(k)] = std::exp(logits[0][k].item<double>());
      for (auto& v : p) v /= sum;
      return p;
    };
    const std::vector<double> expected = softmax(ema->forward(x)), other = softmax(raw->forward(x));
    const Prediction& p = r.predictions[i];
    double total = 0;
    for (size_t k = 0; k < 3; ++k) {
      const auto c = static_cast<size_t>(p.classes[k]);
      EXPECT_NEAR(p.probabilities[k], expected[c], 2e-5) << images[i] << " class " << c;
      max_raw_difference = std::max(max_raw_difference, std::abs(expected[c] - other[c]));
      total += p.probabilities[k];
    }
    EXPECT_NEAR(total, 1.0, 1e-5) << "the probabilities of an image sum to 1 over the classes";
  }
  // The raw weights' answers are 10x the tolerance away: a predict that ran them would fail above.
  EXPECT_GT(max_raw_difference, 2e-4) << "raw and EMA weights must differ for this test to mean anything";
}

TEST_F(ReaderModes, ExportWritesTheEmaWeights) {
  testing::RecordingConsole console;
  const ExportResult r =
      run_export(reader_config({{"model_dir", dir_->file("run")}, {"onnx_output", dir_->file("model.onnx")}}),
                 {&console});
  EXPECT_EQ(r.weights, "ema");
  EXPECT_NE(console.out.find("(ema weights of"), std::string::npos) << console.out;
  // The file holds the EMA model's folded stem convolution, byte for byte, and not the raw model's.
  const std::string file = read_file(dir_->file("model.onnx"));
  auto first_conv_bytes = [](const ConvNetPtr& m) {
    const torch::Tensor w = inference_graph(*m, "resnet18").ops.front().weight.contiguous();
    return std::string(static_cast<const char*>(w.data_ptr()), 256);
  };
  EXPECT_NE(file.find(first_conv_bytes(model_from(dir_->file("ema.safetensors")))), std::string::npos);
  EXPECT_EQ(file.find(first_conv_bytes(model_from(dir_->file("raw.safetensors")))), std::string::npos);
}

}  // namespace
}  // namespace convnets
