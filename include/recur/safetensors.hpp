// The safetensors format (https://huggingface.co/docs/safetensors), the checkpoint format
// PyTorch users already read and write:
//
//   8 bytes       N, the header length, unsigned little-endian
//   N bytes       a JSON object: for each tensor  "name": {"dtype": "F32", "shape": [2, 3],
//                 "data_offsets": [begin, end]}  (offsets into the data section), and
//                 optionally "__metadata__": {"key": "value", ...} (strings only)
//   the rest      the data section: raw little-endian tensor data
//
// File::parse validates everything before anything is read: the header length against the
// size, the JSON (syntax, nesting, duplicate keys, field types), each dtype, each shape (no
// overflow), each tensor's byte size against its offsets, offsets inside the data section and
// not overlapping. Every problem is a std::runtime_error naming it; nothing reads out of
// bounds. write() is atomic: a temporary file in the same folder, flushed and fsync'ed, then
// renamed over the target (the previous file survives any crash before the rename).
//
// Needs nlohmann/json (Debian: nlohmann-json3-dev; CMake target recur::checkpoint). POSIX.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "recur/detail/eigen.hpp"
#include "recur/parameters.hpp"

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
template <class T>
constexpr Dtype dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "safetensors: tensors of float or double");
  return std::is_same_v<T, float> ? Dtype::F32 : Dtype::F64;
}

struct TensorInfo {
  std::string name;
  Dtype dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin, end;  // byte offsets into the data section
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

/// A parsed and validated safetensors file, held in memory.
class File {
 public:
  static constexpr std::uint64_t kMaxHeader = 100'000'000;  // as the reference implementation

  /// Validates `bytes` as a safetensors file; `origin` names it in error messages.
  static File parse(std::vector<std::uint8_t> bytes, const std::string& origin = "safetensors") {
    File f;
    f.origin_ = origin;
    f.bytes_ = std::move(bytes);
    f.validate();
    return f;
  }

