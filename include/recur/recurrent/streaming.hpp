// StreamingLayer<Cell>: one recurrent layer laid out for streaming — a few samples, one time
// step at a time (recur::Stream). It is a strategy like batch_slices.hpp and unit_split.hpp,
// for the opposite end of the sizes: no threads, no per-call packing, no caches for backward.
// It holds its own packed copy of the layer's weights, made once (load()):
//   W_hh^T and b_hh for the step's recurrent product  r = b_hh + h W_hh^T   (PackedMatVec),
//   W_ih^T and b_ih for the input projection          a = b_ih + x W_ih^T   (PackedMatVec
//     for one step of a few samples, PackedWeight's GEMM for a block of steps, where it is
//     hoisted out of the time loop);
// then the cell's own forward_step (the gate math, fused and vectorised in the cell) turns
// a and r into the next state — the same cell code, so a streamed step equals that step of a
// whole-sequence forward within float rounding. Nothing here allocates after reserve().
#pragma once

#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include "recur/cells/chunks.hpp"  // (RECUR_FLATTEN)
#include "recur/cells/contract.hpp"
#include "recur/detail/check.hpp"
#include "recur/detail/gemm.hpp"
#include "recur/detail/matvec.hpp"
#include "recur/recurrent/core.hpp"


namespace recur::detail {

template <class Cell>
class StreamingLayer {
 public:
  using T = typename Cell::Scalar;
  static constexpr Index G = Cell::kGates, K = Cell::kStates;
  using States = std::array<T*, K>;
  using ConstStates = std::array<const T*, K>;

  /// proj_size > 0: h = W_hr (the cell's h), of width proj_size (an LSTM's projection).
  StreamingLayer(const Cell& cell, Index input_size, Index hidden_size, Index proj_size = 0)
      : cell_(cell), input_(input_size), hidden_(hidden_size), proj_(proj_size),
        rw_(proj_size > 0 ? proj_size : hidden_size), extra_cols_(extra_columns(cell)),
        late_(late_gates(cell) * hidden_size) {
    for (const auto& p : cell_parameters(cell_, hidden_size)) cell_count_ += parameter_size(p);
  }
  Index proj_size() const { return proj_; }
  /// The parameters the cell owns (recur/cells/contract.hpp), after the layer's four.
  Index cell_parameter_count() const { return cell_count_; }

  Index input_size() const { return input_; }
  Index hidden_size() const { return hidden_; }
  /// Row stride of the gate buffers a and r: G*H rounded up to whole packets.
  Index gate_stride() const { return PackedMatVec<T>::padded(G * hidden_); }

  /// Packs weight_ih [G*H, input], weight_hh [G*H, H], bias_ih, bias_hh (PyTorch's four
  /// parameters of the layer, in its gate order; row-major, contiguous) and copies the
  /// cell's own (cell_parameter_count() values, or null when it has none).
  /// weight_hh is [G*H, R] (R: h's width), weight_hr [P, H] with a projection (else null).
  void load(const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh,
            const T* cell_values = nullptr, const T* w_hr = nullptr) {
    const Index GH = G * hidden_, early = GH - late_;
    step_ih_.pack(w_ih, GH, input_, input_, b_ih);
    hh_.pack(w_hh, early, rw_, rw_, b_hh);
    if (late_ > 0) late_hh_.pack(w_hh + early * rw_, late_, rw_, rw_, b_hh + early);
    if (proj_ > 0) hr_.pack(w_hr, proj_, hidden_, hidden_, nullptr);
    cell_values_.assign(cell_values, cell_values + (cell_values ? cell_count_ : 0));
    bind_parameters(cell_, cell_values_.data());
    block_ih_.pack(w_ih, GH, input_, WeightOp::Transposed);
    b_ih_.assign(b_ih, b_ih + GH);
    work_.assign(static_cast<std::size_t>(block_ih_.workspace_size(rows_)), T(0));  // needs the packed W
  }

  /// Scratch for steps of up to `batch` samples and blocks of up to `rows` input rows (the
  /// GEMM's share is sized by load()).
  void reserve(Index batch, Index rows) {
    const Index GS = gate_stride();
    rows_ = rows;
    r_.assign(static_cast<std::size_t>(batch * GS + PackedMatVec<T>::padded(late_)), T(0));
    extra_.assign(static_cast<std::size_t>(std::max<Index>(batch * extra_cols_ * hidden_, 1)), T(0));
    if (proj_ > 0)  // the cell's h of the batch, then one projected row (whole packets)
      m_.assign(static_cast<std::size_t>(batch * hidden_ + PackedMatVec<T>::padded(proj_)), T(0));
  }

  /// a [m, gate_stride()] = b_ih + x W_ih^T for m rows of x (rows ldx apart): one
  /// matrix-vector product per row (a step of a few samples).
  void project_rows(const T* x, Index ldx, Index m, T* a) const noexcept {
    for (Index b = 0; b < m; ++b) step_ih_.apply(x + b * ldx, a + b * gate_stride());
  }
  /// The same for a block of m <= reserve()'s rows rows: one GEMM.
  void project_block(const T* x, Index ldx, Index m, T* a) noexcept {
    block_ih_.multiply(x, m, ldx, a, gate_stride(), work_.data(), false,
                       Update<T>::assign_to(b_ih_.data()));
  }

