// Recurrent<Cell>: the one loop over time in recur. It walks any cell over the time axis of a
// [batch, time, features] sequence, forward or reverse, from an initial state, honouring
// per-sample lengths, and runs full back-propagation through time.
//
// Forward, for the steps t in processing order (0..T-1, or T-1..0 for Direction::Reverse):
//   A = X W_ih^T + b_ih                  one GEMM over all B*T rows, before the loop
//   R_t = h_{t-1} W_hh^T + b_hh          one GEMM per step
//   cell.forward_step(A_t, R_t, state_{t-1} -> state_t)   one fused pass over the gate math
//   output_t = h_t for the samples with t < length[b]; 0 and a frozen state for the others
// Backward, steps in the opposite order:
//   d state_t += d output_t;  cell.backward_step -> dA_t (dR_t), direct d state_{t-1}
//   d h_{t-1} += dR_t W_hh                one GEMM per step
//   after the loop: dX = dA W_ih; dW_ih += dA^T X; dW_hh += dR^T H_prev; db += column sums
//
// The cell contract (what a cell written outside recur must provide; see docs/design.md):
//   using Scalar;                          float or double
//   static constexpr Index kGates;         G: weight_ih is [G*H, input], weight_hh [G*H, H]
//   static constexpr Index kStates;        1 (h) or 2 (h, c); state 0 is the output h
//   static constexpr Index kExtra;         extra per-step cache columns, in units of H
//   static constexpr bool kSameGateGrads;  true when d R == d A (the cell only writes dA)
//   (forward_step and backward_step are called concurrently on disjoint rows by the threads
//   of a layer: they must not modify the cell.)
//   void forward_step(Rows a, Rows r, const StatesIn& prev, StatesOut next, Rows extra)
//       a [B, G*H]: in, X W_ih^T + b_ih of this step; out, whatever backward needs (the gate
//       activations); r [B, G*H]: h W_hh^T + b_hh, scratch; prev/next: kStates views [B, H];
//       extra [B, kExtra*H]: more cache. Must not allocate.
//   void backward_step(Rows a, Rows dr, const StatesIn& prev, ConstRows extra,
//                      const StatesIn& dnext, StatesOut dprev)
//       given d loss / d next (dnext), writes with `=`: d loss / d A over a, d loss / d R into
//       dr (unless kSameGateGrads), and dprev = the part of d loss / d prev that does not go
//       through W_hh (the layer adds dR W_hh to dprev[0]). Must not allocate.
//
// Gradient contract: backward() ADDS d loss / d parameter into the parameter gradients (call
// zero_grad() to start afresh) and RETURNS d loss / d input and d loss / d initial state.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "recur/detail/check.hpp"
#include "recur/detail/front_end.hpp"
#include "recur/detail/gemm.hpp"
#include "recur/threads.hpp"
#include "recur/types.hpp"

namespace recur {

namespace detail {

// The B rows {b * steps + t} of a [B * steps, cols] row block with leading dimension ld.
template <class T>
Rows<T> step_rows(T* base, Index t, Index batch, Index steps, Index cols, Index ld) {
  return Rows<T>(base + t * ld, batch, cols, Eigen::OuterStride<>(steps * ld));
}
template <class T>
ConstRows<T> step_rows(const T* base, Index t, Index batch, Index steps, Index cols, Index ld) {
  return ConstRows<T>(base + t * ld, batch, cols, Eigen::OuterStride<>(steps * ld));
}
template <class F, std::size_t... I>
auto make_array_impl(F&& f, std::index_sequence<I...>) {
  return std::array<decltype(f(std::size_t{0})), sizeof...(I)>{f(I)...};
}
// std::array{f(0), ..., f(K-1)}: builds arrays of (non default-constructible) Eigen maps.
template <std::size_t K, class F>
auto make_array(F&& f) {
  return make_array_impl(std::forward<F>(f), std::make_index_sequence<K>{});
}

// The state pointers moved `by` elements on (null stays null): a layer's slice of [S, B, H].
template <class P, std::size_t K>
std::array<P, K> offset(const std::array<P, K>& p, Index by) {
  std::array<P, K> q = p;
  for (auto& e : q)
    if (e) e += by;
  return q;
}

}  // namespace detail

template <class Cell>
class Recurrent : public SequenceLayer<Recurrent<Cell>, typename Cell::Scalar, Cell::kStates> {
 public:
  using Scalar = typename Cell::Scalar;
  using T = Scalar;
  static constexpr Index kStates = Cell::kStates;
  static constexpr Index kGates = Cell::kGates;
  using StatePtrs = std::array<const T*, kStates>;     // each [B, H] or nullptr (zeros / none)
  using StateOutPtrs = std::array<T*, kStates>;        // each [B, H] or nullptr (not wanted)

