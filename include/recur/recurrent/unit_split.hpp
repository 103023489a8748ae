// Strategy 2, UnitSplit: one sample on several threads. With one sample there is no batch to
// split, and a step is a matrix-vector product that streams W_hh from L2. Each of n threads
// takes a range of hidden units: it computes the part of R for the gates of its units from
// its own copy of those rows of W_hh (so each core reads only its share, which stays in its
// L2), runs the cell on its units (the cell sees G gate blocks of the range's width, gathered
// from A's row into scratch), and writes its part of h. The next product needs all of h: each
// thread publishes its progress (StepProgress) and waits for the others' only just before
// that product, with its gates' part of A already gathered (a barrier at the end of the step
// cost 3-4 % more at S1). The backward loop mirrors it: the cell on a thread's units, then,
// once every thread has written its part of the dR row, d h of its units from the whole row.
// The caches keep BatchSlices' layout, so the products over all steps after the loop are shared.
//
// Tried and dropped: multiplying one's own part of h before waiting and the others' after
// (two products of half the columns each; 1.06-1.10x the time, 11 rounds: the split products
// ran slower than the wait they hid).
#pragma once

#include <algorithm>
#include <array>
#include <utility>

#include "recur/recurrent/core.hpp"
#include "recur/detail/threads.hpp"

namespace recur::detail {

template <class Cell>
struct UnitSplit {
  using Core = LayerCore<Cell>;
  using T = typename Core::T;
  using In = typename Core::In;
  using Out = typename Core::Out;
  using RowVec = Eigen::Matrix<T, 1, Eigen::Dynamic>;
  static constexpr Index G = Core::G, K = Core::K;

  /// Threads worth splitting B samples x S steps of H units over (1: do not use this one).
  static int parts(Index B, Index S, Index H) {
    if (B != 1 || S < 8) return 1;
    // At least 64 units a thread (tuning.hpp): below that a step's product is too short to
    // repay the threads meeting once per step.
    const int n = std::min({thread_count(), static_cast<int>(H / tuning::kUnitsPerThread),
                            StepProgress::kMaxParts});
    return n >= 2 ? n : 1;
  }

  static void forward(Core& c, const In& in, const Out& out, bool training, int nparts) {
    c.ws.for_units(G, c.extra(), c.hidden(), /*weights=*/true);
    c.load_states(in.state, c.state_pair(c.ws.state.data(), 1, 0).first, 0, 1);
    SpinBarrier barrier;
    StepProgress progress;
    parallel(nparts, [&](int p, int n) {
      forward_units(c, p, n, in, out, training, barrier, progress);
    });
  }

  static void backward(Core& c, const In& d_out, const Out& d_in, T* dr_base, int nparts) {
    c.ws.for_units(G, c.extra(), c.hidden(), /*weights=*/false);
    c.load_states(d_out.state, c.state_pair(c.ws.dstate.data(), 1, 0).first, 0, 1);
    StepProgress progress;
    parallel(nparts, [&](int p, int n) {
      backward_units(c, p, n, d_out, d_in, dr_base, progress);
    });
  }

 private:
  // Units [j0, j1) of part p of n: ranges in whole 16-element chunks (the cells' SIMD width).
  static std::pair<Index, Index> unit_range(Index H, int p, int n) {
    const auto [c0, c1] = split((H + 15) / 16, p, n);
    return {std::min(H, 16 * c0), std::min(H, 16 * c1)};
  }
  // A thread's scratch for one step, from its first unit j0: its gates (G blocks of its
  // width), their part of R (or dR), its part of the cell's extra cache.
  static std::array<T*, 3> scratch(Core& c, Index j0) {
    const Index GH = G * c.hidden();
    T* base = c.ws.unit_scratch.data();
    return {base + G * j0, base + GH + G * j0, base + 2 * GH + c.extra() * j0};
  }
  // Gate blocks of the units [j0, j0 + hp) of a row of G * H (blocks of H) <-> G * hp
  // contiguous values (blocks of hp).
  static void gather(const T* row, Index blocks, Index H, Index j0, Index hp, T* to) {
    for (Index g = 0; g < blocks; ++g)
      std::copy(row + g * H + j0, row + g * H + j0 + hp, to + g * hp);
  }
  static void scatter(const T* from, Index blocks, Index H, Index j0, Index hp, T* row) {
    for (Index g = 0; g < blocks; ++g)
      std::copy(from + g * hp, from + (g + 1) * hp, row + g * H + j0);
  }

