// RNNCell<T>: one time step of an Elman RNN, for a whole batch (PyTorch's nn.RNN).
//
//   a  = x W_ih^T + b_ih           (computed for every step by the layer, one GEMM)
//   r  = h W_hh^T + b_hh           (computed per step by the layer, one GEMM)
//   h' = f(a + r),  f = tanh or relu (Nonlinearity)
//
// Variant: cell_clip (RecurrentOptions, ONNX's clip): a + r is clipped to [-clip, clip]
// before f; the gradient is 0 where a value was clipped.
//
// Shapes: a, r [B, H]; state h [B, H]; no extra cache (with clip: its mask): after
// forward_step a holds h', from which f' is known (tanh' = 1 - h'^2, relu' = [h' > 0]).
#pragma once

#include <array>
#include <cmath>

#include "recur/detail/check.hpp"
#include "recur/types.hpp"

namespace recur {

template <class T>
class RNNCell {
 public:
  using Scalar = T;
  static constexpr Index kGates = 1;
  static constexpr Index kStates = 1;
  static constexpr Index kExtra = 1;  // at most; extra_columns() says how many
  static constexpr bool kSameGateGrads = true;

  using StatesIn = std::array<ConstRows<T>, kStates>;
  using StatesOut = std::array<Rows<T>, kStates>;

  explicit RNNCell(Nonlinearity nonlinearity = Nonlinearity::Tanh) : nonlinearity_(nonlinearity) {}
  /// The nonlinearity and variants RecurrentOptions asks for; rejects those an RNN does not have.
  explicit RNNCell(const RecurrentOptions& o)
      : nonlinearity_(o.nonlinearity), clip_(static_cast<T>(o.cell_clip)) {
    detail::require(o.cell_clip >= 0 && std::isfinite(o.cell_clip),
                    "RNN: cell_clip must be finite and >= 0 (0: no clip), got ", o.cell_clip);
    detail::require(o.layer_norm == LayerNorm::None,
                    "RNN: layer_norm is an LSTM option (recur has no layer-norm RNN)");
    detail::require(!o.peephole, "RNN: peephole is an LSTM option (an RNN has no cell state)");
    detail::require(o.linear_before_reset,
                    "RNN: linear_before_reset = false is a GRU option (an RNN has no reset gate)");
  }
  Nonlinearity nonlinearity() const { return nonlinearity_; }
  /// Without a clip, the cell reads a and r only as a + r (recur/cells/contract.hpp).
  bool sums_gates() const { return clip_ == 0; }
  T cell_clip() const { return clip_; }
  Index extra_columns() const { return clip_ > 0 ? 1 : 0; }

  void forward_step(Rows<T> a, Rows<T> r, const StatesIn& /*prev*/, StatesOut next,
                    Rows<T> extra) const {
    const auto activate = [&](const auto& x) {  // a = f(x), in one pass over x
      if (nonlinearity_ == Nonlinearity::Tanh)
        a = x.array().tanh().matrix();
      else
        a = x.cwiseMax(T(0));
    };
    if (r.cols() == 0) {  // a holds a + r (sums_gates)
      activate(a);
    } else {
      if (clip_ > 0) {
        a += r;
        extra = (a.array().abs() <= clip_).template cast<T>().matrix();
        r = a.cwiseMax(-clip_).cwiseMin(clip_);
        a.setZero();  // (a = 0 + r below)
      }
      activate(a + r);
    }
    next[0] = a;
  }

  void backward_step(Rows<T> a, Rows<T> /*dr: same as a*/, const StatesIn& /*prev*/,
                     ConstRows<T> extra, const StatesIn& dnext, StatesOut dprev) const {
    if (nonlinearity_ == Nonlinearity::Tanh)
      a = (dnext[0].array() * (T(1) - a.array().square())).matrix();
    else
      a.array() = (a.array() > T(0)).select(dnext[0].array(), T(0));
    if (clip_ > 0) a.array() *= extra.array();
    dprev[0].setZero();
  }

 private:
  Nonlinearity nonlinearity_;
  T clip_ = T(0);
};

}  // namespace recur
