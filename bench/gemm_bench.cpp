// The per-step recurrent GEMM alone: Eigen's general product (packs W_hh on every call)
// against detail::PackedWeight (W_hh packed once, only the state block packed per call;
// recur's own micro-kernel); and at batch 1, the matrix-vector product (MatVec, below).
// Shapes are per thread slices of the benchmark configurations: m = batch slice, k = H,
// n = G*H (forward, Y += X W^T) or k = G*H, n = H (backward, Y += X W).
//
//   recur_gemm_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <recur/detail/gemm.hpp>
#include <recur/detail/matvec.hpp>
#include <recur/types.hpp>

namespace {

using recur::Index;
using recur::Matrix;

template <class T>
void run(benchmark::State& st, bool packed) {
  const Index m = st.range(0), H = st.range(1), G = st.range(2);
  const bool backward = st.range(3) != 0;
  Matrix<T> w = Matrix<T>::Random(G * H, H);
  const Index k = backward ? G * H : H, n = backward ? H : G * H;
  Matrix<T> x = Matrix<T>::Random(m, k), y = Matrix<T>::Zero(m, n);
  recur::detail::PackedWeight<T> pw;
  pw.pack(w.data(), w.rows(), w.cols(),
          backward ? recur::detail::WeightOp::AsIs : recur::detail::WeightOp::Transposed);
  recur::detail::Buffer<T> work(static_cast<std::size_t>(pw.workspace_size(m)));
  {  // the packed product must agree with Eigen's
    Matrix<T> ref = backward ? Matrix<T>(x * w) : Matrix<T>(x * w.transpose());
    Matrix<T> got = Matrix<T>::Zero(m, n);
    pw.multiply(x.data(), m, k, got.data(), n, work.data());
    if ((ref - got).cwiseAbs().maxCoeff() > 1e-3 * (1 + ref.cwiseAbs().maxCoeff()))
      st.SkipWithError("packed product differs from Eigen's");
  }
  for (auto _ : st) {
    if (packed)
      pw.multiply(x.data(), m, k, y.data(), n, work.data());
    else if (backward)
      y.noalias() += x * w;
    else
      y.noalias() += x * w.transpose();
    benchmark::ClobberMemory();
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * m * n * k * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

void General(benchmark::State& st) { run<float>(st, false); }
void Packed(benchmark::State& st) { run<float>(st, true); }
void GeneralD(benchmark::State& st) { run<double>(st, false); }
void PackedD(benchmark::State& st) { run<double>(st, true); }

void Shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "H", "G", "bwd"});
  for (int bwd : {0, 1}) {
    b->Args({1, 128, 4, bwd});    // S1
    b->Args({32, 256, 4, bwd});   // S2, one of two threads
    b->Args({64, 256, 4, bwd});   // S2
    b->Args({16, 512, 4, bwd});   // S3, one of two threads
    b->Args({32, 512, 4, bwd});   // S3
    b->Args({25, 512, 4, bwd});   // S4 / char-RNN 2x512, one of two threads
    b->Args({25, 128, 4, bwd});   // char-RNN 2x128, one of two threads
    b->Args({32, 512, 3, bwd});   // S3 GRU
  }
  b->Unit(benchmark::kMicrosecond);
}

// Batch 1 (S1): a step's product is h W_hh^T, a matrix-vector product that reads all of
// W_hh (G*H x H; on two threads, a thread's G*units rows) once and does one multiply-add per
// value read, so it runs at the speed W_hh comes from L2 — the floor of every batch-1 step.
// Reported as the weight's bytes per second.
void matvec(benchmark::State& st, bool packed) {
  const Index H = st.range(0), G = st.range(1), units = st.range(2);  // W_hh's rows: G * units
  Matrix<float> w = Matrix<float>::Random(G * units, H);
  Eigen::Matrix<float, 1, Eigen::Dynamic> h = Eigen::Matrix<float, 1, Eigen::Dynamic>::Random(H);
  Eigen::Matrix<float, 1, Eigen::Dynamic> b = Eigen::Matrix<float, 1, Eigen::Dynamic>::Random(G * units);
  Eigen::Matrix<float, 1, Eigen::Dynamic> y(G * units);
  recur::detail::PackedMatVec<float> mv;  // Stream's packed form
  mv.pack(w.data(), w.rows(), H, H, b.data());
  for (auto _ : st) {
    if (packed) {
      mv.apply(h.data(), y.data());
    } else {  // as the layer's step does it (WeightProducts::by_rows)
      y = b;
      y.noalias() += h * w.transpose();
    }
    h(0) += y(0) * 1e-9f;  // the next product depends on this one, as the next step does
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.size() * sizeof(float)) * 1e-9,
                                           benchmark::Counter::kIsIterationInvariantRate);
}

void MatVec(benchmark::State& st) { matvec(st, false); }
void PackedMatVec(benchmark::State& st) { matvec(st, true); }
void MatVecShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"H", "G", "units"})
      ->Args({128, 1, 128})  // S1 RNN
      ->Args({128, 3, 128})  // S1 GRU
      ->Args({128, 4, 128})  // S1 LSTM
      ->Args({128, 3, 64})   // S1 GRU, one of two threads' units
      ->Args({128, 4, 64})   // S1 LSTM, one of two threads' units
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(MatVec)->Apply(MatVecShapes);
BENCHMARK(PackedMatVec)->Apply(MatVecShapes);
BENCHMARK(General)->Apply(Shapes);
BENCHMARK(Packed)->Apply(Shapes);
BENCHMARK(GeneralD)->Apply(Shapes);
BENCHMARK(PackedD)->Apply(Shapes);
BENCHMARK_MAIN();
