// `convnets prepare_data`: datasets -> ImageNet-schema TFRecord shards + DALI index files.
#include <cstdio>

#include "commands.h"
#include "data/image_limits.h"
#include "data/prepare_data.h"
#include "util/console.h"

namespace convnets::app {

void add_prepare_data_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("prepare_data",
                                 "Convert a dataset into ImageNet-schema TFRecord shards with index files");
  struct Args {
    std::string format = "fashion_mnist";
    std::string input = "/usr/share/datasets/fashion-mnist";
    std::string output;
    ShardWriterOptions shards;
    int64_t max_image_pixels = kDefaultMaxImagePixels;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--format", args->format,
                  "Input format: IDX files of Fashion-MNIST or MNIST, or an image folder "
                  "<input>/{train,val}/<class>/*")
      ->check(CLI::IsMember({"fashion_mnist", "mnist", "image_folder"}))
      ->capture_default_str();
  cmd->add_option("--input", args->input, "Input directory")->capture_default_str();
  cmd->add_option("--output", args->output, "Output directory for the shards (indexes go to <output>/idx)")
      ->required();
  cmd->add_option("--train_shards,--train-shards", args->shards.train_shards, "Number of train-* shards")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--validation_shards,--validation-shards", args->shards.validation_shards,
                  "Number of validation-* shards")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--jpeg_quality,--jpeg-quality", args->shards.jpeg_quality,
                  "JPEG quality of re-encoded images")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_flag("--overwrite", args->shards.overwrite,
                "Remove train-* / validation-* shards of another set already in --output (else an error)");
  cmd->add_option("--max_image_pixels,--max-image-pixels", args->max_image_pixels,
                  "Images whose header claims more pixels are refused before decoding (decompression bombs)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->callback([args] {
    set_max_image_pixels(args->max_image_pixels);
    args->shards.output_dir = args->output;
    if (args->format == "mnist")
      args->shards.class_names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    const PrepareReport report = args->format == "image_folder"
                                     ? prepare_image_folder(args->input, args->shards)
                                     : prepare_idx_dataset(args->input, args->shards);
    for (const auto& skipped : report.skipped) stdio_console().warning("skipped " + skipped);
    std::printf(
        "wrote %lld train and %lld validation records in %zu shards to %s (indexes in %s/idx, class "
        "names in classes.txt)\n",
        static_cast<long long>(report.train_records), static_cast<long long>(report.validation_records),
        report.files.size(), args->output.c_str(), args->output.c_str());
  });
}

}  // namespace convnets::app
