// LSTMCell<T>: one time step of a long short-term memory, for a whole batch (PyTorch's
// nn.LSTM), with ONNX's and TensorFlow's variants as options.
//
//   a = x W_ih^T + b_ih            (computed for every step by the layer, one GEMM)
//   r = h W_hh^T + b_hh            (computed per step by the layer, one GEMM)
//   gates, in PyTorch's order i, f, g, o (column blocks of width H of a and r):
//     i  = sigma(a_i + r_i [+ p_i * c])     f = sigma(a_f + r_f [+ p_f * c])
//     g  = tanh (a_g + r_g)
//     c' = f * c + i * g
//     o  = sigma(a_o + r_o [+ p_o * c'])
//     h' = o * tanh(c')
//
// Variants (RecurrentOptions; off by default, PyTorch's cell):
//   peephole   the [p...] terms (ONNX's P, TensorFlow's use_peepholes): the cell owns the
//              parameter `peephole` [3, H], rows p_i, p_f, p_o (recur's gate order; ONNX's
//              P is [p_i, p_o, p_f]); initialised like the weights.
//   cell_clip  every gate's pre-activation (the argument of sigma / tanh above) is clipped to
//              [-clip, clip] (ONNX's clip, as onnxruntime: the gates only, not c' before
//              its tanh); the gradient is 0 where a value was clipped.
//   layer_norm Ba et al. 2016's layer-norm LSTM (LayerNorm in types.hpp), with LN(v) =
//              (v - mean v) / sqrt(var v + eps) over a row (biased variance, as PyTorch's
//              LayerNorm and Keras' LayerNormalization):
//                z  = gx * LN(a) + bx + gr * LN(r) + br      (over all 4H columns at once)
//                i, f, g, o from z as above;  u = f * c + i * g
//                n  = gc * LN(u) + bc;        h' = o * tanh(n)
//                c' = u (Ba2016: the paper, DyNet's ln_lstm) or n (TFAddons: TensorFlow
//                     Addons' LayerNormLSTMCell)
//              The cell owns gx, bx (ln_ih_weight, ln_ih_bias [4H]), gr, br (ln_hh_weight,
//              ln_hh_bias [4H]), gc, bc (ln_c_weight, ln_c_bias [H]); gains start at 1,
//              shifts at 0. The layer's biases b_ih, b_hh sit inside the norms (a and r
//              include them): at 0 the cell is exactly the paper's / TFA's, whose one bias b
//              is ln_ih_bias + ln_hh_bias here. Not combined with peephole or cell_clip.
//
// Shapes (B = batch rows of this step, H = hidden): a, r [B, 4H]; states h, c [B, H]; extra
// cache [B, extra_columns() * H]: tanh(c'), then c' (peephole), then the clip flags (clip:
// bit 0-3 set where i, f, g, o were clipped; detail::clip_flag). After forward_step, a holds
// the activations i, f, g, o. Layer norm's cache (units of H): LN(a) 4, LN(r) 4, LN(u),
// tanh(n), then 1 / sigma of a, r and u (one value each, in three units).
#pragma once

#include <array>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "recur/cells/chunks.hpp"
#include "recur/cells/contract.hpp"
#include "recur/cells/lstm_layer_norm.hpp"
#include "recur/detail/check.hpp"

namespace recur {

template <class T>
class LSTMCell {
 public:
  using Scalar = T;
  static constexpr Index kGates = 4;            // G: weight_ih is [G*H, input]
  static constexpr Index kStates = 2;           // state 0 = h (the output), state 1 = c
  static constexpr Index kExtra = 3;            // at most; extra_columns() says how many
  static constexpr bool kSameGateGrads = true;  // d r == d a

  using StatesIn = std::array<ConstRows<T>, kStates>;
  using StatesOut = std::array<Rows<T>, kStates>;
  using Norm = detail::LSTMLayerNorm<T>;  // the layer-norm cell's passes (lstm_layer_norm.hpp)

  LSTMCell() = default;
  /// The variants RecurrentOptions asks for; rejects those an LSTM does not have.
  explicit LSTMCell(const RecurrentOptions& o)
      : peephole_(o.peephole),
        clip_(static_cast<T>(o.cell_clip)),
        ln_(o.layer_norm),
        eps_(static_cast<T>(o.layer_norm_eps)),
        plain_(!o.peephole && o.cell_clip == 0 && o.layer_norm == LayerNorm::None) {
    detail::require(o.cell_clip >= 0 && std::isfinite(o.cell_clip),
                    "LSTM: cell_clip must be finite and >= 0 (0: no clip), got ", o.cell_clip);
    detail::require(
        o.linear_before_reset,
        "LSTM: linear_before_reset = false is a GRU option (an LSTM has no reset gate)");
    detail::require(o.layer_norm_eps > 0 && std::isfinite(o.layer_norm_eps),
                    "LSTM: layer_norm_eps must be finite and > 0, got ", o.layer_norm_eps);
    detail::require(ln_ == LayerNorm::None || (!o.peephole && o.cell_clip == 0),
                    "LSTM: layer_norm does not combine with peephole or cell_clip (got peephole=",
                    o.peephole, ", cell_clip=", o.cell_clip, ")");
  }
  bool peephole() const { return peephole_; }
  T cell_clip() const { return clip_; }
  LayerNorm layer_norm() const { return ln_; }
  T layer_norm_eps() const { return eps_; }