  Recurrent(Index input_size, Index hidden_size, Direction direction = Direction::Forward,
            Cell cell = Cell())
      : cell_(std::move(cell)), input_(input_size), hidden_(hidden_size), direction_(direction) {
    detail::require(input_size > 0 && hidden_size > 0,
                    "Recurrent: input_size and hidden_size must be positive, got input_size=",
                    input_size, " hidden_size=", hidden_size);
    params_.assign(static_cast<std::size_t>(parameter_count()), T(0));
    grads_.assign(params_.size(), T(0));
  }

  Index input_size() const { return input_; }
  Index hidden_size() const { return hidden_; }
  Index output_size() const { return hidden_; }
  Index state_slots() const { return 1; }
  Direction direction() const { return direction_; }
  const Cell& cell() const { return cell_; }

  // ---- parameters: one contiguous buffer [weight_ih | weight_hh | bias_ih | bias_hh] ----
  Index parameter_count() const {
    const Index GH = kGates * hidden_;
    return GH * input_ + GH * hidden_ + 2 * GH;
  }
  /// PyTorch's names with `suffix` appended (`weight_ih` + `_l0_reverse`).
  std::vector<Parameter<T>> parameters(const std::string& suffix = "") {
    const Index GH = kGates * hidden_;
    std::vector<Parameter<T>> out;
    auto add = [&](const char* name, Index offset, Index r, Index c, std::vector<Index> shape) {
      out.push_back(Parameter<T>{std::string(name) + suffix, std::move(shape),
                                 Eigen::Map<Matrix<T>>(params_.data() + offset, r, c),
                                 Eigen::Map<Matrix<T>>(grads_.data() + offset, r, c)});
    };
    add("weight_ih", w_ih_offset(), GH, input_, {GH, input_});
    add("weight_hh", w_hh_offset(), GH, hidden_, {GH, hidden_});
    add("bias_ih", b_ih_offset(), GH, 1, {GH});
    add("bias_hh", b_hh_offset(), GH, 1, {GH});
    return out;
  }
  void zero_grad() { std::fill(grads_.begin(), grads_.end(), T(0)); }
  /// PyTorch's default initialisation: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)).
  template <class Rng>
  void reset_parameters(Rng& rng) {
    const double k = 1.0 / std::sqrt(static_cast<double>(hidden_));
    std::uniform_real_distribution<double> u(-k, k);
    for (auto& v : params_) v = static_cast<T>(u(rng));
  }

  // ---- the time loop, on row views ----
  // x: [B*T, input] rows (b*T + t), out: [B*T, H] rows; both may have a row stride (ld), so a
  // bidirectional layer writes its two directions side by side. In training mode x must stay
  // alive and unchanged until backward_rows.
  void forward_rows(ConstRows<T> x, Index batch, Index steps, const Index* lengths,
                    const StatePtrs& init, Rows<T> out, const StateOutPtrs& final_state,
                    bool training) {
    const Index B = batch, S = steps, H = hidden_, GH = kGates * H, EH = Cell::kExtra * H;
    const Index N = B * S;
    set_lengths(batch, steps, lengths);
    cached_ = false;

    detail::grow(gates_, static_cast<std::size_t>(N * GH));
    detail::grow(hg_, static_cast<std::size_t>(B * GH));
    detail::grow(state_, static_cast<std::size_t>(2 * kStates * B * H));
    detail::grow(extra_, static_cast<std::size_t>((training ? N : B) * EH));
    if (training) detail::grow(prev_, static_cast<std::size_t>(kStates * N * H));

    prepare_gemms(detail::WeightOp::Transposed, B, S);
    if (const int uparts = unit_parts(B, S); uparts > 1) {
      // One sample: the threads split the hidden units of every step instead.
      detail::grow(unit_scratch_, static_cast<std::size_t>(2 * GH + EH));
      detail::grow(unit_weights_, static_cast<std::size_t>(GH * H + GH));
      load_states(init, state_.data(), H);
      detail::SpinBarrier barrier;
      detail::parallel(uparts, [&](int p, int n) {
        forward_units(p, n, x, S, out, final_state, training, barrier);
      });
    } else {
      // Samples are independent: each thread runs the whole loop for a slice of the batch.
      const int parts = detail::threads_for(B, static_cast<double>(N) * GH * (input_ + H));
      detail::parallel(parts, [&](int p, int n) {
        const auto [b0, b1] = detail::split(B, p, n);
        if (b1 > b0) forward_slice(b0, b1, x, S, init, out, final_state, training, work(p));
      });
    }
    if (training) {
      x_ = x.data();
      ldx_ = x.outerStride();
      cached_ = true;
    }
  }

