// LSTMCell<T>: one time step of a long short-term memory, for a whole batch (PyTorch's nn.LSTM).
//
//   a = x W_ih^T + b_ih            (computed for every step by the layer, one GEMM)
//   r = h W_hh^T + b_hh            (computed per step by the layer, one GEMM)
//   gates, in PyTorch's order i, f, g, o (column blocks of width H of a and r):
//     i  = sigma(a_i + r_i)        f = sigma(a_f + r_f)
//     g  = tanh (a_g + r_g)        o = sigma(a_o + r_o)
//     c' = f * c + i * g
//     h' = o * tanh(c')
//
// Shapes (B = batch rows of this step, H = hidden): a, r [B, 4H]; states h, c [B, H];
// extra cache [B, H] = tanh(c'). After forward_step, a holds the activations i, f, g, o.
#pragma once

#include <array>

#include "recur/cells/chunks.hpp"

namespace recur {

template <class T>
class LSTMCell {
 public:
  using Scalar = T;
  static constexpr Index kGates = 4;            // G: weight_ih is [G*H, input]
  static constexpr Index kStates = 2;           // state 0 = h (the output), state 1 = c
  static constexpr Index kExtra = 1;            // extra cache per step, in units of H: tanh(c')
  static constexpr bool kSameGateGrads = true;  // d r == d a

  using StatesIn = std::array<ConstRows<T>, kStates>;
  using StatesOut = std::array<Rows<T>, kStates>;

  void forward_step(Rows<T> a, Rows<T> r, const StatesIn& prev, StatesOut next,
                    Rows<T> extra) const {
    const Index H = next[0].cols();
    for (Index b = 0; b < a.rows(); ++b) {  // one fused pass per row
      T* ai = detail::row_data(a, b);
      const T* ri = detail::row_data(r, b);
      const T* c0 = detail::row_data(prev[1], b);
      T* c1 = detail::row_data(next[1], b);
      T* h1 = detail::row_data(next[0], b);
      T* tc = detail::row_data(extra, b);
      detail::for_chunks<T>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        const A i = (at(ai) + at(ri)).logistic();
        const A f = (at(ai + H) + at(ri + H)).logistic();
        const A g = (at(ai + 2 * H) + at(ri + 2 * H)).tanh();
        const A o = (at(ai + 3 * H) + at(ri + 3 * H)).logistic();
        const A c = f * at(c0) + i * g;
        const A t = c.tanh();
        at(ai) = i;
        at(ai + H) = f;
        at(ai + 2 * H) = g;
        at(ai + 3 * H) = o;
        at(c1) = c;
        at(tc) = t;
        at(h1) = o * t;
      });
    }
  }

  // dnext: d loss / d (h', c'). Writes, with `=`: da over a (d r is the same), and dprev, the
  // direct part of d loss / d (h, c) (the layer adds da W_hh to dprev[0]).
  void backward_step(Rows<T> a, Rows<T> /*dr: same as a*/, const StatesIn& prev, ConstRows<T> extra,
                     const StatesIn& dnext, StatesOut dprev) const {
    const Index H = dnext[0].cols();
    for (Index b = 0; b < a.rows(); ++b) {  // one fused pass per row
      T* ai = detail::row_data(a, b);
      const T* tc = detail::row_data(extra, b);
      const T* c0 = detail::row_data(prev[1], b);
      const T* dh1 = detail::row_data(dnext[0], b);
      const T* dc1 = detail::row_data(dnext[1], b);
      T* dh0 = detail::row_data(dprev[0], b);
      T* dc0 = detail::row_data(dprev[1], b);
      detail::for_chunks<T>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        const A i = at(ai), f = at(ai + H), g = at(ai + 2 * H), o = at(ai + 3 * H);
        const A t = at(tc), dh = at(dh1);
        const A dc = at(dc1) + dh * o * (T(1) - t * t);  // d c', total
        at(ai) = dc * g * i * (T(1) - i);
        at(ai + H) = dc * at(c0) * f * (T(1) - f);
        at(ai + 2 * H) = dc * i * (T(1) - g * g);
        at(ai + 3 * H) = dh * t * o * (T(1) - o);
        at(dc0) = dc * f;
        at(dh0).setZero();  // h reaches h' only through W_hh
      });
    }
  }
};

}  // namespace recur