  Index extra_columns() const {
    if (ln_ != LayerNorm::None) return Norm::kColumns;
    return 1 + (peephole_ ? 1 : 0) + (clip_ > 0 ? 1 : 0);
  }
  bool same_gate_grads() const { return ln_ == LayerNorm::None; }
  std::vector<CellParameter> cell_parameters(Index hidden) const {
    if (ln_ != LayerNorm::None)
      return {CellParameter{"ln_ih_weight", {4 * hidden}, ParameterInit::Ones},
              CellParameter{"ln_ih_bias", {4 * hidden}, ParameterInit::Zeros},
              CellParameter{"ln_hh_weight", {4 * hidden}, ParameterInit::Ones},
              CellParameter{"ln_hh_bias", {4 * hidden}, ParameterInit::Zeros},
              CellParameter{"ln_c_weight", {hidden}, ParameterInit::Ones},
              CellParameter{"ln_c_bias", {hidden}, ParameterInit::Zeros}};
    if (!peephole_) return {};
    return {CellParameter{"peephole", {3, hidden}, ParameterInit::Uniform}};
  }
  void bind_parameters(const T* values) { p_ = values; }

  void forward_step(Rows<T> a, Rows<T> r, const StatesIn& prev, StatesOut next,
                    Rows<T> extra) const {
    if (!plain_) return forward_variant(a, r, prev, next, extra);
    if (r.cols() == 0) return forward_rows<false, true>(a, r, prev, next, extra);
    forward_rows<false>(a, r, prev, next, extra);
  }
  /// The plain cell reads a and r only as a + r (recur/cells/contract.hpp).
  bool sums_gates() const { return plain_; }

  // dnext: d loss / d (h', c'). Writes, with `=`: da over a (d r is the same, except with
  // layer norm: then into dr), and dprev, the direct part of d loss / d (h, c) (the layer
  // adds dr W_hh to dprev[0]). Adds the gradients of the cell's own parameters to grads:
  //   peepholes   d p_i = sum d(i pre) * c, d p_f = sum d(f pre) * c, d p_o = sum d(o pre) * c'
  //   layer norm  d gain = sum d(out) * normalised, d shift = sum d(out), where d(out) is d z
  //               for the gate norms and d n for the cell's.
  void backward_step(Rows<T> a, Rows<T> dr, const StatesIn& prev, ConstRows<T> extra,
                     const StatesIn& dnext, StatesOut dprev, T* grads) const {
    if (ln_ != LayerNorm::None)
      return Norm::backward_rows(p_, ln_, a, dr, prev, extra, dnext, dprev, grads);
    if (plain_) return backward_rows<false>(a, prev, extra, dnext, dprev, grads);
    backward_rows<true>(a, prev, extra, dnext, dprev, grads);
  }

 private:
  // The variants' forward is not inlined into its caller (EIGEN_DONT_INLINE): Stream's
  // fixed-size steps flatten the plain path for each common hidden size, and every variant
  // inlined there too took a translation unit that streams floats from ~50 s to ~120 s.
  // Compile time, too (#32): the variants are one instantiation each, forward and backward,
  // whose options are runtime flags (a branch per chunk of 16, against the transcendental
  // functions' hundreds of cycles), not one per combination of options; the plain cell, the
  // path that Stream and the benchmarks run, stays its own instantiation without branches.
  EIGEN_DONT_INLINE void forward_variant(Rows<T> a, Rows<T> r, const StatesIn& prev, StatesOut next,
                                         Rows<T> extra) const {
    if (ln_ != LayerNorm::None) return Norm::forward_rows(p_, eps_, ln_, a, r, prev, next, extra);
    forward_rows<true>(a, r, prev, next, extra);
  }

