// Checkpoints: a model's parameters and an optimizer's state, each in a safetensors file of
// its own, so the model file holds exactly the model's tensors (it loads into PyTorch with
// load_state_dict(..., strict=True)) and training resumes bit for bit from the pair.
//
// A training checkpoint is one unit (save_checkpoint / load_training_state): the training
// state goes to a new file named with a fresh stamp, "<model>.<stamp>.optim.safetensors",
// then the model file is written (atomically, last) naming that file and stamp in its
// metadata, then the state file of the previous save is removed. A crash at any point leaves
// every model file paired with the state it names (at worst an unreferenced state or temporary
// file, which remove_stale_checkpoint_files clears), and the loader refuses a state whose
// stamp is not the model's.
//
//   auto params = recur::gather(recur::named("rnn", lstm), recur::named("head", head));
//   recur::save_checkpoint("ckpt/model.safetensors", params, adam, {{"model", "lstm"}});
//   ...
//   recur::load_model("ckpt/model.safetensors", params);          // throws on any mismatch
//   recur::load_training_state("ckpt/model.safetensors", adam);   // nullopt: weights only
//
// The parts on their own: save_model / load_model (a plain state_dict), save_optimizer /
// load_optimizer. Writes are atomic; loads validate everything first (safetensors.hpp) and
// throw std::runtime_error. Needs nlohmann/json (CMake target recur::checkpoint).
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "recur/optim.hpp"
#include "recur/parameters.hpp"
#include "recur/safetensors.hpp"

namespace recur {

/// Writes the parameters' values (PyTorch state_dict names and shapes) and `metadata`.
template <class T>
void save_model(const std::string& path, const std::vector<Parameter<T>>& params,
                const std::map<std::string, std::string>& metadata = {}) {
  safetensors::save(path, values(params), metadata);
}

/// Loads exactly the parameters' tensors (none missing, none extra, same shapes; F16, BF16,
/// F32 or F64 in the file, converted to T) and returns the file's metadata.
template <class T>
std::map<std::string, std::string> load_model(const std::string& path,
                                              const std::vector<Parameter<T>>& params,
                                              const safetensors::LoadOptions& options = {}) {
  return safetensors::load(path, values(params), options);
}
/// The same from a file already read.
template <class T>
std::map<std::string, std::string> load_model(const safetensors::File& file,
                                              const std::vector<Parameter<T>>& params,
                                              const safetensors::LoadOptions& options = {}) {
  return safetensors::load(file, values(params), options);
}

/// The metadata entry `key` of the file `origin`; throws std::runtime_error when it is missing.
inline const std::string& metadata_text(const std::map<std::string, std::string>& meta,
                                        const std::string& key, const std::string& origin) {
  auto it = meta.find(key);
  if (it == meta.end())
    throw std::runtime_error(origin + ": no '" + key + "' in __metadata__");
  return it->second;
}
/// The metadata entry `key` as a whole number in [lo, hi], strictly: decimal digits with an
/// optional '-', nothing else ("8abc", " 8", "8.0" and "" are errors naming the entry).
inline std::int64_t metadata_integer(const std::map<std::string, std::string>& meta,
                                     const std::string& key, const std::string& origin,
                                     std::int64_t lo, std::int64_t hi) {
  const std::string& s = metadata_text(meta, key, origin);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size())
    throw std::runtime_error(origin + ": __metadata__ '" + key + "' = '" + s +
                             "' is not a whole number");
  if (v < lo || v > hi)
    throw std::runtime_error(origin + ": __metadata__ '" + key + "' = " + s + " is outside [" +
                             std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}
/// The metadata entry `key` as a number (what "%.17g" writes, "nan" and "inf" included),
/// strictly: the whole text must be the number.
inline double metadata_number(const std::map<std::string, std::string>& meta,
                              const std::string& key, const std::string& origin) {
  const std::string& s = metadata_text(meta, key, origin);
  char* end = nullptr;
  errno = 0;
  const double v = s.empty() || std::isspace(static_cast<unsigned char>(s[0]))
                       ? 0
                       : std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || s.empty() || errno == ERANGE)
    throw std::runtime_error(origin + ": __metadata__ '" + key + "' = '" + s +
                             "' is not a number");
  return v;
}

/// Writes the optimizer's per-parameter state ("<parameter>.<slot>" tensors) and, in the
/// metadata, its name, step count and hyperparameters ("optimizer", "steps", "lr", ...),
/// with `extra` entries and `extra_tensors` (a training loop's own state: epoch, generator
/// states, a carried hidden state, ...).
template <class T>
void save_optimizer(const std::string& path, Optimizer<T>& opt,
                    const std::map<std::string, std::string>& extra = {},
                    const std::vector<TensorRef<T>>& extra_tensors = {}) {
  std::map<std::string, std::string> meta = extra;
  for (auto& [k, v] : opt.hyperparameters()) meta[k] = v;
  meta["optimizer"] = opt.name();
  meta["steps"] = std::to_string(opt.steps());
  auto tensors = opt.state();
  tensors.insert(tensors.end(), extra_tensors.begin(), extra_tensors.end());
  safetensors::save(path, tensors, meta);
}

