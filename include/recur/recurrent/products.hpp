// WeightProducts<T>: every matrix product of a recurrent layer, on the layer's weights.
//   forward   A = X W_ih^T + b_ih (all steps, or   R = h W_hh^T + b_hh (one step)
//             one step: input_by_step)
//                                                   h = m W_hr^T (one step; a projection)
//   backward  dh += dR W_hh (one step)             d x = dA W_ih, or += (all steps)
//             dm = dh W_hr (one step; projection)
//             dW_ih += dA^T X, dW_hh += dR^T H_prev (all steps, split by gate rows)
//             dW_hr += dH^T M (all steps; projection)
// Each names how it meets its result (detail::Update: add, assign, assign from a bias). The
// weight is packed once per call into detail::PackedWeight's panels when that pays: for the
// products over all steps whenever there are several steps, and for the per-step product
// when there are also several samples; the weight gradients always. Otherwise (batch 1, or a
// single step: a Stream) each row is one Eigen matrix-vector product, which streams the
// weight from L2 at the machine's bandwidth (the packed kernel is ~10% slower there, and one
// step would not repay the packing). Eigen's general matrix product is not used: each of its
// instantiations cost seconds of compile time. Depends on the scalar type only: compiled
// once per scalar type, not once per cell.
#pragma once

#include <algorithm>
#include <array>

#include "recur/detail/gemm.hpp"
#include "recur/detail/tuning.hpp"
#include "recur/recurrent/weights.hpp"
#include "recur/detail/threads.hpp"

namespace recur::detail {

// Which rows of W_hh a per-step product uses: all, or (for a cell with late gates,
// recur/cells/contract.hpp) the early ones, which multiply h, or the late ones, which multiply
// the cell's v.
enum class GateRows { All, Early, Late };

template <class T>
class WeightProducts {
 public:
  /// Packs what pays for a call over B samples x S steps: W^T (forward) or W (backward).
  /// `late_rows`: the last rows of W_hh that multiply the cell's v (0: none). `joint` (an
  /// inference forward taking its input projection step by step, for a cell that sums its
  /// gates, with no late rows and no projection): packs [W_ih W_hh]^T alone, for joint_step.
  void prepare(const RecurrentWeights<T>& w, WeightOp op, Index B, Index S, Index late_rows = 0,
               bool joint = false) {
    op_ = op;
    late_ = late_rows;
    packed_input_ = S >= 2;
    packed_recurrent_ = S >= 2 && B >= 2;
    joint_ = joint;
    const int threads = std::max(1, thread_count());
    const Index slice = (B + threads - 1) / threads;
    work_stride_ = 0;
    if (joint) {
      eigen_assert(op == WeightOp::Transposed && late_rows == 0 && w.proj_size() == 0 &&
                   input_by_step(w, B, S));
      const Index I = w.input_size(), GH = w.gate_rows();
      queue(w_joint_, w.w_ih().data(), GH, I + w.recurrent_size(), op, I, w.w_hh().data(),
            w.recurrent_size(), I);
      reserve_work(w_joint_.workspace_size(slice));
      grow(joint_bias_, static_cast<std::size_t>(GH));
      Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(joint_bias_.data(), GH) = w.b_ih() + w.b_hh();
      pack_queued();
      return;
    }
    if (packed_recurrent_) {
      const Index early = w.gate_rows() - late_, R = w.recurrent_size();
      queue(w_hh_, w.w_hh().data(), early, R, op);
      reserve_work(w_hh_.workspace_size(slice));
      if (late_ > 0) {
        queue(w_late_, w.w_hh().data() + early * R, late_, R, op);
        reserve_work(w_late_.workspace_size(slice));
      }
      if (w.proj_size() > 0) {
        queue(w_hr_, w.w_hr().data(), w.proj_size(), w.hidden_size(), op);
        reserve_work(w_hr_.workspace_size(slice));
      }
    }
    if (packed_input_) {
      queue(w_ih_, w.w_ih().data(), w.gate_rows(), w.input_size(), op);
      reserve_work(w_ih_.workspace_size(B * S));
    }
    pack_queued();
  }

  /// Scratch of thread p for the products it runs.
  T* work(int p) { return work_.data() + p * work_stride_; }