  // Variant: peephole and clip as the cell has them (else neither). Summed: a holds a + r
  // (r has no columns).
  template <bool Variant, bool Summed = false>
  RECUR_FLATTEN void forward_rows(Rows<T> a, Rows<T> r, const StatesIn& prev, StatesOut next,
                                  Rows<T> extra) const {
    const Index H = next[0].cols();
    const T* p = p_;
    const T clip = clip_;
    const bool peep = Variant && peephole_, clips = Variant && clip_ > 0;
    for (Index b = 0; b < a.rows(); ++b) {  // one fused pass per row
      T* ai = detail::row_data(a, b);
      const T* ri = Summed ? nullptr : detail::row_data(r, b);
      const T* c0 = detail::row_data(prev[1], b);
      T* c1 = detail::row_data(next[1], b);
      T* h1 = detail::row_data(next[0], b);
      T* tc = detail::row_data(extra, b);
      T* mask = tc + (peep ? 2 : 1) * H;
      detail::for_chunks<T, !Variant>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        const auto pre = [&](Index g) -> A {  // gate g's pre-activation
          if constexpr (Summed)
            return at(ai + g * H);
          else
            return at(ai + g * H) + at(ri + g * H);
        };
        A xi = pre(0), xf = pre(1);
        A xg = pre(2);
        if (peep) {
          xi += at(p) * at(c0);
          xf += at(p + H) * at(c0);
        }
        if (clips) {
          at(mask) = detail::clip_flag<A>(xi, clip, 0) + detail::clip_flag<A>(xf, clip, 1) +
                     detail::clip_flag<A>(xg, clip, 2);
          xi = xi.max(-clip).min(clip);
          xf = xf.max(-clip).min(clip);
          xg = xg.max(-clip).min(clip);
        }
        const A i = xi.logistic(), f = xf.logistic(), g = xg.tanh();
        const A c = f * at(c0) + i * g;
        A xo = pre(3);
        if (peep) xo += at(p + 2 * H) * c;
        if (clips) {
          at(mask) += detail::clip_flag<A>(xo, clip, 3);
          xo = xo.max(-clip).min(clip);
        }
        const A o = xo.logistic();
        const A t = c.tanh();
        at(ai) = i;
        at(ai + H) = f;
        at(ai + 2 * H) = g;
        at(ai + 3 * H) = o;
        at(c1) = c;
        at(tc) = t;
        if (peep) at(tc + H) = c;
        at(h1) = o * t;
      });
    }
  }

  template <bool Variant>
  RECUR_FLATTEN void backward_rows(Rows<T> a, const StatesIn& prev, ConstRows<T> extra,
                                   const StatesIn& dnext, StatesOut dprev, T* grads) const {
    const Index H = dnext[0].cols();
    const T* p = p_;
    const bool peep = Variant && peephole_, clips = Variant && clip_ > 0;
    for (Index b = 0; b < a.rows(); ++b) {  // one fused pass per row
      T* ai = detail::row_data(a, b);
      const T* tc = detail::row_data(extra, b);
      const T* mask = tc + (peep ? 2 : 1) * H;
      const T* c0 = detail::row_data(prev[1], b);
      const T* dh1 = detail::row_data(dnext[0], b);
      const T* dc1 = detail::row_data(dnext[1], b);
      T* dh0 = detail::row_data(dprev[0], b);
      T* dc0 = detail::row_data(dprev[1], b);
      detail::for_chunks<T, !Variant>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        const A i = at(ai), f = at(ai + H), g = at(ai + 2 * H), o = at(ai + 3 * H);
        const A t = at(tc), dh = at(dh1);
        A d_o = dh * t * o * (T(1) - o);  // d (o pre-activation)
        if (clips) d_o *= detail::kept<A>(at(mask), 3);
        A dc = at(dc1) + dh * o * (T(1) - t * t);  // d c', total
        if (peep) dc += d_o * at(p + 2 * H);
        A di = dc * g * i * (T(1) - i), df = dc * at(c0) * f * (T(1) - f);
        A dg = dc * i * (T(1) - g * g);
        if (clips) {
          di *= detail::kept<A>(at(mask), 0);
          df *= detail::kept<A>(at(mask), 1);
          dg *= detail::kept<A>(at(mask), 2);
        }
        at(ai) = di;
        at(ai + H) = df;
        at(ai + 2 * H) = dg;
        at(ai + 3 * H) = d_o;
        if (peep) {
          at(dc0) = dc * f + di * at(p) + df * at(p + H);
          const A c = at(c0);
          at(grads) += di * c;
          at(grads + H) += df * c;
          at(grads + 2 * H) += d_o * at(tc + H);
        } else {
          at(dc0) = dc * f;
        }
        at(dh0).setZero();  // h reaches h' only through W_hh
      });
    }
  }

  bool peephole_ = false;
  T clip_ = T(0);
  LayerNorm ln_ = LayerNorm::None;
  T eps_ = T(1e-5);
  bool plain_ = true;  // none of the above: forward_step's inlined path
  const T* p_ =
      nullptr;  // peephole [3, H] or the layer norms' gains and shifts, bound by the layer
};

}  // namespace recur
