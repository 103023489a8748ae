// Strategy 1, BatchSlices: samples are independent, so each thread runs the whole time loop
// for a contiguous slice of the batch (every buffer is batch-major, so a slice is a block of
// rows of each), with no synchronisation inside the loop.
//
// Forward, for the steps t in the timeline's order:
//   A = X W_ih^T + b_ih                  one product over the slice's rows of all steps
//   R_t = h_{t-1} W_hh^T + b_hh          one product per step
//   cell.forward_step(A_t, R_t, state_{t-1} -> state_t)
//   output_t = h_t for the samples with t < length[b]; 0 and a carried state for the others
// Backward, steps in the opposite order:
//   d state_t += d output_t;  cell.backward_step -> dA_t (dR_t), direct d state_{t-1}
//   d h_{t-1} += dR_t W_hh                one product per step
// (the products over all steps that follow, shared by every strategy, are in recurrent.hpp)
#pragma once

#include <algorithm>
#include <array>

#include "recur/recurrent/core.hpp"
#include "recur/threads.hpp"

namespace recur::detail {

template <class Cell>
struct BatchSlices {
  using Core = LayerCore<Cell>;
  using T = typename Core::T;
  using In = typename Core::In;
  using Out = typename Core::Out;
  static constexpr Index G = Core::G, K = Core::K;

  static void forward(Core& c, const In& in, const Out& out, bool training) {
    const Index B = in.batch, N = B * in.steps, GH = G * c.hidden();
    const int parts = threads_for(B, static_cast<double>(N) * GH * (c.input() + c.hidden()));
    parallel(parts, [&](int p, int n) {
      const auto [b0, b1] = split(B, p, n);
      if (b1 > b0) forward_slice(c, b0, b1, in, out, training, c.products.work(p));
    });
  }

  // Leaves dA (and dR, at dr_base) in the caches and writes d initial state.
  static void backward(Core& c, const In& d_out, const Out& d_in, T* dr_base) {
    const Index B = c.time.batch(), N = B * c.time.steps(), GH = G * c.hidden();
    const int parts = threads_for(B, static_cast<double>(N) * GH * c.hidden());
    parallel(parts, [&](int p, int n) {
      const auto [b0, b1] = split(B, p, n);
      if (b1 > b0) backward_slice(c, b0, b1, d_out, d_in, dr_base, c.products.work(p));
    });
  }

 private:
  static void forward_slice(Core& c, Index b0, Index b1, const In& in, const Out& out,
                            bool training, T* work) {
    const Index Bs = b1 - b0, B = c.time.batch(), S = c.time.steps(), H = c.hidden();
    const Index GH = G * H, EH = c.extra() * H, N = B * S, ld = out.rows.outerStride();
    const Index ldx = in.rows.outerStride(), LH = c.late() * H;
    T* gates = c.ws.gates.data() + b0 * S * GH;

    // Input projection of every time step: one product.
    c.products.input(c.weights, in.rows.data() + b0 * S * ldx, Bs * S, ldx, gates, GH, work,
                     Update<T>::assign_to(c.weights.b_ih().data()));

    auto [cur, nxt] = c.state_pair(c.ws.state.data(), B, b0);
    c.load_states(in.state, cur, b0, b1);
    Rows<T> R = rows(c.ws.r.data() + b0 * GH, Bs, GH);

    for (Index k = 0; k < S; ++k) {
      const Index t = c.time.forward_step(k);
      c.products.recurrent(c.weights, cur[0], Bs, H, R.data(), GH, work,
                           Update<T>::assign_to(c.weights.b_hh().data()), GateRows::Early);
      if (training)
        for (Index s = 0; s < K; ++s)
          step_rows(c.ws.prev.data() + s * N * H + b0 * S * H, t, Bs, S, H, H) =
              rows<T>(cur[s], Bs, H);
      Rows<T> extra = training ? step_rows(c.ws.extra.data() + b0 * S * EH, t, Bs, S, EH, EH)
                               : rows(c.ws.extra.data() + b0 * EH, Bs, EH);
      Rows<T> a = step_rows(gates, t, Bs, S, GH, GH);
      if constexpr (has_late_gates<Cell>::value) {
        if (LH > 0) {  // v from the early gates, then the late product on it
          c.cell.early_step(a, R, c.const_views(cur, Bs, H), extra);
          c.products.recurrent(c.weights, extra.data(), Bs, extra.outerStride(),
                               R.data() + GH - LH, GH, work,
                               Update<T>::assign_to(c.weights.b_hh().data() + GH - LH),
                               GateRows::Late);
        }
      }
      c.cell.forward_step(a, R, c.const_views(cur, Bs, H), c.views(nxt, Bs, H), extra);

      // State carry: the samples past their length keep their state and output 0.
      Rows<T> o = step_rows(out.rows.data() + b0 * S * ld, t, Bs, S, H, ld);
      if (c.time.all_active(t)) {
        std::swap(cur, nxt);
        o = rows<T>(cur[0], Bs, H);
      } else {
        for (Index b = 0; b < Bs; ++b) {
          if (c.time.active(b0 + b, t)) {
            for (Index s = 0; s < K; ++s)
              std::copy(nxt[s] + b * H, nxt[s] + (b + 1) * H, cur[s] + b * H);
            o.row(b) = rows<T>(cur[0], Bs, H).row(b);
          } else {
            o.row(b).setZero();
          }
        }
      }
    }
    for (Index s = 0; s < K; ++s)
      if (out.state[s]) std::copy(cur[s], cur[s] + Bs * H, out.state[s] + b0 * H);
  }