  // d_out: [B*T, H] rows (may have a row stride); d_final: d loss / d final state, each [B, H]
  // or nullptr (zero). Writes (or adds, with accumulate_dx) d loss / d x into d_x when its data
  // is not null, and d loss / d initial state into d_init. Adds the parameter gradients.
  void backward_rows(ConstRows<T> d_out, const StatePtrs& d_final, Rows<T> d_x,
                     bool accumulate_dx, const StateOutPtrs& d_init) {
    using detail::rows;
    using detail::step_rows;
    if (!cached_)
      throw std::logic_error(
          "Recurrent::backward: no cache; call forward() in training mode first (each "
          "backward consumes the cache of one forward)");
    const Index B = batch_, S = steps_, H = hidden_, GH = kGates * H;
    const Index N = B * S;
    detail::grow(dstate_, static_cast<std::size_t>(2 * kStates * B * H));
    if constexpr (!Cell::kSameGateGrads) detail::grow(dhg_, static_cast<std::size_t>(N * GH));
    T* dr_base = Cell::kSameGateGrads ? gates_.data() : dhg_.data();

    prepare_gemms(detail::WeightOp::AsIs, B, S);
    if (const int uparts = unit_parts(B, S); uparts > 1) {
      detail::grow(unit_scratch_, static_cast<std::size_t>(2 * GH + Cell::kExtra * H));
      load_states(d_final, dstate_.data(), H);
      detail::SpinBarrier barrier;
      detail::parallel(uparts, [&](int p, int n) {
        backward_units(p, n, d_out, d_init, dr_base, barrier);
      });
    } else {
      const int parts = detail::threads_for(B, static_cast<double>(N) * GH * H);
      detail::parallel(parts, [&](int p, int n) {
        const auto [b0, b1] = detail::split(B, p, n);
        if (b1 > b0) backward_slice(b0, b1, d_out, d_final, d_init, dr_base, work(p));
      });
    }

    // Input and weight gradients: big GEMMs over all steps.
    ConstRows<T> dA = rows<T>(static_cast<const T*>(gates_.data()), N, GH);
    ConstRows<T> dR = rows<T>(static_cast<const T*>(dr_base), N, GH);
    ConstRows<T> X(x_, N, input_, Eigen::OuterStride<>(ldx_));
    ConstRows<T> Hp = rows<T>(static_cast<const T*>(prev_.data()), N, H);
    // dW_ih += dA^T X and dW_hh += dR^T H_prev: X and H_prev take the place of the packed
    // weight (W_hh's packing is no longer needed), dA^T and dR^T are read transposed.
    detail::grow(zeros_, static_cast<std::size_t>(input_));  // (only ever zeros)
    if (packed_input_) {
      x_packed_.pack(x_, N, input_, detail::WeightOp::AsIs, ldx_);
      w_hh_packed_.pack(prev_.data(), N, H, detail::WeightOp::AsIs);
      reserve_work(std::max(x_packed_.workspace_size(GH, /*x_transposed=*/true),
                            w_hh_packed_.workspace_size(GH, /*x_transposed=*/true)));
    }
    // Split by rows of the results: d_x by samples, the weight gradients by gate rows.
    const int gparts = detail::threads_for(GH, static_cast<double>(N) * GH * (input_ + H));
    detail::parallel(gparts, [&](int p, int n) {
      if (d_x.data()) {
        const auto [b0, b1] = detail::split(B, p, n);
        const Index r0 = b0 * S, nr = (b1 - b0) * S;
        // d_x = dA W_ih, or d_x += dA W_ih: the product's bias form with a zero bias assigns.
        input_gemm(dA.data() + r0 * GH, nr, GH, d_x.data() + r0 * d_x.outerStride(),
                   d_x.outerStride(), work(p), accumulate_dx ? nullptr : zeros_.data());
      }
      const auto [g0, g1] = detail::split(GH, p, n);
      const Index ng = g1 - g0;
      if (packed_input_) {
        x_packed_.multiply(dA.data() + g0, ng, GH, grads_.data() + w_ih_offset() + g0 * input_,
                           input_, work(p), /*x_transposed=*/true);
        w_hh_packed_.multiply(dR.data() + g0, ng, GH, grads_.data() + w_hh_offset() + g0 * H, H,
                              work(p), /*x_transposed=*/true);
      } else {
        grad_map(w_ih_offset(), GH, input_).middleRows(g0, ng).noalias() +=
            dA.middleCols(g0, ng).transpose() * X;
        grad_map(w_hh_offset(), GH, H).middleRows(g0, ng).noalias() +=
            dR.middleCols(g0, ng).transpose() * Hp;
      }
      // Bias gradients: column sums, taken row by row (contiguous, vectorised).
      auto db_ih = grad_map(b_ih_offset(), 1, GH).middleCols(g0, ng);
      auto db_hh = grad_map(b_hh_offset(), 1, GH).middleCols(g0, ng);
      for (Index r = 0; r < N; ++r) {
        db_ih += dA.row(r).segment(g0, ng);
        db_hh += dR.row(r).segment(g0, ng);
      }
    });
    cached_ = false;
  }

