// The micro-kernel of recur's GEMM (detail/gemm.hpp): a tile of M packets of outputs along
// n for N rows of X, over a depth block, with the accumulators in registers; and how a
// product meets its result (Update). PackedWeight's drivers pick the tile for each panel and
// row block.
#pragma once

#include "recur/detail/eigen.hpp"
#include "recur/detail/tuning.hpp"
#include "recur/types.hpp"

// GCC 12's false positives in Eigen's AVX-512 packets and the packing loops (see
// detail/gemm.hpp), silenced around the GEMM's code in each of its three files.
#if defined(__GNUC__) && !defined(__clang__)
#define RECUR_GEMM_WARNINGS_PUSH                                 \
  _Pragma("GCC diagnostic push")                                 \
  _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")   \
  _Pragma("GCC diagnostic ignored \"-Waggressive-loop-optimizations\"")
#define RECUR_GEMM_WARNINGS_POP _Pragma("GCC diagnostic pop")
#else
#define RECUR_GEMM_WARNINGS_PUSH
#define RECUR_GEMM_WARNINGS_POP
#endif
RECUR_GEMM_WARNINGS_PUSH

// Keeps a loaded weight packet in a register: compilers otherwise fold the load into each of
// the NR multiply-adds that use it, and the load ports (one 512-bit load per cycle on Zen 4)
// become the bottleneck instead of the FMA units (measured: ~10% of the kernel's speed).
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define RECUR_IN_REGISTER(x) __asm__("" : "+v"(x))
#else
#define RECUR_IN_REGISTER(x) (void)0
#endif

namespace recur::detail {

// How a product meets its result Y: Y += X op(W) (add), Y = X op(W) (assign), or
// Y = bias + X op(W) (assign from a bias row of n values). Assigning never reads Y, so the
// product needs no pass that zeroes Y or broadcasts the bias into it first.
template <typename T>
struct Update {
  const T* bias = nullptr;
  bool assign = false;
  static Update add() { return {}; }
  static Update assign_to(const T* bias = nullptr) { return {bias, true}; }
};

// The packets and tile sizes of the kernel for scalar T.
template <typename T>
struct GemmShape {
  using Packet = typename Eigen::internal::packet_traits<T>::type;
  static constexpr Index P = Eigen::internal::unpacket_traits<Packet>::size;
  static constexpr Index MP = 3;  // packets per tile along n
  static constexpr Index MR = MP * P;
  static constexpr Index NR = tuning::kTileRows;  // 8 with 32 vector registers, 4 with 16
};

template <typename T>
struct GemmTiles : GemmShape<T> {
  using typename GemmShape<T>::Packet;
  using GemmShape<T>::P;

  // Cache hint: fetch the line holding p, for reading (kRw = 0) or writing (kRw = 1), into
  // every level (kLocality 3) or L2 and beyond (2).
  template <int kRw, int kLocality = 3>
  static EIGEN_STRONG_INLINE void prefetch(const T* p) {
#if defined(__GNUC__)
    __builtin_prefetch(p, kRw, kLocality);
#else
    (void)p;
#endif
  }

  // One step of depth: acc[r][c] += a[r*P : r*P + P] * b[c] for the M packets and N rows.
  template <int M, int N>
  static EIGEN_STRONG_INLINE void depth_step(const T* ak, const T* bk, Packet (&acc)[M][N]) {
    using namespace Eigen::internal;
    Packet w[M];
    for (int r = 0; r < M; ++r) {
      w[r] = pload<Packet>(ak + r * P);
      RECUR_IN_REGISTER(w[r]);
    }
    for (int c = 0; c < N; ++c) {
      const Packet bc = pset1<Packet>(bk[c]);
      for (int r = 0; r < M; ++r) acc[r][c] = pmadd(w[r], bc, acc[r][c]);
    }
  }

  // y[c, i] += sum_{kk < kc} a[kk * M*P + i] * b[kk * N + c]  for c < nc, i < ni; with
  // update.assign, y[c, i] = the sum (+ bias[i] when there is a bias).
  // Not inlined: each tile is one function the compiler optimises on its own (inlined, the
  // dozen tiles made multiply() one huge function: 12 s of clang's optimiser per scalar type,
  // for no speed; a call per tile is nothing next to its kc * M * N multiply-adds).
  template <int M, int N, int KU>
  static EIGEN_DONT_INLINE void tile(const T* a, const T* b, Index kc, T* y, Index ldy, Index ni, Index nc,
                              T* spill, Update<T> update) {
    using namespace Eigen::internal;
    constexpr Index W = M * P;
    // The tile's rows of Y are written at the end: fetch them now, while the FMAs run. Y can
    // be large (the input projection of every step), and its misses would stall the stores.
    for (Index c = 0; c < nc; ++c)
      for (Index i = 0; i < ni; i += 64 / static_cast<Index>(sizeof(T)))
        prefetch<1>(y + c * ldy + i);
    Packet acc[KU][M][N];
    for (int u = 0; u < KU; ++u)
      for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c) acc[u][r][c] = pset1<Packet>(T(0));
    Index kk = 0;
    for (; kk + KU <= kc; kk += KU)
      for (int u = 0; u < KU; ++u) depth_step<M, N>(a + (kk + u) * W, b + (kk + u) * N, acc[u]);
    for (; kk < kc; ++kk) depth_step<M, N>(a + kk * W, b + kk * N, acc[0]);
    for (int u = 1; u < KU; ++u)
      for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c) acc[0][r][c] = padd(acc[0][r][c], acc[u][r][c]);
    // Every index above is a constant once the loops are unrolled, so the accumulators stay
    // in registers; the stores below keep it that way (no variable index into acc).
    if (ni == W) {
      for (int c = 0; c < N; ++c) {
        if (c < nc) {
          T* yc = y + c * ldy;
          const T* from = update.assign ? update.bias : yc;  // null: start from zero
          for (int r = 0; r < M; ++r)
            pstoreu(yc + r * P,
                    from ? padd(ploadu<Packet>(from + r * P), acc[0][r][c]) : acc[0][r][c]);
        }
      }
    } else {
      for (int c = 0; c < N; ++c)
        for (int r = 0; r < M; ++r) pstoreu(spill + c * W + r * P, acc[0][r][c]);
      for (Index c = 0; c < nc; ++c) {
        const T* from = update.assign ? update.bias : y + c * ldy;
        for (Index i = 0; i < ni; ++i) y[c * ldy + i] = (from ? from[i] : T(0)) + spill[c * W + i];
      }
    }
  }

};

}  // namespace recur::detail

#undef RECUR_IN_REGISTER
RECUR_GEMM_WARNINGS_POP
