#include "util/zip_archive.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "util/crc32.h"

namespace convnets {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64EndOfCentralDir = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;

uint64_t get_le(std::string_view b, uint64_t pos, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[pos + i]);
  return v;
}

void put_le(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

}  // namespace

void ZipReader::fail(const std::string& what) const {
  throw std::runtime_error(context_ + ": not a valid zip archive (" + what + ")");
}

ZipReader::ZipReader(std::string_view bytes, std::string context)
    : bytes_(bytes), context_(std::move(context)) {
  auto need = [&](uint64_t pos, uint64_t n, const char* what) {
    if (pos > bytes_.size() || n > bytes_.size() - pos)
      fail(std::string(what) + " runs past the end of the file");
  };
  if (bytes_.size() < 22) fail("file too short");
  // The end-of-central-directory record sits in the last 22 + 65535 bytes.
  uint64_t eocd = std::string::npos;
  const uint64_t lowest = bytes_.size() > 22 + 65535 ? bytes_.size() - 22 - 65535 : 0;
  for (uint64_t pos = bytes_.size() - 22 + 1; pos-- > lowest;) {
    if (get_le(bytes_, pos, 4) == kEndOfCentralDir) {
      eocd = pos;
      break;
    }
  }
  if (eocd == std::string::npos) fail("no end-of-central-directory record; truncated?");
  uint64_t count = get_le(bytes_, eocd + 10, 2);
  uint64_t dir_size = get_le(bytes_, eocd + 12, 4);
  uint64_t dir_offset = get_le(bytes_, eocd + 16, 4);
  if (eocd >= 20 && get_le(bytes_, eocd - 20, 4) == kZip64Locator) {
    const uint64_t z64 = get_le(bytes_, eocd - 20 + 8, 8);
    need(z64, 56, "zip64 end record");
    if (get_le(bytes_, z64, 4) != kZip64EndOfCentralDir) fail("bad zip64 end record signature");
    count = get_le(bytes_, z64 + 32, 8);
    dir_size = get_le(bytes_, z64 + 40, 8);
    dir_offset = get_le(bytes_, z64 + 48, 8);
  }
  need(dir_offset, dir_size, "central directory");
  uint64_t pos = dir_offset;
  for (uint64_t i = 0; i < count; ++i) {
    need(pos, 46, "central directory entry");
    if (get_le(bytes_, pos, 4) != kCentralHeader) fail("bad central directory signature");
    const uint64_t method = get_le(bytes_, pos + 10, 2);
    const auto crc = static_cast<uint32_t>(get_le(bytes_, pos + 16, 4));
    uint64_t compressed = get_le(bytes_, pos + 20, 4);
    uint64_t size = get_le(bytes_, pos + 24, 4);
    const uint64_t name_len = get_le(bytes_, pos + 28, 2);
    const uint64_t extra_len = get_le(bytes_, pos + 30, 2);
    const uint64_t comment_len = get_le(bytes_, pos + 32, 2);
    uint64_t local = get_le(bytes_, pos + 42, 4);
    need(pos + 46, name_len + extra_len + comment_len, "central directory entry");
    std::string name(bytes_.substr(pos + 46, name_len));
    // zip64 extended information replaces the fields that are saturated at 0xFFFFFFFF, in this order.
    uint64_t e = pos + 46 + name_len;
    const uint64_t e_end = e + extra_len;
    while (e + 4 <= e_end) {
      const uint64_t id = get_le(bytes_, e, 2), len = get_le(bytes_, e + 2, 2);
      if (e + 4 + len > e_end) fail("extra field of '" + name + "' overruns its entry");
      if (id == 0x0001) {
        uint64_t f = e + 4;
        auto take = [&](uint64_t& field) {
          if (field != 0xFFFFFFFFu) return;
          if (f + 8 > e + 4 + len) fail("short zip64 field in '" + name + "'");
          field = get_le(bytes_, f, 8);
          f += 8;
        };
        take(size);
        take(compressed);
        take(local);
      }
      e += 4 + len;
    }
    if (method != 0)
      fail("entry '" + name + "' is compressed (method " + std::to_string(method) +
           "); only stored entries are supported");
    if (compressed != size) fail("entry '" + name + "' has different stored and original sizes");
    need(local, 30, "local header");
    if (get_le(bytes_, local, 4) != kLocalHeader) fail("bad local header signature for '" + name + "'");
    const uint64_t data = local + 30 + get_le(bytes_, local + 26, 2) + get_le(bytes_, local + 28, 2);
    need(data, size, ("data of '" + name + "'").c_str());
    index_.emplace(name, entries_.size());  // a repeated name keeps its first entry
    names_.push_back(std::move(name));
    entries_.push_back({data, size, crc});
    pos += 46 + name_len + extra_len + comment_len;
  }
}

