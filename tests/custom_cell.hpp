// A cell written outside the library, used by the tests to prove the cell contract: a
// minimal gated unit (Zhou et al. 2016), two gates, a direct path h -> h' and dR != dA.
//
//   f  = sigma(a_f + r_f)
//   n  = tanh (a_n + f * r_n)
//   h' = (1 - f) * h + f * n
#pragma once

#include <array>

#include <recur/types.hpp>

namespace recur::test {

template <class T>
struct MGUCell {
  using Scalar = T;
  static constexpr Index kGates = 2;
  static constexpr Index kStates = 1;
  static constexpr Index kExtra = 1;  // r_n
  static constexpr bool kSameGateGrads = false;
  using StatesIn = std::array<ConstRows<T>, kStates>;
  using StatesOut = std::array<Rows<T>, kStates>;

  void forward_step(Rows<T> a, Rows<T> r, const StatesIn& prev, StatesOut next,
                    Rows<T> extra) const {
    const Index H = next[0].cols();
    a.leftCols(H) = (a.leftCols(H) + r.leftCols(H)).array().logistic();
    extra = r.rightCols(H);
    a.rightCols(H) = (a.rightCols(H).array() + a.leftCols(H).array() * extra.array()).tanh();
    auto f = a.leftCols(H).array();
    next[0] = ((T(1) - f) * prev[0].array() + f * a.rightCols(H).array()).matrix();
  }

  void backward_step(Rows<T> a, Rows<T> dr, const StatesIn& prev, ConstRows<T> extra,
                     const StatesIn& dnext, StatesOut dprev) const {
    const Index H = dnext[0].cols();
    auto f = a.leftCols(H).array();
    auto n = a.rightCols(H).array();
    auto dh = dnext[0].array();
    dr.rightCols(H) = (dh * f * (T(1) - n * n)).matrix();
    dr.leftCols(H) = ((dh * (n - prev[0].array()) + dr.rightCols(H).array() * extra.array()) * f *
                      (T(1) - f))
                         .matrix();
    dprev[0] = (dh * (T(1) - f)).matrix();
    a.rightCols(H) = dr.rightCols(H);
    dr.rightCols(H).array() *= f;
    a.leftCols(H) = dr.leftCols(H);
  }
};

}  // namespace recur::test