  /// Bytes this layer keeps between a training forward and its backward (the caches), and
  /// the scratch it owns; both grow to the largest call seen and are reused.
  std::size_t workspace_bytes() const {
    return sizeof(T) * (gates_.capacity() + hg_.capacity() + state_.capacity() +
                        extra_.capacity() + prev_.capacity() + dhg_.capacity() +
                        dstate_.capacity() + gemm_work_.capacity() + zeros_.capacity() +
                        unit_scratch_.capacity() + unit_weights_.capacity()) +
           w_ih_packed_.bytes() + w_hh_packed_.bytes() + x_packed_.bytes();
  }

 private:
  // The time loop for samples [b0, b1): every buffer is batch-major, so the slice is a
  // contiguous block of rows of each.
  void forward_slice(Index b0, Index b1, ConstRows<T> x, Index S, const StatePtrs& init,
                     Rows<T> out, const StateOutPtrs& final_state, bool training, T* work) {
    using detail::rows;
    using detail::step_rows;
    const Index Bs = b1 - b0, B = batch_, H = hidden_, GH = kGates * H, EH = Cell::kExtra * H;
    const Index N = B * S, ld = out.outerStride();
    T* gates = gates_.data() + b0 * S * GH;

    // Input projection of every time step: one GEMM.
    input_gemm(x.data() + b0 * S * x.outerStride(), Bs * S, x.outerStride(), gates, GH, work,
               b_ih().data());

    std::array<T*, kStates> cur{}, nxt{};
    for (Index s = 0; s < kStates; ++s) {
      cur[s] = state_.data() + s * B * H + b0 * H;
      nxt[s] = state_.data() + (kStates + s) * B * H + b0 * H;
      if (init[s])
        std::copy(init[s] + b0 * H, init[s] + b1 * H, cur[s]);
      else
        std::fill(cur[s], cur[s] + Bs * H, T(0));
    }
    Rows<T> R = rows(hg_.data() + b0 * GH, Bs, GH);

    for (Index k = 0; k < S; ++k) {
      const Index t = direction_ == Direction::Forward ? k : S - 1 - k;
      recurrent_gemm(cur[0], Bs, H, R.data(), GH, work, b_hh().data());
      if (training)
        for (Index s = 0; s < kStates; ++s)
          step_rows(prev_.data() + s * N * H + b0 * S * H, t, Bs, S, H, H) = rows<T>(cur[s], Bs, H);
      Rows<T> extra = training ? step_rows(extra_.data() + b0 * S * EH, t, Bs, S, EH, EH)
                               : rows(extra_.data() + b0 * EH, Bs, EH);
      cell_.forward_step(step_rows(gates, t, Bs, S, GH, GH), R, const_views(cur, Bs),
                         views(nxt, Bs), extra);

      Rows<T> o = step_rows(out.data() + b0 * S * ld, t, Bs, S, H, ld);
      if (t < min_length_) {
        std::swap(cur, nxt);
        o = rows<T>(cur[0], Bs, H);
      } else {
        for (Index b = 0; b < Bs; ++b) {
          if (active(b0 + b, t)) {
            for (Index s = 0; s < kStates; ++s)
              std::copy(nxt[s] + b * H, nxt[s] + (b + 1) * H, cur[s] + b * H);
            o.row(b) = rows<T>(cur[0], Bs, H).row(b);
          } else {
            o.row(b).setZero();
          }
        }
      }
    }
    for (Index s = 0; s < kStates; ++s)
      if (final_state[s]) std::copy(cur[s], cur[s] + Bs * H, final_state[s] + b0 * H);
  }

