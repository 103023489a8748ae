// safetensors files (https://huggingface.co/docs/safetensors), the checkpoint format PyTorch
// users already read and write; the format and its validation are in safetensors/header.hpp.
//
//   File::read(path)      validates the 8-byte length against the file's size, then the header
//                         (which must describe the rest of the file exactly), and only then
//                         reads the data: no size from a file is trusted before it is checked
//                         against what the file holds
//   load(file, tensors)   fills named tensors (PyTorch's strict=True: none missing, none extra,
//                         same shapes) and rejects NaN / infinite values unless asked not to
//   save(path, tensors)   atomic: a temporary file beside the target, fsync'ed, then renamed
//                         over it (the previous file survives any crash before the rename)
//
// Every problem is a std::runtime_error naming the file and the problem; nothing reads out of
// bounds. Needs nlohmann/json (Debian: nlohmann-json3-dev; CMake target recur::checkpoint).
// POSIX.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
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
#include "recur/safetensors/header.hpp"
#include "recur/parameters.hpp"

namespace recur::safetensors {

namespace detail {

// A regular file opened for reading at offsets, with its size; errors name the path.
class InputFile {
 public:
  explicit InputFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) corrupt(path, "cannot open for reading: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail("cannot stat");
    if (!S_ISREG(st.st_mode)) {
      ::close(fd_);
      corrupt(path, S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file",
              ", not a safetensors file");
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  std::uint64_t size() const { return size_; }
  void read_at(std::uint64_t offset, std::uint8_t* out, std::uint64_t n) const {
    std::uint64_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd_, out + done, static_cast<std::size_t>(std::min<std::uint64_t>(
                                                     n - done, 1u << 30)),
                                static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) corrupt(path_, "read error at byte ", offset + done, ": ", std::strerror(errno));
      if (r == 0)
        corrupt(path_, "the file ended at byte ", offset + done, " while reading (it shrank?)");
      done += static_cast<std::uint64_t>(r);
    }
  }

 private:
  [[noreturn]] void fail(const char* what) {
    const int err = errno;
    ::close(fd_);
    corrupt(path_, what, ": ", std::strerror(err));
  }
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

}  // namespace detail

/// A validated safetensors file in memory: its header and its data section.
class File {
 public:
  static constexpr std::uint64_t kMaxHeader = Header::kMaxLength;

  /// Validates `bytes` as a safetensors file; `origin` names it in error messages.
  static File parse(const std::vector<std::uint8_t>& bytes,
                    const std::string& origin = "safetensors") {
    const std::uint64_t size = bytes.size();
    File f;
    f.origin_ = origin;
    const std::uint64_t n = header_length(bytes.data(), size, origin);
    f.header_ = parse_header(bytes.data() + 8, n, size, origin);
    f.data_.assign(bytes.begin() + static_cast<std::ptrdiff_t>(f.header_.data_start), bytes.end());
    return f;
  }

  /// Reads and validates the file at `path`: the 8-byte length first, then the header, and
  /// only once the header checks out (its tensors cover the rest of the file exactly) the
  /// data section. With `with_data` false the data is not read (metadata, shapes).
  static File read(const std::string& path, bool with_data = true) {
    detail::InputFile in(path);
    const std::uint64_t size = in.size();
    std::uint8_t first8[8] = {};
    in.read_at(0, first8, std::min<std::uint64_t>(size, 8));
    const std::uint64_t n = header_length(first8, size, path);
    std::vector<std::uint8_t> json(static_cast<std::size_t>(n));
    in.read_at(8, json.data(), n);
    File f;
    f.origin_ = path;
    f.header_ = parse_header(json.data(), n, size, path);
    if (with_data) {
      f.data_.resize(static_cast<std::size_t>(f.header_.data_size));
      in.read_at(f.header_.data_start, f.data_.data(), f.header_.data_size);
    }
    f.has_data_ = with_data;
    return f;
  }

