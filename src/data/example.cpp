#include "data/example.h"

#include <cstring>

namespace convnets {
namespace {

enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// A bounds-checked cursor over one message.
struct Reader {
  std::string_view data;
  size_t pos = 0;
  std::string* error;

  bool done() const { return pos >= data.size(); }
  bool fail(const std::string& what) {
    *error = what + " at byte " + std::to_string(pos);
    return false;
  }
  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= data.size()) return fail("truncated varint");
      const auto b = static_cast<uint8_t>(data[pos++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return fail("varint longer than 10 bytes");
  }
  bool tag(uint32_t& field, uint32_t& wire) {
    uint64_t t;
    if (!varint(t)) return false;
    field = static_cast<uint32_t>(t >> 3);
    wire = static_cast<uint32_t>(t & 7);
    if (field == 0) return fail("field number 0");
    return true;
  }
  bool bytes(std::string_view& out) {
    uint64_t n;
    if (!varint(n)) return false;
    if (n > data.size() - pos)
      return fail("length " + std::to_string(n) + " runs past the end of the message");
    out = data.substr(pos, n);
    pos += n;
    return true;
  }
  bool skip(uint32_t wire) {
    uint64_t ignored;
    std::string_view ignored_bytes;
    switch (wire) {
      case kVarint:
        return varint(ignored);
      case kFixed64:
        return advance(8);
      case kLengthDelimited:
        return bytes(ignored_bytes);
      case kFixed32:
        return advance(4);
      default:
        return fail("unsupported wire type " + std::to_string(wire));
    }
  }
  bool advance(size_t n) {
    if (n > data.size() - pos) return fail("truncated fixed-width field");
    pos += n;
    return true;
  }
};

bool parse_list(std::string_view data, Feature& f, std::string& error) {
  Reader r{data, 0, &error};
  while (!r.done()) {
    uint32_t field, wire;
    if (!r.tag(field, wire)) return false;
    if (field != 1) {
      if (!r.skip(wire)) return false;
      continue;
    }
    if (f.kind == Feature::Kind::kBytes) {
      std::string_view v;
      if (wire != kLengthDelimited) return r.fail("bytes_list value with wire type " + std::to_string(wire));
      if (!r.bytes(v)) return false;
      f.bytes.push_back(v);
    } else if (f.kind == Feature::Kind::kFloat) {
      if (wire == kFixed32) {  // unpacked
        if (r.data.size() - r.pos < 4) return r.fail("truncated float");
        float v;
        std::memcpy(&v, r.data.data() + r.pos, 4);
        r.pos += 4;
        f.floats.push_back(v);
      } else if (wire == kLengthDelimited) {  // packed
        std::string_view packed;
        if (!r.bytes(packed)) return false;
        if (packed.size() % 4)
          return r.fail("packed float list of " + std::to_string(packed.size()) + " bytes");
        if (!packed.empty()) {  // memcpy into an empty vector's null data() is undefined
          const size_t old = f.floats.size();
          f.floats.resize(old + packed.size() / 4);
          std::memcpy(f.floats.data() + old, packed.data(), packed.size());
        }
      } else {
        return r.fail("float_list value with wire type " + std::to_string(wire));
      }
    } else {
      if (wire == kVarint) {
        uint64_t v;
        if (!r.varint(v)) return false;
        f.ints.push_back(static_cast<int64_t>(v));
      } else if (wire == kLengthDelimited) {
        std::string_view packed;
        if (!r.bytes(packed)) return false;
        Reader p{packed, 0, &error};
        while (!p.done()) {
          uint64_t v;
          if (!p.varint(v)) return false;
          f.ints.push_back(static_cast<int64_t>(v));
        }
      } else {
        return r.fail("int64_list value with wire type " + std::to_string(wire));
      }
    }
  }
  return true;
}

bool parse_feature(std::string_view data, Feature& f, std::string& error) {
  Reader r{data, 0, &error};
  while (!r.done()) {
    uint32_t field, wire;
    if (!r.tag(field, wire)) return false;
    if (field < 1 || field > 3 || wire != kLengthDelimited) {
      if (!r.skip(wire)) return false;
      continue;
    }
    std::string_view list;
    if (!r.bytes(list)) return false;
    // oneof: the last one on the wire wins, as in protobuf.
    f = Feature{};
    f.kind = field == 1 ? Feature::Kind::kBytes : field == 2 ? Feature::Kind::kFloat : Feature::Kind::kInt64;
    if (!parse_list(list, f, error)) return false;
  }
  return true;
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_field(std::string& out, uint32_t field, std::string_view payload) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | kLengthDelimited);
  put_varint(out, payload.size());
  out.append(payload);
}

}  // namespace