  // Back-propagation through time for samples [b0, b1): leaves dA (and dR) in the caches and
  // writes d initial state.
  void backward_slice(Index b0, Index b1, ConstRows<T> d_out, const StatePtrs& d_final,
                      const StateOutPtrs& d_init, T* dr_base, T* work) {
    using detail::rows;
    using detail::step_rows;
    const Index Bs = b1 - b0, B = batch_, S = steps_, H = hidden_, GH = kGates * H;
    const Index EH = Cell::kExtra * H, N = B * S, ld = d_out.outerStride();
    T* gates = gates_.data() + b0 * S * GH;
    T* drs = dr_base + b0 * S * GH;

    std::array<T*, kStates> dcur{}, dnxt{};
    for (Index s = 0; s < kStates; ++s) {
      dcur[s] = dstate_.data() + s * B * H + b0 * H;
      dnxt[s] = dstate_.data() + (kStates + s) * B * H + b0 * H;
      if (d_final[s])
        std::copy(d_final[s] + b0 * H, d_final[s] + b1 * H, dcur[s]);
      else
        std::fill(dcur[s], dcur[s] + Bs * H, T(0));
    }

    for (Index k = 0; k < S; ++k) {
      const Index t = direction_ == Direction::Forward ? S - 1 - k : k;
      const bool all_active = t < min_length_;
      Rows<T> a = step_rows(gates, t, Bs, S, GH, GH);
      Rows<T> dr = step_rows(drs, t, Bs, S, GH, GH);
      Rows<T> dh = rows<T>(dcur[0], Bs, H);
      ConstRows<T> g = step_rows(d_out.data() + b0 * S * ld, t, Bs, S, H, ld);
      if (all_active) {
        dh += g;
      } else {
        for (Index b = 0; b < Bs; ++b)
          if (active(b0 + b, t)) dh.row(b) += g.row(b);
      }
      auto prev = detail::make_array<kStates>([&](std::size_t s) {
        return step_rows<T>(static_cast<const T*>(prev_.data()) + static_cast<Index>(s) * N * H +
                                b0 * S * H,
                            t, Bs, S, H, H);
      });
      cell_.backward_step(
          a, dr, prev,
          step_rows<T>(static_cast<const T*>(extra_.data()) + b0 * S * EH, t, Bs, S, EH, EH),
          const_views(dcur, Bs), views(dnxt, Bs));
      if (!all_active) {
        for (Index b = 0; b < Bs; ++b)
          if (!active(b0 + b, t)) {
            a.row(b).setZero();
            dr.row(b).setZero();
          }
      }
      recurrent_gemm(dr.data(), Bs, dr.outerStride(), dnxt[0], H, work);
      if (!all_active) {
        for (Index b = 0; b < Bs; ++b)
          if (!active(b0 + b, t))
            for (Index s = 0; s < kStates; ++s)
              std::copy(dcur[s] + b * H, dcur[s] + (b + 1) * H, dnxt[s] + b * H);
      }
      std::swap(dcur, dnxt);
    }
    for (Index s = 0; s < kStates; ++s)
      if (d_init[s]) std::copy(dcur[s], dcur[s] + Bs * H, d_init[s] + b0 * H);
  }

  // ---- batch 1 on several threads: the hidden units of each step are split ----
  // With one sample there is no batch to split, and a step is a matrix-vector product that
  // streams W_hh from L2. Each of n threads takes a range of hidden units: it computes the
  // part of R for the gates of its units from its own copy of those rows of W_hh (so each core
  // reads only its share, which stays in its L2), runs the cell on its units (the cell sees G
  // gate blocks of the range's width, gathered from A's row into scratch), and writes its part
  // of h; one barrier per step, since the next product needs all of h. The backward loop
  // mirrors it: the cell on a thread's units, a barrier, then d h of its units from the whole
  // dR row. The caches keep the layout of the batch path, so the products over all steps
  // after the loop are shared.
  int unit_parts(Index B, Index S) const {
    if (B != 1 || S < 8) return 1;
    // At least 64 units a thread: below that a step's product is too short to repay the barrier.
    const int n = std::min<int>(num_threads(), static_cast<int>(hidden_ / 64));
    return n >= 2 ? n : 1;
  }
  // Units [j0, j1) of part p of n: ranges in whole 16-element chunks (the cells' SIMD width).
  std::pair<Index, Index> unit_range(int p, int n) const {
    const auto [c0, c1] = detail::split((hidden_ + 15) / 16, p, n);
    return {std::min(hidden_, 16 * c0), std::min(hidden_, 16 * c1)};
  }
  // kStates vectors of H at `to` (current, then next at to + kStates * H): from `from`, or 0.
  void load_states(const StatePtrs& from, T* to, Index H) const {
    for (Index s = 0; s < kStates; ++s) {
      if (from[static_cast<std::size_t>(s)])
        std::copy(from[static_cast<std::size_t>(s)], from[static_cast<std::size_t>(s)] + H,
                  to + s * H);
      else
        std::fill(to + s * H, to + (s + 1) * H, T(0));
    }
  }
  // A thread's scratch for one step, from its first unit j0: its gates (G blocks of its
  // width), their part of R (or dR), its part of the cell's extra cache.
  std::array<T*, 3> unit_scratch(Index j0) {
    const Index GH = kGates * hidden_;
    T* base = unit_scratch_.data();
    return {base + kGates * j0, base + GH + kGates * j0, base + 2 * GH + Cell::kExtra * j0};
  }
  // Gate blocks of the units [j0, j0 + hp) of a row of G * H (blocks of H) <-> G * hp
  // contiguous values (blocks of hp).
  static void gather(const T* row, Index blocks, Index H, Index j0, Index hp, T* to) {
    for (Index g = 0; g < blocks; ++g) std::copy(row + g * H + j0, row + g * H + j0 + hp, to + g * hp);
  }
  static void scatter(const T* from, Index blocks, Index H, Index j0, Index hp, T* row) {
    for (Index g = 0; g < blocks; ++g) std::copy(from + g * hp, from + (g + 1) * hp, row + g * H + j0);
  }

