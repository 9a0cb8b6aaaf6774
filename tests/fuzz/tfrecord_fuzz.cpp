// libFuzzer: TFRecord framing (scan, then read every record) never crashes or reads out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "data/tfrecord.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  convnets::RecordError error;
  for (const auto& span : convnets::scan_records(bytes, "fuzz", &error)) {
    std::string_view record;
    convnets::read_record(bytes, span, "fuzz", record, error);
  }
  // Arbitrary (possibly stale) index spans must be rejected cleanly too.
  if (size >= 16) {
    const convnets::RecordSpan span{data[0] * 7u, static_cast<uint64_t>(data[1]) * 13u + 16};
    std::string_view record;
    convnets::read_record(bytes, span, "fuzz", record, error);
  }
  return 0;
}
