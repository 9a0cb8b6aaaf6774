// Damaged data through every reader mode and every CPU inference form (the oneDNN plan, LibTorch's fused ops,
// the eager model; the CUDA form is driven the same way in tests/gpu): TFRecord shards with the usual damage
// next to good records (infer/damaged_shards.h), laid out so that one batch is all bad and the last batch is
// all bad. eval, and the evaluation inside train_and_eval, must count and name the bad records and evaluate
// exactly the good ones (the same figures as a clean shard of the good records alone); predict must name
// the unreadable files and predict the others; a split of nothing but bad records is an error that names the
// data, not a division by zero.
#include <gtest/gtest.h>

#include <filesystem>

#include "infer/damaged_shards.h"
#include "infer/modes.h"
#include "run/inference_model.h"
#include "run/run_device.h"
#include "test_support.h"
#include "train/trainer.h"

namespace convnets {
namespace {

namespace fs = std::filesystem;

// The reader settings of each CPU inference form.
struct Form {
  std::string name;
  std::vector<std::pair<std::string, std::string>> keys;
};
void PrintTo(const Form& f, std::ostream* os) {
  *os << f.name;
}
const std::vector<Form>& forms() {
  static const std::vector<Form> f = {{"plan", {{"cpu_inference", "plan"}}},
                                      {"fused", {{"cpu_inference", "fused"}}},
                                      {"eager", {{"inference_form", "false"}}}};
  return f;
}

class DamagedData : public ::testing::TestWithParam<Form> {
 protected:
  // A ResNet-18 trained briefly on 3 classes of an image folder, and TFRecord shards made from its val
  // images: `good/` holds the good records alone, `damaged/` the same records in the same order among bad
  // ones.
  static void SetUpTestSuite() {
    dir_ = new testing::ScratchDir();
    testing::write_image_folder(dir_->path() / "folder", 3, 6, 40);
    testing::RecordingConsole quiet;
    run_training(resolve_config("", {{"arch", "resnet18"},
                                     {"data_dir", dir_->file("folder")},
                                     {"model_dir", dir_->file("run")},
                                     {"image_size", "32"},
                                     {"batch_size", "6"},
                                     {"num_iter", "2"},
                                     {"lr_warmup_epochs", "0"},
                                     {"lr_init", "0.5"},
                                     {"workers", "1"}}),
                 TrainMode::kTrain, {.console = &quiet});

    testing::write_damaged_shards(dir_->path() / "folder", dir_->path());
  }
  static void TearDownTestSuite() { delete dir_; }

  static RunConfig reader_config(const std::string& data,
                                 std::vector<std::pair<std::string, std::string>> extra = {}) {
    // The trained run's model_dir unless `extra` names another (a flag given twice: the last one counts).
    std::vector<std::pair<std::string, std::string>> flags = {{"arch", "resnet18"},
                                                              {"num_classes", "3"},
                                                              {"data_dir", dir_->file(data)},
                                                              {"batch_size", "4"},
                                                              {"eval_image_size", "32"},
                                                              {"warmup_steps", "0"},
                                                              {"workers", "2"},
                                                              {"model_dir", dir_->file("run")}};
    flags.insert(flags.end(), extra.begin(), extra.end());
    for (const auto& kv : GetParam().keys) flags.push_back(kv);
    return resolve_config("", flags);
  }

