// RNNCell<T>: one time step of an Elman RNN, for a whole batch (PyTorch's nn.RNN).
//
//   a  = x W_ih^T + b_ih           (computed for every step by the layer, one GEMM)
//   r  = h W_hh^T + b_hh           (computed per step by the layer, one GEMM)
//   h' = f(a + r),  f = tanh or relu (Nonlinearity)
//
// Shapes: a, r [B, H]; state h [B, H]; no extra cache: after forward_step a holds h', from
// which f' is known (tanh' = 1 - h'^2, relu' = [h' > 0]).
#pragma once

#include <array>

#include "recur/types.hpp"

namespace recur {

template <class T>
class RNNCell {
 public:
  using Scalar = T;
  static constexpr Index kGates = 1;
  static constexpr Index kStates = 1;
  static constexpr Index kExtra = 0;
  static constexpr bool kSameGateGrads = true;

  using StatesIn = std::array<ConstRows<T>, kStates>;
  using StatesOut = std::array<Rows<T>, kStates>;

  explicit RNNCell(Nonlinearity nonlinearity = Nonlinearity::Tanh) : nonlinearity_(nonlinearity) {}
  Nonlinearity nonlinearity() const { return nonlinearity_; }

  void forward_step(Rows<T> a, Rows<T> r, const StatesIn& /*prev*/, StatesOut next,
                    Rows<T> /*extra*/) const {
    if (nonlinearity_ == Nonlinearity::Tanh)
      a = (a + r).array().tanh();
    else
      a = (a + r).cwiseMax(T(0));
    next[0] = a;
  }

  void backward_step(Rows<T> a, Rows<T> /*dr: same as a*/, const StatesIn& /*prev*/,
                     ConstRows<T> /*extra*/, const StatesIn& dnext,
                     StatesOut dprev) const {
    if (nonlinearity_ == Nonlinearity::Tanh)
      a = (dnext[0].array() * (T(1) - a.array().square())).matrix();
    else
      a.array() = (a.array() > T(0)).select(dnext[0].array(), T(0));
    dprev[0].setZero();
  }

 private:
  Nonlinearity nonlinearity_;
};

}  // namespace recur