  /// Y (+)= X op(W_ih) for m rows of X: forward X W_ih^T (from b_ih), backward dA W_ih.
  void input(const RecurrentWeights<T>& w, const T* x, Index m, Index ldx, T* y, Index ldy, T* work,
             Update<T> update) const {
    eigen_assert(!joint_);  // (prepare packed the joint weight instead of W_ih)
    if (packed_input_) return w_ih_.multiply(x, m, ldx, y, ldy, work, false, update);
    by_rows(w.w_ih(), x, m, ldx, y, ldy, update);
  }
  /// Whether a forward over `rows` samples x `steps` on one thread takes the input projection
  /// one step at a time, just before the step's recurrent product, instead of over all steps
  /// at once. Per step, A_t is written and read back while it is in L2; over all steps, A
  /// (N x G*H) goes to memory and comes back once it outgrows L2 (S2 LSTM, Zen 4: a prefetch
  /// of A_t stalled on it, 2% of the time). The price is W_ih streamed once per step instead
  /// of once per block of rows: paid while it stays in cache, with enough rows per step for
  /// the kernel's tiles, where A would not fit in L2 (tuning.hpp's RECUR_STEP_INPUT_*;
  /// Zen 4, S2-S4 and H 64-1024: up to 4 MiB of W_ih per step was 0.96-1.0x the time, 6 MiB
  /// and more 1.03-1.13x; batch 8, A of 1.6-3.2 MB 0.98x, A within L2 1.00-1.04x).
  /// (Depends on the weights' shape only: known before prepare.)
  static bool input_by_step(const RecurrentWeights<T>& w, Index rows, Index steps) {
    const Index bytes = static_cast<Index>(sizeof(T)), n = w.gate_rows(), k = w.input_size();
    return steps >= 2 && rows >= 2 && rows >= tuning::kStepInputMinRows &&
           rows * steps * n * bytes > tuning::kStepInputMinABytes &&
           n * k * bytes <= tuning::kStepInputMaxBytes;
  }

  /// After prepare(..., joint): Y = x W_ih^T + h W_hh^T + b_ih + b_hh for m rows of one
  /// step (x: rows ldx apart; h: ldh apart) as one product over the joint depth.
  void joint_step(const RecurrentWeights<T>& w, const T* x, Index ldx, const T* h, Index ldh,
                  Index m, T* y, Index ldy, T* work) const {
    eigen_assert(joint_);
    w_joint_.multiply_joint(x, ldx, h, ldh, w.input_size(), m, y, ldy, work,
                            Update<T>::assign_to(joint_bias_.data()));
  }
  bool joint() const { return joint_; }

  /// Y (+)= X op(W_hh) for one step of a slice: forward h W_hh^T (from b_hh), backward dR W_hh;
  /// or with the early or late rows of W_hh only (forward: Y and the bias are those columns;
  /// backward: X is those columns of dR).
  void recurrent(const RecurrentWeights<T>& w, const T* x, Index m, Index ldx, T* y, Index ldy,
                 T* work, Update<T> update, GateRows part = GateRows::All,
                 Ahead<T> ahead = {}) const {
    eigen_assert(!joint_);  // (prepare packed the joint weight instead of W_hh)
    if (part == GateRows::Late) {
      if (packed_recurrent_) return w_late_.multiply(x, m, ldx, y, ldy, work, false, update);
      return by_rows(w.w_hh().bottomRows(late_), x, m, ldx, y, ldy, update);
    }
    if (packed_recurrent_) return w_hh_.multiply(x, m, ldx, y, ldy, work, false, update, ahead);
    by_rows(w.w_hh().topRows(w.gate_rows() - late_), x, m, ldx, y, ldy, update);
  }

  /// Y (+)= X op(W_hr) for one step of a slice: forward h = m W_hr^T, backward dm = dh W_hr.
  void projection(const RecurrentWeights<T>& w, const T* x, Index m, Index ldx, T* y, Index ldy,
                  T* work, Update<T> update) const {
    if (packed_recurrent_) return w_hr_.multiply(x, m, ldx, y, ldy, work, false, update);
    by_rows(w.w_hr(), x, m, ldx, y, ldy, update);
  }

