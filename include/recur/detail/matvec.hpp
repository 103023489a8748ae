#pragma once
// PackedMatVec: y = b + W x for one small fixed matrix W, many times (a streaming step's
// recurrent product h W_hh^T + b_hh, batch 1).
//
// At the sizes streaming models have (hidden 8-64: W is 32 x 8 to 256 x 64) a general
// matrix-vector product spends more time dispatching on sizes, checking alignment and
// reducing dot products than multiplying. Here W is packed once in row blocks of up to MB
// SIMD packets (n rounded up to whole packets), each block contiguous, bias first:
//     block j: [b_j | W_j[:, 0] | W_j[:, 1] | ... | W_j[:, k-1]]    (each the block's width)
// and y is computed one block at a time: the block's accumulators start from the bias and
// stay in registers while, for each column kk, one broadcast of x[kk] and one fused
// multiply-add per packet run; no horizontal reduction, every load aligned, and the whole
// matrix read front to back in one stream (a 66 KB LSTM at H = 64 does not fit in L1: read
// column-major across blocks it ran 1.6x slower). Short blocks unroll the columns into
// independent accumulator sets to hide the latency of the multiply-add chain. Written with
// Eigen's packet primitives (SSE, AVX2, AVX-512, NEON).

#include <algorithm>

#include "recur/detail/eigen.hpp"
#include "recur/types.hpp"

namespace recur::detail {

template <typename T>
class PackedMatVec {
  using Packet = typename Eigen::internal::packet_traits<T>::type;
  static constexpr Index P = Eigen::internal::unpacket_traits<Packet>::size;
  using Half = typename Eigen::internal::packet_traits<T>::half;  // e.g. 8 floats under AVX-512
  static constexpr Index kHalf = Eigen::internal::unpacket_traits<Half>::size;
  // Packets per row block: with 32 vector registers 8 accumulators, 8 weight packets in
  // flight and the broadcast fit; with 16, half as many.
  static constexpr int MB = EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS >= 32 ? 8 : 4;

 public:
  /// Packs W (n x k, row-major, rows ldw apart) and the bias (n values, or null: zeros).
  void pack(const T* w, Index n, Index k, Index ldw, const T* bias) {
    n_ = n;
    k_ = k;
    np_ = padded(n);
    data_.assign(static_cast<std::size_t>(np_ * (k + 1)), T(0));
    for (Index i0 = 0; i0 < np_; i0 += MB * P) {  // block of rows [i0, i0 + width)
      const Index width = std::min(MB * P, np_ - i0);
      T* d = data_.data() + i0 * (k + 1);
      for (Index i = i0; i < std::min(n, i0 + width); ++i) {
        if (bias) d[i - i0] = bias[i];
        for (Index kk = 0; kk < k; ++kk) d[(kk + 1) * width + i - i0] = w[i * ldw + kk];
      }
    }
  }

  /// Rows rounded up to whole packets: what y must have room for.
  static constexpr Index padded(Index n) { return (n + P - 1) / P * P; }
  Index rows() const { return n_; }
  Index cols() const { return k_; }
  Index padded_rows() const { return np_; }
  std::size_t bytes() const { return sizeof(T) * data_.capacity(); }

  /// y[0, padded_rows()) = b + W x (the rows past n come out 0). x: cols() values.
  void apply(const T* x, T* y) const noexcept {
    const T* w = data_.data();
    Index i = 0;
    for (; i + MB * P <= np_; i += MB * P) block<MB>(w + i * (k_ + 1), x, y + i);
    w += i * (k_ + 1);
    switch ((np_ - i) / P) {  // the last, shorter block
      case 0: break;
      case 1: block<1>(w, x, y + i); break;
      case 2: block<2>(w, x, y + i); break;
      case 3: block<3>(w, x, y + i); break;
      case 4: block<4>(w, x, y + i); break;
      case 5: block<5>(w, x, y + i); break;
      case 6: block<6>(w, x, y + i); break;
      default: block<7>(w, x, y + i); break;
    }
  }
  /// The same for a matrix known to be N x K at compile time (rows() == N, cols() == K):
  /// every loop bound a constant, the whole product unrolled.
  template <Index N, Index K>
  EIGEN_STRONG_INLINE void apply_fixed(const T* x, T* y) const noexcept {
    constexpr Index NP = (N + P - 1) / P * P, FULL = NP / (MB * P) * (MB * P);
    const T* w = data_.data();
    for (Index i = 0; i < FULL; i += MB * P) block<MB, K>(w + i * (K + 1), x, y + i);
    if constexpr (NP > FULL) block<static_cast<int>((NP - FULL) / P), K>(w + FULL * (K + 1), x, y + FULL);
  }