  static void backward_slice(Core& c, Index b0, Index b1, const In& d_out, const Out& d_in,
                             T* dr_base, T* work) {
    const Index Bs = b1 - b0, B = c.time.batch(), S = c.time.steps(), H = c.hidden();
    const Index GH = G * H, EH = c.extra() * H, N = B * S, ld = d_out.rows.outerStride();
    const Index LH = c.late() * H;
    T* gates = c.ws.gates.data() + b0 * S * GH;
    T* drs = dr_base + b0 * S * GH;

    auto [dcur, dnxt] = c.state_pair(c.ws.dstate.data(), B, b0);
    c.load_states(d_out.state, dcur, b0, b1);

    for (Index k = 0; k < S; ++k) {
      const Index t = c.time.backward_step(k);
      const bool all_active = c.time.all_active(t);
      Rows<T> a = step_rows(gates, t, Bs, S, GH, GH);
      Rows<T> dr = step_rows(drs, t, Bs, S, GH, GH);
      Rows<T> dh = rows<T>(dcur[0], Bs, H);
      ConstRows<T> g = step_rows(d_out.rows.data() + b0 * S * ld, t, Bs, S, H, ld);
      if (all_active) {
        dh += g;
      } else {
        for (Index b = 0; b < Bs; ++b)
          if (c.time.active(b0 + b, t)) dh.row(b) += g.row(b);
      }
      auto prev = make_array<K>([&](std::size_t s) {
        return step_rows<T>(static_cast<const T*>(c.ws.prev.data()) +
                                static_cast<Index>(s) * N * H + b0 * S * H,
                            t, Bs, S, H, H);
      });
      const ConstRows<T> extra =
          step_rows<T>(static_cast<const T*>(c.ws.extra.data()) + b0 * S * EH, t, Bs, S, EH, EH);
      c.cell.backward_step(a, dr, prev, extra, c.const_views(dcur, Bs, H), c.views(dnxt, Bs, H));
      if constexpr (has_late_gates<Cell>::value) {
        if (LH > 0) {  // dv = dR_late W_late (in R's scratch), then the cell completes dA, dR
          Rows<T> dv = rows(c.ws.r.data() + b0 * GH, Bs, H);
          c.products.recurrent(c.weights, dr.data() + GH - LH, Bs, dr.outerStride(), dv.data(),
                               H, work, Update<T>::assign_to(), GateRows::Late);
          c.cell.backward_late(a, dr, prev, extra, rows<T>(static_cast<const T*>(dv.data()), Bs, H),
                               c.views(dnxt, Bs, H));
        }
      }
      if (!all_active) {  // no gradient through a step a sample does not take
        for (Index b = 0; b < Bs; ++b)
          if (!c.time.active(b0 + b, t)) {
            a.row(b).setZero();
            dr.row(b).setZero();
          }
      }
      c.products.recurrent(c.weights, dr.data(), Bs, dr.outerStride(), dnxt[0], H, work,
                           Update<T>::add(), GateRows::Early);
      if (!all_active) {  // its state gradient passes the step unchanged
        for (Index b = 0; b < Bs; ++b)
          if (!c.time.active(b0 + b, t))
            for (Index s = 0; s < K; ++s)
              std::copy(dcur[s] + b * H, dcur[s] + (b + 1) * H, dnxt[s] + b * H);
      }
      std::swap(dcur, dnxt);
    }
    for (Index s = 0; s < K; ++s)
      if (d_in.state[s]) std::copy(dcur[s], dcur[s] + Bs * H, d_in.state[s] + b0 * H);
  }
};

}  // namespace recur::detail
