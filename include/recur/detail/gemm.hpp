#pragma once
// PackedWeight: GEMMs with one operand packed once and used many times.
//
// Each time step multiplies a small block of states (a batch slice, [m, k]) by the same
// recurrent weight. A general GEMM call packs both operands on every call; for the weight
// that is most of a step's memory traffic. Here the weight is packed once per forward (or
// backward) into register-block panels, and each call packs only its block of rows. The same
// class serves the layer's other products: the input projection (W_ih), d x (W_ih), and the
// weight gradients, where the layer's input and H_prev take the weight's place.
//
// In row-major terms:  Y[m, n] += X[m, k] * op(W)   with W stored row-major and
//   op(W) = W^T (W is [n, k]; forward:  R += h W_hh^T), or
//   op(W) = W   (W is [k, n]; backward: dh += dR W_hh);
// X may also be given as X^T (the weight gradients read dA^T and dR^T that way).
//
// The micro-kernel computes a tile of MR outputs (3 SIMD packets along n) for NR rows of X
// (8 on machines with 32 vector registers, 4 otherwise): per step of k it loads 3 packets of
// the weight panel, broadcasts NR values of X and issues 3 * NR fused multiply-adds into
// accumulators that stay in registers. With 24 accumulators the loads are few enough that
// the FMA units, not the load ports, set the pace: 105-112 GFLOP/s of a 116 peak per core on
// an AVX-512 Zen 4, where Eigen's general product, which repacks the weight on every call,
// reaches 45-85 (bench/gemm_bench.cpp). The last panel of W is only as many packets wide as
// it needs: hidden sizes are powers of two, which 3 packets never divide (n = 256 would
// compute 288 columns; with a one-packet last panel the d x and weight-gradient products at
// H = 256 run 10-15% faster). Written with Eigen's packet primitives, so it builds for SSE,
// AVX2, AVX-512 and NEON alike.

#include <algorithm>
#include <array>

#include "recur/detail/eigen.hpp"
#include "recur/detail/gemm_pack.hpp"
#include "recur/detail/gemm_tile.hpp"
#include "recur/detail/tuning.hpp"
#include "recur/detail/threads.hpp"
#include "recur/types.hpp"

// Eigen's AVX-512 packets trip GCC 12's -Wmaybe-uninitialized inside avx512fintrin.h
// (_mm512_undefined_ps), a false positive reported where the code is instantiated. GCC 12
// also claims "iteration 2^61 invokes undefined behavior" for pack()'s scalar transpose loop
// when a test inlines two packs of a 40 x 24 double weight (-std=gnu++20 only): that loop only
// finishes the depth transpose_rows left (fewer than NR columns); the claim assumes a depth
// near 2^61.
RECUR_GEMM_WARNINGS_PUSH  // (detail/gemm_tile.hpp)

namespace recur::detail {

enum class WeightOp { Transposed, AsIs };

// Rows a product's caller reads next (the step's input projection, which the cell reads after
// the recurrent product): `rows` rows of `cols` values, `ld` apart. The product fetches them
// into L2 a few lines per tile while its FMAs run, instead of the cell waiting for them.
template <typename T>
struct Ahead {
  const T* base = nullptr;
  Index rows = 0, ld = 0, cols = 0;
};

template <typename T>
class PackedWeight {
  using Packet = typename GemmShape<T>::Packet;
  static constexpr Index P = GemmShape<T>::P, MP = GemmShape<T>::MP, MR = GemmShape<T>::MR;
  static constexpr Index NR = GemmShape<T>::NR;
  using Tiles = GemmTiles<T>;  // the micro-kernel (detail/gemm_tile.hpp)
  using Pack = GemmPackX<T>;   // packing X (detail/gemm_pack.hpp)