/// Restores what save_optimizer wrote into an optimizer over the same parameters: the state
/// tensors, the step count and the learning rate. The optimizer must be of the same kind with
/// the same hyperparameters (other than lr); `extra_tensors` are filled too (they must match
/// what was saved). Returns the metadata (with the `extra` entries).
template <class T>
std::map<std::string, std::string> load_optimizer(const std::string& path, Optimizer<T>& opt,
                                                  const std::vector<TensorRef<T>>& extra_tensors = {}) {
  const auto file = safetensors::File::read(path);
  const auto& meta = file.metadata();
  auto get = [&](const std::string& key) -> const std::string& {
    auto it = meta.find(key);
    if (it == meta.end())
      throw std::runtime_error(path + ": not an optimizer checkpoint (no '" + key +
                               "' in __metadata__)");
    return it->second;
  };
  if (get("optimizer") != opt.name())
    throw std::runtime_error(path + ": holds the state of a '" + get("optimizer") +
                             "' optimizer, not of '" + opt.name() + "'");
  for (auto& [k, v] : opt.hyperparameters())
    if (k != "lr" && get(k) != v)
      throw std::runtime_error(path + ": saved with " + k + " = " + get(k) +
                               " but this optimizer has " + k + " = " + v);
  const std::int64_t steps =
      metadata_integer(meta, "steps", path, 0, std::numeric_limits<std::int64_t>::max());
  const double lr = metadata_number(meta, "lr", path);
  if (!(lr >= 0) || !std::isfinite(lr))
    throw std::runtime_error(path + ": __metadata__ 'lr' = " + get("lr") +
                             " is not a learning rate");
  auto tensors = opt.state();
  tensors.insert(tensors.end(), extra_tensors.begin(), extra_tensors.end());
  safetensors::load(file, tensors);
  opt.set_steps(steps);
  opt.set_lr(lr);
  return meta;
}

// ---- a training checkpoint as one unit ----

/// Metadata keys of the pairing: the model file names its training-state file (a name in the
/// same folder) and both carry the same stamp.
inline constexpr const char* kTrainingStateKey = "recur.training_state";
inline constexpr const char* kStampKey = "recur.stamp";

namespace detail {

inline std::string folder_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}
inline std::string file_name_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}
inline bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
// "x.safetensors" -> "x" (the stem training-state names start from).
inline std::string checkpoint_stem(const std::string& name) {
  const std::string ext = ".safetensors";
  return ends_with(name, ext) && name.size() > ext.size() ? name.substr(0, name.size() - ext.size())
                                                          : name;
}
// A stamp no other save shares: the optimizer's step count and 64 random bits.
inline std::string new_stamp(std::int64_t steps) {
  static std::mt19937_64 rng{std::random_device{}() ^
                             static_cast<std::uint64_t>(::getpid()) << 32};
  char buf[64];
  std::snprintf(buf, sizeof buf, "s%lld-%016llx", static_cast<long long>(steps),
                static_cast<unsigned long long>(rng()));
  return buf;
}
// Whether `name` is a training-state file save_checkpoint writes:
// "<stem>.s<steps>-<16 hex digits>.optim.safetensors" (what cleaning may remove, and nothing else).
inline bool is_stamped_state_name(const std::string& name) {
  const std::string tail = ".optim.safetensors";
  if (!ends_with(name, tail) || name.size() < tail.size() + 20) return false;
  const std::size_t hex_end = name.size() - tail.size(), hex_begin = hex_end - 16;
  for (std::size_t i = hex_begin; i < hex_end; ++i)
    if (!std::isxdigit(static_cast<unsigned char>(name[i]))) return false;
  if (name[hex_begin - 1] != '-') return false;
  std::size_t i = hex_begin - 1;  // back over the step count's digits to ".s"
  std::size_t digits = 0;
  while (i > 0 && std::isdigit(static_cast<unsigned char>(name[i - 1]))) --i, ++digits;
  return digits > 0 && i >= 3 && name[i - 1] == 's' && name[i - 2] == '.';
}

