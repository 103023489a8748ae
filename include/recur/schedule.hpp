// Learning-rate schedules in closed form (torch.optim.lr_scheduler's StepLR, ExponentialLR,
// CosineAnnealingLR, with a LinearLR warm-up).
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