  /// sum_i a[i] b[i] over n values, any alignment: for a head of a few outputs (one dot
  /// product each; the packed product would leave all lanes but one idle). Whole packets in
  /// two accumulators, then a half packet and single values: h is read where it is (copying
  /// it beside zero padding first stalled every load on the copy's stores).
  static T dot(const T* a, const T* b, Index n) noexcept {
    using namespace Eigen::internal;
    Packet s0 = pset1<Packet>(T(0)), s1 = pset1<Packet>(T(0));
    Index i = 0;
    for (; i + 2 * P <= n; i += 2 * P) {
      s0 = pmadd(ploadu<Packet>(a + i), ploadu<Packet>(b + i), s0);
      s1 = pmadd(ploadu<Packet>(a + i + P), ploadu<Packet>(b + i + P), s1);
    }
    if (i + P <= n) {
      s0 = pmadd(ploadu<Packet>(a + i), ploadu<Packet>(b + i), s0);
      i += P;
    }
    T s = predux(padd(s0, s1));
    if constexpr (kHalf < P) {
      if (i + kHalf <= n) {
        s += predux(pmul(ploadu<Half>(a + i), ploadu<Half>(b + i)));
        i += kHalf;
      }
    }
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
  }

 private:
  // M packets of y from a packed block at w (bias first, then the columns, M packets each);
  // the depth is K when K > 0 (known at compile time), else cols().
  template <int M, Index K = 0>
  EIGEN_STRONG_INLINE void block(const T* w, const T* x, T* y) const noexcept {
    // Independent chains: about 8 accumulators in flight (FMA latency x ports).
    constexpr int KU = M >= 4 ? 2 : M >= 2 ? 4 : 8;
    using namespace Eigen::internal;
    constexpr Index W = M * P;
    const Index k = K > 0 ? K : k_;
    Packet acc[KU][M];
    for (int r = 0; r < M; ++r) acc[0][r] = pload<Packet>(w + r * P);
    for (int u = 1; u < KU; ++u)
      for (int r = 0; r < M; ++r) acc[u][r] = pset1<Packet>(T(0));
    const T* col = w + W;
    const Index unrolled = k / KU * KU;
    for (Index kk = 0; kk < unrolled; kk += KU)
      for (int u = 0; u < KU; ++u) {
        const Packet xk = pset1<Packet>(x[kk + u]);
        const T* c = col + (kk + u) * W;
        for (int r = 0; r < M; ++r) acc[u][r] = pmadd(pload<Packet>(c + r * P), xk, acc[u][r]);
      }
    for (Index kk = unrolled; kk < k; ++kk) {
      const Packet xk = pset1<Packet>(x[kk]);
      const T* c = col + kk * W;
      for (int r = 0; r < M; ++r) acc[0][r] = pmadd(pload<Packet>(c + r * P), xk, acc[0][r]);
    }
    for (int u = 1; u < KU; ++u)
      for (int r = 0; r < M; ++r) acc[0][r] = padd(acc[0][r], acc[u][r]);
    for (int r = 0; r < M; ++r) pstoreu(y + r * P, acc[0][r]);
  }

  Index n_ = 0, k_ = 0, np_ = 0;
  Buffer<T> data_;
};

}  // namespace recur::detail
