// Optimizer<T>: what every optimizer of recur/optim.hpp shares -- the parameters, the state
// kept per parameter ("slots", each shaped as the parameter) and a step counter; state()
// exposes the slots as named tensors "<parameter>.<slot>" and hyperparameters() the settings,
// so a checkpoint can save and restore both (recur/checkpoint.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "recur/detail/check.hpp"
#include "recur/parameters.hpp"
#include "recur/threads.hpp"
#include "recur/types.hpp"

namespace recur {

template <class T>
class Optimizer {
 public:
  using Array = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;

  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// "sgd", "adam", "adamw", "adagrad" or "rmsprop".
  virtual std::string name() const = 0;
  /// The settings, as strings that round-trip exactly (for a checkpoint's metadata).
  virtual std::map<std::string, std::string> hyperparameters() const = 0;

  /// One update of every parameter from its gradient.
  /// The updates are element-wise: threads take contiguous slices of every parameter.
  void step() {
    ++steps_;
    Index total = 0;
    for (auto& p : params_) total += p.value.size();
    detail::parallel(detail::threads_for(total, 20.0 * static_cast<double>(total)),
                     [&](int q, int parts) {
                       for (std::size_t i = 0; i < params_.size(); ++i) {
                         auto& p = params_[i];
                         const auto [k0, k1] = detail::split(p.value.size(), q, parts);
                         if (k1 <= k0) continue;
                         Slots slots{{}, k1 - k0};
                         for (std::size_t s = 0; s < slots_[i].size(); ++s)
                           slots.ptr[s] = slots_[i][s].data() + k0;
                         update(Array(p.value.data() + k0, k1 - k0),
                                Array(p.grad.data() + k0, k1 - k0), slots);
                       }
                     });
  }
  void zero_grad() {
    Index total = 0;
    for (auto& p : params_) total += p.grad.size();
    detail::parallel(detail::threads_for(total, static_cast<double>(total)), [&](int q, int parts) {
      for (auto& p : params_) {
        const auto [k0, k1] = detail::split(p.grad.size(), q, parts);
        std::fill(p.grad.data() + k0, p.grad.data() + k1, T(0));
      }
    });
  }

  double lr() const { return lr_; }
  void set_lr(double lr) {
    detail::require(lr >= 0 && std::isfinite(lr), name(), ": learning rate ", lr,
                    " must be finite and >= 0");
    lr_ = lr;
  }
  /// Steps taken so far (torch's state["step"]).
  std::int64_t steps() const { return steps_; }
  void set_steps(std::int64_t s) {
    detail::require(s >= 0, name(), ": step count ", s, " must be >= 0");
    steps_ = s;
  }
  const std::vector<Parameter<T>>& parameters() const { return params_; }
  const std::vector<std::string>& slot_names() const { return slot_names_; }

  /// The per-parameter state as named tensors "<parameter name>.<slot>", parameter shapes.
  std::vector<TensorRef<T>> state() {
    std::vector<TensorRef<T>> out;
    for (std::size_t i = 0; i < params_.size(); ++i)
      for (std::size_t s = 0; s < slot_names_.size(); ++s)
        out.push_back(TensorRef<T>{params_[i].name + "." + slot_names_[s], params_[i].shape,
                                   slots_[i][s].data()});
    return out;
  }

 protected:
  Optimizer(std::vector<Parameter<T>> params, double lr, std::vector<std::string> slot_names,
            T initial = T(0))
      : params_(std::move(params)), slot_names_(std::move(slot_names)) {
    lr_ = lr;
    detail::require(lr >= 0 && std::isfinite(lr), "optimizer: learning rate ", lr,
                    " must be finite and >= 0");
    if (slot_names_.size() > std::tuple_size<decltype(Slots::ptr)>::value)
      throw std::logic_error("optimizer: more slots than Optimizer::Slots holds");
    slots_.resize(params_.size());
    for (std::size_t i = 0; i < params_.size(); ++i)
      slots_[i].assign(slot_names_.size(),
                       detail::Buffer<T>(static_cast<std::size_t>(params_[i].value.size()), initial));
  }

  /// The same slice of each slot of a parameter (at most 3 slots).
  struct Slots {
    std::array<T*, 3> ptr;
    Index n;
    Array operator[](std::size_t s) const { return Array(ptr[s], n); }
  };
  /// p -= ... from g, with the parameter's slots; p, g and the slots are one slice of the
  /// parameter (steps() already counts this step). Called concurrently on disjoint slices.
  virtual void update(Array p, Array g, const Slots& slot) = 0;
  static void check(bool ok, const std::string& what) {
    detail::require(ok, "optimizer: invalid ", what);
  }
  static std::string str(double v) { return detail::format_double(v); }

  double lr_;
  std::int64_t steps_ = 0;

 private:
  std::vector<Parameter<T>> params_;
  std::vector<std::string> slot_names_;
  std::vector<std::vector<detail::Buffer<T>>> slots_;  // [parameter][slot][element]
};

}  // namespace recur