  /// Before weight_grads: X and H_prev (N rows each) take the weight's place in the packed
  /// kernel (W_hh's packing is no longer needed), dA^T and dR^T are read transposed. With late
  /// rows, v (N rows, ldv apart) takes H_prev's place for them.
  void prepare_weight_grads(const RecurrentWeights<T>& w, const T* x, Index ldx, const T* h_prev,
                            Index N, const T* v = nullptr, Index ldv = 0, const T* m = nullptr) {
    queue(x_, x, N, w.input_size(), WeightOp::AsIs, ldx);
    queue(w_hh_, h_prev, N, w.recurrent_size(), WeightOp::AsIs);
    if (w.proj_size() > 0) {  // M [N, H] in W_hr's place, for dW_hr += dH^T M
      queue(w_hr_, m, N, w.hidden_size(), WeightOp::AsIs);
      reserve_work(w_hr_.workspace_size(w.proj_size(), /*x_transposed=*/true));
    }
    const Index GH = w.gate_rows();
    sums_at_ = std::max(x_.workspace_size(GH, /*x_transposed=*/true),
                        w_hh_.workspace_size(GH, /*x_transposed=*/true));
    if (late_ > 0) {
      queue(w_late_, v, N, w.recurrent_size(), WeightOp::AsIs, ldv);
      sums_at_ = std::max(sums_at_, w_late_.workspace_size(GH, /*x_transposed=*/true));
    }
    reserve_work(sums_at_ + GH);  // (after the products' scratch: GH column sums)
    pack_queued();
  }
  /// dW_ih += dA^T X and dW_hh += dR^T H_prev (its late rows: dR^T V), and the bias
  /// gradients db_ih += dA's column sums, db_hh += dR's, for the gate rows [g0, g1); dA, dR:
  /// [N, G*H]. `work`: this thread's (prepare_weight_grads made room for g1 - g0 sums).
  void weight_grads(RecurrentWeights<T>& w, const T* dA, const T* dR, Index g0, Index g1,
                    T* work) const {
    using Target = typename PackedWeight<T>::Target;
    const Index ng = g1 - g0, GH = w.gate_rows(), I = w.input_size(), H = w.recurrent_size();
    T* dw_ih = w.d_w_ih().data() + g0 * I;
    T* dw_hh = w.d_w_hh().data() + g0 * H;
    T* db_ih = w.d_b_ih().data() + g0;
    T* db_hh = w.d_b_hh().data() + g0;
    const Index split = std::clamp(GH - late_, g0, g1);
    if (dR == dA && split == g1) {
      // The cell's dR is its dA (RNN, LSTM): each packed block of dA^T feeds both products,
      // and one column sum both biases (S2 training, Zen 4: 0.98-0.99x the time on one
      // thread, 0.97-0.99x on two; docs/performance.md).
      T* sums = work + sums_at_;
      std::fill(sums, sums + ng, T(0));
      x_.multiply_xt(dA + g0, ng, GH, {Target{&x_, dw_ih, I}, Target{&w_hh_, dw_hh, H}}, work,
                     Update<T>::add(), sums);
      for (Index g = 0; g < ng; ++g) {
        db_ih[g] += sums[g];
        db_hh[g] += sums[g];
      }
      return;
    }
    x_.multiply_xt(dA + g0, ng, GH, {Target{&x_, dw_ih, I}, Target{}}, work, Update<T>::add(),
                   db_ih);
    if (split > g0)
      w_hh_.multiply_xt(dR + g0, split - g0, GH, {Target{&w_hh_, dw_hh, H}, Target{}}, work,
                        Update<T>::add(), db_hh);
    if (g1 > split)
      w_late_.multiply_xt(dR + split, g1 - split, GH,
                          {Target{&w_late_, w.d_w_hh().data() + split * H, H}, Target{}}, work,
                          Update<T>::add(), db_hh + (split - g0));
  }

  /// dW_hr += dH^T M for the rows [p0, p1) of W_hr; dH: [N, P].
  void projection_grads(RecurrentWeights<T>& w, const T* dH, Index p0, Index p1, T* work) const {
    const Index P = w.proj_size(), H = w.hidden_size();
    if (p1 > p0) w_hr_.multiply(dH + p0, p1 - p0, P, w.d_w_hr().data() + p0 * H, H, work, true);
  }

