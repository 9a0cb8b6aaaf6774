// The training loop on a tiny image folder: progressive stages switch the loader, CPU autocast, EMA
// evaluation and the export of the better weights, and the per-epoch files.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/jpeg_codec.h"
#include "test_support.h"
#include "train/checkpoint.h"
#include "train/stage_plan.h"
#include "util/file_io.h"
#include "util/weights.h"

namespace convnets {
namespace {

// 2 classes x `per_class` images of 40x40: dark or bright squares with noise, easy to tell apart.
void write_folder(const std::filesystem::path& root, int per_class) {
  testing::write_image_folder(root, 2, per_class);
}

TEST(Trainer, ProgressiveStagesAmpAndEmaOnAnImageFolder) {
  testing::ScratchDir dir;
  write_folder(dir.path() / "data", 12);
  RunConfig c = resolve_config("", {{"arch", "resnet18"},
                                    {"num_classes", "2"},
                                    {"data_dir", dir.file("data")},
                                    {"model_dir", dir.file("run")},
                                    {"image_size", "32"},
                                    {"eval_image_size", "32"},
                                    {"batch_size", "8"},
                                    {"num_iter", "4"},
                                    {"n_stages", "2"},
                                    {"base_image_size", "16"},
                                    {"base_mixup", "0"},
                                    {"mixup_alpha", "0.4"},
                                    {"amp", "true"},
                                    {"ema_decay", "0.5"},
                                    {"lr_warmup_epochs", "0"},
                                    {"lr_init", "0.5"},
                                    {"workers", "2"}});
  ::testing::internal::CaptureStdout();
  const TrainOutcome out = run_training(c, TrainMode::kTrainAndEval);
  const std::string stdout_text = ::testing::internal::GetCapturedStdout();
  EXPECT_FALSE(out.interrupted);
  EXPECT_EQ(out.updates, 4 * 3);  // 24 images / 8 per batch, 4 epochs
  // Stage 0 is 16 + (32 - 16) * 1/2 = 24 px with mixup at its base 0; stage 1 is 32 px with mixup 0.4.
  EXPECT_NE(stdout_text.find("stage 1/2: image size 24, RandAugment magnitude 5, mixup 0, cutmix 0"),
            std::string::npos)
      << stdout_text;
  EXPECT_NE(stdout_text.find("stage 2/2: image size 32, RandAugment magnitude 10, mixup 0.4, cutmix 0"),
            std::string::npos)
      << stdout_text;
  ASSERT_TRUE(out.eval && out.eval_ema);
  EXPECT_EQ(out.eval->images, 24);
  EXPECT_EQ(out.eval_ema->images, 24);
  std::ifstream csv(dir.file("run/summary.csv"));
  std::vector<std::string> rows;
  for (std::string line; std::getline(csv, line);) rows.push_back(line);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0],
            "epoch,updates,train_loss,learning_rate,train_images_per_second,epoch_seconds,skipped_records,"
            "eval_top1,"
            "eval_top5,eval_loss,ema_top1,ema_top5");
  // The exported weights are the better of raw and EMA by the last eval.
  const NamedTensors exported = load_weights(out.final_weights);
  EXPECT_FALSE(exported.empty());
  EXPECT_TRUE(std::filesystem::exists(dir.file("run/best.pt")));
}

// Bad files are counted where a user reads them: summary.csv and the epoch's DLLogger line for training, the
// eval result (records found vs images evaluated) for evaluation.
TEST(Trainer, SkippedRecordsAreCountedInTheLogsAndTheEvalResult) {
  testing::ScratchDir dir;
  write_folder(dir.path() / "data", 12);
  for (const std::string bad : {"train/class0/bad1.jpg", "train/class1/bad2.jpg", "val/class0/bad3.jpg"})
    write_file_atomic((dir.path() / "data" / bad).string(), "this is not an image");
  RunConfig c = resolve_config("", {{"arch", "resnet18"},
                                    {"num_classes", "2"},
                                    {"data_dir", dir.file("data")},
                                    {"model_dir", dir.file("run")},
                                    {"image_size", "32"},
                                    {"eval_image_size", "32"},
                                    {"batch_size", "26"},
                                    {"num_iter", "1"},
                                    {"lr_warmup_epochs", "0"},
                                    {"workers", "2"}});
  ::testing::internal::CaptureStderr();
  const TrainOutcome out = run_training(c, TrainMode::kTrainAndEval);
  const std::string err = ::testing::internal::GetCapturedStderr();
  for (const char* bad : {"bad1.jpg", "bad2.jpg", "bad3.jpg"}) {
    const auto first = err.find(bad);
    EXPECT_NE(first, std::string::npos) << bad;
    EXPECT_EQ(err.find(bad, first + 1), std::string::npos) << bad << " reported twice:\n" << err;
  }
  ASSERT_TRUE(out.eval);
  EXPECT_EQ(out.eval->images, 24);  // 25 files, one unreadable
  EXPECT_EQ(out.eval->skipped_records, 1);
  std::ifstream csv(dir.file("run/summary.csv"));
  std::string header, row;
  std::getline(csv, header);
  std::getline(csv, row);
  const auto column = [](const std::string& line, size_t k) {
    std::istringstream in(line);
    std::string cell;
    for (size_t i = 0; i <= k; ++i) std::getline(in, cell, ',');
    return cell;
  };
  EXPECT_EQ(column(header, 6), "skipped_records");
  EXPECT_EQ(column(row, 6), "2");  // 26 files, both bad ones met in the one (whole-dataset) batch
}

