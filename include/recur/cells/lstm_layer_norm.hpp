// The layer-norm LSTM's step (LSTMCell with RecurrentOptions::layer_norm; the math, both
// forms and the cache layout are in cells/lstm.hpp's header comment): forward and backward
// over a step's rows, on the cell's bound parameters.
#pragma once

#include <array>
#include <cmath>
#include <tuple>
#include <utility>

#include "recur/cells/chunks.hpp"
#include "recur/types.hpp"

namespace recur::detail {

template <class T>
struct LSTMLayerNorm {
  using StatesIn = std::array<ConstRows<T>, 2>;
  using StatesOut = std::array<Rows<T>, 2>;

  // Cache columns (units of H), as in cells/lstm.hpp's header comment.
  static constexpr Index kColumns = 13;
  static constexpr Index kAx = 0, kAr = 4, kNu = 8, kTn = 9, kInv = 10;
  using Vec = Eigen::Array<T, 1, Eigen::Dynamic>;
  // 1 / sqrt(var + eps) of the n values at p (and their mean), two passes.
  static std::pair<T, T> moments(const T* p, Index n, T eps) {
    const Eigen::Map<const Vec> v(p, n);
    const T mean = v.mean();
    const T var = (v - mean).square().mean();
    return {mean, T(1) / std::sqrt(var + eps)};
  }