  static testing::ScratchDir* dir_;
};
testing::ScratchDir* DamagedData::dir_ = nullptr;

constexpr int64_t kGood = testing::DamagedShards::kGood, kBad = testing::DamagedShards::kBad;

void expect_same_evaluation(const EvalResult& damaged, const EvalResult& clean, const std::string& form) {
  EXPECT_EQ(damaged.images, kGood) << form;
  EXPECT_EQ(damaged.skipped_records, kBad) << form;
  EXPECT_EQ(clean.images, kGood) << form;
  EXPECT_EQ(clean.skipped_records, 0) << form;
  // The same images through the same weights: batches of other sizes may round differently in the last bits.
  EXPECT_EQ(damaged.correct1, clean.correct1) << form;
  EXPECT_NEAR(damaged.loss, clean.loss, 1e-5 * std::max(1.0, clean.loss)) << form;
}

TEST_P(DamagedData, EvalSkipsAndNamesBadRecordsAndEvaluatesTheGoodOnes) {
  testing::RecordingConsole console, clean_console;
  const EvalModeResult damaged = run_eval_mode(reader_config("damaged"), {&console});
  const EvalModeResult clean = run_eval_mode(reader_config("good"), {&clean_console});
  expect_same_evaluation(damaged.raw, clean.raw, GetParam().name);
  EXPECT_NE(clean.raw.loss, 0.0);
  // Each bad record named, by file and offset, where the run reports (the truncated one when the shard
  // opens).
  size_t named = 0;
  for (size_t at = console.err.find("skipping bad record: "); at != std::string::npos;
       at = console.err.find("skipping bad record: ", at + 1))
    ++named;
  EXPECT_EQ(named, static_cast<size_t>(kBad)) << console.err;
  for (const char* where : {"validation-00000-of-00002 @ ", "validation-00001-of-00002 @ ", "is truncated"})
    EXPECT_NE(console.err.find(where), std::string::npos) << console.err;
  EXPECT_EQ(clean_console.err.find("skipping"), std::string::npos) << clean_console.err;
}

TEST_P(DamagedData, TrainAndEvalEvaluatesTheGoodRecordsOfADamagedSplit) {
  testing::ScratchDir run;
  testing::RecordingConsole console;
  auto config = [&](const std::string& data, const std::string& model_dir) {
    return reader_config(data, {{"model_dir", run.file(model_dir)},
                                {"image_size", "32"},
                                {"num_iter", "1"},
                                {"lr_warmup_epochs", "0"},
                                {"seed", "3"}});
  };
  const TrainOutcome damaged = run_training(config("damaged", "a"), TrainMode::kTrainAndEval, {&console});
  ASSERT_TRUE(damaged.eval);
  // The same training on the same (good) train records, evaluated on the clean split.
  const TrainOutcome clean = run_training(config("good", "b"), TrainMode::kTrainAndEval, {&console});
  ASSERT_TRUE(clean.eval);
  expect_same_evaluation(*damaged.eval, *clean.eval, GetParam().name);
}

TEST_P(DamagedData, EvalOfASplitWithNoGoodRecordIsAnErrorNamingTheData) {
  testing::RecordingConsole console;
  try {
    run_eval_mode(reader_config("all_bad"), {&console});
    FAIL() << "evaluated a split with no readable record";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("every record of the eval split of '" + dir_->file("all_bad") + "' was bad (" +
                        std::to_string(testing::DamagedShards::kAllBad) + " skipped"),
              std::string::npos)
        << what;
  }
}

TEST_P(DamagedData, PredictNamesUnreadableFilesAndPredictsTheOthers) {
  testing::ScratchDir images;
  const std::string jpeg = read_file(dir_->file("folder/val/class2/3.jpg"));
  // Sorted names: batches of 4 (predict's eval_batch_size) are [bad bad bad bad] [good bad good].
  write_file_atomic(images.file("a_empty.jpg"), "");
  write_file_atomic(images.file("b_garbage.jpg"), "garbage, not a JPEG");
  write_file_atomic(images.file("c_truncated.jpg"), jpeg.substr(0, jpeg.size() / 3));
  write_file_atomic(images.file("d_garbage.png"), "\x89PNG\r\n\x1a\n and nothing after");
  write_file_atomic(images.file("e_good.jpg"), jpeg);
  write_file_atomic(images.file("f_truncated.jpg"), jpeg.substr(0, jpeg.size() - 40));
  write_file_atomic(images.file("g_good.jpg"), read_file(dir_->file("folder/val/class0/3.jpg")));
  testing::RecordingConsole console;
  const PredictResult r = run_predict(
      reader_config("good",
                    {{"to_predict", images.path().string()}, {"eval_batch_size", "4"}, {"topk", "3"}}),
      {&console});
  ASSERT_EQ(r.predictions.size(), 2u) << console.err;
  EXPECT_EQ(fs::path(r.predictions[0].file).filename(), "e_good.jpg");
  EXPECT_EQ(fs::path(r.predictions[1].file).filename(), "g_good.jpg");
  EXPECT_EQ(r.unreadable.size(), 5u);
  for (const char* bad : {"a_empty", "b_garbage", "c_truncated", "d_garbage", "f_truncated"})
    EXPECT_NE(console.err.find(bad), std::string::npos) << bad << "\n" << console.err;
  // The same answers as for the two good files alone (all three classes' probabilities).
  testing::ScratchDir good;
  for (const char* name : {"e_good.jpg", "g_good.jpg"}) fs::copy_file(images.file(name), good.file(name));
  const PredictResult alone = run_predict(
      reader_config("good", {{"to_predict", good.path().string()}, {"eval_batch_size", "4"}, {"topk", "3"}}),
      {&console});
  ASSERT_EQ(alone.predictions.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(r.predictions[i].classes, alone.predictions[i].classes);
    for (size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(r.predictions[i].probabilities[k], alone.predictions[i].probabilities[k], 1e-6);
  }

  // A directory of nothing but unreadable files predicts nothing and names them all.
  for (const char* good : {"e_good.jpg", "g_good.jpg"}) fs::remove(images.file(good));
  testing::RecordingConsole none;
  const PredictResult empty = run_predict(
      reader_config("good", {{"to_predict", images.path().string()}, {"eval_batch_size", "4"}}), {&none});
  EXPECT_TRUE(empty.predictions.empty());
  EXPECT_EQ(empty.unreadable.size(), 5u);
}

// The form itself, given a batch of no images (what a loader would deliver if it passed an all-bad batch on):
// logits [0, classes], no kernel run.
TEST_P(DamagedData, AnEmptyBatchGivesNoLogits) {
  const RunConfig c = reader_config("good");
  ConvNetPtr model = create_model("resnet18", {.num_classes = 3});
  InferenceModel form(model, "resnet18", setup_device(c.precision, c.cpu), c.precision, c.cpu);
  const torch::Tensor logits =
      form.forward_images(torch::zeros({0, 32, 32, 3}, torch::kUInt8), {0.5, 0.5, 0.5}, {0.2, 0.2, 0.2});
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(form.forward(torch::zeros({0, 3, 32, 32})).sizes(), (std::vector<int64_t>{0, 3}));
}

INSTANTIATE_TEST_SUITE_P(Forms, DamagedData, ::testing::ValuesIn(forms()),
                         [](const ::testing::TestParamInfo<Form>& info) { return info.param.name; });

}  // namespace
}  // namespace convnets