  static void forward_units(Core& c, int p, int n, const In& in, const Out& out, bool training,
                            SpinBarrier& barrier, StepProgress& progress) {
    const Index H = c.hidden(), GH = G * H, E = c.extra(), EH = E * H, S = c.time.steps();
    const auto [j0, j1] = unit_range(H, p, n);
    const Index hp = j1 - j0;
    // Input projection of every step, split by steps.
    const auto [r0, r1] = split(S, p, n);
    const Index ldx = in.rows.outerStride();
    if (r1 > r0)
      c.products.input(c.weights, in.rows.data() + r0 * ldx, r1 - r0, ldx,
                       c.ws.gates.data() + r0 * GH, GH, c.products.work(p),
                       Update<T>::assign_to(c.weights.b_ih().data()));
    barrier.wait(n);

    auto [ap, rp, ep] = scratch(c, j0);
    // My rows of W_hh and b_hh, gate blocks of hp, contiguous: one product per step.
    T* wp = c.ws.unit_weights.data() + G * j0 * H;
    T* bp = c.ws.unit_weights.data() + GH * H + G * j0;
    gather(c.weights.b_hh().data(), G, H, j0, hp, bp);
    const T* w_hh = c.weights.w_hh().data();
    for (Index g = 0; g < G; ++g)
      std::copy(w_hh + (g * H + j0) * H, w_hh + (g * H + j1) * H, wp + g * hp * H);
    const Eigen::Map<const Matrix<T>> w_mine(wp, G * hp, H);
    const Eigen::Map<const RowVec> b_mine(bp, G * hp);
    auto [cur, nxt] = c.state_pair(c.ws.state.data(), 1, 0);
    const Index ld = out.rows.outerStride();
    for (Index k = 0; k < S; ++k) {
      const Index t = c.time.forward_step(k);
      T* o = out.rows.data() + t * ld + j0;
      if (training)  // (also past the length: H_prev's rows meet zero dR rows, never garbage)
        for (Index s = 0; s < K; ++s)
          std::copy(cur[s] + j0, cur[s] + j1, c.ws.prev.data() + (s * S + t) * H + j0);
      if (!c.time.active(0, t)) {  // state carry: output 0, state unchanged
        std::fill(o, o + hp, T(0));
        progress.publish(p, k + 1);
        continue;
      }
      T* arow = c.ws.gates.data() + t * GH;
      gather(arow, G, H, j0, hp, ap);
      Eigen::Map<RowVec> r(rp, G * hp);
      r = b_mine;
      progress.wait_others(p, n, k);  // every part of h
      r.noalias() += Eigen::Map<const RowVec>(cur[0], H) * w_mine.transpose();
      c.cell.forward_step(rows(ap, 1, G * hp), rows(rp, 1, G * hp),
                          c.const_views(In::shifted(cur, j0), 1, hp), c.views(In::shifted(nxt, j0), 1, hp),
                          rows(ep, 1, E * hp));
      // My part of the next h is out. (Writing it was safe: the others had done step k - 1,
      // the last to read this buffer, before they published k.)
      progress.publish(p, k + 1);
      if (training) {
        scatter(ap, G, H, j0, hp, arow);
        scatter(ep, E, H, j0, hp, c.ws.extra.data() + t * EH);
      }
      std::copy(nxt[0] + j0, nxt[0] + j1, o);
      std::swap(cur, nxt);
    }
    for (Index s = 0; s < K; ++s)
      if (out.state[s]) std::copy(cur[s] + j0, cur[s] + j1, out.state[s] + j0);
  }

  static void backward_units(Core& c, int p, int n, const In& d_out, const Out& d_in,
                             T* dr_base, StepProgress& progress) {
    const Index H = c.hidden(), GH = G * H, E = c.extra(), EH = E * H, S = c.time.steps();
    const auto [j0, j1] = unit_range(H, p, n);
    const Index hp = j1 - j0;
    auto [ap, rp, ep] = scratch(c, j0);
    auto [dcur, dnxt] = c.state_pair(c.ws.dstate.data(), 1, 0);
    const auto w_hh = c.weights.w_hh();
    for (Index k = 0; k < S; ++k) {
      const Index t = c.time.backward_step(k);
      T* arow = c.ws.gates.data() + t * GH;
      T* drow = dr_base + t * GH;
      if (!c.time.active(0, t)) {  // not a step of the sample: no gradient through it
        for (Index g = 0; g < G; ++g) {
          std::fill(arow + g * H + j0, arow + g * H + j1, T(0));
          std::fill(drow + g * H + j0, drow + g * H + j1, T(0));
        }
        progress.publish(p, k + 1);
        continue;
      }
      const T* g_out = d_out.rows.data() + t * d_out.rows.outerStride();
      for (Index j = j0; j < j1; ++j) dcur[0][j] += g_out[j];
      gather(arow, G, H, j0, hp, ap);
      gather(c.ws.extra.data() + t * EH, E, H, j0, hp, ep);
      std::array<T*, K> prev{};
      for (Index s = 0; s < K; ++s) prev[s] = c.ws.prev.data() + (s * S + t) * H + j0;
      cell_backward(c.cell, rows(ap, 1, G * hp), rows(rp, 1, G * hp), c.const_views(prev, 1, hp),
                    const_rows(rows(ep, 1, E * hp)), c.const_views(In::shifted(dcur, j0), 1, hp),
                    c.views(In::shifted(dnxt, j0), 1, hp),
                    static_cast<T*>(nullptr));  // (no cell parameters here)
      scatter(ap, G, H, j0, hp, arow);
      if (!same_gate_grads(c.cell)) scatter(rp, G, H, j0, hp, drow);
      progress.publish(p, k + 1);
      progress.wait_others(p, n, k + 1);  // d h of my units needs the whole dR row
      Eigen::Map<RowVec>(dnxt[0] + j0, hp).noalias() +=
          Eigen::Map<const RowVec>(drow, GH) * w_hh.middleCols(j0, hp);
      std::swap(dcur, dnxt);
    }
    for (Index s = 0; s < K; ++s)
      if (d_in.state[s]) std::copy(dcur[s] + j0, dcur[s] + j1, d_in.state[s] + j0);
  }
};

}  // namespace recur::detail