 public:
  /// Packs op(W) for products X * op(W). W is row-major, `rows` x `cols`, rows `ld` apart
  /// (default: cols).
  void pack(const T* w, Index rows, Index cols, WeightOp op, Index ld = 0) {
    shape(rows, cols, op);
    pack_part(w, ld == 0 ? cols : ld, 0, 1);
  }
  /// The two halves of pack(), for packing on several threads: shape() sets op(W)'s shape
  /// and makes room; then pack_part(w, ld, p, n) for every p < n (at once, on n threads)
  /// packs the p-th of n parts (whole panels, or rows of W as it is).
  void shape(Index rows, Index cols, WeightOp op) {
    op_ = op;
    n_ = op == WeightOp::Transposed ? rows : cols;
    k_ = op == WeightOp::Transposed ? cols : rows;
    grow(packed_, static_cast<std::size_t>((n_ + MR - 1) / MR * MR * k_));
  }
  /// With w2 (op Transposed only): op(W) = [W1 W2]^T, two weights side by side along k
  /// (rows of W1 = w, k1 columns; rows of W2 = w2, ld2 apart, k - k1 columns): the joint
  /// weight of multiply_joint.
  void pack_part(const T* w, Index ld, int part, int parts, const T* w2 = nullptr, Index ld2 = 0,
                 Index k1 = -1) {
    if (k1 < 0) k1 = k_;
    eigen_assert(k1 == k_ || (w2 && op_ == WeightOp::Transposed));
    const Index panels = (n_ + MR - 1) / MR;
    // Panel p holds outputs [p*MR, p*MR + wp) for every kk, k-major: d[kk * wp + i], where
    // wp = MR except for the last panel, which is only as wide as the packets it needs (n =
    // 256 would otherwise compute 288 columns); the columns past n are zero. (A depth block of
    // a panel is then contiguous too.)
    if (op_ == WeightOp::AsIs) {
      // op(W)[kk, i] = w[kk, i]: row kk of w feeds row kk of every panel. Row by row, so
      // each row is read once in one run (w can be large and its rows far apart: the weight
      // gradients pack the layer's input, one row per sample and step).
      const auto [k0, k1] = split(k_, part, parts);
      for (Index kk = k0; kk < k1; ++kk) {
        const T* src = w + kk * ld;
        for (Index p = 0; p < panels; ++p) {
          const Index i0 = p * MR, ni = std::min(MR, n_ - i0), wp = panel_width(ni);
          T* d = packed_.data() + p * MR * k_ + kk * wp;
          if (ni == MR) {
            using namespace Eigen::internal;
            for (Index r = 0; r < MP; ++r) pstoreu(d + r * P, ploadu<Packet>(src + i0 + r * P));
          } else {
            std::copy(src + i0, src + i0 + ni, d);
            std::fill(d + ni, d + wp, T(0));
          }
        }
      }
      return;
    }
    const auto [p0, p1] = split(panels, part, parts);
    for (Index p = p0; p < p1; ++p) {
      T* d = packed_.data() + p * MR * k_;
      const Index i0 = p * MR, ni = std::min(MR, n_ - i0), wp = panel_width(ni);
      // op(W)[kk, i] = w[i, kk]: read rows of w (and of w2 for kk >= k1)
      for (int half = 0; half < 2; ++half) {
        const T* ws = half == 0 ? w : w2;
        const Index lds = half == 0 ? ld : ld2, kb = half == 0 ? 0 : k1;
        const Index kn = half == 0 ? k1 : k_ - k1;
        if (kn == 0) continue;
        T* dh = d + kb * wp;
        Index i = 0;
        for (; i + NR <= ni; i += NR) {  // NR rows at a time, transposed in registers
          const T* src = ws + (i0 + i) * lds;
          for (Index kk = Pack::transpose_rows(src, lds, kn, dh + i, wp); kk < kn; ++kk)
            for (Index c = 0; c < NR; ++c) dh[kk * wp + i + c] = src[c * lds + kk];
        }
        for (; i < ni; ++i) {
          const T* src = ws + (i0 + i) * lds;
          for (Index kk = 0; kk < kn; ++kk) dh[kk * wp + i] = src[kk];
        }
      }
      if (ni < wp)
        for (Index kk = 0; kk < k_; ++kk) std::fill(d + kk * wp + ni, d + kk * wp + wp, T(0));
    }
  }

  Index n() const { return n_; }
  Index k() const { return k_; }
  std::size_t bytes() const { return sizeof(T) * packed_.capacity(); }

  /// Scratch (in elements) that multiply() needs for an m-row X (given as X^T: x_transposed).
  Index workspace_size(Index m, bool x_transposed = false) const {
    const Index mb = std::min(m, x_transposed ? std::max(kXtRows, block_rows()) : block_rows());
    return std::min(k_, kKc) * ((mb + NR - 1) / NR) * NR + MR * NR + P;
  }

  /// Y[m, n] (row stride ldy) += X[m, k] * op(W), or = with `update` (see Update), where
  /// X[r, kk] = x[r * ldx + kk], or x[kk * ldx + r] with x_transposed (X given as the [k, m]
  /// matrix X^T). `work`: workspace_size(m) elements. Allocates nothing. Blocked like any
  /// GEMM: a block of X (rows x depth) is packed so that it stays in L2 while the weight
  /// panels stream past it.
  void multiply(const T* x, Index m, Index ldx, T* y, Index ldy, T* work, bool x_transposed = false,
                Update<T> update = Update<T>::add(), Ahead<T> ahead = {}) const {
    if (x_transposed) return multiply_xt(x, m, ldx, {Target{this, y, ldy}, Target{}}, work, update);
    multiply_joint(x, ldx, nullptr, 0, k_, m, y, ldy, work, update, ahead);  // X alone: X1
  }