  // p: the gains and shifts gx, bx, gr, br (4H each), gc, bc (H each).
  static void forward_rows(const T* p, T eps, LayerNorm norm, Rows<T> a, Rows<T> r,
                           const StatesIn& prev, StatesOut next, Rows<T> extra) {
    const Index H = next[1].cols(), H4 = 4 * H;
    const bool carry_normalised = norm == LayerNorm::TFAddons;
    const T* gx = p;
    const T* bx = p + H4;
    const T* gr = p + 2 * H4;
    const T* br = p + 3 * H4;
    const T* gc = p + 4 * H4;
    const T* bc = gc + H;
    for (Index b = 0; b < a.rows(); ++b) {
      T* ai = row_data(a, b);
      const T* ri = row_data(r, b);
      const T* c0 = row_data(prev[1], b);
      T* c1 = row_data(next[1], b);
      T* h1 = row_data(next[0], b);
      T* e = row_data(extra, b);
      T mx, ix;  // (not a structured binding: lambdas capture them, C++20)
      std::tie(mx, ix) = moments(ai, H4, eps);
      T mr, ir;
      std::tie(mr, ir) = moments(ri, H4, eps);
      e[kInv * H] = ix;
      e[(kInv + 1) * H] = ir;
      // z (over a) and the normalised inputs, one gate block at a time (fewer streams at
      // once: the blocks are H apart, which for a power-of-two H maps them onto the same
      // cache sets); then the gates and u = f * c + i * g (into c', normalised below).
      for (Index k = 0; k < 4; ++k) {
        const Index o = k * H;
        for_chunks<T, false>(H, [&](auto at) {
          using A = typename decltype(at)::Array;
          const A nx = (at(ai + o) - mx) * ix, nr = (at(ri + o) - mr) * ir;
          at(e + kAx * H + o) = nx;
          at(e + kAr * H + o) = nr;
          at(ai + o) = at(gx + o) * nx + at(bx + o) + at(gr + o) * nr + at(br + o);
        });
      }
      for_chunks<T, false>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        const A i = at(ai).logistic(), f = at(ai + H).logistic(), g = at(ai + 2 * H).tanh(),
                o = at(ai + 3 * H).logistic();
        at(c1) = f * at(c0) + i * g;
        at(ai) = i;
        at(ai + H) = f;
        at(ai + 2 * H) = g;
        at(ai + 3 * H) = o;
      });
      T mu, iu;
      std::tie(mu, iu) = moments(c1, H, eps);
      e[(kInv + 2) * H] = iu;
      for_chunks<T, false>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        const A nu = (at(c1) - mu) * iu;
        const A n = at(gc) * nu + at(bc);
        const A t = n.tanh();
        at(e + kNu * H) = nu;
        at(e + kTn * H) = t;
        at(h1) = at(ai + 3 * H) * t;
        if (carry_normalised) at(c1) = n;
      });
    }
  }

  // Three passes per row: d n and d o (and the cell norm's sums), then d u and the gates'
  // d z (and the gate norms' sums), then d a and d r through the gate norms. d z is kept in
  // a (over the activations it was computed from) and d n in dr's first block (until the
  // last pass writes d r); the gains' and shifts' gradients are added as each is known.
  static void backward_rows(const T* p, LayerNorm norm, Rows<T> a, Rows<T> dr, const StatesIn& prev,
                            ConstRows<T> extra, const StatesIn& dnext, StatesOut dprev, T* grads) {
    const Index H = dnext[1].cols(), H4 = 4 * H;
    const bool carry_normalised = norm == LayerNorm::TFAddons;
    const T* gx = p;
    const T* gr = p + 2 * H4;
    const T* gc = p + 4 * H4;
    T* dgx = grads;
    T* dbx = grads + H4;
    T* dgr = grads + 2 * H4;
    T* dbr = grads + 3 * H4;
    T* dgc = grads + 4 * H4;
    T* dbc = dgc + H;
    for (Index b = 0; b < a.rows(); ++b) {
      T* ai = row_data(a, b);
      T* dri = row_data(dr, b);
      const T* e = row_data(extra, b);
      const T* c0 = row_data(prev[1], b);
      const T* dh1 = row_data(dnext[0], b);
      const T* dc1 = row_data(dnext[1], b);
      T* dh0 = row_data(dprev[0], b);
      T* dc0 = row_data(dprev[1], b);
      const T ix = e[kInv * H], ir = e[(kInv + 1) * H], iu = e[(kInv + 2) * H];
      // d n (into dr's first block) and d o (over o); the sums the cell norm's backward needs.
      T s1 = 0, s2 = 0;
      for_chunks<T, false>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        const A o = at(ai + 3 * H), t = at(e + kTn * H), dh = at(dh1), nu = at(e + kNu * H);
        A dn = dh * o * (T(1) - t * t);
        if (carry_normalised) dn += at(dc1);
        at(dri) = dn;
        at(ai + 3 * H) = dh * t * o * (T(1) - o);
        at(dgc) += dn * nu;
        at(dbc) += dn;
        const A dnu = dn * at(gc);
        s1 += dnu.sum();
        s2 += (dnu * nu).sum();
      });
      const T m1 = s1 / static_cast<T>(H), m2 = s2 / static_cast<T>(H);
      // d u, the gates' d z (over i, f, g).
      for_chunks<T, false>(H, [&](auto at) {
        using A = typename decltype(at)::Array;
        A du = iu * (at(dri) * at(gc) - m1 - at(e + kNu * H) * m2);
        if (!carry_normalised) du += at(dc1);
        const A i = at(ai), f = at(ai + H), g = at(ai + 2 * H);
        at(ai) = du * g * i * (T(1) - i);
        at(ai + H) = du * at(c0) * f * (T(1) - f);
        at(ai + 2 * H) = du * i * (T(1) - g * g);
        at(dc0) = du * f;
        at(dh0).setZero();  // h reaches h' only through W_hh
      });
      // One gate block at a time (fewer streams at once: the blocks are H apart, which for
      // a power-of-two H maps them onto the same cache sets).
      T x1 = 0, x2 = 0, r1 = 0, r2 = 0;
      for (Index k = 0; k < 4; ++k) {
        const Index o = k * H;
        for_chunks<T, false>(H, [&](auto at) {
          using A = typename decltype(at)::Array;
          const A dz = at(ai + o), nx = at(e + kAx * H + o), nr = at(e + kAr * H + o);
          const A dx = dz * at(gx + o), dy = dz * at(gr + o);
          x1 += dx.sum();
          x2 += (dx * nx).sum();
          r1 += dy.sum();
          r2 += (dy * nr).sum();
          at(dgx + o) += dz * nx;
          at(dbx + o) += dz;
          at(dgr + o) += dz * nr;
          at(dbr + o) += dz;
        });
      }
      const T n4 = static_cast<T>(H4);
      const T mx1 = x1 / n4, mx2 = x2 / n4, mr1 = r1 / n4, mr2 = r2 / n4;
      for (Index k = 0; k < 4; ++k) {
        const Index o = k * H;
        for_chunks<T, false>(H, [&](auto at) {
          using A = typename decltype(at)::Array;
          const A dz = at(ai + o);
          at(ai + o) = ix * (dz * at(gx + o) - mx1 - at(e + kAx * H + o) * mx2);
          at(dri + o) = ir * (dz * at(gr + o) - mr1 - at(e + kAr * H + o) * mr2);
        });
      }
    }
  }
};

}  // namespace recur::detail
