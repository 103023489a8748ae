// Strategy 1, BatchSlices: samples are independent, so each thread runs the whole time loop
// for a contiguous slice of the batch (every buffer is batch-major, so a slice is a block of
// rows of each), with no synchronisation inside the loop.
//
// Forward, for the steps t in the timeline's order:
//   A = X W_ih^T + b_ih                  one product over the slice's rows of all steps
//                                        (inference: A_t per step, WeightProducts::input_by_step)
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

#include "recur/detail/tuning.hpp"
#include "recur/recurrent/core.hpp"
#include "recur/detail/threads.hpp"

namespace recur::detail {

// The state views `v` with h (state 0) replaced by B x H rows at p, ld apart (the masked h
// of recurrent dropout; Maps are rebuilt, not assigned: assigning one copies values).
template <std::size_t K, class T>
std::array<ConstRows<T>, K> with_h(const std::array<ConstRows<T>, K>& v, const T* p, Index ld,
                                   Index B, Index H) {
  return make_array<K>([&](std::size_t s) {
    return s == 0 ? ConstRows<T>(p, B, H, Eigen::OuterStride<>(ld)) : v[s];
  });
}

template <class Cell>
struct BatchSlices {
  using Core = LayerCore<Cell>;
  using T = typename Core::T;
  using In = typename Core::In;
  using Out = typename Core::Out;
  static constexpr Index G = Core::G, K = Core::K;

  static void forward(Core& c, const In& in, const Out& out, bool training) {
    const int parts = forward_parts(c, in.batch, in.steps);
    const bool by_step = input_by_step(c, in.batch, in.steps, training);
    parallel(parts, [&](int p, int n) {
      const auto [b0, b1] = split(in.batch, p, n);
      if (b1 > b0) forward_slice(c, b0, b1, in, out, training, by_step, c.products.work(p));
    });
  }
  // Whether forward takes the input projection one step at a time: an inference on one
  // thread (WeightProducts::input_by_step; on two, where both cores stream W_ih every step,
  // it measured 1.03-1.07x the time at S2 and 1.00-1.01x at S3-S4, Zen 4, 11 rounds). A then
  // holds one step: B rows (Workspace::for_forward). Call it after prepare.
  static bool input_by_step(const Core& c, Index B, Index S, bool training) {
    return !training && forward_parts(c, B, S) == 1 &&
           WeightProducts<T>::input_by_step(c.weights, B, S);
  }
  // Whether that step-by-step forward also takes the step's two products as one,
  // [x_t h] [W_ih W_hh]^T + b_ih + b_hh (WeightProducts::joint_step), handing the cell the sum:
  // for a cell that reads only a + r (sums_gates), with neither late gates nor a projection,
  // where in + H fits one depth block of the kernel (tuning.hpp): the gain is the tiles
  // running the joint depth at once. (Past one block, the blocks are the two products again:
  // S3 and S4 measured 1.005-1.01x the time.) Decided before prepare, which then packs the
  // joint weight instead of W_ih and W_hh.
  static bool joint_step(const Core& c, Index B, Index S, bool training) {
    return input_by_step(c, B, S, training) && sums_gates(c.cell) && c.late() == 0 &&
           c.proj() == 0 && !c.dropping && c.input() + c.hidden() <= tuning::kDepthBlock;
  }

  // Leaves dA (and dR, at dr_base) in the caches, writes d initial state and adds the cell's
  // parameter gradients (taken step by step, while a step's rows are in cache: one sum per
  // thread, added up after the loop).
  static void backward(Core& c, const In& d_out, const Out& d_in, T* dr_base) {
    const Index B = c.time.batch(), N = B * c.time.steps(), GH = G * c.hidden();
    const int parts = threads_for(B, static_cast<double>(N) * GH * c.hidden());
    const Index NP = c.weights.cell_count();
    if (NP > 0) {
      grow(c.ws.cell_grads, static_cast<std::size_t>(parts * NP));
      std::fill(c.ws.cell_grads.begin(), c.ws.cell_grads.begin() + parts * NP, T(0));
    }
    parallel(parts, [&](int p, int n) {
      const auto [b0, b1] = split(B, p, n);
      if (b1 > b0)
        backward_slice(c, b0, b1, d_out, d_in, dr_base, c.products.work(p),
                       NP > 0 ? c.ws.cell_grads.data() + p * NP : nullptr);
    });
    if (NP > 0) {
      Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> total(c.weights.cell_grads(), NP);
      for (int p = 0; p < parts; ++p)
        total += Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(
            c.ws.cell_grads.data() + p * NP, NP);
    }
  }