  void forward_units(int p, int n, ConstRows<T> x, Index S, Rows<T> out,
                     const StateOutPtrs& final_state, bool training, detail::SpinBarrier& barrier) {
    using detail::rows;
    using RowVec = Eigen::Matrix<T, 1, Eigen::Dynamic>;
    const Index H = hidden_, GH = kGates * H, EH = Cell::kExtra * H, length = lengths_[0];
    const auto [j0, j1] = unit_range(p, n);
    const Index hp = j1 - j0;
    // Input projection of every step, split by steps.
    const auto [r0, r1] = detail::split(S, p, n);
    if (r1 > r0)
      input_gemm(x.data() + r0 * x.outerStride(), r1 - r0, x.outerStride(),
                 gates_.data() + r0 * GH, GH, work(p), b_ih().data());
    barrier.wait(n);

    auto [ap, rp, ep] = unit_scratch(j0);
    // My rows of W_hh and b_hh, gate blocks of hp, contiguous: one product per step.
    T* wp = unit_weights_.data() + kGates * j0 * H;
    T* bp = unit_weights_.data() + GH * H + kGates * j0;
    gather(b_hh().data(), kGates, H, j0, hp, bp);
    for (Index g = 0; g < kGates; ++g)
      std::copy(w_hh().data() + (g * H + j0) * H, w_hh().data() + (g * H + j1) * H,
                wp + g * hp * H);
    const Eigen::Map<const Matrix<T>> w_mine(wp, kGates * hp, H);
    const Eigen::Map<const RowVec> b_mine(bp, kGates * hp);
    std::array<T*, kStates> cur{}, nxt{};
    for (Index s = 0; s < kStates; ++s) {
      cur[s] = state_.data() + s * H;
      nxt[s] = state_.data() + (kStates + s) * H;
    }
    for (Index k = 0; k < S; ++k) {
      const Index t = direction_ == Direction::Forward ? k : S - 1 - k;
      T* o = out.data() + t * out.outerStride() + j0;
      if (training)  // (also past the length: H_prev's rows meet zero dR rows, never garbage)
        for (Index s = 0; s < kStates; ++s)
          std::copy(cur[s] + j0, cur[s] + j1, prev_.data() + (s * S + t) * H + j0);
      if (t >= length) {  // past the sample's length: output 0, state unchanged
        std::fill(o, o + hp, T(0));
        continue;
      }
      Eigen::Map<RowVec> r(rp, kGates * hp);
      r = b_mine;
      r.noalias() += Eigen::Map<const RowVec>(cur[0], H) * w_mine.transpose();
      T* arow = gates_.data() + t * GH;
      gather(arow, kGates, H, j0, hp, ap);
      cell_.forward_step(rows(ap, 1, kGates * hp), rows(rp, 1, kGates * hp),
                         const_views(detail::offset(cur, j0), 1, hp),
                         views(detail::offset(nxt, j0), 1, hp), rows(ep, 1, Cell::kExtra * hp));
      if (training) {
        scatter(ap, kGates, H, j0, hp, arow);
        scatter(ep, Cell::kExtra, H, j0, hp, extra_.data() + t * EH);
      }
      std::copy(nxt[0] + j0, nxt[0] + j1, o);
      std::swap(cur, nxt);
      barrier.wait(n);  // the next step's product reads all of h
    }
    for (Index s = 0; s < kStates; ++s)
      if (final_state[s]) std::copy(cur[s] + j0, cur[s] + j1, final_state[s] + j0);
  }

