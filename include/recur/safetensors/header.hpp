// The header of a safetensors file (https://huggingface.co/docs/safetensors):
//
//   8 bytes       N, the header length, unsigned little-endian
//   N bytes       a JSON object: for each tensor  "name": {"dtype": "F32", "shape": [2, 3],
//                 "data_offsets": [begin, end]}  (offsets into the data section), and
//                 optionally "__metadata__": {"key": "value", ...} (strings only)
//   the rest      the data section: raw little-endian tensor data
//
// parse_header() reads the JSON with a SAX handler that accepts exactly this schema and builds
// the tensor list directly, so its memory is proportional to the number of tensors, not to the
// header's size (a DOM of a 90 MB header took 2.2 GB). It validates, as the reference
// implementation does: syntax and UTF-8, no duplicate keys, no unknown fields, each dtype,
// each shape (no overflow), each tensor's byte size against its offsets, and that the tensors
// cover the data section exactly (no gap, no overlap, no trailing bytes). Every problem is a
// std::runtime_error naming the file and the problem.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

namespace recur::safetensors {

enum class Dtype { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

namespace detail {

struct DtypeInfo {
  Dtype dtype;
  const char* name;
  std::size_t size;
};
inline const std::vector<DtypeInfo>& dtypes() {
  static const std::vector<DtypeInfo> table{
      {Dtype::BOOL, "BOOL", 1}, {Dtype::U8, "U8", 1},     {Dtype::I8, "I8", 1},
      {Dtype::I16, "I16", 2},   {Dtype::U16, "U16", 2},   {Dtype::F16, "F16", 2},
      {Dtype::BF16, "BF16", 2}, {Dtype::I32, "I32", 4},   {Dtype::U32, "U32", 4},
      {Dtype::F32, "F32", 4},   {Dtype::F64, "F64", 8},   {Dtype::I64, "I64", 8},
      {Dtype::U64, "U64", 8}};
  return table;
}

template <class... Parts>
[[noreturn]] void corrupt(const std::string& origin, Parts&&... parts) {
  std::ostringstream s;
  s << origin << ": ";
  (s << ... << parts);
  throw std::runtime_error(s.str());
}

// Reads an unsigned little-endian integer of `n` bytes.
inline std::uint64_t read_le(const std::uint8_t* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

}  // namespace detail

inline const char* dtype_name(Dtype d) {
  for (auto& e : detail::dtypes())
    if (e.dtype == d) return e.name;
  return "?";
}
inline std::size_t dtype_size(Dtype d) {
  for (auto& e : detail::dtypes())
    if (e.dtype == d) return e.size;
  return 0;
}
inline bool is_floating(Dtype d) {
  return d == Dtype::F16 || d == Dtype::BF16 || d == Dtype::F32 || d == Dtype::F64;
}
template <class T>
constexpr Dtype dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "safetensors: tensors of float or double");
  return std::is_same_v<T, float> ? Dtype::F32 : Dtype::F64;
}

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // byte offsets into the data section
  std::uint64_t numel() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= static_cast<std::uint64_t>(d);
    return n;
  }
};

inline std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

/// What a header says: the metadata and the tensors, in the order of their data.
struct Header {
  static constexpr std::uint64_t kMaxLength = 100'000'000;  // as the reference implementation
  std::map<std::string, std::string> metadata;
  std::vector<TensorInfo> tensors;
  std::uint64_t data_start = 0;  // 8 + N: where the data section begins in the file
  std::uint64_t data_size = 0;