  /// Y (+)= [X1 X2] op(W), or = with `update`, for a weight packed from two sources (W =
  /// [W1 W2]: pack_part's w2, k1 columns from W1): X1 [m, k1] and X2 [m, k - k1], rows ldx1 and
  /// ldx2 apart, side by side along the depth. One product over the joint depth: its tiles
  /// run k deep instead of two products' k1 and k - k1, so each tile's start and its stores
  /// of Y happen once (a step's input projection and recurrent product together:
  /// [x_t h] [W_ih W_hh]^T; m = 64, n = 1024, k = 256 + 256: 0.978x the time of the two
  /// products, Zen 4). `work`: workspace_size(m). (With k1 = k, X1 alone: multiply.)
  void multiply_joint(const T* x1, Index ldx1, const T* x2, Index ldx2, Index k1, Index m, T* y,
                      Index ldy, T* work, Update<T> update, Ahead<T> ahead = {}) const {
    const Index mb = block_rows();
    for (Index r = 0; r < m; r += mb)
      for (Index k0 = 0; k0 < std::max<Index>(k_, 1); k0 += kKc) {
        const Index rows = std::min(mb, m - r), kc = std::min(kKc, k_ - k0);
        const Index a = std::clamp<Index>(k1 - k0, 0, kc);  // of this depth block, from X1
        if (a > 0) Pack::pack_x(x1 + r * ldx1 + k0, rows, ldx1, kc, work, 0, a);
        if (a < kc) Pack::pack_x(x2 + r * ldx2 + (k0 + a - k1), rows, ldx2, kc, work, a, kc - a);
        panels(work, rows, k0, kc, y + r * ldy, ldy, work + (rows + NR - 1) / NR * NR * kc,
               k0 == 0 ? update : Update<T>::add(), r == 0 && k0 == 0 ? ahead : Ahead<T>{},
               /*split=*/true);
      }
  }

  /// One output of multiply_xt: Y (rows ldy apart) of the product with weight w.
  struct Target {
    const PackedWeight* w = nullptr;
    T* y = nullptr;
    Index ldy = 0;
  };
  /// With X given as X^T ([k, m], rows ldx apart; the weight gradients' dA^T): Y (+)= X op(W)
  /// for each target's weight (all with this one's k and depth blocking; a null w is
  /// skipped), every packed block of X shared by them: X^T's rows (one per sample and step)
  /// lie far apart, and packing them is the part of the product that is not multiply-adds.
  /// With `sums`, also sums[r] += the sum over kk of X[r, kk] (the bias gradients), taken
  /// from the rows as they are packed, in order of kk. `work`: workspace_size(m, true).
  void multiply_xt(const T* x, Index m, Index ldx, std::array<Target, 2> to, T* work,
                   Update<T> update = Update<T>::add(), T* sums = nullptr) const {
    // Each depth block packs up to kXtRows rows of X at once, so every row of X^T is read in
    // one long run instead of one short piece per block of mb rows; the row blocks then take
    // their part of it.
    const Index mb = block_rows(), sb = std::max(kXtRows, mb);
    for (const Target& t : to) {
      eigen_assert(!t.w || (t.w->k_ == k_ && t.w->block_rows() == mb));
      (void)t;
    }
    for (Index r0 = 0; r0 < m; r0 += sb)
      for (Index k0 = 0; k0 < std::max<Index>(k_, 1); k0 += kKc) {
        const Index ms = std::min(sb, m - r0), kc = std::min(kKc, k_ - k0);
        Pack::pack_xt(x + k0 * ldx + r0, ms, ldx, kc, work, sums ? sums + r0 : nullptr);
        T* spill = work + (ms + NR - 1) / NR * NR * kc;
        for (const Target& t : to)
          if (t.w)
            for (Index r = 0; r < ms; r += mb)
              t.w->panels(work + r * kc, std::min(mb, ms - r), k0, kc, t.y + (r0 + r) * t.ldy,
                          t.ldy, spill, k0 == 0 ? update : Update<T>::add());
      }
  }

 private:
  // Walks `ahead`'s cache lines in order, a share of them per next() (one per tile).
  class Fetcher {
   public:
    Fetcher(const Ahead<T>& ahead, Index calls) : a_(ahead) {
      per_row_ = (a_.cols + kLine - 1) / kLine;
      const Index lines = a_.base ? a_.rows * per_row_ : 0;
      share_ = calls > 0 ? (lines + calls - 1) / calls : 0;
      left_ = lines;
    }
    void next() {
      for (Index n = std::min(share_, left_); n > 0; --n, --left_) {
        Tiles::template prefetch<0, 2>(a_.base + row_ * a_.ld + col_ * kLine);
        if (++col_ == per_row_) col_ = 0, ++row_;
      }
    }

   private:
    static constexpr Index kLine = 64 / static_cast<Index>(sizeof(T));
    Ahead<T> a_;
    Index per_row_ = 0, share_ = 0, left_ = 0, row_ = 0, col_ = 0;
  };