  const std::string& origin() const { return origin_; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  /// In the order of their data.
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const TensorInfo* find(const std::string& name) const { return header_.find(name); }

  /// Copies tensor `t` (F16, BF16, F32 or F64) into out[0 .. numel), converting to T.
  template <class T>
  void copy_to(const TensorInfo& t, T* out) const {
    each_value(t, [&](std::size_t i, double v) { out[i] = static_cast<T>(v); });
  }
  /// The index of the first NaN or infinite value of tensor `t`, or -1.
  std::int64_t first_non_finite(const TensorInfo& t) const {
    std::int64_t at = -1;
    each_value(t, [&](std::size_t i, double v) {
      if (at < 0 && !std::isfinite(v)) at = static_cast<std::int64_t>(i);
    });
    return at;
  }

 private:
  template <class F>
  void each_value(const TensorInfo& t, F&& f) const {
    if (!is_floating(t.dtype))
      detail::corrupt(origin_, "tensor '", t.name, "' has dtype ", dtype_name(t.dtype),
                      "; only F16, BF16, F32 and F64 can be loaded into floating point");
    if (!has_data_) detail::corrupt(origin_, "read without its data");
    const std::uint8_t* p = data_.data() + t.begin;
    const std::size_t n = static_cast<std::size_t>(t.numel()), w = dtype_size(t.dtype);
    for (std::size_t i = 0; i < n; ++i, p += w) {
      const std::uint64_t bits = detail::read_le(p, w);
      double v = 0;
      if (t.dtype == Dtype::F64) {
        std::memcpy(&v, &bits, 8);
      } else if (t.dtype == Dtype::F16) {
        v = static_cast<float>(
            Eigen::half(Eigen::half_impl::raw_uint16_to_half(static_cast<std::uint16_t>(bits))));
      } else {  // F32, or BF16: the top half of an F32
        const std::uint32_t b = t.dtype == Dtype::F32 ? static_cast<std::uint32_t>(bits)
                                                       : static_cast<std::uint32_t>(bits) << 16;
        float x;
        std::memcpy(&x, &b, 4);
        v = x;
      }
      f(i, v);
    }
  }

  std::string origin_;
  Header header_;
  std::vector<std::uint8_t> data_;
  bool has_data_ = true;
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
  for (auto& [k, v] : metadata)
    for (const std::string* text : {&k, &v}) try {
        (void)nlohmann::json(*text).dump();  // the JSON writer rejects invalid UTF-8
      } catch (const nlohmann::json::exception&) {
        throw std::invalid_argument("safetensors: metadata entry '" + k +
                                    "' is not valid UTF-8");
      }
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
  std::vector<std::uint8_t> bytes;
  try {
    bytes = serialize(tensors, metadata);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
  write_atomically(path, bytes);
}

/// Options of load().
struct LoadOptions {
  bool allow_non_finite = false;  // accept NaN and infinite values (rejected by default)
};

/// Fills `into` from the file: every tensor of `into` must be in the file with its shape, and
/// the file must hold no other tensor (PyTorch's strict=True); its values must be finite
/// unless `options` allow otherwise. Returns the file's metadata. Nothing is written into
/// `into` unless all checks pass.
template <class T>
std::map<std::string, std::string> load(const File& file, const std::vector<TensorRef<T>>& into,
                                        const LoadOptions& options = {}) {
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
    if (!is_floating(t->dtype))
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
  if (!options.allow_non_finite)
    for (auto& r : into) {
      const TensorInfo& t = *file.find(r.name);
      const std::int64_t at = file.first_non_finite(t);
      if (at >= 0)
        detail::corrupt(file.origin(), "tensor '", r.name, "' ", shape_str(t.shape),
                        " holds a non-finite value (NaN or infinity) at element ", at,
                        " (a diverged run?); LoadOptions::allow_non_finite accepts it");
    }
  for (auto& r : into) file.copy_to(*file.find(r.name), r.data);
  return file.metadata();
}

template <class T>
std::map<std::string, std::string> load(const std::string& path,
                                        const std::vector<TensorRef<T>>& into,
                                        const LoadOptions& options = {}) {
  return load(File::read(path), into, options);
}

}  // namespace recur::safetensors