  /// Reads and validates the file at `path`.
  static File read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) detail::corrupt(path, "cannot open for reading: ", std::strerror(errno));
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    if (size < 0) detail::corrupt(path, "cannot read (not a regular file?)");
    in.seekg(0, std::ios::beg);
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
    if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
      detail::corrupt(path, "read error after ", in.gcount(), " of ", size, " bytes");
    return parse(std::move(bytes), path);
  }

  const std::string& origin() const { return origin_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// In the order of their data.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const {
    for (auto& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }

  /// Copies tensor `t` (F16, BF16, F32 or F64) into out[0 .. numel), converting to T.
  template <class T>
  void copy_to(const TensorInfo& t, T* out) const {
    const std::uint8_t* p = bytes_.data() + data_start_ + t.begin;
    const std::size_t n = static_cast<std::size_t>(t.numel()), w = dtype_size(t.dtype);
    for (std::size_t i = 0; i < n; ++i, p += w) {
      const std::uint64_t bits = detail::read_le(p, w);
      switch (t.dtype) {
        case Dtype::F64: {
          double v;
          std::memcpy(&v, &bits, 8);
          out[i] = static_cast<T>(v);
          break;
        }
        case Dtype::F32: {
          const std::uint32_t b = static_cast<std::uint32_t>(bits);
          float v;
          std::memcpy(&v, &b, 4);
          out[i] = static_cast<T>(v);
          break;
        }
        case Dtype::BF16: {
          const std::uint32_t b = static_cast<std::uint32_t>(bits) << 16;
          float v;
          std::memcpy(&v, &b, 4);
          out[i] = static_cast<T>(v);
          break;
        }
        case Dtype::F16:
          out[i] = static_cast<T>(static_cast<float>(
              Eigen::half(Eigen::half_impl::raw_uint16_to_half(static_cast<std::uint16_t>(bits)))));
          break;
        default:
          detail::corrupt(origin_, "tensor '", t.name, "' has dtype ", dtype_name(t.dtype),
                          "; only F16, BF16, F32 and F64 can be loaded into floating point");
      }
    }
  }

 private:
  void validate() {
    const std::uint64_t size = bytes_.size();
    if (size < 8)
      detail::corrupt(origin_, "file is ", size, " bytes, too short for the 8-byte header length");
    const std::uint64_t n = detail::read_le(bytes_.data(), 8);
    if (n > kMaxHeader)
      detail::corrupt(origin_, "header length ", n, " exceeds the limit of ", kMaxHeader,
                      " bytes");
    if (n > size - 8)
      detail::corrupt(origin_, "header length ", n, " runs past the end of the file (",
                      size, " bytes)");
    if (n < 2) detail::corrupt(origin_, "header length ", n, " is too short for a JSON object");
    data_start_ = 8 + n;
    const std::uint64_t data_size = size - data_start_;

    // JSON: nesting at most 3 deep, no duplicate keys in any object.
    using nlohmann::json;
    std::vector<std::set<std::string>> keys;
    json::parser_callback_t guard = [&](int depth, json::parse_event_t event, json& parsed) {
      if (depth > 3) detail::corrupt(origin_, "header JSON is nested too deeply");
      if (event == json::parse_event_t::object_start) keys.emplace_back();
      if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
      if (event == json::parse_event_t::key && !keys.empty() &&
          !keys.back().insert(parsed.get<std::string>()).second)
        detail::corrupt(origin_, "header JSON has the key '", parsed.get<std::string>(),
                        "' twice");
      return true;
    };
    json header;
    try {
      header = json::parse(bytes_.begin() + 8, bytes_.begin() + static_cast<std::ptrdiff_t>(data_start_),
                           guard);
    } catch (const json::exception& e) {
      detail::corrupt(origin_, "header is not valid JSON: ", e.what());
    }
    if (!header.is_object()) detail::corrupt(origin_, "header is not a JSON object");

    for (auto& [name, value] : header.items()) {
      if (name == "__metadata__") {
        if (!value.is_object()) detail::corrupt(origin_, "__metadata__ is not an object");
        for (auto& [k, v] : value.items()) {
          if (!v.is_string())
            detail::corrupt(origin_, "__metadata__ value of '", k, "' is not a string");
          metadata_[k] = v.get<std::string>();
        }
        continue;
      }
      tensors_.push_back(tensor_info(name, value, data_size));
    }
    std::sort(tensors_.begin(), tensors_.end(),
              [](const TensorInfo& a, const TensorInfo& b) {
                return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
              });
    for (std::size_t i = 1; i < tensors_.size(); ++i)
      if (tensors_[i].begin < tensors_[i - 1].end)
        detail::corrupt(origin_, "tensors '", tensors_[i - 1].name, "' [", tensors_[i - 1].begin,
                        ", ", tensors_[i - 1].end, ") and '", tensors_[i].name, "' [",
                        tensors_[i].begin, ", ", tensors_[i].end, ") overlap");
  }

  TensorInfo tensor_info(const std::string& name, const nlohmann::json& v,
                         std::uint64_t data_size) const {
    if (!v.is_object()) detail::corrupt(origin_, "entry '", name, "' is not an object");
    for (auto& [k, _] : v.items())
      if (k != "dtype" && k != "shape" && k != "data_offsets")
        detail::corrupt(origin_, "tensor '", name, "' has an unknown field '", k, "'");
    if (!v.contains("dtype") || !v["dtype"].is_string())
      detail::corrupt(origin_, "tensor '", name, "' has no dtype string");
    if (!v.contains("shape") || !v["shape"].is_array())
      detail::corrupt(origin_, "tensor '", name, "' has no shape array");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      detail::corrupt(origin_, "tensor '", name, "' has no data_offsets pair");
    TensorInfo t;
    t.name = name;
    const std::string dt = v["dtype"].get<std::string>();
    bool known = false;
    for (auto& e : detail::dtypes())
      if (dt == e.name) {
        t.dtype = e.dtype;
        known = true;
      }
    if (!known) detail::corrupt(origin_, "tensor '", name, "' has an unknown dtype '", dt, "'");
    std::uint64_t bytes = dtype_size(t.dtype);
    for (auto& d : v["shape"]) {
      if (!d.is_number_unsigned())
        detail::corrupt(origin_, "tensor '", name, "' has a shape entry ", d.dump(),
                        " that is not a non-negative integer");
      const std::uint64_t k = d.get<std::uint64_t>();
      if (k > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          (k != 0 && bytes > std::numeric_limits<std::uint64_t>::max() / k))
        detail::corrupt(origin_, "tensor '", name, "' has a shape whose size overflows");
      bytes *= k;
      t.shape.push_back(static_cast<std::int64_t>(k));
    }
    for (auto& d : v["data_offsets"])
      if (!d.is_number_unsigned())
        detail::corrupt(origin_, "tensor '", name, "' has a data offset ", d.dump(),
                        " that is not a non-negative integer");
    t.begin = v["data_offsets"][0].get<std::uint64_t>();
    t.end = v["data_offsets"][1].get<std::uint64_t>();
    if (t.begin > t.end)
      detail::corrupt(origin_, "tensor '", name, "' has data_offsets [", t.begin, ", ", t.end,
                      "] that end before they begin");
    if (t.end > data_size)
      detail::corrupt(origin_, "tensor '", name, "' has data_offsets [", t.begin, ", ", t.end,
                      "] outside the data section of ", data_size, " bytes");
    if (t.end - t.begin != bytes)
      detail::corrupt(origin_, "tensor '", name, "' is ", dtype_name(t.dtype), " ",
                      shape_str(t.shape), " = ", bytes, " bytes but its data_offsets [", t.begin,
                      ", ", t.end, "] hold ", t.end - t.begin);
    return t;
  }

  std::string origin_;
  std::vector<std::uint8_t> bytes_;
  std::uint64_t data_start_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorInfo> tensors_;
};

