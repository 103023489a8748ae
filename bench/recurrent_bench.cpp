// Forward (inference) and training step (forward + backward) of each cell, through the
// PyTorch-shaped models. Counters: tokens/s (batch * time per second) and GFLOP/s, with
// FLOPs = 2 * B * T * (in + H) * G * H per layer forward, x3 for a training step.
//
//   recur_bench --benchmark_filter=LSTM --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <recur/recur.hpp>

namespace {

using recur::Index;

template <class Model>
void run(benchmark::State& st, bool training) {
  using T = typename Model::Scalar;
  const Index B = st.range(0), S = st.range(1), I = st.range(2), H = st.range(3),
              L = st.range(4);
  recur::RecurrentOptions o;
  o.input_size = I;
  o.hidden_size = H;
  o.num_layers = L;
  Model m(o);
  m.train(training);
  recur::Tensor3<T> x(B, S, I);
  x.setRandom();
  recur::Tensor3<T> dy(B, S, H);
  dy.setRandom();
  for (auto _ : st) {
    auto out = m.forward(x);
    if (training) {
      auto g = m.backward(dy);
      benchmark::DoNotOptimize(g.input.data());
    }
    benchmark::DoNotOptimize(out.output.data());
  }
  constexpr double G = static_cast<double>(Model::CellType::kGates);
  double flops = 0;
  for (Index l = 0; l < L; ++l)
    flops += 2.0 * B * S * static_cast<double>((l == 0 ? I : H) + H) * G * H;
  if (training) flops *= 3;
  st.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(B * S), benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

template <class Model>
void Forward(benchmark::State& st) { run<Model>(st, false); }
template <class Model>
void Train(benchmark::State& st) { run<Model>(st, true); }

void Shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "T", "in", "H", "L"});
  b->Args({64, 50, 256, 256, 1});    // S2
  b->Args({32, 100, 512, 512, 1});   // S3
  b->Args({50, 50, 65, 512, 2});     // S4 (char-RNN size)
  b->Args({1, 100, 128, 128, 1});    // S1 (streaming latency)
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

#define RECUR_BENCH(Model)                                 \
  BENCHMARK_TEMPLATE(Forward, Model)->Apply(Shapes);       \
  BENCHMARK_TEMPLATE(Train, Model)->Apply(Shapes);

using RNNf = recur::RNN<float>;
using LSTMf = recur::LSTM<float>;
using GRUf = recur::GRU<float>;
RECUR_BENCH(RNNf)
RECUR_BENCH(LSTMf)
RECUR_BENCH(GRUf)

BENCHMARK_MAIN();
