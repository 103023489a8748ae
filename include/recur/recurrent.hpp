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

    // Samples are independent: each thread runs the whole loop for a slice of the batch.
    const int parts = detail::threads_for(B, static_cast<double>(N) * GH * (input_ + H));
    prepare_gemms(detail::WeightOp::Transposed, B, S);
    detail::parallel(parts, [&](int p, int n) {
      const auto [b0, b1] = detail::split(B, p, n);
      if (b1 > b0) forward_slice(b0, b1, x, S, init, out, final_state, training, work(p));
    });
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

    const int parts = detail::threads_for(B, static_cast<double>(N) * GH * H);
    prepare_gemms(detail::WeightOp::AsIs, B, S);
    detail::parallel(parts, [&](int p, int n) {
      const auto [b0, b1] = detail::split(B, p, n);
      if (b1 > b0) backward_slice(b0, b1, d_out, d_final, d_init, dr_base, work(p));
    });

    // Input and weight gradients: big GEMMs over all steps.
    ConstRows<T> dA = rows<T>(static_cast<const T*>(gates_.data()), N, GH);
    ConstRows<T> dR = rows<T>(static_cast<const T*>(dr_base), N, GH);
    ConstRows<T> X(x_, N, input_, Eigen::OuterStride<>(ldx_));
    ConstRows<T> Hp = rows<T>(static_cast<const T*>(prev_.data()), N, H);
    // dW_ih += dA^T X and dW_hh += dR^T H_prev: X and H_prev take the place of the packed
    // weight (W_hh's packing is no longer needed), dA^T and dR^T are read transposed.
    if (packed_input_) {
      x_packed_.pack(x_, N, input_, detail::WeightOp::AsIs, ldx_);
      w_hh_packed_.pack(prev_.data(), N, H, detail::WeightOp::AsIs);
      reserve_work(std::max(x_packed_.workspace_size(GH), w_hh_packed_.workspace_size(GH)));
    }
    // Split by rows of the results: d_x by samples, the weight gradients by gate rows.
    const int gparts = detail::threads_for(GH, static_cast<double>(N) * GH * (input_ + H));
    detail::parallel(gparts, [&](int p, int n) {
      if (d_x.data()) {
        const auto [b0, b1] = detail::split(B, p, n);
        const Index r0 = b0 * S, nr = (b1 - b0) * S;
        if (!accumulate_dx) d_x.middleRows(r0, nr).setZero();
        input_gemm(dA.data() + r0 * GH, nr, GH, d_x.data() + r0 * d_x.outerStride(),
                   d_x.outerStride(), work(p));
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
                        dstate_.capacity() + gemm_work_.capacity()) +
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

  std::array<Rows<T>, kStates> views(const std::array<T*, kStates>& p, Index B) const {
    return detail::make_array<kStates>(
        [&](std::size_t s) { return detail::rows<T>(p[s], B, hidden_); });
  }
  std::array<ConstRows<T>, kStates> const_views(const std::array<T*, kStates>& p,
                                                Index B) const {
    return detail::make_array<kStates>(
        [&](std::size_t s) { return detail::rows<T>(static_cast<const T*>(p[s]), B, hidden_); });
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
  detail::PackedWeight<T> w_ih_packed_, w_hh_packed_;  // weights in the kernel's panels
  detail::PackedWeight<T> x_packed_;  // backward: the layer's input, for dW_ih
  detail::Buffer<T> gemm_work_;  // per thread: the packed rows of the current product
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
