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
//
// Shapes (B = batch rows of this step, H = hidden): a, r [B, 4H]; states h, c [B, H]; extra
// cache [B, extra_columns() * H]: tanh(c'), then c' (peephole), then the clip flags (clip:
// bit 0-3 set where i, f, g, o were clipped; detail::clip_flag). After forward_step, a holds the activations i, f, g, o.
#pragma once

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "recur/cells/chunks.hpp"
#include "recur/cells/contract.hpp"
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

  LSTMCell() = default;
  /// The variants RecurrentOptions asks for; rejects those an LSTM does not have.
  explicit LSTMCell(const RecurrentOptions& o)
      : peephole_(o.peephole), clip_(static_cast<T>(o.cell_clip)) {
    detail::require(o.cell_clip >= 0 && std::isfinite(o.cell_clip),
                    "LSTM: cell_clip must be finite and >= 0 (0: no clip), got ", o.cell_clip);
    detail::require(o.linear_before_reset,
                    "LSTM: linear_before_reset = false is a GRU option (an LSTM has no reset gate)");
  }
  bool peephole() const { return peephole_; }
  T cell_clip() const { return clip_; }

  Index extra_columns() const { return 1 + (peephole_ ? 1 : 0) + (clip_ > 0 ? 1 : 0); }
  std::vector<CellParameter> cell_parameters(Index hidden) const {
    if (!peephole_) return {};
    return {CellParameter{"peephole", {3, hidden}, ParameterInit::Uniform}};
  }
  void bind_parameters(const T* values) { p_ = values; }

  void forward_step(Rows<T> a, Rows<T> r, const StatesIn& prev, StatesOut next,
                    Rows<T> extra) const {
    dispatch([&](auto peep, auto clip) {
      forward_rows<decltype(peep)::value, decltype(clip)::value>(a, r, prev, next, extra);
    });
  }

  // dnext: d loss / d (h', c'). Writes, with `=`: da over a (d r is the same), and dprev, the
  // direct part of d loss / d (h, c) (the layer adds da W_hh to dprev[0]).
  void backward_step(Rows<T> a, Rows<T> /*dr: same as a*/, const StatesIn& prev,
                     ConstRows<T> extra, const StatesIn& dnext, StatesOut dprev) const {
    dispatch([&](auto peep, auto clip) {
      backward_rows<decltype(peep)::value, decltype(clip)::value>(a, prev, extra, dnext, dprev);
    });
  }

  // Peepholes: d p_i = sum d(i pre) * c, d p_f = sum d(f pre) * c, d p_o = sum d(o pre) * c'.
  void parameter_grads(ConstRows<T> da, ConstRows<T> /*dr*/, const StatesIn& prev,
                       ConstRows<T> extra, T* grads) const {
    if (!peephole_) return;
    const Index H = prev[1].cols();
    Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>> dpi(grads, H), dpf(grads + H, H),
        dpo(grads + 2 * H, H);
    for (Index n = 0; n < da.rows(); ++n) {
      const auto c0 = prev[1].row(n).array();
      dpi += da.row(n).segment(0, H).array() * c0;
      dpf += da.row(n).segment(H, H).array() * c0;
      dpo += da.row(n).segment(3 * H, H).array() * extra.row(n).segment(H, H).array();
    }
  }

 private:
  template <class F>
  void dispatch(F&& f) const {
    using Yes = std::true_type;
    using No = std::false_type;
    if (peephole_) {
      if (clip_ > 0) return f(Yes{}, Yes{});
      return f(Yes{}, No{});
    }
    if (clip_ > 0) return f(No{}, Yes{});
    f(No{}, No{});
  }

  template <bool Peep, bool Clip>
  void forward_rows(Rows<T> a, Rows<T> r, const StatesIn& prev, StatesOut next,
                    Rows<T> extra) const {
    const Index H = next[0].cols();
    const T* p = p_;
    const T clip = clip_;
    for (Index b = 0; b < a.rows(); ++b) {  // one fused pass per row
      T* ai = detail::row_data(a, b);
      const T* ri = detail::row_data(r, b);
      const T* c0 = detail::row_data(prev[1], b);
      T* c1 = detail::row_data(next[1], b);
      T* h1 = detail::row_data(next[0], b);
      T* tc = detail::row_data(extra, b);
      T* mask = tc + (Peep ? 2 : 1) * H;
      detail::for_chunks<T>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        A xi = at(ai) + at(ri), xf = at(ai + H) + at(ri + H);
        A xg = at(ai + 2 * H) + at(ri + 2 * H);
        if constexpr (Peep) {
          xi += at(p) * at(c0);
          xf += at(p + H) * at(c0);
        }
        if constexpr (Clip) {
          at(mask) = detail::clip_flag<A>(xi, clip, 0) + detail::clip_flag<A>(xf, clip, 1) +
                     detail::clip_flag<A>(xg, clip, 2);
          xi = xi.max(-clip).min(clip);
          xf = xf.max(-clip).min(clip);
          xg = xg.max(-clip).min(clip);
        }
        const A i = xi.logistic(), f = xf.logistic(), g = xg.tanh();
        const A c = f * at(c0) + i * g;
        A xo = at(ai + 3 * H) + at(ri + 3 * H);
        if constexpr (Peep) xo += at(p + 2 * H) * c;
        if constexpr (Clip) {
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
        if constexpr (Peep) at(tc + H) = c;
        at(h1) = o * t;
      });
    }
  }

  template <bool Peep, bool Clip>
  void backward_rows(Rows<T> a, const StatesIn& prev, ConstRows<T> extra, const StatesIn& dnext,
                     StatesOut dprev) const {
    const Index H = dnext[0].cols();
    const T* p = p_;
    for (Index b = 0; b < a.rows(); ++b) {  // one fused pass per row
      T* ai = detail::row_data(a, b);
      const T* tc = detail::row_data(extra, b);
      const T* mask = tc + (Peep ? 2 : 1) * H;
      const T* c0 = detail::row_data(prev[1], b);
      const T* dh1 = detail::row_data(dnext[0], b);
      const T* dc1 = detail::row_data(dnext[1], b);
      T* dh0 = detail::row_data(dprev[0], b);
      T* dc0 = detail::row_data(dprev[1], b);
      detail::for_chunks<T>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        const A i = at(ai), f = at(ai + H), g = at(ai + 2 * H), o = at(ai + 3 * H);
        const A t = at(tc), dh = at(dh1);
        A d_o = dh * t * o * (T(1) - o);  // d (o pre-activation)
        if constexpr (Clip) d_o *= detail::kept<A>(at(mask), 3);
        A dc = at(dc1) + dh * o * (T(1) - t * t);  // d c', total
        if constexpr (Peep) dc += d_o * at(p + 2 * H);
        A di = dc * g * i * (T(1) - i), df = dc * at(c0) * f * (T(1) - f);
        A dg = dc * i * (T(1) - g * g);
        if constexpr (Clip) {
          di *= detail::kept<A>(at(mask), 0);
          df *= detail::kept<A>(at(mask), 1);
          dg *= detail::kept<A>(at(mask), 2);
        }
        at(ai) = di;
        at(ai + H) = df;
        at(ai + 2 * H) = dg;
        at(ai + 3 * H) = d_o;
        if constexpr (Peep)
          at(dc0) = dc * f + di * at(p) + df * at(p + H);
        else
          at(dc0) = dc * f;
        at(dh0).setZero();  // h reaches h' only through W_hh
      });
    }
  }

  bool peephole_ = false;
  T clip_ = T(0);
  const T* p_ = nullptr;  // peephole [3, H], bound by the layer
};

}  // namespace recur
