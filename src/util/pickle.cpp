#include "util/pickle.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>
#include <unordered_map>

namespace convnets::pickle {

ValuePtr Value::get(const std::string& key) const {
  if (kind != Kind::kDict) return nullptr;
  for (size_t k = 0; k + 1 < items.size(); k += 2) {
    if (items[k]->is_string() && items[k]->s == key) return items[k + 1];
  }
  return nullptr;
}

Value::~Value() {
  // Children whose only owner is this value are moved onto a work list instead of being destroyed
  // recursively; their own children follow, so the C++ stack stays flat at any depth.
  std::vector<ValuePtr> pending;
  pending.swap(items);
  while (!pending.empty()) {
    ValuePtr v = std::move(pending.back());
    pending.pop_back();
    if (v && v.use_count() == 1) {
      for (auto& child : v->items) pending.push_back(std::move(child));
      v->items.clear();
    }
  }
}

namespace {

const std::map<std::string, torch::ScalarType>& storage_types() {
  static const std::map<std::string, torch::ScalarType> m = {
      {"FloatStorage", torch::kFloat32}, {"DoubleStorage", torch::kFloat64},
      {"HalfStorage", torch::kFloat16},  {"BFloat16Storage", torch::kBFloat16},
      {"LongStorage", torch::kInt64},    {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16},   {"CharStorage", torch::kInt8},
      {"ByteStorage", torch::kUInt8},    {"BoolStorage", torch::kBool},
  };
  return m;
}

ValuePtr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

constexpr size_t kMaxStack = 1 << 20;

class Machine {
 public:
  Machine(std::string_view data, const StorageLoader& storages, const std::string& context)
      : data_(data), storages_(storages), context_(context) {}