 private:
  static int forward_parts(const Core& c, Index B, Index S) {
    const Index N = B * S, GH = G * c.hidden();
    return threads_for(B, static_cast<double>(N) * GH * (c.input() + c.hidden()));
  }
  static void forward_slice(Core& c, Index b0, Index b1, const In& in, const Out& out,
                            bool training, bool by_step, T* work) {
    const Index Bs = b1 - b0, B = c.time.batch(), S = c.time.steps(), H = c.hidden();
    const Index GH = G * H, EH = c.extra() * H, N = B * S, ld = out.rows.outerStride();
    const Index ldx = in.rows.outerStride(), LH = c.late() * H;
    const Index P = c.proj(), RW = c.width(0);  // projection width; the width of h
    T* gates = c.ws.gates.data() + b0 * (by_step ? 1 : S) * GH;

    // The input projection: of every time step in one product, or, in inference, of each
    // step just before its recurrent product, into one step's rows of A (input_by_step; in
    // training, where A is kept for backward, step by step measured 0.98-1.035x the time).
    const T* x = in.rows.data() + b0 * S * ldx;
    if (!by_step)
      c.products.input(c.weights, x, Bs * S, ldx, gates, GH, work,
                       Update<T>::assign_to(c.weights.b_ih().data()));

    auto cur_nxt = c.state_pair(c.ws.state.data(), B, b0);  // (named: lambdas capture them)
    auto& cur = cur_nxt.first;
    auto& nxt = cur_nxt.second;
    c.load_states(in.state, cur, b0, b1);
    Rows<T> R = rows(c.ws.r.data() + b0 * GH, Bs, GH);

    const bool drop = c.dropping;           // recurrent dropout: the products read h * mask
    const bool joint = c.products.joint();  // (implies by_step, no dropout, late or projection)
    // Where every sample takes the step, the cell writes h straight into the step's rows of
    // the output, and the next step reads it there (instead of a copy from the state buffer
    // into the output: ~1% of the S2 LSTM forward). Not with dropout or a projection, whose
    // h is not the cell's. h = (hcur, ldc): the current h.
    const bool direct = !drop && P == 0;
    const T* hcur = cur[0];
    Index ldc = RW;
    for (Index k = 0; k < S; ++k) {
      const Index t = c.time.forward_step(k);
      const bool all_active = c.time.all_active(t);
      Rows<T> o = step_rows(out.rows.data() + b0 * S * ld, t, Bs, S, RW, ld);
      if (!all_active && hcur != cur[0]) {  // the state carry below works on the buffers
        rows<T>(cur[0], Bs, RW) = ConstRows<T>(hcur, Bs, RW, Eigen::OuterStride<>(ldc));
        hcur = cur[0];
        ldc = RW;
      }
      const T* hin = hcur;
      Index ldh = ldc;
      if (drop) {
        Rows<T> hm = step_rows(c.ws.hd.data() + b0 * S * RW, t, Bs, S, RW, RW);
        hm = rows<T>(cur[0], Bs, RW).cwiseProduct(rows<T>(c.ws.mask.data() + b0 * RW, Bs, RW));
        // (hcur is cur[0] here: no direct h with dropout)
        hin = hm.data();
        ldh = hm.outerStride();
      }
      Rows<T> a = by_step ? rows(gates, Bs, GH) : step_rows(gates, t, Bs, S, GH, GH);
      // The cell's r: R, or none when a holds both products (joint).
      const Rows<T> r = joint ? rows(R.data(), Bs, 0) : R;
      if (joint) {  // a = x_t W_ih^T + h W_hh^T + b_ih + b_hh: one product
        c.products.joint_step(c.weights, x + t * ldx, S * ldx, hin, ldh, Bs, a.data(),
                              a.outerStride(), work);
      } else {
        if (by_step)
          c.products.input(c.weights, x + t * ldx, Bs, S * ldx, a.data(), a.outerStride(), work,
                           Update<T>::assign_to(c.weights.b_ih().data()));
        // (While it runs, the step's rows of A, which the cell reads next, come into cache.)
        c.products.recurrent(c.weights, hin, Bs, ldh, R.data(), GH, work,
                             Update<T>::assign_to(c.weights.b_hh().data()), GateRows::Early,
                             Ahead<T>{a.data(), Bs, a.outerStride(), GH});
      }
      if (training)
        for (Index s = 0; s < K; ++s) {
          const Index W = c.width(s);
          step_rows(c.ws.prev.data() + s * N * H + b0 * S * W, t, Bs, S, W, W) =
              s == 0 ? ConstRows<T>(hcur, Bs, W, Eigen::OuterStride<>(ldc))
                     : rows<T>(static_cast<const T*>(cur[s]), Bs, W);
        }
      Rows<T> extra = training ? step_rows(c.ws.extra.data() + b0 * S * EH, t, Bs, S, EH, EH)
                               : rows(c.ws.extra.data() + b0 * EH, Bs, EH);
      if constexpr (has_late_gates<Cell>::value) {
        if (LH > 0) {  // v from the early gates (and the masked h), then the late product on it
          c.cell.early_step(a, R, with_h(c.const_views(cur, Bs, H), hin, ldh, Bs, H), extra);
          // (with dropout, hin is h * mask; else it is hcur)
          c.products.recurrent(c.weights, extra.data(), Bs, extra.outerStride(), R.data() + GH - LH,
                               GH, work, Update<T>::assign_to(c.weights.b_hh().data() + GH - LH),
                               GateRows::Late);
        }
      }
      if (P > 0) {  // the cell writes m (its h) aside; h = m W_hr^T
        Rows<T> m = training ? step_rows(c.ws.m.data() + b0 * S * H, t, Bs, S, H, H)
                             : rows(c.ws.m.data() + b0 * H, Bs, H);
        // (Maps are rebuilt, not assigned: assigning one copies values.) prev[0]: unread.
        const auto prev = make_array<K>([&](std::size_t s) {
          return s == 0 ? const_rows(m) : rows<T>(static_cast<const T*>(cur[s]), Bs, H);
        });
        const auto next =
            make_array<K>([&](std::size_t s) { return s == 0 ? m : rows<T>(nxt[s], Bs, H); });
        c.cell.forward_step(a, R, prev, next, extra);
        c.products.projection(c.weights, m.data(), Bs, m.outerStride(), nxt[0], P, work,
                              Update<T>::assign_to());
      } else {  // h from (hcur, ldc); the next h into the output's rows where it can go there
        const bool into_out = direct && all_active;
        const auto next = make_array<K>([&](std::size_t s) {
          return s == 0 && into_out
                     ? Rows<T>(o.data(), Bs, H, Eigen::OuterStride<>(o.outerStride()))
                     : rows<T>(nxt[s], Bs, H);
        });
        c.cell.forward_step(a, r, with_h(c.const_views(cur, Bs, H), hcur, ldc, Bs, H), next, extra);
      }

      // State carry: the samples past their length keep their state and output 0.
      if (all_active) {
        std::swap(cur, nxt);
        if (direct) {
          hcur = o.data();
          ldc = o.outerStride();
        } else {
          o = rows<T>(cur[0], Bs, RW);
          hcur = cur[0];
        }
      } else {
        for (Index b = 0; b < Bs; ++b) {
          if (c.time.active(b0 + b, t)) {
            for (Index s = 0; s < K; ++s) {
              const Index W = c.width(s);
              std::copy(nxt[s] + b * W, nxt[s] + (b + 1) * W, cur[s] + b * W);
            }
            o.row(b) = rows<T>(cur[0], Bs, RW).row(b);
          } else {
            o.row(b).setZero();
          }
        }
      }
    }
    for (Index s = 0; s < K; ++s) {
      const Index W = c.width(s);
      if (!out.state[s]) continue;
      if (s == 0)
        rows<T>(out.state[0] + b0 * W, Bs, W) =
            ConstRows<T>(hcur, Bs, W, Eigen::OuterStride<>(ldc));
      else
        std::copy(cur[s], cur[s] + Bs * W, out.state[s] + b0 * W);
    }
  }