  /// One time step of B <= reserve()'s batch samples: a [B, gate_stride()] holds the projected
  /// input (and is overwritten: the cell leaves its activations there); prev -> next, each
  /// state [B, H] contiguous. prev and next must not overlap.
  void step(T* a, Index B, const ConstStates& prev, const States& next) noexcept {
    for (Index b = 0; b < B; ++b) hh_.apply(prev[0] + b * rw_, r_.data() + b * gate_stride());
    gates(a, B, hidden_, prev, next);
  }

  /// One step of one sample: step(a, 1, prev, next), with the loops of the common hidden
  /// sizes (8-64, float: what real-time audio runs) unrolled at compile time — the packed
  /// product and the cell's gate math inlined into one function: 1.1-1.3x faster, measured
  /// on Zen 4; the other sizes and double take the run-time path.
  void step_one(T* a, const ConstStates& prev, const States& next) noexcept {
    if constexpr (std::is_same_v<T, float>) {
      if (late_ == 0 && proj_ == 0) {  // (late gates, a projection: the run-time path)
        switch (hidden_) {
          case 8: return step_fixed<8>(a, prev, next);
          case 16: return step_fixed<16>(a, prev, next);
          case 24: return step_fixed<24>(a, prev, next);
          case 32: return step_fixed<32>(a, prev, next);
          case 48: return step_fixed<48>(a, prev, next);
          case 64: return step_fixed<64>(a, prev, next);
          default: break;
        }
      }
    }
    step(a, 1, prev, next);
  }

  std::size_t bytes() const {
    return step_ih_.bytes() + hh_.bytes() + late_hh_.bytes() + hr_.bytes() + block_ih_.bytes() +
           sizeof(T) * (b_ih_.capacity() + r_.capacity() + extra_.capacity() + work_.capacity() +
                        cell_values_.capacity() + m_.capacity());
  }

 private:
  template <Index H>
  RECUR_FLATTEN void step_fixed(T* a, const ConstStates& prev, const States& next) noexcept {
    hh_.template apply_fixed<G * H, H>(prev[0], r_.data());
    gates(a, 1, H, prev, next);  // inlined: H a constant in the cell's loops
  }
  // The cell's step on a (projected input) and r_ (the recurrent product) of B samples.
  EIGEN_STRONG_INLINE void gates(T* a, Index B, Index H, const ConstStates& prev,
                                 const States& next) noexcept {
    const Index GH = G * H, GS = PackedMatVec<T>::padded(GH), EH = extra_cols_ * H;
    const Rows<T> av(a, B, GH, Eigen::OuterStride<>(GS));
    const Rows<T> rv(r_.data(), B, GH, Eigen::OuterStride<>(GS));
    const Rows<T> ev(extra_.data(), B, EH, Eigen::OuterStride<>(std::max<Index>(EH, 1)));
    const auto pv = make_array<K>([&](std::size_t s) { return rows<T>(prev[s], B, H); });
    const auto nv = make_array<K>([&](std::size_t s) { return rows<T>(next[s], B, H); });
    if constexpr (has_late_gates<Cell>::value) {
      if (late_ > 0) {  // v from the early gates, then the late rows' product on it
        cell_.early_step(av, rv, pv, ev);
        T* late = r_.data() + B * GS;  // past the rows: apply() writes whole packets
        for (Index b = 0; b < B; ++b) {
          late_hh_.apply(ev.data() + b * ev.outerStride(), late);
          std::copy(late, late + late_, r_.data() + b * GS + GH - late_);
        }
      }
    }
    if (proj_ > 0) {  // the cell's h into m_, then h = W_hr m
      // (Maps rebuilt, not assigned: assigning one copies values.) pm[0]: unread.
      const auto pm = make_array<K>([&](std::size_t s) {
        return rows<T>(s == 0 ? static_cast<const T*>(m_.data()) : prev[s], B, H);
      });
      const auto nm = make_array<K>([&](std::size_t s) { return rows<T>(s == 0 ? m_.data() : next[s], B, H); });
      cell_.forward_step(av, rv, pm, nm, ev);
      T* y = m_.data() + B * H;
      for (Index b = 0; b < B; ++b) {
        hr_.apply(m_.data() + b * H, y);
        std::copy(y, y + proj_, next[0] + b * proj_);
      }
      return;
    }
    cell_.forward_step(av, rv, pv, nv, ev);
  }

  Cell cell_;
  Index input_, hidden_, proj_, rw_, rows_ = 0;  // rw_: the width of h (proj_ or hidden_)
  Index extra_cols_, late_;  // the cell's extra cache columns (units of H), late gate rows
  Index cell_count_ = 0;
  PackedMatVec<T> step_ih_, hh_, late_hh_;  // hh_: W_hh's early rows (all, without late gates)
  PackedMatVec<T> hr_;                      // the projection W_hr
  Buffer<T> m_;
  PackedWeight<T> block_ih_;
  Buffer<T> b_ih_, r_, extra_, work_, cell_values_;
};

}  // namespace recur::detail
