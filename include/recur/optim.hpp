// Optimizers, gradient clipping and learning-rate schedules, following torch.optim (1.13):
// the same update formulas, in the same order, with the same default hyperparameters.
//
//   auto params = recur::gather(recur::named("rnn", lstm), recur::named("head", head));
//   recur::AdamOptions o;
//   o.lr = 2e-3;
//   recur::Adam<float> opt(params, o);
//   opt.zero_grad(); ...forward, loss, backward...;
//   recur::clip_grad_norm(params, 5.0);
//   opt.step();
//
// Each optimizer keeps its state per parameter ("slots", each shaped as the parameter), and a
// step counter; state() exposes the slots as named tensors "<parameter>.<slot>" and
// hyperparameters() the settings, so a checkpoint can save and restore both
// (recur/checkpoint.hpp).
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

// ---- SGD ----
struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

/// torch.optim.SGD: g += wd p; buf = g (first step) or momentum buf + (1 - dampening) g;
/// g = g + momentum buf (Nesterov) or buf; p -= lr g.
template <class T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Parameter<T>> params, const SGDOptions& o = {})
      : Optimizer<T>(std::move(params), o.lr,
                     o.momentum != 0 ? std::vector<std::string>{"momentum_buffer"}
                                     : std::vector<std::string>{}),
        o_(o) {
    this->check(o.momentum >= 0, "momentum " + this->str(o.momentum) + " (must be >= 0)");
    this->check(o.weight_decay >= 0,
                "weight_decay " + this->str(o.weight_decay) + " (must be >= 0)");
    this->check(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
                "Nesterov momentum (needs momentum > 0 and dampening = 0)");
  }
  std::string name() const override { return "sgd"; }
  std::map<std::string, std::string> hyperparameters() const override {
    return {{"lr", this->str(this->lr_)},
            {"momentum", this->str(o_.momentum)},
            {"dampening", this->str(o_.dampening)},
            {"weight_decay", this->str(o_.weight_decay)},
            {"nesterov", o_.nesterov ? "true" : "false"}};
  }

 protected:
  void update(typename Optimizer<T>::Array p, typename Optimizer<T>::Array g,
              const typename Optimizer<T>::Slots& slot) override {
    const T lr = static_cast<T>(this->lr_), wd = static_cast<T>(o_.weight_decay);
    const T mu = static_cast<T>(o_.momentum), damp = static_cast<T>(1 - o_.dampening);
    if (o_.momentum == 0) {
      if (wd != 0)
        p -= lr * (g + wd * p);
      else
        p -= lr * g;
      return;
    }
    auto buf = slot[0];
    for (Index k = 0; k < p.size(); ++k) {
      T d = wd != 0 ? g[k] + wd * p[k] : g[k];
      buf[k] = this->steps_ == 1 ? d : buf[k] * mu + damp * d;
      d = o_.nesterov ? d + mu * buf[k] : buf[k];
      p[k] -= lr * d;
    }
  }

 private:
  SGDOptions o_;
};

// ---- Adam and AdamW ----
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
};
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
};

namespace detail {
// Adam's update with decoupled (AdamW) or L2 (Adam) weight decay.
template <class T>
class AdamBase : public Optimizer<T> {
 public:
  std::map<std::string, std::string> hyperparameters() const override {
    return {{"lr", this->str(this->lr_)},
            {"beta1", this->str(o_.beta1)},
            {"beta2", this->str(o_.beta2)},
            {"eps", this->str(o_.eps)},
            {"weight_decay", this->str(o_.weight_decay)},
            {"amsgrad", o_.amsgrad ? "true" : "false"}};
  }

 protected:
  AdamBase(std::vector<Parameter<T>> params, const AdamOptions& o, bool decoupled)
      : Optimizer<T>(std::move(params), o.lr,
                     o.amsgrad ? std::vector<std::string>{"exp_avg", "exp_avg_sq",
                                                          "max_exp_avg_sq"}
                               : std::vector<std::string>{"exp_avg", "exp_avg_sq"}),
        o_(o),
        decoupled_(decoupled) {
    this->check(o.eps >= 0, "eps " + this->str(o.eps) + " (must be >= 0)");
    this->check(o.beta1 >= 0 && o.beta1 < 1, "beta1 " + this->str(o.beta1) + " (must be in [0, 1))");
    this->check(o.beta2 >= 0 && o.beta2 < 1, "beta2 " + this->str(o.beta2) + " (must be in [0, 1))");
    this->check(o.weight_decay >= 0,
                "weight_decay " + this->str(o.weight_decay) + " (must be >= 0)");
  }