  void backward_units(int p, int n, ConstRows<T> d_out, const StateOutPtrs& d_init, T* dr_base,
                      detail::SpinBarrier& barrier) {
    using detail::rows;
    using RowVec = Eigen::Matrix<T, 1, Eigen::Dynamic>;
    const Index H = hidden_, GH = kGates * H, EH = Cell::kExtra * H, S = steps_;
    const Index length = lengths_[0];
    const auto [j0, j1] = unit_range(p, n);
    const Index hp = j1 - j0;
    auto [ap, rp, ep] = unit_scratch(j0);
    std::array<T*, kStates> dcur{}, dnxt{};
    for (Index s = 0; s < kStates; ++s) {
      dcur[s] = dstate_.data() + s * H;
      dnxt[s] = dstate_.data() + (kStates + s) * H;
    }
    for (Index k = 0; k < S; ++k) {
      const Index t = direction_ == Direction::Forward ? S - 1 - k : k;
      T* arow = gates_.data() + t * GH;
      T* drow = dr_base + t * GH;
      if (t >= length) {  // not a step of the sample: no gradient through it
        for (Index g = 0; g < kGates; ++g) {
          std::fill(arow + g * H + j0, arow + g * H + j1, T(0));
          std::fill(drow + g * H + j0, drow + g * H + j1, T(0));
        }
        continue;
      }
      const T* g_out = d_out.data() + t * d_out.outerStride();
      for (Index j = j0; j < j1; ++j) dcur[0][j] += g_out[j];
      gather(arow, kGates, H, j0, hp, ap);
      gather(extra_.data() + t * EH, Cell::kExtra, H, j0, hp, ep);
      std::array<T*, kStates> prev{};
      for (Index s = 0; s < kStates; ++s) prev[s] = prev_.data() + (s * S + t) * H + j0;
      cell_.backward_step(rows(ap, 1, kGates * hp), rows(rp, 1, kGates * hp),
                          const_views(prev, 1, hp),
                          rows<T>(static_cast<const T*>(ep), 1, Cell::kExtra * hp),
                          const_views(detail::offset(dcur, j0), 1, hp),
                          views(detail::offset(dnxt, j0), 1, hp));
      scatter(ap, kGates, H, j0, hp, arow);
      if constexpr (!Cell::kSameGateGrads) scatter(rp, kGates, H, j0, hp, drow);
      barrier.wait(n);  // d h of my units needs the whole dR row
      Eigen::Map<RowVec>(dnxt[0] + j0, hp).noalias() +=
          Eigen::Map<const RowVec>(drow, GH) * w_hh().middleCols(j0, hp);
      std::swap(dcur, dnxt);
    }
    for (Index s = 0; s < kStates; ++s)
      if (d_init[s]) std::copy(dcur[s] + j0, dcur[s] + j1, d_init[s] + j0);
  }

  // The weight GEMMs, y += x * op(W) with op as prepared (W^T forward, W backward), or
  // y = bias + x * op(W) when a bias is given. The weights are packed once per call into
  // detail::PackedWeight's panels when that pays: for the products over all steps whenever
  // there are several steps, and for the per-step product when there are also several
  // samples. Batch 1 keeps Eigen's matrix-vector product, which streams the weight from L2
  // at the machine's bandwidth (the packed kernel is ~10% slower there); a single step (a
  // Stream) would not repay the packing.
  void prepare_gemms(detail::WeightOp op, Index B, Index S) {
    op_ = op;
    packed_input_ = S >= 2;
    packed_recurrent_ = S >= 2 && B >= 2;
    const Index GH = kGates * hidden_;
    const int threads = std::max(1, num_threads());
    const Index slice = (B + threads - 1) / threads;
    work_stride_ = 0;
    if (packed_recurrent_) {
      w_hh_packed_.pack(params_.data() + w_hh_offset(), GH, hidden_, op);
      reserve_work(w_hh_packed_.workspace_size(slice));
    }
    if (packed_input_) {
      w_ih_packed_.pack(params_.data() + w_ih_offset(), GH, input_, op);
      reserve_work(w_ih_packed_.workspace_size(B * S));
    }
  }
  // Per-thread scratch of at least `per_thread` elements (64-byte apart slots).
  void reserve_work(Index per_thread) {
    work_stride_ = std::max(work_stride_, (per_thread + 15) / 16 * 16);
    detail::grow(gemm_work_, static_cast<std::size_t>(work_stride_ * std::max(1, num_threads())));
  }
  T* work(int p) { return gemm_work_.data() + p * work_stride_; }
  // h W_hh^T (+ b_hh) forward, or dR W_hh backward, for one step of a slice.
  void recurrent_gemm(const T* x, Index m, Index ldx, T* y, Index ldy, T* work,
                      const T* bias = nullptr) const {
    if (packed_recurrent_) return w_hh_packed_.multiply(x, m, ldx, y, ldy, work, false, bias);
    eigen_gemm(w_hh(), x, m, ldx, y, ldy, bias);
  }
  // X W_ih^T (+ b_ih) forward, or dA W_ih backward, for many rows.
  void input_gemm(const T* x, Index m, Index ldx, T* y, Index ldy, T* work,
                  const T* bias = nullptr) const {
    if (packed_input_) return w_ih_packed_.multiply(x, m, ldx, y, ldy, work, false, bias);
    eigen_gemm(w_ih(), x, m, ldx, y, ldy, bias);
  }
  void eigen_gemm(Eigen::Map<const Matrix<T>> w, const T* x, Index m, Index ldx, T* y,
                  Index ldy, const T* bias) const {
    const bool t = op_ == detail::WeightOp::Transposed;
    ConstRows<T> xs(x, m, t ? w.cols() : w.rows(), Eigen::OuterStride<>(ldx));
    Rows<T> ys(y, m, t ? w.rows() : w.cols(), Eigen::OuterStride<>(ldy));
    if (bias) ys.rowwise() = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(bias, ys.cols());
    if (t)
      ys.noalias() += xs * w.transpose();
    else
      ys.noalias() += xs * w;
  }