// A run cut shorter than its warm-up says so (its learning rate never anneals); one that anneals does not.
TEST(Trainer, AWarmUpAsLongAsTheRunIsNamed) {
  testing::ScratchDir dir;
  write_folder(dir.path() / "data", 4);
  auto run = [&](const std::string& warmup, const std::string& model_dir) {
    testing::RecordingConsole console;
    run_training(resolve_config("", {{"arch", "resnet18"},
                                     {"num_classes", "2"},
                                     {"data_dir", dir.file("data")},
                                     {"model_dir", dir.file(model_dir)},
                                     {"image_size", "16"},
                                     {"batch_size", "4"},
                                     {"num_iter", "1"},
                                     {"lr_warmup_epochs", warmup},
                                     {"workers", "1"}}),
                 TrainMode::kTrain, {.console = &console});
    return console.err;
  };
  EXPECT_NE(run("1", "a").find("covers the whole run (2 updates)"), std::string::npos);
  EXPECT_EQ(run("0.5", "b").find("covers the whole run"), std::string::npos);
}

// Resuming from a checkpoint taken inside an epoch continues with exactly the micro-batch after the last one
// trained: the resumed run's final weights equal the uninterrupted run's bit for bit, from checkpoints taken
// one update into an epoch and one update before its end (an off-by-one in where a checkpoint says it
// stopped, or in where the loader restarts, changes the data of a step and so the weights).
TEST(Trainer, ResumingInsideAnEpochContinuesWithTheNextMicroBatch) {
  testing::ScratchDir dir;
  write_folder(dir.path() / "data", 12);
  auto config = [&](const std::string& run) {
    return resolve_config("", {{"arch", "resnet18"},
                               {"num_classes", "2"},
                               {"data_dir", dir.file("data")},
                               {"model_dir", dir.file(run)},
                               {"image_size", "16"},
                               {"batch_size", "6"},
                               {"num_iter", "2"},
                               {"checkpoint_every_steps", "1"},
                               {"keep_checkpoints", "100"},
                               {"ema_decay", "0.5"},
                               {"lr_warmup_epochs", "0"},
                               {"lr_init", "0.5"},
                               {"workers", "2"}});
  };
  testing::RecordingConsole quiet;
  const TrainOutcome full = run_training(config("full"), TrainMode::kTrain, {.console = &quiet});
  EXPECT_EQ(full.updates, 8);  // 24 images / 6, 2 epochs
  const NamedTensors expected = load_weights(full.final_weights);
  for (const int64_t updates : {5, 7}) {  // epoch 2: one update in, and one before its end
    const std::string run = "resumed_" + std::to_string(updates);
    std::filesystem::create_directories(dir.file(run));
    const std::string name = checkpoint_file_name(1, updates);
    std::filesystem::copy_file(dir.file("full/" + name), dir.file(run + "/" + name));
    const ResumePoint at = check_training_checkpoint(load_checkpoint(dir.file(run + "/" + name)), name,
                                                     {.updates_per_epoch = 4,
                                                      .micro_per_epoch = 4,
                                                      .grad_accum_steps = 1,
                                                      .rng_state_bytes = cpu_rng_state().numel(),
                                                      .ema = true});
    EXPECT_EQ(at.epoch, 1) << name;
    EXPECT_EQ(at.micro_batch, updates - 4) << name;
    EXPECT_EQ(at.updates, updates) << name;
    const TrainOutcome resumed = run_training(config(run), TrainMode::kTrain, {.console = &quiet});
    EXPECT_EQ(resumed.updates, 8);
    const NamedTensors got = load_weights(resumed.final_weights);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_TRUE(torch::equal(got[i].second, expected[i].second))
          << "resumed at update " << updates << ": " << got[i].first;
  }
}

}  // namespace
}  // namespace convnets

namespace convnets {

// The EfficientNet recipes mix with lambda = max(lambda, 1 - lambda) (TF2), the ResNet-50 recipe with plain
// Beta draws: checked on what the trainer builds from the recipe files (both use mixup 0.2 here).
TEST(TrainerMixing, EfficientNetRecipesKeepTheLargerShareResNetDoesNot) {
  const std::string recipes = testing::tests_source_dir() + "/../recipes/";
  for (const auto& [file, symmetric] : {std::pair<std::string, bool>{"efficientnet_b4_amp_8gpu.yaml", true},
                                        {"resnet50_250e_amp_8gpu.yaml", false}}) {
    const RunConfig c = resolve_config(recipes + file, {});
    const StagePlan stage = stage_for_epoch(c, 380, 0, c.iterations.num_iter);
    const MixOptions mix = mix_options(c, stage);
    ASSERT_GT(mix.mixup_alpha, 0) << file;
    EXPECT_EQ(mix.symmetric_max, symmetric) << file;
    Rng rng(11);
    double lowest = 1, highest = 0;
    for (int b = 0; b < 50; ++b) {
      const MixParams p = sample_mix_params(64, 32, 32, mix, rng);
      for (size_t i = 0; i < p.lambda.size(); ++i) {
        if (p.cut[i]) continue;
        lowest = std::min(lowest, p.lambda[i]);
        highest = std::max(highest, p.lambda[i]);
      }
    }
    if (symmetric) {
      EXPECT_GE(lowest, 0.5) << file;
    } else {
      EXPECT_LT(lowest, 0.1) << file;  // Beta(0.2, 0.2) puts most of its mass near 0 and 1
    }
    EXPECT_GT(highest, 0.9) << file;
  }
  // The architecture defaults agree with the recipe files.
  EXPECT_TRUE(default_config("efficientnet_b0").mixing.mix_symmetric_max);
  EXPECT_FALSE(default_config("resnet50").mixing.mix_symmetric_max);
}

}  // namespace convnets