  ValuePtr run() {
    while (true) {
      const size_t at = pos_;
      const auto op = static_cast<uint8_t>(byte());
      switch (op) {
        case 0x80:
          byte();
          break;  // PROTO
        case 0x95:
          bytes(8);
          break;     // FRAME (its length is only a buffering hint)
        case '.': {  // STOP
          if (stack_.size() != 1 || !marks_.empty())
            fail(at, "STOP with " + std::to_string(stack_.size()) + " values on the stack");
          return stack_.back();
        }
        case '(':
          marks_.push_back(stack_.size());
          break;
        case ')':
          push(make(Value::Kind::kTuple));
          break;
        case ']':
          push(make(Value::Kind::kList));
          break;
        case '}':
          push(make(Value::Kind::kDict));
          break;
        case 'N':
          push(make(Value::Kind::kNone));
          break;
        case 0x88:
        case 0x89: {
          auto v = make(Value::Kind::kBool);
          v->b = op == 0x88;
          push(v);
          break;
        }
        case 'J':
          push_int(static_cast<int32_t>(uint_le(4)));
          break;
        case 'K':
          push_int(static_cast<int64_t>(uint_le(1)));
          break;
        case 'M':
          push_int(static_cast<int64_t>(uint_le(2)));
          break;
        case 0x8a:
          push_long(uint_le(1), at);
          break;
        case 0x8b:
          push_long(uint_le(4), at);
          break;
        case 'G': {
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(byte());  // big-endian
          auto v = make(Value::Kind::kFloat);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'X':
          push_str(Value::Kind::kString, uint_le(4));
          break;
        case 0x8c:
          push_str(Value::Kind::kString, uint_le(1));
          break;
        case 0x8d:
          push_str(Value::Kind::kString, uint_le(8));
          break;
        case 'T':
          push_str(Value::Kind::kString, uint_le(4));
          break;  // BINSTRING (py2 str)
        case 'U':
          push_str(Value::Kind::kString, uint_le(1));
          break;
        case 'B':
          push_str(Value::Kind::kBytes, uint_le(4));
          break;
        case 'C':
          push_str(Value::Kind::kBytes, uint_le(1));
          break;
        case 0x8e:
          push_str(Value::Kind::kBytes, uint_le(8));
          break;
        case 'c': {  // GLOBAL "module\nname\n"
          auto v = make(Value::Kind::kGlobal);
          const std::string module = line(at), name = line(at);
          v->s = module + "." + name;
          push(v);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop(at), module = pop(at);
          if (!name->is_string() || !module->is_string()) fail(at, "STACK_GLOBAL needs two strings");
          auto v = make(Value::Kind::kGlobal);
          v->s = module->s + "." + name->s;
          push(v);
          break;
        }
        case 't':
          push(nest(Value::Kind::kTuple, pop_to_mark(at), at));
          break;
        case 0x85:
        case 0x86:
        case 0x87: {
          const size_t n = op - 0x84;
          std::vector<ValuePtr> items(n);
          for (size_t k = n; k-- > 0;) items[k] = pop(at);
          push(nest(Value::Kind::kTuple, std::move(items), at));
          break;
        }
        case 'l':
          push(nest(Value::Kind::kList, pop_to_mark(at), at));
          break;
        case 'd': {
          auto items = pop_to_mark(at);
          if (items.size() % 2) fail(at, "DICT with an odd number of items");
          push(nest(Value::Kind::kDict, std::move(items), at));
          break;
        }
        case 'a': {
          auto item = pop(at);
          add_items(container(at, Value::Kind::kList), {std::move(item)}, at);
          break;
        }
        case 'e': {
          auto items = pop_to_mark(at);
          add_items(container(at, Value::Kind::kList), std::move(items), at);
          break;
        }
        case 's': {
          auto value = pop(at), key = pop(at);
          add_items(container(at, Value::Kind::kDict), {std::move(key), std::move(value)}, at);
          break;
        }
        case 'u': {
          auto items = pop_to_mark(at);
          if (items.size() % 2) fail(at, "SETITEMS with an odd number of items");
          add_items(container(at, Value::Kind::kDict), std::move(items), at);
          break;
        }
        case 'q':
          memo_[uint_le(1)] = top(at);
          break;
        case 'r':
          memo_[uint_le(4)] = top(at);
          break;
        case 0x94:
          memo_[memo_.size()] = top(at);
          break;  // MEMOIZE
        case 'p':
          memo_[parse_decimal(line(at), at)] = top(at);
          break;
        case 'h':
          push(memo_get(uint_le(1), at));
          break;
        case 'j':
          push(memo_get(uint_le(4), at));
          break;
        case 'g':
          push(memo_get(parse_decimal(line(at), at), at));
          break;
        case '0':
          pop(at);
          break;
        case '1':
          pop_to_mark(at);
          break;
        case '2':
          push(top(at));
          break;
        case 'Q':
          push(persistent_load(pop(at), at));
          break;
        case 'R': {
          auto args = pop(at), callable = pop(at);
          push(reduce(callable, args, at));
          break;
        }
        case 0x81: {  // NEWOBJ
          auto args = pop(at), cls = pop(at);
          push(reduce(cls, args, at));
          break;
        }
        case 'b':
          pop(at);
          top(at);
          break;  // BUILD: object state (e.g. a state_dict's _metadata) is not needed
        default:
          fail(at, "unsupported pickle opcode 0x" + hex(op));
      }
    }
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& what) const {
    throw std::runtime_error(context_ + ": malformed pickle at byte " + std::to_string(at) + ": " + what);
  }
  static std::string hex(uint8_t v) {
    const char* d = "0123456789abcdef";
    return {d[v >> 4], d[v & 15]};
  }
  char byte() {
    if (pos_ >= data_.size()) fail(pos_, "unexpected end of data");
    return data_[pos_++];
  }
  std::string_view bytes(uint64_t n) {
    if (n > data_.size() - pos_) fail(pos_, "length " + std::to_string(n) + " runs past the end of data");
    auto s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint64_t uint_le(int n) {
    auto b = bytes(n);
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(b[k]);
    return v;
  }
  std::string line(size_t at) {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string_view::npos) fail(at, "unterminated text argument");
    std::string s(data_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  uint64_t parse_decimal(const std::string& s, size_t at) {
    if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
      fail(at, "bad memo index");
    return std::stoull(s);
  }
  void push(ValuePtr v) {
    if (stack_.size() >= kMaxStack) fail(pos_, "stack too deep");
    stack_.push_back(std::move(v));
  }
  void push_int(int64_t i) {
    auto v = make(Value::Kind::kInt);
    v->i = i;
    push(v);
  }
  void push_long(uint64_t n, size_t at) {
    if (n > 8) fail(at, "integer wider than 64 bits");
    auto b = bytes(n);
    uint64_t u = 0;
    for (size_t k = n; k-- > 0;) u = (u << 8) | static_cast<uint8_t>(b[k]);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80))
      u |= ~uint64_t{0} << (8 * n);  // sign-extend
    push_int(static_cast<int64_t>(u));
  }
  void push_str(Value::Kind kind, uint64_t n) {
    auto v = make(kind);
    v->s = std::string(bytes(n));
    push(v);
  }
  ValuePtr pop(size_t at) {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail(at, "stack underflow");
    auto v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  ValuePtr top(size_t at) {
    if (stack_.empty()) fail(at, "stack underflow");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_to_mark(size_t at) {
    if (marks_.empty()) fail(at, "no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  ValuePtr container(size_t at, Value::Kind kind) {
    auto c = top(at);
    if (c->kind != kind) fail(at, "append/setitem on a value of the wrong type");
    return c;
  }
  // Puts `items` into `c`, keeping its depth exact: a container that is already nested somewhere may not
  // change (its parents' depths would go stale, and it is how a cycle is built), nor contain itself.
  void add_items(const ValuePtr& c, std::vector<ValuePtr> items, size_t at) {
    if (c->contained) fail(at, "a container is changed after it was nested in another");
    for (auto& item : items) {
      if (item == c) fail(at, "a container is put inside itself");
      if (item->depth + 1 > kMaxDepth) fail(at, "nesting deeper than " + std::to_string(kMaxDepth));
      c->depth = std::max(c->depth, item->depth + 1);
      item->contained = true;
      c->items.push_back(std::move(item));
    }
  }
  ValuePtr nest(Value::Kind kind, std::vector<ValuePtr> items, size_t at) {
    auto v = make(kind);
    add_items(v, std::move(items), at);
    return v;
  }
  ValuePtr memo_get(uint64_t key, size_t at) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail(at, "unknown memo key " + std::to_string(key));
    return it->second;
  }

  ValuePtr persistent_load(const ValuePtr& pid, size_t at) {
    const auto& t = pid->items;
    if (pid->kind != Value::Kind::kTuple || t.size() != 5 || !t[0]->is_string() || t[0]->s != "storage" ||
        t[1]->kind != Value::Kind::kGlobal || !t[2]->is_string() || t[4]->kind != Value::Kind::kInt) {
      fail(at, "unsupported persistent id (expected ('storage', type, key, location, numel))");
    }
    const std::string& type = t[1]->s;
    if (type.rfind("torch.", 0) != 0) fail(at, "unknown storage type '" + type + "'");
    torch::ScalarType dtype;
    try {
      dtype = storage_dtype(type);
    } catch (const std::exception& e) {
      fail(at, e.what());
    }
    if (t[4]->i < 0) fail(at, "negative storage size");
    auto cached = storage_cache_.find(t[2]->s);
    auto v = make(Value::Kind::kTensor);
    if (cached != storage_cache_.end()) {
      v->tensor = cached->second;
    } else {
      v->tensor = storages_(t[2]->s, dtype, t[4]->i);
      storage_cache_[t[2]->s] = v->tensor;
    }
    return v;
  }

  static std::vector<int64_t> int_tuple(const ValuePtr& v, bool& ok) {
    std::vector<int64_t> out;
    ok = v->kind == Value::Kind::kTuple || v->kind == Value::Kind::kList;
    for (const auto& item : v->items) {
      if (item->kind != Value::Kind::kInt) ok = false;
      out.push_back(item->i);
    }
    return out;
  }

  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args, size_t at) {
    if (args->kind != Value::Kind::kTuple) fail(at, "REDUCE arguments are not a tuple");
    const std::string name = callable->kind == Value::Kind::kGlobal ? callable->s : "";
    const auto& a = args->items;
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != Value::Kind::kTensor || a[1]->kind != Value::Kind::kInt) {
        fail(at, "bad arguments to " + name);
      }
      bool ok_size = false, ok_stride = false;
      const auto size = int_tuple(a[2], ok_size);
      const auto stride = int_tuple(a[3], ok_stride);
      const int64_t offset = a[1]->i;
      const torch::Tensor& storage = a[0]->tensor;
      if (!ok_size || !ok_stride || size.size() != stride.size()) fail(at, "bad tensor size/stride");
      // The view must stay inside its storage.
      int64_t last = offset;
      bool empty = false;
      for (size_t d = 0; d < size.size(); ++d) {
        if (size[d] < 0 || stride[d] < 0) fail(at, "negative tensor size or stride");
        if (size[d] == 0) empty = true;
        if (size[d] > 0 && stride[d] > 0 && (size[d] - 1) > (INT64_MAX - last) / stride[d])
          fail(at, "tensor view overflows");
        if (size[d] > 0) last += (size[d] - 1) * stride[d];
      }
      if (offset < 0 || (!empty && last >= storage.numel())) fail(at, "tensor view exceeds its storage");
      auto v = make(Value::Kind::kTensor);
      v->tensor = empty ? torch::empty(size, storage.options()) : storage.as_strided(size, stride, offset);
      return v;
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->kind != Value::Kind::kTensor) fail(at, "bad arguments to " + name);
      return a[0];
    }
    if (name == "collections.OrderedDict") {
      auto d = make(Value::Kind::kDict);
      return d;
    }
    // Anything else stays an inert object: its class name and arguments are kept, nothing is run.
    auto obj = nest(Value::Kind::kObject, a, at);
    obj->s = name;
    return obj;
  }