// The model file's metadata, or nothing when there is no readable model file at `path`.
inline std::optional<std::map<std::string, std::string>> metadata_if_any(const std::string& path) {
  try {
    return safetensors::File::read(path, /*with_data=*/false).metadata();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace detail

/// Writes a training checkpoint as one unit: the optimizer's state (with `state_meta` and
/// `state_tensors`, as save_optimizer) to a new stamped file beside `model_path`, then the
/// model file (parameters and `model_meta`, a plain state_dict) naming it, then removes the
/// state file the previous model file at `model_path` named. Returns the state file's path.
template <class T>
std::string save_checkpoint(const std::string& model_path, const std::vector<Parameter<T>>& params,
                            Optimizer<T>& opt,
                            const std::map<std::string, std::string>& model_meta = {},
                            const std::map<std::string, std::string>& state_meta = {},
                            const std::vector<TensorRef<T>>& state_tensors = {}) {
  const std::string dir = detail::folder_of(model_path);
  const std::string stamp = detail::new_stamp(opt.steps());
  const std::string state_name =
      detail::checkpoint_stem(detail::file_name_of(model_path)) + "." + stamp + ".optim.safetensors";
  std::string previous;
  if (auto old = detail::metadata_if_any(model_path)) {
    auto it = old->find(kTrainingStateKey);
    if (it != old->end() && it->second.find('/') == std::string::npos) previous = it->second;
  }
  auto smeta = state_meta;
  smeta[kStampKey] = stamp;
  save_optimizer(dir + state_name, opt, smeta, state_tensors);
  auto mmeta = model_meta;
  mmeta[kTrainingStateKey] = state_name;
  mmeta[kStampKey] = stamp;
  try {
    save_model(model_path, params, mmeta);
  } catch (...) {
    ::unlink((dir + state_name).c_str());  // the model file still names the previous state
    throw;
  }
  if (!previous.empty() && previous != state_name) ::unlink((dir + previous).c_str());
  return dir + state_name;
}

/// Restores the training state that the model file at `model_path` names into `opt` (and
/// `state_tensors`), after checking that it carries the model file's stamp; returns the
/// state's metadata, or nullopt when the model file names no training state (weights only).
/// Throws when the named state is missing or belongs to another save.
template <class T>
std::optional<std::map<std::string, std::string>> load_training_state(
    const std::string& model_path, Optimizer<T>& opt,
    const std::vector<TensorRef<T>>& state_tensors = {}) {
  const auto model_meta = safetensors::File::read(model_path, /*with_data=*/false).metadata();
  auto named = model_meta.find(kTrainingStateKey);
  if (named == model_meta.end()) return std::nullopt;
  const std::string& name = named->second;
  if (name.empty() || name.find('/') != std::string::npos)
    throw std::runtime_error(model_path + ": __metadata__ '" + kTrainingStateKey + "' = '" +
                             name + "' is not a file name");
  const std::string& stamp = metadata_text(model_meta, kStampKey, model_path);
  const std::string path = detail::folder_of(model_path) + name;
  if (::access(path.c_str(), F_OK) != 0)
    throw std::runtime_error(model_path + ": its training state " + path +
                             " is missing (deleted or copied apart from the model file)");
  // Check the stamp before anything is restored (load_optimizer validates all else first).
  const auto state_meta = safetensors::File::read(path, /*with_data=*/false).metadata();
  const std::string& state_stamp = metadata_text(state_meta, kStampKey, path);
  if (state_stamp != stamp)
    throw std::runtime_error(model_path + " (stamp " + stamp + ") and its training state " + path +
                             " (stamp " + state_stamp +
                             ") are from different saves; refusing a mixed pair");
  return load_optimizer(path, opt, state_tensors);
}

/// Removes what interrupted saves leave in `dir`: temporary files of atomic writes
/// ("*.tmp.XXXXXX", write_atomically's) and training-state files ("*.optim.safetensors" with a stamp) that no model
/// file in `dir` names. Only while nothing else writes checkpoints into `dir`. Returns the
/// names removed.
inline std::vector<std::string> remove_stale_checkpoint_files(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.empty() ? "." : dir.c_str())) {
    while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
    ::closedir(d);
  }
  const std::string prefix = dir.empty() || detail::ends_with(dir, "/") ? dir : dir + "/";
  std::set<std::string> named;
  for (auto& n : names)
    if (detail::ends_with(n, ".safetensors") && !detail::ends_with(n, ".optim.safetensors"))
      if (auto meta = detail::metadata_if_any(prefix + n)) {
        auto it = meta->find(kTrainingStateKey);
        if (it != meta->end()) named.insert(it->second);
      }
  std::vector<std::string> removed;
  for (auto& n : names) {
    const auto tmp = n.rfind(".tmp.");
    const bool temporary = tmp != std::string::npos && tmp > 0 && n.size() == tmp + 11;
    const bool state = detail::is_stamped_state_name(n) && !named.count(n);
    if ((temporary || state) && ::unlink((prefix + n).c_str()) == 0) removed.push_back(n);
  }
  return removed;
}

}  // namespace recur

// The compiled mode with checkpoints (recur::compiled built with nlohmann_json defines
// RECUR_COMPILED_CHECKPOINT): these functions are instantiated in the library.
#if defined(RECUR_COMPILED) && defined(RECUR_COMPILED_CHECKPOINT)
#include "recur/detail/instantiations.hpp"
RECUR_EXTERN(RECUR_INSTANTIATE_CHECKPOINT)
#endif
