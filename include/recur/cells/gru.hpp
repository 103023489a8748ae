// GRUCell<T>: one time step of a gated recurrent unit, for a whole batch (PyTorch's nn.GRU).
//
//   a = x W_ih^T + b_ih            (computed for every step by the layer, one GEMM)
//   r = h W_hh^T + b_hh            (computed per step by the layer, one GEMM)
//   gates, in PyTorch's order r, z, n (column blocks of width H of a and r):
//     r  = sigma(a_r + r_r)
//     z  = sigma(a_z + r_z)
//     n  = tanh (a_n + r * r_n)    <- b_hn sits inside r * (W_hn h + b_hn)
//     h' = (1 - z) * n + z * h
//
// Shapes: a, r [B, 3H]; state h [B, H]; extra cache [B, H] = r_n (W_hn h + b_hn).
// After forward_step, a holds the activations r, z, n.
#pragma once

#include <array>

#include "recur/cells/chunks.hpp"

namespace recur {

template <class T>
class GRUCell {
 public:
  using Scalar = T;
  static constexpr Index kGates = 3;
  static constexpr Index kStates = 1;
  static constexpr Index kExtra = 1;
  static constexpr bool kSameGateGrads = false;  // the n block differs: d r_n = d a_n * r

  using StatesIn = std::array<ConstRows<T>, kStates>;
  using StatesOut = std::array<Rows<T>, kStates>;

  void forward_step(Rows<T> a, Rows<T> r, const StatesIn& prev, StatesOut next,
                    Rows<T> extra) const {
    const Index H = next[0].cols();
    for (Index b = 0; b < a.rows(); ++b) {  // one fused pass per row
      T* ar = detail::row_data(a, b);
      const T* rr = detail::row_data(r, b);
      const T* h0 = detail::row_data(prev[0], b);
      T* h1 = detail::row_data(next[0], b);
      T* rn = detail::row_data(extra, b);
      detail::for_chunks<T>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        const A rg = (at(ar) + at(rr)).logistic();
        const A z = (at(ar + H) + at(rr + H)).logistic();
        const A hn = at(rr + 2 * H);  // W_hn h + b_hn
        const A n = (at(ar + 2 * H) + rg * hn).tanh();
        at(rn) = hn;
        at(ar) = rg;
        at(ar + H) = z;
        at(ar + 2 * H) = n;
        at(h1) = (T(1) - z) * n + z * at(h0);
      });
    }
  }

  // dnext: d loss / d h'. Writes, with `=`: da over a, dr, and dprev = the direct part of
  // d loss / d h (z * dh'; the layer adds dr W_hh).
  void backward_step(Rows<T> a, Rows<T> dr, const StatesIn& prev, ConstRows<T> extra,
                     const StatesIn& dnext, StatesOut dprev) const {
    const Index H = dnext[0].cols();
    for (Index b = 0; b < a.rows(); ++b) {  // one fused pass per row
      T* ar = detail::row_data(a, b);
      T* drr = detail::row_data(dr, b);
      const T* hn = detail::row_data(extra, b);
      const T* h0 = detail::row_data(prev[0], b);
      const T* dh1 = detail::row_data(dnext[0], b);
      T* dh0 = detail::row_data(dprev[0], b);
      detail::for_chunks<T>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        const A r = at(ar), z = at(ar + H), n = at(ar + 2 * H), dh = at(dh1);
        const A dn = dh * (T(1) - z) * (T(1) - n * n);  // d (a_n + r * r_n)
        const A dz = dh * (at(h0) - n) * z * (T(1) - z);
        const A dg = dn * at(hn) * r * (T(1) - r);
        at(dh0) = dh * z;
        at(ar) = dg;
        at(ar + H) = dz;
        at(ar + 2 * H) = dn;
        at(drr) = dg;
        at(drr + H) = dz;
        at(drr + 2 * H) = dn * r;
      });
    }
  }
};

}  // namespace recur