  Index w_ih_offset() const { return 0; }
  Index w_hh_offset() const { return kGates * hidden_ * input_; }
  Index b_ih_offset() const { return w_hh_offset() + kGates * hidden_ * hidden_; }
  Index b_hh_offset() const { return b_ih_offset() + kGates * hidden_; }
  Eigen::Map<const Matrix<T>> w_ih() const {
    return {params_.data() + w_ih_offset(), kGates * hidden_, input_};
  }
  Eigen::Map<const Matrix<T>> w_hh() const {
    return {params_.data() + w_hh_offset(), kGates * hidden_, hidden_};
  }
  Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>> b_ih() const {
    return {params_.data() + b_ih_offset(), kGates * hidden_};
  }
  Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>> b_hh() const {
    return {params_.data() + b_hh_offset(), kGates * hidden_};
  }
  Eigen::Map<Matrix<T>> grad_map(Index offset, Index r, Index c) {
    return {grads_.data() + offset, r, c};
  }

  // Row views [B, cols] (cols: H, or a thread's range of units) of kStates state pointers.
  std::array<Rows<T>, kStates> views(const std::array<T*, kStates>& p, Index B,
                                     Index cols = 0) const {
    return detail::make_array<kStates>(
        [&](std::size_t s) { return detail::rows<T>(p[s], B, cols ? cols : hidden_); });
  }
  std::array<ConstRows<T>, kStates> const_views(const std::array<T*, kStates>& p, Index B,
                                                Index cols = 0) const {
    return detail::make_array<kStates>([&](std::size_t s) {
      return detail::rows<T>(static_cast<const T*>(p[s]), B, cols ? cols : hidden_);
    });
  }

  void set_lengths(Index batch, Index steps, const Index* lengths) {
    batch_ = batch;
    steps_ = steps;
    lengths_.assign(static_cast<std::size_t>(batch), steps);
    min_length_ = steps;
    if (lengths) {
      for (Index b = 0; b < batch; ++b) {
        if (lengths[b] < 0 || lengths[b] > steps)
          detail::fail("Recurrent: lengths[", b, "] = ", lengths[b], " is outside [0, ", steps,
                       "]");
        lengths_[static_cast<std::size_t>(b)] = lengths[b];
        min_length_ = std::min(min_length_, lengths[b]);
      }
    }
  }
  bool active(Index b, Index t) const { return t < lengths_[static_cast<std::size_t>(b)]; }

  Cell cell_;
  Index input_, hidden_;
  Direction direction_;
  detail::Buffer<T> params_, grads_;  // [weight_ih | weight_hh | bias_ih | bias_hh]

  // Workspace, sized on first use and reused. Caches kept from forward for backward:
  detail::Buffer<T> gates_;  // [B*T, G*H]: A, then the cell's cache, then dA
  detail::Buffer<T> extra_;  // [B*T, kExtra*H] (training) or [B, kExtra*H] (inference)
  detail::Buffer<T> prev_;   // kStates x [B*T, H]: the state each step started from
  // Scratch:
  detail::Buffer<T> hg_;      // [B, G*H]: R of the current step
  detail::Buffer<T> state_;   // 2 x kStates x [B, H]: current and next state
  detail::Buffer<T> dhg_;     // [B*T, G*H]: dR, for cells whose dR differs from dA
  detail::Buffer<T> dstate_;  // 2 x kStates x [B, H]
  detail::Buffer<T> unit_scratch_;  // batch 1 on several threads: A, R, extra of one step
  detail::Buffer<T> unit_weights_;  // and W_hh, b_hh in the threads' gate blocks
  detail::PackedWeight<T> w_ih_packed_, w_hh_packed_;  // weights in the kernel's panels
  detail::PackedWeight<T> x_packed_;  // backward: the layer's input, for dW_ih
  detail::Buffer<T> gemm_work_;  // per thread: the packed rows of the current product
  detail::Buffer<T> zeros_;      // input_ zeros: the bias that makes d x = dA W_ih assign
  Index work_stride_ = 0;
  detail::WeightOp op_ = detail::WeightOp::Transposed;
  bool packed_input_ = false, packed_recurrent_ = false;
  std::vector<Index> lengths_;
  Index batch_ = 0, steps_ = 0, min_length_ = 0;
  const T* x_ = nullptr;
  Index ldx_ = 0;
  bool cached_ = false;
};

}  // namespace recur