/// Writes `bytes` to `path` atomically: temporary file beside it, write, fsync, rename, fsync
/// of the folder. On failure the temporary file is removed and the old file is untouched.
/// (Any file a program keeps beside its checkpoints: logs, plots.)
inline void write_atomically(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    throw std::runtime_error(path + ": cannot create a temporary file beside it: " +
                             std::strerror(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": " + what + ": " + std::strerror(err));
  };
  if (::fchmod(fd, 0644) != 0) fail("cannot set permissions");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("write failed");
    done += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": close failed: " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": cannot rename the temporary file into place: " +
                             std::strerror(err));
  }
  const std::size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);  // make the rename durable; best effort
    ::close(dfd);
  }
}

namespace detail {

inline void append_le(std::vector<std::uint8_t>& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

}  // namespace detail

/// The bytes of a safetensors file holding `tensors` (in that order) and `metadata`.
template <class T>
std::vector<std::uint8_t> serialize(const std::vector<TensorRef<T>>& tensors,
                                    const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  std::set<std::string> names;
  for (auto& t : tensors) {
    if (t.name == "__metadata__" || !names.insert(t.name).second)
      throw std::invalid_argument("safetensors: tensor name '" + t.name +
                                  "' is reserved or repeated");
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.size()) * sizeof(T);
    header[t.name] = {{"dtype", dtype_name(dtype_of<T>())},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data aligned to 8 bytes, as the reference
  std::vector<std::uint8_t> out;
  out.reserve(8 + text.size() + offset);
  detail::append_le(out, text.size(), 8);
  out.insert(out.end(), text.begin(), text.end());
  for (auto& t : tensors)
    for (Index i = 0; i < t.size(); ++i) {
      using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
      Bits bits;
      std::memcpy(&bits, t.data + i, sizeof(T));
      detail::append_le(out, bits, sizeof(T));
    }
  return out;
}

/// Writes `tensors` and `metadata` to `path`, atomically.
template <class T>
void save(const std::string& path, const std::vector<TensorRef<T>>& tensors,
          const std::map<std::string, std::string>& metadata = {}) {
  write_atomically(path, serialize(tensors, metadata));
}

/// Fills `into` from the file: every tensor of `into` must be in the file with its shape, and
/// the file must hold no other tensor (PyTorch's strict=True). Returns the file's metadata.
/// Nothing is written into `into` unless all checks pass.
template <class T>
std::map<std::string, std::string> load(const File& file, const std::vector<TensorRef<T>>& into) {
  std::vector<std::string> missing, unexpected;
  std::set<std::string> wanted;
  for (auto& r : into) {
    wanted.insert(r.name);
    const TensorInfo* t = file.find(r.name);
    if (!t) {
      missing.push_back(r.name);
      continue;
    }
    std::vector<std::int64_t> shape(r.shape.begin(), r.shape.end());
    if (t->shape != shape)
      detail::corrupt(file.origin(), "tensor '", r.name, "' is ", shape_str(t->shape),
                      " in the file but ", shape_str(shape), " in the model");
    if (t->dtype != Dtype::F32 && t->dtype != Dtype::F64 && t->dtype != Dtype::F16 &&
        t->dtype != Dtype::BF16)
      detail::corrupt(file.origin(), "tensor '", r.name, "' has dtype ", dtype_name(t->dtype),
                      "; only F16, BF16, F32 and F64 can be loaded into floating point");
  }
  for (auto& t : file.tensors())
    if (!wanted.count(t.name)) unexpected.push_back(t.name);
  if (!missing.empty() || !unexpected.empty()) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (std::size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", '" : "'") + v[i] + "'";
      if (v.size() > 8) s += ", ... (" + std::to_string(v.size()) + " in all)";
      return s;
    };
    detail::corrupt(file.origin(), "tensors do not match the model:",
                    missing.empty() ? "" : " missing ", list(missing),
                    unexpected.empty() ? "" : (missing.empty() ? "" : ";"),
                    unexpected.empty() ? "" : " unexpected ", list(unexpected));
  }
  for (auto& r : into) file.copy_to(*file.find(r.name), r.data);
  return file.metadata();
}

template <class T>
std::map<std::string, std::string> load(const std::string& path,
                                        const std::vector<TensorRef<T>>& into) {
  return load(File::read(path), into);
}

}  // namespace recur::safetensors