  static void backward_slice(Core& c, Index b0, Index b1, const In& d_out, const Out& d_in,
                             T* dr_base, T* work, T* cell_grads) {
    const Index Bs = b1 - b0, B = c.time.batch(), S = c.time.steps(), H = c.hidden();
    const Index GH = G * H, EH = c.extra() * H, N = B * S, ld = d_out.rows.outerStride();
    const Index LH = c.late() * H, P = c.proj(), RW = c.width(0);
    T* gates = c.ws.gates.data() + b0 * S * GH;
    T* drs = dr_base + b0 * S * GH;

    auto dcur_dnxt = c.state_pair(c.ws.dstate.data(), B, b0);  // (named: lambdas capture them)
    auto& dcur = dcur_dnxt.first;
    auto& dnxt = dcur_dnxt.second;
    std::array<T*, K> dstash{};  // the third K x [B, H] of the buffer
    for (Index s = 0; s < K; ++s)
      dstash[s] = c.ws.dstate.data() + (2 * K + s) * B * H + b0 * c.width(s);
    c.load_states(d_out.state, dcur, b0, b1);
    const bool drop = c.dropping;  // recurrent dropout: d (h * mask) lands in dhd, then * mask
    Rows<T> dhd = rows(c.ws.dhd.data() + b0 * RW, Bs, drop ? RW : 0);

    for (Index k = 0; k < S; ++k) {
      const Index t = c.time.backward_step(k);
      const bool all_active = c.time.all_active(t);
      Rows<T> a = step_rows(gates, t, Bs, S, GH, GH);
      Rows<T> dr = step_rows(drs, t, Bs, S, GH, GH);
      Rows<T> dh = rows<T>(dcur[0], Bs, RW);
      ConstRows<T> g = step_rows(d_out.rows.data() + b0 * S * ld, t, Bs, S, RW, ld);
      if (all_active) {
        dh += g;
      } else {
        for (Index b = 0; b < Bs; ++b)
          if (c.time.active(b0 + b, t)) dh.row(b) += g.row(b);
      }
      auto prev = make_array<K>([&](std::size_t s) {
        const Index W = c.width(static_cast<Index>(s));
        return step_rows<T>(
            static_cast<const T*>(c.ws.prev.data()) + static_cast<Index>(s) * N * H + b0 * S * W, t,
            Bs, S, W, W);
      });
      const ConstRows<T> extra =
          const_rows(step_rows(c.ws.extra.data() + b0 * S * EH, t, Bs, S, EH, EH));
      // A sample past its length: its state gradient passes the step unchanged (kept aside
      // in the stash), and the cell sees d next = 0 there (so its gradients are 0).
      if (!all_active)
        for (Index b = 0; b < Bs; ++b)
          if (!c.time.active(b0 + b, t))
            for (Index s = 0; s < K; ++s) {
              const Index W = c.width(s);
              std::copy(dcur[s] + b * W, dcur[s] + (b + 1) * W, dstash[s] + b * W);
              std::fill(dcur[s] + b * W, dcur[s] + (b + 1) * W, T(0));
            }
      if (P > 0) {  // dm = dh W_hr; the cell from dm; dh is kept for dW_hr (0 where inactive)
        Rows<T> dH = step_rows(c.ws.dproj.data() + b0 * S * P, t, Bs, S, P, P);
        dH = dh;
        if (!all_active)
          for (Index b = 0; b < Bs; ++b)
            if (!c.time.active(b0 + b, t)) dH.row(b).setZero();
        T* dm = c.ws.dproj.data() + N * P + 2 * b0 * H;  // [Bs, H] d m, then [Bs, H] unused
        c.products.projection(c.weights, dh.data(), Bs, P, dm, H, work, Update<T>::assign_to());
        // (Maps rebuilt, not assigned.) The cell's prev[0] is unread; its direct d m goes to
        // scratch (0: h reaches h' only through W_hh).
        const auto cprev = make_array<K>([&](std::size_t s) {
          return s == 0 ? rows<T>(static_cast<const T*>(c.ws.m.data()), Bs, H) : prev[s];
        });
        const auto dnext = make_array<K>([&](std::size_t s) {
          return rows<T>(static_cast<const T*>(s == 0 ? dm : dcur[s]), Bs, H);
        });
        const auto dprev = make_array<K>(
            [&](std::size_t s) { return rows<T>(s == 0 ? dm + Bs * H : dnxt[s], Bs, H); });
        cell_backward(c.cell, a, dr, cprev, extra, dnext, dprev, cell_grads);
      } else {
        cell_backward(c.cell, a, dr, prev, extra, c.const_views(dcur, Bs, H), c.views(dnxt, Bs, H),
                      cell_grads);
      }
      if constexpr (has_late_gates<Cell>::value) {
        if (LH > 0) {  // dv = dR_late W_late (in R's scratch), then the cell completes dA, dR
          Rows<T> dv = rows(c.ws.r.data() + b0 * GH, Bs, H);
          c.products.recurrent(c.weights, dr.data() + GH - LH, Bs, dr.outerStride(), dv.data(), H,
                               work, Update<T>::assign_to(), GateRows::Late);
          const ConstRows<T> dvc = rows<T>(static_cast<const T*>(dv.data()), Bs, H);
          if (drop) {  // the cell's v was r * (h * mask): its d h part goes to dhd first
            dhd.setZero();
            const T* hm = c.ws.hd.data() + b0 * S * RW;
            const auto hprev = with_h(prev, hm + t * RW, S * RW, Bs, H);
            c.cell.backward_late(a, dr, hprev, extra, dvc, make_array<K>([&](std::size_t s) {
                                   return s == 0 ? dhd : rows<T>(dnxt[s], Bs, H);
                                 }));
          } else {
            c.cell.backward_late(a, dr, prev, extra, dvc, c.views(dnxt, Bs, H));
          }
        }
      }
      if (!all_active) {  // no gradient through a step a sample does not take
        for (Index b = 0; b < Bs; ++b)
          if (!c.time.active(b0 + b, t)) {
            a.row(b).setZero();
            dr.row(b).setZero();
          }
      }
      // d h_{t-1} = (the cell's direct part +) dR W_hh (with dropout: * mask)
      if (drop) {
        c.products.recurrent(c.weights, dr.data(), Bs, dr.outerStride(), dhd.data(), RW, work,
                             LH > 0 ? Update<T>::add() : Update<T>::assign_to(), GateRows::Early);
        Rows<T> dh_prev = rows<T>(dnxt[0], Bs, RW);
        const auto masked = dhd.cwiseProduct(rows<T>(c.ws.mask.data() + b0 * RW, Bs, RW));
        if (P > 0)
          dh_prev = masked;
        else
          dh_prev += masked;
      } else {
        c.products.recurrent(c.weights, dr.data(), Bs, dr.outerStride(), dnxt[0], RW, work,
                             P > 0 ? Update<T>::assign_to() : Update<T>::add(), GateRows::Early);
      }
      if (!all_active) {  // its state gradient passes the step unchanged
        for (Index b = 0; b < Bs; ++b)
          if (!c.time.active(b0 + b, t))
            for (Index s = 0; s < K; ++s) {
              const Index W = c.width(s);
              std::copy(dstash[s] + b * W, dstash[s] + (b + 1) * W, dnxt[s] + b * W);
            }
      }
      std::swap(dcur, dnxt);
    }
    for (Index s = 0; s < K; ++s) {
      const Index W = c.width(s);
      if (d_in.state[s]) std::copy(dcur[s], dcur[s] + Bs * W, d_in.state[s] + b0 * W);
    }
  }
};

}  // namespace recur::detail
