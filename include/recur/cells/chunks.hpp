// The cells' fused gate math: the helpers the built-in cells use to run a chain of array
// statements (gates, state, output) in registers, in one pass over a row, instead of one pass
// per statement (5-15% of a forward step, measured). A cell written outside recur may use
// them too; they are not part of the cell contract (recur/cells/contract.hpp).
#pragma once

#include <type_traits>

#include "recur/types.hpp"

// Inline every call in the function (GCC, Clang). for_chunks: the chain of array statements
// runs in registers only when Eigen's functions in it are inlined too (its logistic was a
// call per chunk, its result stored and reloaded: flattened, the S2 LSTM forward took
// 0.977x the time, Zen 4). Streaming: with the sizes constants, the cell's gate math and the
// product unroll completely. Not under AddressSanitizer: there the flattened,
// instrumented functions took GCC minutes per translation unit (the code run is the same,
// only not inlined).
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RECUR_NO_FLATTEN
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define RECUR_NO_FLATTEN
#endif
#if defined(__GNUC__) && !defined(RECUR_NO_FLATTEN)
#define RECUR_FLATTEN __attribute__((flatten))
#else
#define RECUR_FLATTEN
#endif
#undef RECUR_NO_FLATTEN

namespace recur::detail {

// The first element of row b of a row view.
template <class M>
auto row_data(M&& m, Index b) {  // non-const views give writable pointers
  return m.data() + b * m.outerStride();
}

// One chunk of a row for for_chunks: at(p) is p[j, j + len) as an Eigen array of at most W
// elements whose storage is fixed (a full chunk has a compile-time size).
template <class T, int W, bool Full>
struct Chunk {
  using Array = std::conditional_t<Full, Eigen::Array<T, W, 1>,
                                   Eigen::Array<T, Eigen::Dynamic, 1, Eigen::ColMajor, W, 1>>;
  Index j, len;
  Eigen::Map<Array> operator()(T* p) const { return {p + j, len}; }
  Eigen::Map<const Array> operator()(const T* p) const { return {p + j, len}; }
};

// The cells' fused gate math: f(chunk) for consecutive chunks of [0, n), so that a chain of
// array statements (gates, state, output) runs in registers in one pass over the row instead
// of one pass per statement. Temporaries of type Chunk::Array never touch the heap.
// The tail runs as fixed chunks of 8 and 4 (half and quarter packets: Eigen vectorises a
// fixed-size chunk with the widest packet that divides it, a dynamic one only with whole
// packets, so a dynamic tail of 8 floats on AVX-512 would run the transcendental functions
// one element at a time: 2.5x slower steps at hidden sizes 8 and 24, measured).
// Narrow = false (the cell variants' passes): full chunks and one dynamic tail only. Each
// chunk width is one more instantiation of f's Eigen expressions, which were half of a
// translation unit's compile time (#32); at the hidden sizes the variants' benchmark runs,
// multiples of 16, no tail runs at all.
template <class T, bool Narrow = true, class F>
RECUR_FLATTEN void for_chunks(Index n, F&& f) {
  constexpr int W = 16;
  Index j = 0;
  for (; j + W <= n; j += W) f(Chunk<T, W, true>{j, W});
  if constexpr (Narrow) {
    if (j + 8 <= n) f(Chunk<T, 8, true>{j, 8}), j += 8;
    if (j + 4 <= n) f(Chunk<T, 4, true>{j, 4}), j += 4;
  }
  if (j < n) f(Chunk<T, W, false>{j, n - j});
}

// Cell clip (ONNX's clip) keeps, per unit and step, one value whose bit g says that gate g's
// pre-activation was clipped (so its gradient is 0): small integers, exact in float; one
// cache column for all of a cell's gates instead of one per gate.
template <class A, class X>
A clip_flag(const X& x, typename A::Scalar clip, int g) {
  using T = typename A::Scalar;
  return (x.abs() > clip).select(A::Constant(x.size(), T(1 << g)), A::Zero(x.size()));
}
// 1 where bit g of the flags is clear (gate g was not clipped), else 0.
template <class A, class F>
A kept(const F& flags, int g) {
  using T = typename A::Scalar;
  const T hi = T(2 << g), lo = T(1 << g);
  const A f = flags;
  return ((f - (f / hi).floor() * hi) < lo).template cast<T>();
}
}  // namespace recur::detail
