// Protocol-buffer wire format, written by hand for the few messages convnets emits (TensorBoard events, ONNX
// models): field tags, varints, length-delimited bytes (strings and nested messages), fixed 32/64-bit values
// and packed repeated integers. Nested messages are built as strings and added with put_bytes.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace convnets::proto {

void put_varint(std::string& out, uint64_t value);
void put_tag(std::string& out, int field, int wire_type);
// A varint field: uint32/uint64/bool/enum, and int32/int64 (negative values in ten bytes, as protobuf does).
void put_uint(std::string& out, int field, uint64_t value);
void put_int(std::string& out, int field, int64_t value);
// A length-delimited field: bytes, a string, or a nested message.
void put_bytes(std::string& out, int field, std::string_view bytes);
void put_float(std::string& out, int field, float value);
void put_double(std::string& out, int field, double value);

}  // namespace convnets::proto