const Feature* Example::find(std::string_view key) const {
  for (const auto& [k, f] : features) {
    if (k == key) return &f;
  }
  return nullptr;
}

bool parse_example(std::string_view data, Example& out, std::string& error) {
  out.features.clear();
  Reader r{data, 0, &error};
  while (!r.done()) {
    uint32_t field, wire;
    if (!r.tag(field, wire)) return false;
    if (field != 1 || wire != kLengthDelimited) {
      if (!r.skip(wire)) return false;
      continue;
    }
    std::string_view features;
    if (!r.bytes(features)) return false;
    Reader fr{features, 0, &error};
    while (!fr.done()) {
      uint32_t ffield, fwire;
      if (!fr.tag(ffield, fwire)) return false;
      if (ffield != 1 || fwire != kLengthDelimited) {
        if (!fr.skip(fwire)) return false;
        continue;
      }
      std::string_view entry;
      if (!fr.bytes(entry)) return false;
      Reader er{entry, 0, &error};
      std::string_view key;
      Feature feature;
      while (!er.done()) {
        uint32_t efield, ewire;
        if (!er.tag(efield, ewire)) return false;
        if (efield == 1 && ewire == kLengthDelimited) {
          if (!er.bytes(key)) return false;
        } else if (efield == 2 && ewire == kLengthDelimited) {
          std::string_view value;
          if (!er.bytes(value) || !parse_feature(value, feature, error)) return false;
        } else if (!er.skip(ewire)) {
          return false;
        }
      }
      out.features.emplace_back(key, std::move(feature));
    }
  }
  return true;
}

ExampleBuilder& ExampleBuilder::add_bytes(std::string_view key, const std::vector<std::string_view>& values) {
  std::string list;
  for (auto v : values) put_field(list, 1, v);
  std::string feature;
  put_field(feature, 1, list);
  add_entry(key, feature);
  return *this;
}

ExampleBuilder& ExampleBuilder::add_floats(std::string_view key, const std::vector<float>& values) {
  std::string packed(values.size() * 4, '\0');
  if (!values.empty()) std::memcpy(packed.data(), values.data(), packed.size());
  std::string list;
  if (!values.empty()) put_field(list, 1, packed);
  std::string feature;
  put_field(feature, 2, list);
  add_entry(key, feature);
  return *this;
}

ExampleBuilder& ExampleBuilder::add_int64s(std::string_view key, const std::vector<int64_t>& values) {
  std::string packed;
  for (auto v : values) put_varint(packed, static_cast<uint64_t>(v));
  std::string list;
  if (!values.empty()) put_field(list, 1, packed);
  std::string feature;
  put_field(feature, 3, list);
  add_entry(key, feature);
  return *this;
}

void ExampleBuilder::add_entry(std::string_view key, const std::string& feature) {
  std::string entry;
  put_field(entry, 1, key);
  put_field(entry, 2, feature);
  put_field(features_, 1, entry);
}

std::string ExampleBuilder::serialize() const {
  std::string out;
  put_field(out, 1, features_);
  return out;
}

}  // namespace convnets