  const TensorInfo* find(const std::string& name) const {
    for (auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
};

namespace detail {

// The SAX handler (nlohmann::json::sax_parse) that accepts only the safetensors schema.
class HeaderReader {
 public:
  using json = nlohmann::json;
  HeaderReader(const std::string& origin, Header& out) : origin_(origin), out_(out) {}

  bool null() { return other("null"); }
  bool boolean(bool v) { return other(v ? "true" : "false"); }
  bool number_integer(json::number_integer_t v) { return other(std::to_string(v)); }
  bool number_unsigned(json::number_unsigned_t v) {
    if (top() != Ctx::Shape && top() != Ctx::Offsets) return other(std::to_string(v));
    numbers_.push_back(v);
    return true;
  }
  bool number_float(json::number_float_t, const std::string& s) { return other(s); }
  bool binary(json::binary_t&) { return other("binary data"); }
  bool string(std::string& s) {
    if (top() == Ctx::Metadata) {
      out_.metadata[meta_key_] = s;
      return true;
    }
    if (top() == Ctx::Tensor && field_ == "dtype") {
      for (auto& e : dtypes())
        if (s == e.name) {
          tensor_.dtype = e.dtype;
          return true;
        }
      corrupt(origin_, "tensor '", tensor_.name, "' has an unknown dtype '", s, "'");
    }
    return other("\"" + s + "\"");
  }
  bool start_object(std::size_t) {
    if (stack_.empty()) return push(Ctx::Root);
    if (top() == Ctx::Root && name_ == "__metadata__") return push(Ctx::Metadata);
    if (top() == Ctx::Root) {
      tensor_ = TensorInfo{};
      tensor_.name = name_;
      fields_.clear();
      return push(Ctx::Tensor);
    }
    return other("an object");
  }
  bool key(std::string& k) {
    switch (top()) {
      case Ctx::Root:
        if (!names_.insert(k).second) corrupt(origin_, "header JSON has the key '", k, "' twice");
        name_ = k;
        break;
      case Ctx::Metadata:
        if (out_.metadata.count(k))
          corrupt(origin_, "header JSON has the key '", k, "' twice in __metadata__");
        meta_key_ = k;
        break;
      default:  // Ctx::Tensor (keys come only inside objects: Root, Metadata, Tensor)
        if (k != "dtype" && k != "shape" && k != "data_offsets")
          corrupt(origin_, "tensor '", tensor_.name, "' has an unknown field '", k, "'");
        if (!fields_.insert(k).second)
          corrupt(origin_, "header JSON has the key '", k, "' twice in tensor '", tensor_.name,
                  "'");
        field_ = k;
    }
    return true;
  }
  bool end_object() {
    if (top() == Ctx::Tensor) finish_tensor();
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) {
    if (top() == Ctx::Tensor && (field_ == "shape" || field_ == "data_offsets")) {
      numbers_.clear();
      return push(field_ == "shape" ? Ctx::Shape : Ctx::Offsets);
    }
    return other("an array");
  }
  bool end_array() {
    if (top() == Ctx::Shape) {
      for (auto k : numbers_) {
        if (k > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          corrupt(origin_, "tensor '", tensor_.name, "' has a shape whose size overflows");
        tensor_.shape.push_back(static_cast<std::int64_t>(k));
      }
    } else {  // Ctx::Offsets
      if (numbers_.size() != 2)
        corrupt(origin_, "tensor '", tensor_.name, "' has no data_offsets pair");
      tensor_.begin = numbers_[0];
      tensor_.end = numbers_[1];
    }
    stack_.pop_back();
    return true;
  }
  template <class Exception>
  bool parse_error(std::size_t, const std::string&, const Exception& e) {
    corrupt(origin_, "header is not valid JSON: ", e.what());
  }

 private:
  enum class Ctx { None, Root, Metadata, Tensor, Shape, Offsets };  // None: before the root
  Ctx top() const { return stack_.empty() ? Ctx::None : stack_.back(); }
  bool push(Ctx c) {
    stack_.push_back(c);
    return true;
  }

  // A value this schema does not allow where it appeared.
  [[noreturn]] bool other(const std::string& what) {
    switch (top()) {
      case Ctx::None:
        corrupt(origin_, "header is not a JSON object");
      case Ctx::Root:
        if (name_ == "__metadata__") corrupt(origin_, "__metadata__ is not an object");
        corrupt(origin_, "entry '", name_, "' is not an object");
      case Ctx::Metadata:
        corrupt(origin_, "__metadata__ value of '", meta_key_, "' is not a string");
      case Ctx::Tensor:
        if (field_ == "dtype") corrupt(origin_, "tensor '", tensor_.name, "' has no dtype string");
        if (field_ == "shape") corrupt(origin_, "tensor '", tensor_.name, "' has no shape array");
        corrupt(origin_, "tensor '", tensor_.name, "' has no data_offsets pair");
      case Ctx::Shape:
        corrupt(origin_, "tensor '", tensor_.name, "' has a shape entry ", what,
                " that is not a non-negative integer");
      default:
        corrupt(origin_, "tensor '", tensor_.name, "' has a data offset ", what,
                " that is not a non-negative integer");
    }
  }

  void finish_tensor() {
    const TensorInfo& t = tensor_;
    for (const char* f : {"dtype", "shape", "data_offsets"})
      if (!fields_.count(f))
        corrupt(origin_, "tensor '", t.name, "' has no ",
                std::string(f) == "dtype"   ? "dtype string"
                : std::string(f) == "shape" ? "shape array"
                                            : "data_offsets pair");
    std::uint64_t bytes = dtype_size(t.dtype);
    for (auto k64 : t.shape) {
      const auto k = static_cast<std::uint64_t>(k64);
      if (k != 0 && bytes > std::numeric_limits<std::uint64_t>::max() / k)
        corrupt(origin_, "tensor '", t.name, "' has a shape whose size overflows");
      bytes *= k;
    }
    if (t.begin > t.end)
      corrupt(origin_, "tensor '", t.name, "' has data_offsets [", t.begin, ", ", t.end,
              "] that end before they begin");
    if (t.end > out_.data_size)
      corrupt(origin_, "tensor '", t.name, "' has data_offsets [", t.begin, ", ", t.end,
              "] outside the data section of ", out_.data_size, " bytes");
    if (t.end - t.begin != bytes)
      corrupt(origin_, "tensor '", t.name, "' is ", dtype_name(t.dtype), " ", shape_str(t.shape),
              " = ", bytes, " bytes but its data_offsets [", t.begin, ", ", t.end, "] hold ",
              t.end - t.begin);
    out_.tensors.push_back(t);
  }

  const std::string& origin_;
  Header& out_;
  std::vector<Ctx> stack_;
  std::set<std::string> names_, fields_;
  std::string name_, meta_key_, field_;
  TensorInfo tensor_;
  std::vector<std::uint64_t> numbers_;
};

}  // namespace detail

/// Reads the 8-byte length at `first8` and checks it against the file's `file_size`; returns
/// N (the JSON then follows at byte 8).
inline std::uint64_t header_length(const std::uint8_t* first8, std::uint64_t file_size,
                                   const std::string& origin) {
  if (file_size < 8)
    detail::corrupt(origin, "file is ", file_size, " bytes, too short for the 8-byte header length");
  const std::uint64_t n = detail::read_le(first8, 8);
  if (n > Header::kMaxLength)
    detail::corrupt(origin, "header length ", n, " exceeds the limit of ", Header::kMaxLength,
                    " bytes");
  if (n > file_size - 8)
    detail::corrupt(origin, "header length ", n, " runs past the end of the file (", file_size,
                    " bytes)");
  if (n < 2) detail::corrupt(origin, "header length ", n, " is too short for a JSON object");
  return n;
}

/// Parses and validates the header JSON `json[0, n)` of a file of `file_size` bytes.
inline Header parse_header(const std::uint8_t* json, std::uint64_t n, std::uint64_t file_size,
                           const std::string& origin) {
  Header h;
  h.data_start = 8 + n;
  h.data_size = file_size - h.data_start;
  detail::HeaderReader reader(origin, h);
  nlohmann::json::sax_parse(json, json + n, &reader);
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Exact coverage: each tensor starts where the previous one ended, the first at 0, and the
  // last ends at the end of the file.
  std::uint64_t at = 0;
  const TensorInfo* prev = nullptr;
  for (auto& t : h.tensors) {
    if (t.begin < at)
      detail::corrupt(origin, "tensors '", prev->name, "' [", prev->begin, ", ", prev->end,
                      ") and '", t.name, "' [", t.begin, ", ", t.end, ") overlap");
    if (t.begin > at)
      detail::corrupt(origin, "the data section has a gap of ", t.begin - at,
                      " bytes before tensor '", t.name, "' (at ", at, ")");
    at = t.end;
    prev = &t;
  }
  if (at != h.data_size)
    detail::corrupt(origin, "the data section has ", h.data_size - at,
                    " bytes after the last tensor (", h.data_size, " bytes, tensors end at ",
                    at, ")");
  return h;
}

}  // namespace recur::safetensors
