#pragma once
// Tuning: every machine-dependent size the kernels and layers choose, in one place. The
// defaults were measured on an AMD EPYC Zen 4 (AVX-512 on 256-bit units, 32 KiB L1d and
// 1 MiB L2 per core); docs/performance.md ("Tuning a new CPU") says what each trades and
// how bench/tune.py measures it on another CPU. One kernel template serves every CPU: the
// ISA (SSE, AVX2, AVX-512, NEON) comes from the compiler's target flags through Eigen's
// packets, and the values below from these macros, so a CPU is tuned by compile definitions,
// never by a copy of the code:
//
//   cmake -DCMAKE_CXX_FLAGS="-march=native -DRECUR_GEMM_DEPTH_BLOCK=384" ...
//
// Every translation unit of a program must see the same values (they shape inline code: two
// values in one program break the one-definition rule). A value measured best for one core
// becomes its default here under the compiler's macro for it (__tune_znver4__,
// __tune_sapphirerapids__: what -march=native defines), with the measurement beside it;
// none has been yet (bench/tune.py on the Zen 4: no candidate beat these defaults).
//
//   RECUR_GEMM_TILE_ROWS        rows of X per register tile (NR): 8 with 32 vector registers
//                               (AVX-512, NEON: a 3-packet x 8-row tile is 24 accumulators),
//                               4 with 16 (SSE, AVX2: 12). 4 or 8.
//   RECUR_GEMM_DEPTH_BLOCK      depth (k) per block of the packed GEMM (kKc): 512.
//   RECUR_GEMM_X_BLOCK_BYTES    bytes of packed X per row block, kept in L2 while the weight's
//                               panels stream past it: 128 KiB.
//   RECUR_GEMM_XT_ROWS          rows of X packed at once when X comes transposed (the weight
//                               gradients read dA^T from rows G*H apart): 256.
//   RECUR_STEP_INPUT_MAX_BYTES  inference on one thread takes the input projection step by
//   RECUR_STEP_INPUT_MIN_A_BYTES  step (products.hpp, input_by_step) while the packed W_ih is
//   RECUR_STEP_INPUT_MIN_ROWS     at most MAX (4 MiB), the projection of all steps would be
//                               over MIN_A (1 MiB: it would leave L2) and a step has at least
//                               MIN_ROWS rows (8).
//   RECUR_PARALLEL_PACK_MIN     values below which a call's weight packing stays on one
//                               thread (a parallel region costs a few microseconds): 32768.
//   RECUR_UNITS_PER_THREAD      batch 1 splits the hidden units over threads, at least this
//                               many per thread (below it a step's product is too short to
//                               repay the threads meeting once per step): 64.
//   RECUR_PARALLEL_MIN_WORK     multiply-adds below which a call stays on one thread: 200000.

#include "recur/detail/eigen.hpp"
#include "recur/types.hpp"

// The compiled mode's library is built with the defaults: a unit linking it cannot change them
// (its inline kernels and the library's would differ: an ODR violation).
#if defined(RECUR_COMPILED) &&                                                              \
    (defined(RECUR_GEMM_TILE_ROWS) || defined(RECUR_GEMM_DEPTH_BLOCK) ||                     \
     defined(RECUR_GEMM_X_BLOCK_BYTES) || defined(RECUR_GEMM_XT_ROWS) ||                     \
     defined(RECUR_STEP_INPUT_MAX_BYTES) || defined(RECUR_STEP_INPUT_MIN_A_BYTES) ||         \
     defined(RECUR_STEP_INPUT_MIN_ROWS) || defined(RECUR_PARALLEL_PACK_MIN) ||               \
     defined(RECUR_UNITS_PER_THREAD) || defined(RECUR_PARALLEL_MIN_WORK))
#error "recur: a RECUR_* tuning value is set in a unit of the compiled mode (RECUR_COMPILED); the library recur::compiled uses the defaults: use recur::recur (header-only) to tune"
#endif
#ifndef RECUR_GEMM_TILE_ROWS
#define RECUR_GEMM_TILE_ROWS (EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS >= 32 ? 8 : 4)
#endif
#ifndef RECUR_GEMM_DEPTH_BLOCK
#define RECUR_GEMM_DEPTH_BLOCK 512
#endif
#ifndef RECUR_GEMM_X_BLOCK_BYTES
#define RECUR_GEMM_X_BLOCK_BYTES (128 * 1024)
#endif
#ifndef RECUR_GEMM_XT_ROWS
#define RECUR_GEMM_XT_ROWS 256
#endif
#ifndef RECUR_STEP_INPUT_MAX_BYTES
#define RECUR_STEP_INPUT_MAX_BYTES (4 << 20)
#endif
#ifndef RECUR_STEP_INPUT_MIN_A_BYTES
#define RECUR_STEP_INPUT_MIN_A_BYTES (1 << 20)
#endif
#ifndef RECUR_STEP_INPUT_MIN_ROWS
#define RECUR_STEP_INPUT_MIN_ROWS 8
#endif
#ifndef RECUR_PARALLEL_PACK_MIN
#define RECUR_PARALLEL_PACK_MIN 32768
#endif
#ifndef RECUR_UNITS_PER_THREAD
#define RECUR_UNITS_PER_THREAD 64
#endif
#ifndef RECUR_PARALLEL_MIN_WORK
#define RECUR_PARALLEL_MIN_WORK 200000
#endif

namespace recur::detail::tuning {

inline constexpr Index kTileRows = RECUR_GEMM_TILE_ROWS;
inline constexpr Index kDepthBlock = RECUR_GEMM_DEPTH_BLOCK;
inline constexpr Index kXBlockBytes = RECUR_GEMM_X_BLOCK_BYTES;
inline constexpr Index kXtRows = RECUR_GEMM_XT_ROWS;
inline constexpr Index kStepInputMaxBytes = RECUR_STEP_INPUT_MAX_BYTES;
inline constexpr Index kStepInputMinABytes = RECUR_STEP_INPUT_MIN_A_BYTES;
inline constexpr Index kStepInputMinRows = RECUR_STEP_INPUT_MIN_ROWS;
inline constexpr Index kParallelPackMin = RECUR_PARALLEL_PACK_MIN;
inline constexpr Index kUnitsPerThread = RECUR_UNITS_PER_THREAD;
inline constexpr double kParallelMinWork = RECUR_PARALLEL_MIN_WORK;

static_assert(kTileRows == 4 || kTileRows == 8, "RECUR_GEMM_TILE_ROWS must be 4 or 8");
static_assert(kDepthBlock >= 8, "RECUR_GEMM_DEPTH_BLOCK must be at least 8");
static_assert(kXBlockBytes >= 1024, "RECUR_GEMM_X_BLOCK_BYTES must be at least 1024");
static_assert(kXtRows >= 1, "RECUR_GEMM_XT_ROWS must be positive");
static_assert(kStepInputMaxBytes >= 0 && kStepInputMinABytes >= 0 && kStepInputMinRows >= 1,
              "RECUR_STEP_INPUT_*: sizes must be >= 0, rows >= 1");
static_assert(kParallelPackMin >= 0 && kParallelMinWork >= 0,
              "RECUR_PARALLEL_*: must be >= 0");
static_assert(kUnitsPerThread >= 16, "RECUR_UNITS_PER_THREAD must be at least 16 (one chunk)");

}  // namespace recur::detail::tuning
