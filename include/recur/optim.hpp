// Optimizers (SGD, Adam, AdamW, Adagrad, RMSprop), following torch.optim (1.13): the same
// update formulas, in the same order, with the same default hyperparameters. Includes the
// gradient clipping (recur/clip.hpp) and the learning-rate schedules (recur/schedule.hpp).
//
//   auto params = recur::gather(recur::named("rnn", lstm), recur::named("head", head));
//   recur::AdamOptions o;
//   o.lr = 2e-3;
//   recur::Adam<float> opt(params, o);
//   opt.zero_grad(); ...forward, loss, backward...;
//   recur::clip_grad_norm(params, 5.0);
//   opt.step();
//
// The state they share (slots, step count, state() for checkpoints): recur/optimizer.hpp.
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

#include "recur/clip.hpp"
#include "recur/detail/check.hpp"
#include "recur/optimizer.hpp"
#include "recur/parameters.hpp"
#include "recur/schedule.hpp"
#include "recur/threads.hpp"
#include "recur/types.hpp"

namespace recur {

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

}  // namespace recur