  void update(typename Optimizer<T>::Array p, typename Optimizer<T>::Array g,
              const typename Optimizer<T>::Slots& slot) override {
    const double step = static_cast<double>(this->steps_);
    const double bc1 = 1 - std::pow(o_.beta1, step), bc2 = 1 - std::pow(o_.beta2, step);
    const T step_size = static_cast<T>(this->lr_ / bc1);
    const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
    const T b1 = static_cast<T>(o_.beta1), b2 = static_cast<T>(o_.beta2);
    const T c1 = static_cast<T>(1 - o_.beta1), c2 = static_cast<T>(1 - o_.beta2);
    const T eps = static_cast<T>(o_.eps), wd = static_cast<T>(o_.weight_decay);
    auto m = slot[0], v = slot[1];
    T* vmax = o_.amsgrad ? slot[2].data() : nullptr;
    if (decoupled_ && o_.weight_decay != 0) p *= static_cast<T>(1 - this->lr_ * o_.weight_decay);
    for (Index k = 0; k < p.size(); ++k) {
      const T d = !decoupled_ && wd != 0 ? g[k] + wd * p[k] : g[k];
      m[k] = m[k] * b1 + c1 * d;
      v[k] = v[k] * b2 + c2 * (d * d);
      T vk = v[k];
      if (vmax) {
        vmax[k] = std::max(vmax[k], v[k]);
        vk = vmax[k];
      }
      const T denom = std::sqrt(vk) / bc2_sqrt + eps;
      p[k] -= step_size * (m[k] / denom);
    }
  }

  AdamOptions o_;
  bool decoupled_;
};
}  // namespace detail

/// torch.optim.Adam: g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
/// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)   (v -> max(v) with amsgrad).
template <class T>
class Adam : public detail::AdamBase<T> {
 public:
  Adam(std::vector<Parameter<T>> params, const AdamOptions& o = {})
      : detail::AdamBase<T>(std::move(params), o, false) {}
  std::string name() const override { return "adam"; }
};

/// torch.optim.AdamW: p *= 1 - lr wd, then Adam's update without weight decay in g.
template <class T>
class AdamW : public detail::AdamBase<T> {
 public:
  AdamW(std::vector<Parameter<T>> params, const AdamWOptions& o = {})
      : detail::AdamBase<T>(std::move(params),
                            AdamOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad},
                            true) {}
  std::string name() const override { return "adamw"; }
};

// ---- Adagrad ----
struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0;
  double weight_decay = 0;
  double initial_accumulator_value = 0;
  double eps = 1e-10;
};

/// torch.optim.Adagrad: g += wd p; clr = lr / (1 + (t - 1) lr_decay); sum += g^2;
/// p -= clr g / (sqrt(sum) + eps).
template <class T>
class Adagrad : public Optimizer<T> {
 public:
  Adagrad(std::vector<Parameter<T>> params, const AdagradOptions& o = {})
      : Optimizer<T>(std::move(params), o.lr, {"sum"},
                     static_cast<T>(o.initial_accumulator_value)),
        o_(o) {
    this->check(o.lr_decay >= 0, "lr_decay " + this->str(o.lr_decay) + " (must be >= 0)");
    this->check(o.weight_decay >= 0,
                "weight_decay " + this->str(o.weight_decay) + " (must be >= 0)");
    this->check(o.initial_accumulator_value >= 0,
                "initial_accumulator_value " + this->str(o.initial_accumulator_value) +
                    " (must be >= 0)");
    this->check(o.eps >= 0, "eps " + this->str(o.eps) + " (must be >= 0)");
  }
  std::string name() const override { return "adagrad"; }
  std::map<std::string, std::string> hyperparameters() const override {
    return {{"lr", this->str(this->lr_)},
            {"lr_decay", this->str(o_.lr_decay)},
            {"weight_decay", this->str(o_.weight_decay)},
            {"initial_accumulator_value", this->str(o_.initial_accumulator_value)},
            {"eps", this->str(o_.eps)}};
  }

 protected:
  void update(typename Optimizer<T>::Array p, typename Optimizer<T>::Array g,
              const typename Optimizer<T>::Slots& slot) override {
    const T clr = static_cast<T>(this->lr_ /
                                 (1 + static_cast<double>(this->steps_ - 1) * o_.lr_decay));
    const T wd = static_cast<T>(o_.weight_decay), eps = static_cast<T>(o_.eps);
    auto sum = slot[0];
    for (Index k = 0; k < p.size(); ++k) {
      const T d = wd != 0 ? g[k] + wd * p[k] : g[k];
      sum[k] += d * d;
      p[k] -= clr * (d / (std::sqrt(sum[k]) + eps));
    }
  }

 private:
  AdagradOptions o_;
};

// ---- RMSprop ----
struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;
};