  std::string_view data_;
  const StorageLoader& storages_;
  const std::string& context_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  std::unordered_map<std::string, torch::Tensor> storage_cache_;
};

void put_le(std::string& out, uint64_t v, int n) {
  for (int k = 0; k < n; ++k) out.push_back(static_cast<char>((v >> (8 * k)) & 0xFF));
}

void put_str(std::string& out, const std::string& s) {
  out.push_back('X');
  put_le(out, s.size(), 4);
  out += s;
}

void put_int(std::string& out, int64_t v) {
  if (v >= INT32_MIN && v <= INT32_MAX) {
    out.push_back('J');
    put_le(out, static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
  } else {
    out.push_back('\x8a');
    out.push_back(8);
    put_le(out, static_cast<uint64_t>(v), 8);
  }
}

void put_int_tuple(std::string& out, torch::IntArrayRef values) {
  out.push_back('(');
  for (auto v : values) put_int(out, v);
  out.push_back('t');
}

}  // namespace

torch::ScalarType storage_dtype(const std::string& global_name) {
  const std::string short_name = global_name.substr(global_name.rfind('.') + 1);
  auto it = storage_types().find(short_name);
  if (it == storage_types().end()) throw std::runtime_error("unsupported storage type '" + global_name + "'");
  return it->second;
}

std::string storage_global(torch::ScalarType dtype) {
  for (const auto& [name, t] : storage_types()) {
    if (t == dtype) return name;
  }
  throw std::runtime_error(std::string("no PyTorch storage type for dtype ") + c10::toString(dtype));
}

ValuePtr load(std::string_view data, const StorageLoader& storages, const std::string& context) {
  return Machine(data, storages, context).run();
}

namespace {

// Appends "{name: rebuilt tensor, ...}" (as EMPTY_DICT MARK ... SETITEMS), numbering storages from `key`.
void put_tensor_dict(std::string& out, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                     size_t& key) {
  out += "}(";
  for (const auto& [name, t] : tensors) {
    put_str(out, name);
    out += "ctorch._utils\n_rebuild_tensor_v2\n(";
    out += "(";
    put_str(out, "storage");
    out += "ctorch\n" + storage_global(t.scalar_type()) + "\n";
    put_str(out, std::to_string(key++));
    put_str(out, "cpu");
    put_int(out, t.numel());
    out += "tQ";
    put_int(out, 0);
    put_int_tuple(out, t.sizes());
    put_int_tuple(out, t.contiguous().strides());
    out += "\x89";                           // requires_grad False
    out += "ccollections\nOrderedDict\n)R";  // backward hooks
    out += "tR";
  }
  out += "u";
}

}  // namespace

std::string dump_tensor_dict(const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::string out = "\x80\x02";
  size_t key = 0;
  put_tensor_dict(out, tensors, key);
  return out + ".";
}

std::string dump_sections(
    const std::vector<std::pair<std::string, std::vector<std::pair<std::string, torch::Tensor>>>>& sections) {
  std::string out = "\x80\x02}(";
  size_t key = 0;
  for (const auto& [section, tensors] : sections) {
    put_str(out, section);
    put_tensor_dict(out, tensors, key);
  }
  return out + "u.";
}

}  // namespace convnets::pickle
