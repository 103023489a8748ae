// Checkpoints: a model's parameters and an optimizer's state, each in a safetensors file of
// its own, so the model file holds exactly the model's tensors (it loads into PyTorch with
// load_state_dict(..., strict=True)) and training resumes bit for bit from the pair.
//
//   auto params = recur::gather(recur::named("rnn", lstm), recur::named("head", head));
//   recur::save_model("ckpt/model.safetensors", params, {{"model", "lstm"}});
//   recur::save_optimizer("ckpt/model.optim.safetensors", adam, {{"epoch", "3"}});
//   ...
//   recur::load_model("ckpt/model.safetensors", params);        // throws on any mismatch
//   recur::load_optimizer("ckpt/model.optim.safetensors", adam);
//
// Writes are atomic; loads validate everything first (see safetensors.hpp) and throw
// std::runtime_error. Needs nlohmann/json (CMake target recur::checkpoint).
#pragma once

#include <map>
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
                                              const std::vector<Parameter<T>>& params) {
  return safetensors::load(path, values(params));
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
  std::int64_t steps = 0;
  double lr = 0;
  try {
    std::size_t used = 0;
    steps = std::stoll(get("steps"), &used);
    if (used != get("steps").size() || steps < 0) throw std::invalid_argument("steps");
    lr = std::stod(get("lr"), &used);
    if (used != get("lr").size() || !(lr >= 0)) throw std::invalid_argument("lr");
  } catch (const std::logic_error&) {
    throw std::runtime_error(path + ": bad 'steps' or 'lr' in __metadata__ ('" + get("steps") +
                             "', '" + get("lr") + "')");
  }
  auto tensors = opt.state();
  tensors.insert(tensors.end(), extra_tensors.begin(), extra_tensors.end());
  safetensors::load(file, tensors);
  opt.set_steps(steps);
  opt.set_lr(lr);
  return meta;
}

}  // namespace recur
