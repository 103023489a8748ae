// GRUCell<T>: one time step of a gated recurrent unit, for a whole batch (PyTorch's nn.GRU),
// with ONNX's and Keras' variants as options.
//
//   a = x W_ih^T + b_ih            (computed for every step by the layer, one GEMM)
//   r = h W_hh^T + b_hh            (computed per step by the layer, one GEMM)
//   gates, in PyTorch's order r, z, n (column blocks of width H of a and r):
//     r  = sigma(a_r + r_r)
//     z  = sigma(a_z + r_z)
//     n  = tanh (a_n + r * r_n)    <- b_hn sits inside r * (W_hn h + b_hn)
//     h' = (1 - z) * n + z * h
//
// Variants (RecurrentOptions; off by default, PyTorch's cell):
//   linear_before_reset = false    the reset gate before the product (Cho et al.'s original
//                                  GRU; ONNX's default, Keras' reset_after=False):
//                                    n = tanh(a_n + W_hn (r * h) + b_hn)
//                                  The n block is a late gate (recur/cells/contract.hpp):
//                                  early_step computes r, z and v = r * h, the layer the
//                                  product v W_hn^T + b_hn, forward_step the rest.
//   cell_clip                      every gate's pre-activation (the argument of sigma / tanh
//                                  above) is clipped to [-clip, clip] (ONNX's clip); the
//                                  gradient is 0 where a value was clipped.
//
// Shapes: a, r [B, 3H]; state h [B, H]; extra cache [B, extra_columns() * H]: r_n = W_hn h +
// b_hn (or v = r * h, reset before), then the clip flags (clip: bit 0-2 set where r, z, n
// were clipped; detail::clip_flag).
// After forward_step, a holds the activations r, z, n.
#pragma once

#include <array>
#include <cmath>

#include "recur/cells/chunks.hpp"
#include "recur/cells/contract.hpp"
#include "recur/detail/check.hpp"

namespace recur {

template <class T>
class GRUCell {
 public:
  using Scalar = T;
  static constexpr Index kGates = 3;
  static constexpr Index kStates = 1;
  static constexpr Index kExtra = 2;             // at most; extra_columns() says how many
  static constexpr bool kSameGateGrads = false;  // the n block differs: d r_n = d a_n * r

  using StatesIn = std::array<ConstRows<T>, kStates>;
  using StatesOut = std::array<Rows<T>, kStates>;

  GRUCell() = default;
  /// The variants RecurrentOptions asks for; rejects those a GRU does not have.
  explicit GRUCell(const RecurrentOptions& o)
      : before_(!o.linear_before_reset), clip_(static_cast<T>(o.cell_clip)) {
    detail::require(o.cell_clip >= 0 && std::isfinite(o.cell_clip),
                    "GRU: cell_clip must be finite and >= 0 (0: no clip), got ", o.cell_clip);
    detail::require(o.layer_norm == LayerNorm::None,
                    "GRU: layer_norm is an LSTM option (recur has no layer-norm GRU)");
    detail::require(!o.peephole, "GRU: peephole is an LSTM option (a GRU has no cell state)");
  }
  bool linear_before_reset() const { return !before_; }
  T cell_clip() const { return clip_; }

  Index extra_columns() const { return 1 + (clip_ > 0 ? 1 : 0); }
  Index late_gates() const { return before_ ? 1 : 0; }

  /// Reset before the product: r, z (into a) and v = r * h (into extra) from the early part
  /// of r.
  EIGEN_DONT_INLINE void early_step(Rows<T> a, Rows<T> r, const StatesIn& prev,
                                    Rows<T> extra) const {
    early_rows(a, r, prev, extra);
  }

  void forward_step(Rows<T> a, Rows<T> r, const StatesIn& prev, StatesOut next,
                    Rows<T> extra) const {
    if (variant()) return forward_variant(a, r, prev, next, extra);
    forward_rows<false>(a, r, prev, next, extra);
  }

  // dnext: d loss / d h'. Writes, with `=`: da over a, dr, and dprev = the direct part of
  // d loss / d h (z * dh'; the layer adds dr W_hh). Reset before the product: the r block
  // of da and dr (and v's share of dprev) wait for backward_late.
  void backward_step(Rows<T> a, Rows<T> dr, const StatesIn& prev, ConstRows<T> extra,
                     const StatesIn& dnext, StatesOut dprev) const {
    if (variant()) return backward_rows<true>(a, dr, prev, extra, dnext, dprev);
    backward_rows<false>(a, dr, prev, extra, dnext, dprev);
  }

