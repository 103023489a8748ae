// A cell for the contract tests: the minimal gated unit of tests/custom_cell.hpp, with one
// clause of the contract taken away by the macro the including file defines (none: complete).
#pragma once

#include <recur/recur.hpp>

#include "../custom_cell.hpp"

struct BrokenCell {
#ifndef NO_SCALAR
  using Scalar = float;
#endif
  using Full = recur::test::MGUCell<float>;
#ifndef NO_GATES
  static constexpr recur::Index kGates = Full::kGates;
#endif
  static constexpr recur::Index kStates = Full::kStates;
  static constexpr recur::Index kExtra = Full::kExtra;
#ifndef NO_SAME_GATE_GRADS
  static constexpr bool kSameGateGrads = Full::kSameGateGrads;
#endif
  using StatesIn = Full::StatesIn;
  using StatesOut = Full::StatesOut;
  void forward_step(recur::Rows<float> a, recur::Rows<float> r, const StatesIn& prev,
                    StatesOut next, recur::Rows<float> extra) const {
    Full().forward_step(a, r, prev, next, extra);
  }
#ifndef NO_BACKWARD
#ifdef BACKWARD_NOT_CONST
  void backward_step(recur::Rows<float> a, recur::Rows<float> dr, const StatesIn& prev,
                     recur::ConstRows<float> extra, const StatesIn& dnext, StatesOut dprev) {
#else
  void backward_step(recur::Rows<float> a, recur::Rows<float> dr, const StatesIn& prev,
                     recur::ConstRows<float> extra, const StatesIn& dnext, StatesOut dprev) const {
#endif
    Full().backward_step(a, dr, prev, extra, dnext, dprev);
  }
#endif
};

int main() {
  recur::Recurrent<BrokenCell> layer(3, 4);
  recur::Tensor3<float> x(2, 5, 3);
  x.setConstant(0.5f);
  auto y = layer.forward(x);
  layer.backward(y.output);
#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
  static_assert(recur::RecurrentCell<recur::LSTMCell<float>>);
#endif
  return 0;
}