/// torch.optim.RMSprop: g += wd p; sq = alpha sq + (1-alpha) g^2; avg = sqrt(sq) + eps (or
/// sqrt(sq - ga^2) + eps with ga = alpha ga + (1-alpha) g when centered); with momentum:
/// buf = momentum buf + g / avg, p -= lr buf; else p -= lr g / avg.
template <class T>
class RMSprop : public Optimizer<T> {
 public:
  RMSprop(std::vector<Parameter<T>> params, const RMSpropOptions& o = {})
      : Optimizer<T>(std::move(params), o.lr, slot_names(o)), o_(o) {
    this->check(o.alpha >= 0, "alpha " + this->str(o.alpha) + " (must be >= 0)");
    this->check(o.eps >= 0, "eps " + this->str(o.eps) + " (must be >= 0)");
    this->check(o.momentum >= 0, "momentum " + this->str(o.momentum) + " (must be >= 0)");
    this->check(o.weight_decay >= 0,
                "weight_decay " + this->str(o.weight_decay) + " (must be >= 0)");
  }
  std::string name() const override { return "rmsprop"; }
  std::map<std::string, std::string> hyperparameters() const override {
    return {{"lr", this->str(this->lr_)},
            {"alpha", this->str(o_.alpha)},
            {"eps", this->str(o_.eps)},
            {"weight_decay", this->str(o_.weight_decay)},
            {"momentum", this->str(o_.momentum)},
            {"centered", o_.centered ? "true" : "false"}};
  }

 protected:
  void update(typename Optimizer<T>::Array p, typename Optimizer<T>::Array g,
              const typename Optimizer<T>::Slots& slot) override {
    const T lr = static_cast<T>(this->lr_), a = static_cast<T>(o_.alpha);
    const T c = static_cast<T>(1 - o_.alpha), eps = static_cast<T>(o_.eps);
    const T wd = static_cast<T>(o_.weight_decay), mu = static_cast<T>(o_.momentum);
    auto sq = slot[0];
    std::size_t next = 1;
    T* ga = o_.centered ? slot[next++].data() : nullptr;
    T* buf = o_.momentum > 0 ? slot[next++].data() : nullptr;
    for (Index k = 0; k < p.size(); ++k) {
      const T d = wd != 0 ? g[k] + wd * p[k] : g[k];
      sq[k] = sq[k] * a + c * (d * d);
      T avg;
      if (ga) {
        ga[k] = ga[k] * a + c * d;
        avg = std::sqrt(sq[k] - ga[k] * ga[k]);
      } else {
        avg = std::sqrt(sq[k]);
      }
      avg += eps;
      if (buf) {
        buf[k] = buf[k] * mu + d / avg;
        p[k] -= lr * buf[k];
      } else {
        p[k] -= lr * (d / avg);
      }
    }
  }

 private:
  static std::vector<std::string> slot_names(const RMSpropOptions& o) {
    std::vector<std::string> s{"square_avg"};
    if (o.centered) s.push_back("grad_avg");
    if (o.momentum > 0) s.push_back("momentum_buffer");
    return s;
  }
  RMSpropOptions o_;
};

// ---- gradient clipping ----

/// torch.nn.utils.clip_grad_norm_: the norm of all gradients together (norm_type 2, 1, ... or
/// infinity); when it exceeds max_norm every gradient is scaled by max_norm / (norm + 1e-6).
/// Returns the norm before clipping (non-finite if a gradient is; the gradients are then
/// scaled by NaN as in PyTorch, so check the result).
template <class T>
double clip_grad_norm(const std::vector<Parameter<T>>& params, double max_norm,
                      double norm_type = 2.0) {
  detail::require(max_norm >= 0, "clip_grad_norm: max_norm ", max_norm, " must be >= 0");
  detail::require(norm_type > 0, "clip_grad_norm: norm_type ", norm_type, " must be > 0");
  double total = 0;
  const bool inf = std::isinf(norm_type);
  if (norm_type == 2.0) {
    // The common case, threaded: each thread sums its slice of every gradient (four
    // independent sums, in double), the slices are added in order.
    Index n = 0;
    for (auto& p : params) n += p.grad.size();
    const int parts = detail::threads_for(n, 4.0 * static_cast<double>(n));
    std::vector<double> partial(static_cast<std::size_t>(std::max(parts, 1)), 0.0);
    detail::parallel(parts, [&](int q, int np) {
      double acc[4] = {0, 0, 0, 0};
      for (auto& p : params) {
        const auto [k0, k1] = detail::split(p.grad.size(), q, np);
        const T* g = p.grad.data();
        Index k = k0;
        for (; k + 4 <= k1; k += 4)
          for (int u = 0; u < 4; ++u) {
            const double a = static_cast<double>(g[k + u]);
            acc[u] += a * a;
          }
        for (; k < k1; ++k) acc[0] += static_cast<double>(g[k]) * static_cast<double>(g[k]);
      }
      partial[static_cast<std::size_t>(q)] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    });
    for (double v : partial) total += v;
  } else {
    for (auto& p : params) {
      const T* g = p.grad.data();
      for (Index k = 0; k < p.grad.size(); ++k) {
        const double a = std::abs(static_cast<double>(g[k]));
        if (inf)
          total = (a > total || std::isnan(a)) ? a : total;
        else if (norm_type == 1.0)
          total += a;
        else
          total += std::pow(a, norm_type);
      }
    }
  }
  if (!inf) total = norm_type == 2.0 ? std::sqrt(total)
                    : norm_type == 1.0 ? total
                                       : std::pow(total, 1.0 / norm_type);
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0 || std::isnan(coef))
    for (auto& p : params) detail::writable(p.grad) *= static_cast<T>(coef);
  return total;
}

