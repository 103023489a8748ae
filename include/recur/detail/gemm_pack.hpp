// Packing X for recur's GEMM (detail/gemm.hpp): a block of X's rows (or of X^T's) copied
// into panels of NR rows, k-major, as the micro-kernel (detail/gemm_tile.hpp) reads them.
#pragma once

#include <algorithm>

#include "recur/detail/gemm_tile.hpp"

RECUR_GEMM_WARNINGS_PUSH  // (detail/gemm_tile.hpp)

namespace recur::detail {

template <typename T>
struct GemmPackX : GemmShape<T> {
  using GemmShape<T>::NR;
  using Tiles = GemmTiles<T>;

  // X's rows packed in panels of NR rows (the last one narrower: `tail` of 8, 4, 2 or 1),
  // k-major: panel j at work + j * NR * kc, element [kk * width + c]. (An 8-aligned row r
  // of X starts its panel at work + r * kc, so a range of whole panels is packed X too.)
  static Index tail_width(Index rest) { return rest == 0 ? 0 : rest > 4 ? 8 : rest > 2 ? 4 : rest; }
  // A tail of 1-3 rows after at least one full panel: the last NR + rest rows are packed as
  // two panels of balanced widths (NR = 8: 5 + 4, 5 + 5, 6 + 5), each a tile of its own. A
  // tile of 1-3 rows loads a weight packet for every 1-3 multiply-adds, from L2 (the panel
  // does not fit L1): at S4 on two threads (25 rows a slice), the 1-row tile took 4.4 % of
  // the time for 1.9 % of the multiply-adds. Only for X packed from its rows (pack_x).
  static bool split_tail(Index full, Index rest) {
    return NR == 8 && full >= 1 && rest >= 1 && rest <= 3;
  }
  static Index split_first(Index rest) { return (NR + rest + 1) / 2; }
  // m rows of X, x points at X[0, k0]; rows ldx apart. The panels are kc deep; this fills
  // the depths [off, off + len) of them (default: all) from x's first len columns.
  static void pack_x(const T* x, Index m, Index ldx, Index kc, T* work, Index off = 0,
                     Index len = -1) {
    if (len < 0) len = kc;
    const Index full = m / NR, rest = m - full * NR;
    // (A panel `width` wide starts at base; depth kk of it at base + kk * width.)
    const auto panel = [&](const T* from, Index rows, Index width, T* base) {
      pack_panel(from, rows, width, ldx, len, base + off * width);
    };
    if (split_tail(full, rest)) {
      const Index r0 = (full - 1) * NR, w1 = split_first(rest), w2 = NR + rest - w1;
      pack_x(x, r0, ldx, kc, work, off, len);  // the panels before the last full one
      panel(x + r0 * ldx, w1, w1, work + r0 * kc);
      panel(x + (r0 + w1) * ldx, w2, w2, work + full * NR * kc);
      return;
    }
    for (Index j = 0; j < full; ++j) panel(x + j * NR * ldx, NR, NR, work + j * NR * kc);
    if (rest > 0) panel(x + full * NR * ldx, rest, tail_width(rest), work + full * NR * kc);
  }
  // `rows` rows of X as one panel `width` wide (the columns past `rows` zero):
  // d[kk * width + c] = x[c * ldx + kk].
  static void pack_panel(const T* x, Index rows, Index width, Index ldx, Index kc, T* d) {
    Index k_done = 0;
    if (rows == NR) k_done = transpose_rows(x, ldx, kc, d, NR);
    for (Index c = 0; c < rows; ++c) {
      const T* src = x + c * ldx;
      for (Index kk = k_done; kk < kc; ++kk) d[kk * width + c] = src[kk];
    }
    for (Index c = rows; c < width; ++c)
      for (Index kk = 0; kk < kc; ++kk) d[kk * width + c] = T(0);
  }
  // The same from X^T: x points at X^T[k0, 0], its kc rows (m values each) ldx apart. With
  // `sums`, also sums[c] += x[kk * ldx + c] for every row kk, in order.
  static void pack_xt(const T* x, Index m, Index ldx, Index kc, T* work, T* sums) {
    const Index full = m / NR, rest = m - full * NR, tail = tail_width(rest);
    constexpr Index kLine = 64 / static_cast<Index>(sizeof(T)), kAhead = 8;
    for (Index kk = 0; kk < kc; ++kk) {  // one row of X^T at a time, spread over the panels
      const T* src = x + kk * ldx;
      if (kk + kAhead < kc)
        for (Index i = 0; i < m; i += kLine) Tiles::template prefetch<0>(src + kAhead * ldx + i);
      for (Index j = 0; j < full; ++j)
        std::copy(src + j * NR, src + j * NR + NR, work + j * NR * kc + kk * NR);
      if (tail > 0) {
        T* d = work + full * NR * kc + kk * tail;
        std::copy(src + full * NR, src + m, d);
        std::fill(d + rest, d + tail, T(0));
      }
      if (sums) {
        using Row = Eigen::Array<T, 1, Eigen::Dynamic>;
        Eigen::Map<Row>(sums, m) += Eigen::Map<const Row>(src, m);
      }
    }
  }


  // d[kk * ldd + c] = x[c * ldx + kk] for NR rows (c < NR), NR x NR blocks at a time with a
  // register transpose when the machine has a packet of NR elements; returns the depth done.
  static Index transpose_rows(const T* x, Index ldx, Index kc, T* d, Index ldd) {
    using namespace Eigen::internal;
    using TP = typename find_best_packet<T, static_cast<int>(NR)>::type;
    if constexpr (unpacket_traits<TP>::size == NR) {
      Index kk = 0;
      for (; kk + NR <= kc; kk += NR) {
        PacketBlock<TP, static_cast<int>(NR)> block;
        for (Index c = 0; c < NR; ++c) block.packet[c] = ploadu<TP>(x + c * ldx + kk);
        ptranspose(block);
        for (Index c = 0; c < NR; ++c) pstoreu(d + (kk + c) * ldd, block.packet[c]);
      }
      return kk;
    } else {
      (void)x, (void)ldx, (void)kc, (void)d, (void)ldd;
      return 0;
    }
  }

};

}  // namespace recur::detail

RECUR_GEMM_WARNINGS_POP