  /// Reset before the product, given dv = d (n pre-activation) W_hn: d r = dv * h, d h += dv * r.
  RECUR_FLATTEN void backward_late(Rows<T> a, Rows<T> dr, const StatesIn& prev, ConstRows<T> extra,
                                   ConstRows<T> dv, StatesOut dprev) const {
    const Index H = dprev[0].cols();
    const bool clip = clip_ > 0;
    for (Index b = 0; b < a.rows(); ++b) {
      T* ar = detail::row_data(a, b);
      T* drr = detail::row_data(dr, b);
      const T* mask = detail::row_data(extra, b) + H;
      const T* h0 = detail::row_data(prev[0], b);
      const T* dvr = detail::row_data(dv, b);
      T* dh0 = detail::row_data(dprev[0], b);
      detail::for_chunks<T, false>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        const A rg = at(ar), d = at(dvr);
        A dg = d * at(h0) * rg * (T(1) - rg);
        if (clip) dg *= detail::kept<A>(at(mask), 0);
        at(dh0) += d * rg;
        at(ar) = dg;
        at(drr) = dg;
      });
    }
  }

 private:
  // Any option on: the rows run forward_rows<true> / backward_rows<true>.
  bool variant() const { return before_ || clip_ > 0; }

  // Not inlined (EIGEN_DONT_INLINE), as LSTMCell::forward_variant: compile time. The
  // variants are one instantiation (forward_rows<true>, backward_rows<true>) whose options
  // are runtime flags, as LSTMCell's.
  EIGEN_DONT_INLINE void forward_variant(Rows<T> a, Rows<T> r, const StatesIn& prev, StatesOut next,
                                         Rows<T> extra) const {
    forward_rows<true>(a, r, prev, next, extra);
  }

  RECUR_FLATTEN void early_rows(Rows<T> a, Rows<T> r, const StatesIn& prev, Rows<T> extra) const {
    const Index H = prev[0].cols();
    const T clip = clip_;
    const bool clips = clip_ > 0;
    for (Index b = 0; b < a.rows(); ++b) {
      T* ar = detail::row_data(a, b);
      const T* rr = detail::row_data(r, b);
      const T* h0 = detail::row_data(prev[0], b);
      T* v = detail::row_data(extra, b);
      T* mask = v + H;
      detail::for_chunks<T, false>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        A xr = at(ar) + at(rr), xz = at(ar + H) + at(rr + H);
        if (clips) {
          at(mask) = detail::clip_flag<A>(xr, clip, 0) + detail::clip_flag<A>(xz, clip, 1);
          xr = xr.max(-clip).min(clip);
          xz = xz.max(-clip).min(clip);
        }
        const A rg = xr.logistic();
        at(ar) = rg;
        at(ar + H) = xz.logistic();
        at(v) = rg * at(h0);
      });
    }
  }

  // Variant: reset before the product and clip as the cell has them (else neither).
  template <bool Variant>
  RECUR_FLATTEN void forward_rows(Rows<T> a, Rows<T> r, const StatesIn& prev, StatesOut next,
                                  Rows<T> extra) const {
    const Index H = next[0].cols();
    const T clip = clip_;
    const bool before = Variant && before_, clips = Variant && clip_ > 0;
    for (Index b = 0; b < a.rows(); ++b) {  // one fused pass per row
      T* ar = detail::row_data(a, b);
      const T* rr = detail::row_data(r, b);
      const T* h0 = detail::row_data(prev[0], b);
      T* h1 = detail::row_data(next[0], b);
      T* rn = detail::row_data(extra, b);
      T* mask = rn + H;
      detail::for_chunks<T, !Variant>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        A rg, z, xn;
        if (before) {  // r, z from early_step; r_n = W_hn (r * h) + b_hn
          rg = at(ar);
          z = at(ar + H);
          xn = at(ar + 2 * H) + at(rr + 2 * H);
        } else {
          A xr = at(ar) + at(rr), xz = at(ar + H) + at(rr + H);
          if (clips) {
            at(mask) = detail::clip_flag<A>(xr, clip, 0) + detail::clip_flag<A>(xz, clip, 1);
            xr = xr.max(-clip).min(clip);
            xz = xz.max(-clip).min(clip);
          }
          rg = xr.logistic();
          z = xz.logistic();
          const A hn = at(rr + 2 * H);  // W_hn h + b_hn
          xn = at(ar + 2 * H) + rg * hn;
          at(rn) = hn;
        }
        if (clips) {
          at(mask) += detail::clip_flag<A>(xn, clip, 2);  // (r, z: early_step or above)
          xn = xn.max(-clip).min(clip);
        }
        const A n = xn.tanh();
        at(ar) = rg;
        at(ar + H) = z;
        at(ar + 2 * H) = n;
        at(h1) = (T(1) - z) * n + z * at(h0);
      });
    }
  }

  template <bool Variant>
  RECUR_FLATTEN void backward_rows(Rows<T> a, Rows<T> dr, const StatesIn& prev, ConstRows<T> extra,
                                   const StatesIn& dnext, StatesOut dprev) const {
    const Index H = dnext[0].cols();
    const bool before = Variant && before_, clips = Variant && clip_ > 0;
    for (Index b = 0; b < a.rows(); ++b) {  // one fused pass per row
      T* ar = detail::row_data(a, b);
      T* drr = detail::row_data(dr, b);
      const T* hn = detail::row_data(extra, b);
      const T* mask = hn + H;
      const T* h0 = detail::row_data(prev[0], b);
      const T* dh1 = detail::row_data(dnext[0], b);
      T* dh0 = detail::row_data(dprev[0], b);
      detail::for_chunks<T, !Variant>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        const A r = at(ar), z = at(ar + H), n = at(ar + 2 * H), dh = at(dh1);
        A dn = dh * (T(1) - z) * (T(1) - n * n);  // d (n pre-activation)
        A dz = dh * (at(h0) - n) * z * (T(1) - z);
        if (clips) {
          dn *= detail::kept<A>(at(mask), 2);
          dz *= detail::kept<A>(at(mask), 1);
        }
        at(dh0) = dh * z;
        at(ar + H) = dz;
        at(ar + 2 * H) = dn;
        at(drr + H) = dz;
        if (before) {
          at(drr + 2 * H) = dn;  // d (W_hn v + b_hn); r's block: backward_late
        } else {
          A dg = dn * at(hn) * r * (T(1) - r);
          if (clips) dg *= detail::kept<A>(at(mask), 0);
          at(ar) = dg;
          at(drr) = dg;
          at(drr + 2 * H) = dn * r;
        }
      });
    }
  }

  bool before_ = false;
  T clip_ = T(0);
};

}  // namespace recur