/// torch.nn.utils.clip_grad_value_: every gradient element clamped to [-clip, clip].
template <class T>
void clip_grad_value(const std::vector<Parameter<T>>& params, double clip) {
  detail::require(clip >= 0, "clip_grad_value: clip ", clip, " must be >= 0");
  const T c = static_cast<T>(clip);
  for (auto& p : params) detail::writable(p.grad) = p.grad.cwiseMax(-c).cwiseMin(c);
}

// ---- learning-rate schedules ----

/// The learning rate as a function of the number of scheduler steps taken (torch's
/// last_epoch), in closed form:
///   constant:     base
///   step:         base * gamma^floor(e / step_size)              (StepLR)
///   exponential:  base * gamma^e                                  (ExponentialLR)
///   cosine:       eta_min + (base - eta_min) (1 + cos(pi e / t_max)) / 2, e <= t_max
///                 (CosineAnnealingLR; stays at eta_min after t_max)
/// With a warm-up of W steps, e < W gives base * (f + (1 - f) e / W) (LinearLR with
/// start_factor f) and the schedule above starts at e = W with e - W (SequentialLR).
class Schedule {
 public:
  enum class Kind { Constant, Step, Exponential, Cosine };

  static Schedule constant() { return Schedule(Kind::Constant); }
  static Schedule step(std::int64_t step_size, double gamma = 0.1) {
    detail::require(step_size > 0, "Schedule::step: step_size ", step_size, " must be > 0");
    Schedule s(Kind::Step);
    s.step_size_ = step_size;
    s.gamma_ = gamma;
    return s;
  }
  static Schedule exponential(double gamma) {
    detail::require(gamma > 0, "Schedule::exponential: gamma ", gamma, " must be > 0");
    Schedule s(Kind::Exponential);
    s.gamma_ = gamma;
    return s;
  }
  static Schedule cosine(std::int64_t t_max, double eta_min = 0) {
    detail::require(t_max > 0, "Schedule::cosine: t_max ", t_max, " must be > 0");
    Schedule s(Kind::Cosine);
    s.t_max_ = t_max;
    s.eta_min_ = eta_min;
    return s;
  }
  /// Linear warm-up over `steps` steps from start_factor * base (LinearLR's default 1/3).
  Schedule& warmup(std::int64_t steps, double start_factor = 1.0 / 3) {
    detail::require(steps >= 0, "Schedule::warmup: steps ", steps, " must be >= 0");
    detail::require(start_factor > 0 && start_factor <= 1, "Schedule::warmup: start_factor ",
                    start_factor, " must be in (0, 1]");
    warmup_ = steps;
    start_factor_ = start_factor;
    return *this;
  }

  double lr(double base, std::int64_t e) const {
    detail::require(e >= 0, "Schedule::lr: step ", e, " must be >= 0");
    if (e < warmup_)
      return base * (start_factor_ +
                     (1 - start_factor_) * static_cast<double>(e) / static_cast<double>(warmup_));
    e -= warmup_;
    switch (kind_) {
      case Kind::Constant:
        return base;
      case Kind::Step:
        return base * std::pow(gamma_, static_cast<double>(e / step_size_));
      case Kind::Exponential:
        return base * std::pow(gamma_, static_cast<double>(e));
      case Kind::Cosine: {
        const double x = static_cast<double>(std::min(e, t_max_)) / static_cast<double>(t_max_);
        return eta_min_ + (base - eta_min_) * (1 + std::cos(3.14159265358979323846 * x)) / 2;
      }
    }
    return base;
  }

  Kind kind() const { return kind_; }

 private:
  explicit Schedule(Kind k) : kind_(k) {}
  Kind kind_;
  std::int64_t step_size_ = 1, t_max_ = 1, warmup_ = 0;
  double gamma_ = 1, eta_min_ = 0, start_factor_ = 1;
};

}  // namespace recur