  static constexpr Index kKc = tuning::kDepthBlock;  // depth block
  static constexpr Index kXtRows = tuning::kXtRows;  // rows of X packed at once, X given as X^T
  // Width of a panel holding ni (<= MR) outputs: whole packets.
  static Index panel_width(Index ni) { return (ni + P - 1) / P * P; }
  // Rows of X per block: its packed copy takes about tuning::kXBlockBytes (128 KiB).
  Index block_rows() const {
    const Index depth = std::max<Index>(std::min(k_, kKc), 1);
    const Index rows = (tuning::kXBlockBytes / static_cast<Index>(sizeof(T))) / depth;
    return std::max(NR, rows / NR * NR);
  }

  // Y[m, n] (+)= X[m, k0:k0+kc] * op(W)[k0:k0+kc, :] as `update` says, X packed.
  void panels(const T* work, Index m, Index k0, Index kc, T* y, Index ldy, T* spill,
              Update<T> update, Ahead<T> ahead = {}, bool split = false) const {
    const Index full = m / NR, rest = m - full * NR, tail = Pack::tail_width(rest);
    const Index panels = (n_ + MR - 1) / MR;
    // `ahead`'s lines, spread evenly over the tiles (a few each: a burst of prefetches at
    // once would stall the tile behind them).
    Fetcher fetch(ahead, panels * (full + (tail > 0 ? 1 : 0)));
    for (Index p = 0; p < panels; ++p) {
      const Index i0 = p * MR, ni = std::min(MR, n_ - i0), wp = panel_width(ni);
      const T* a = packed_.data() + p * MR * k_ + k0 * wp;
      Update<T> up = update;
      if (up.bias) up.bias += i0;
      T* yp = y + i0;
      if (wp == MR)
        panel<MP>(a, work, kc, full, rest, tail, yp, ldy, ni, spill, up, fetch, split);
      else if (wp == 2 * P)
        panel<2>(a, work, kc, full, rest, tail, yp, ldy, ni, spill, up, fetch, split);
      else
        panel<1>(a, work, kc, full, rest, tail, yp, ldy, ni, spill, up, fetch, split);
    }
  }

  // One panel of W (M packets wide) against every packed row tile of X.
  template <int M>
  void panel(const T* a, const T* work, Index kc, Index full, Index rest, Index tail, T* y,
             Index ldy, Index ni, T* spill, Update<T> update, Fetcher& fetch, bool split) const {
    // With a split tail (pack_x), the last full panel and the tail are two balanced tiles.
    const bool two = split && Pack::split_tail(full, rest);
    for (Index j = 0; j < (two ? full - 1 : full); ++j) {
      fetch.next();
      Tiles::template tile<M, NR, 1>(a, work + j * NR * kc, kc, y + j * NR * ldy, ldy, ni, NR, spill, update);
    }
    if constexpr (NR == 8) {
      if (two) {
        fetch.next();
        const Index r0 = (full - 1) * NR, w1 = Pack::split_first(rest);
        const T* b1 = work + r0 * kc;
        const T* b2 = work + full * NR * kc;
        T* y1 = y + r0 * ldy;
        T* y2 = y1 + w1 * ldy;
        if (w1 == 5)
          Tiles::template tile<M, 5, 1>(a, b1, kc, y1, ldy, ni, 5, spill, update);
        else
          Tiles::template tile<M, 6, 1>(a, b1, kc, y1, ldy, ni, 6, spill, update);
        if (rest == 1)
          Tiles::template tile<M, 4, 1>(a, b2, kc, y2, ldy, ni, 4, spill, update);
        else
          Tiles::template tile<M, 5, 1>(a, b2, kc, y2, ldy, ni, 5, spill, update);
        return;
      }
    }
    if (tail == 0) return;
    fetch.next();
    const T* b = work + full * NR * kc;
    T* yt = y + full * NR * ldy;
    // Narrow tiles have few accumulators: unroll k into independent sets to hide latency.
    if constexpr (NR == 8) {
      if (tail == 8) return Tiles::template tile<M, 8, 1>(a, b, kc, yt, ldy, ni, rest, spill, update);
    }
    if (tail == 4)
      Tiles::template tile<M, 4, 1>(a, b, kc, yt, ldy, ni, rest, spill, update);
    else if (tail == 2)
      Tiles::template tile<M, 2, 2>(a, b, kc, yt, ldy, ni, rest, spill, update);
    else
      Tiles::template tile<M, 1, 4>(a, b, kc, yt, ldy, ni, rest, spill, update);
  }

  WeightOp op_ = WeightOp::Transposed;
  Index n_ = 0, k_ = 0;
  Buffer<T> packed_;
};

}  // namespace recur::detail


RECUR_GEMM_WARNINGS_POP