bool ZipReader::contains(const std::string& name) const {
  return index_.count(name) != 0;
}

std::string_view ZipReader::read(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) fail("missing entry '" + name + "'");
  const Entry& entry = entries_[it->second];
  std::string_view data = bytes_.substr(entry.data_offset, entry.size);
  if (crc32_ieee(data.data(), data.size()) != entry.crc) fail("CRC-32 mismatch in entry '" + name + "'");
  return data;
}

void ZipWriter::add(const std::string& name, std::string_view data) {
  const uint64_t header = out_.size();
  const uint32_t crc = crc32_ieee(data.data(), data.size());
  // Pad the local header's extra field so that the data start on a 64-byte boundary.
  const uint64_t unpadded = header + 30 + name.size() + 4;
  const uint64_t pad = (64 - unpadded % 64) % 64;
  put_le(out_, kLocalHeader, 4);
  put_le(out_, 20, 2);  // version needed
  put_le(out_, 0, 2);   // flags
  put_le(out_, 0, 2);   // stored
  put_le(out_, 0, 4);   // time, date
  put_le(out_, crc, 4);
  put_le(out_, data.size(), 4);
  put_le(out_, data.size(), 4);
  put_le(out_, name.size(), 2);
  put_le(out_, 4 + pad, 2);
  out_ += name;
  put_le(out_, 0x4246, 2);  // private "FB" padding field, as PyTorch's writer uses
  put_le(out_, pad, 2);
  out_.append(pad, 'Z');
  out_.append(data);
  entries_.push_back({name, header, data.size(), crc});
}

std::string ZipWriter::finish() {
  const uint64_t dir_offset = out_.size();
  for (const auto& e : entries_) {
    put_le(out_, kCentralHeader, 4);
    put_le(out_, 20, 2);  // made by
    put_le(out_, 20, 2);  // needed
    put_le(out_, 0, 2);
    put_le(out_, 0, 2);
    put_le(out_, 0, 4);
    put_le(out_, e.crc, 4);
    put_le(out_, e.size, 4);
    put_le(out_, e.size, 4);
    put_le(out_, e.name.size(), 2);
    put_le(out_, 0, 2);  // extra
    put_le(out_, 0, 2);  // comment
    put_le(out_, 0, 2);  // disk
    put_le(out_, 0, 2);  // internal attributes
    put_le(out_, 0, 4);  // external attributes
    put_le(out_, e.header_offset, 4);
    out_ += e.name;
  }
  const uint64_t dir_size = out_.size() - dir_offset;
  put_le(out_, kEndOfCentralDir, 4);
  put_le(out_, 0, 4);
  put_le(out_, entries_.size(), 2);
  put_le(out_, entries_.size(), 2);
  put_le(out_, dir_size, 4);
  put_le(out_, dir_offset, 4);
  put_le(out_, 0, 2);
  if (out_.size() >= std::numeric_limits<uint32_t>::max() || entries_.size() >= 0xFFFF) {
    throw std::runtime_error("zip archive over 4 GiB or 65535 entries: use the .safetensors format instead");
  }
  entries_.clear();
  return std::move(out_);
}

}  // namespace convnets
