// libFuzzer: tf.train.Example wire parsing and the ImageNet schema never crash on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "data/example.h"
#include "data/imagenet_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  convnets::Example example;
  std::string error;
  if (convnets::parse_example(bytes, example, error)) {
    for (const auto& [key, feature] : example.features) {
      for (auto v : feature.bytes) (void)v.size();
    }
  }
  convnets::ImageRecord record;
  convnets::decode_imagenet_record(bytes, 1000, record, error);
  return 0;
}