  std::size_t bytes() const {
    return sizeof(T) * (work_.capacity() + joint_bias_.capacity()) + w_ih_.bytes() + w_hh_.bytes() +
           w_late_.bytes() + w_hr_.bytes() + x_.bytes() + w_joint_.bytes();
  }

 private:
  // The packings of one prepare: shaped (their room made) when queued, then packed together,
  // each split over the threads when there is enough to pack (on two threads the serial
  // packing before each parallel region was the second thread's idle time: at S4, 1.4% of the
  // cycles of a forward).
  struct Packing {
    PackedWeight<T>* to;
    const T* w;
    Index ld;
    const T* w2;  // (a joint weight: its second source, ld2 apart, from column k1)
    Index ld2, k1;
  };
  void queue(PackedWeight<T>& to, const T* w, Index rows, Index cols, WeightOp op, Index ld = 0,
             const T* w2 = nullptr, Index ld2 = 0, Index k1 = -1) {
    to.shape(rows, cols, op);
    eigen_assert(count_ < static_cast<int>(queued_.size()));
    queued_[static_cast<std::size_t>(count_++)] = Packing{&to, w, ld == 0 ? cols : ld, w2, ld2, k1};
  }
  void pack_queued() {
    Index total = 0;
    for (int i = 0; i < count_; ++i) total += queued_[i].to->n() * queued_[i].to->k();
    // (Below tuning::kParallelPackMin values on one thread: a parallel region costs a few us.)
    const int parts = total >= tuning::kParallelPackMin ? std::max(1, thread_count()) : 1;
    parallel(parts, [&](int p, int n) {
      for (int i = 0; i < count_; ++i)
        queued_[i].to->pack_part(queued_[i].w, queued_[i].ld, p, n, queued_[i].w2, queued_[i].ld2,
                                 queued_[i].k1);
    });
    count_ = 0;
  }

  // Per-thread scratch of at least `per_thread` elements (64-byte apart slots).
  void reserve_work(Index per_thread) {
    work_stride_ = std::max(work_stride_, (per_thread + 15) / 16 * 16);
    grow(work_, static_cast<std::size_t>(work_stride_ * std::max(1, thread_count())));
  }
  // Y (+)= X op(W) one row at a time: Eigen's matrix-vector product per row.
  template <class W>
  void by_rows(const W& w, const T* x, Index m, Index ldx, T* y, Index ldy,
               Update<T> update) const {
    using RowVec = Eigen::Matrix<T, 1, Eigen::Dynamic>;
    const bool t = op_ == WeightOp::Transposed;
    const Index k = t ? w.cols() : w.rows(), n = t ? w.rows() : w.cols();
    for (Index i = 0; i < m; ++i) {
      const Eigen::Map<const RowVec> xi(x + i * ldx, k);
      Eigen::Map<RowVec> yi(y + i * ldy, n);
      if (update.assign) {
        if (update.bias)
          yi = Eigen::Map<const RowVec>(update.bias, n);
        else
          yi.setZero();
      }
      if (t)
        yi.noalias() += xi * w.transpose();
      else
        yi.noalias() += xi * w;
    }
  }

  WeightOp op_ = WeightOp::Transposed;
  bool packed_input_ = false, packed_recurrent_ = false;
  Index late_ = 0;
  PackedWeight<T> w_ih_, w_hh_;  // the weights in the kernel's panels (W_hh: its early rows)
  PackedWeight<T> w_late_;       // W_hh's late rows; backward: the cell's v, for dW_hh's
  PackedWeight<T> w_hr_;         // the projection W_hr; backward: M, for dW_hr
  PackedWeight<T> x_;            // backward: the layer's input, for dW_ih
  PackedWeight<T> w_joint_;      // [W_ih W_hh]^T (prepare's joint)
  Buffer<T> joint_bias_;         // b_ih + b_hh (prepare's joint)
  bool joint_ = false;
  std::array<Packing, 4> queued_{};  // at most four packings per prepare
  int count_ = 0;
  Buffer<T> work_;  // per thread: the packed rows of the current product
  Index work_stride_ = 0;
  Index sums_at_ = 0;  // weight_grads: where in `work` its column sums go
};

}  // namespace recur::detail
