#include "util/protobuf_writer.h"

#include <cstring>

namespace convnets::proto {
namespace {
constexpr int kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5;

template <typename T>
void put_fixed(std::string& out, T value) {
  char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));  // little-endian host (x86-64, aarch64), protobuf's byte order
  out.append(raw, sizeof(T));
}
}  // namespace

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_tag(std::string& out, int field, int wire_type) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}

void put_uint(std::string& out, int field, uint64_t value) {
  put_tag(out, field, kVarint);
  put_varint(out, value);
}

void put_int(std::string& out, int field, int64_t value) {
  put_uint(out, field, static_cast<uint64_t>(value));
}

void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_tag(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

void put_float(std::string& out, int field, float value) {
  put_tag(out, field, kFixed32);
  put_fixed(out, value);
}

void put_double(std::string& out, int field, double value) {
  put_tag(out, field, kFixed64);
  put_fixed(out, value);
}

}  // namespace convnets::proto
