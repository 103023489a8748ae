// Forward (inference) and training step (forward + backward) of each cell, through the
// PyTorch-shaped models. Counters: tokens/s (batch * time per second) and GFLOP/s, with
// FLOPs = 2 * B * T * (in + H) * G * H per layer forward, x3 for a training step.
//
// Also the bytes the layers hold (workspace_MiB) and, for training, the least backward needs
// (needed_MiB). S1-S4 (Forward/Train) are the configurations of bench/compare.py's table;
// Grid* is batch {1, 8, 32, 128} x hidden {64 ... 1024}, in float and double.
//
//   recur_bench --benchmark_filter=LSTM --benchmark_repetitions=5 --benchmark_report_aggregates_only
//   OMP_NUM_THREADS=1 recur_bench --benchmark_filter='Grid.*LSTMf'
#include <benchmark/benchmark.h>

#include <recur/recur.hpp>

namespace {

using recur::Index;

// The cell variants (RecurrentOptions), by number: the Variant benchmarks' last argument.
enum Variant { kPlain, kPeephole, kClip, kProjection, kResetBefore, kLayerNorm, kRecurrentDropout };
const char* variant_name(Index v) {
  static const char* names[] = {"plain",        "peephole",   "clip",
                                "proj_size=H/2", "reset_before", "layer_norm",
                                "recurrent_dropout=0.25"};
  return names[v];
}
void apply_variant(recur::RecurrentOptions& o, Index v) {
  if (v == kPeephole) o.peephole = true;
  if (v == kClip) o.cell_clip = 3.0;
  if (v == kProjection) o.proj_size = o.hidden_size / 2;
  if (v == kLayerNorm) o.layer_norm = recur::LayerNorm::Ba2016;
  if (v == kRecurrentDropout) o.recurrent_dropout = 0.25;  // (training only)
  if (v == kResetBefore) o.linear_before_reset = false;
}

template <class Model>
void run(benchmark::State& st, bool training, Index variant = kPlain) {
  using T = typename Model::Scalar;
  const Index B = st.range(0), S = st.range(1), I = st.range(2), H = st.range(3),
              L = st.range(4);
  recur::RecurrentOptions o;
  o.input_size = I;
  o.hidden_size = H;
  o.num_layers = L;
  apply_variant(o, variant);
  Model m(o);
  m.train(training);
  if (variant != kPlain) st.SetLabel(variant_name(variant));
  recur::Tensor3<T> x(B, S, I);
  x.setRandom();
  recur::Tensor3<T> dy(B, S, m.output_size());
  dy.setRandom();
  // One untimed step first: the layers allocate and first touch their workspace on the first
  // call (tens of MiB of page faults), which short interleaved rounds would otherwise count.
  {
    auto out = m.forward(x);
    if (training) benchmark::DoNotOptimize(m.backward(dy).input.data());
    benchmark::DoNotOptimize(out.output.data());
  }
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
  // Memory: what the layers hold (caches kept from a training forward for backward, plus
  // scratch and packed weights), against the least the math needs for backward: per layer
  // and token the gate activations, the states each step starts from and the cell's extra.
  const double cell_floats = static_cast<double>(
      Model::CellType::kGates + Model::CellType::kStates + Model::CellType::kExtra);
  st.counters["workspace_MiB"] = static_cast<double>(m.workspace_bytes()) / (1 << 20);
  if (training)
    st.counters["needed_MiB"] = static_cast<double>(L) * B * S * H * cell_floats * sizeof(T) / (1 << 20);
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

// The grid of the issue: batch x hidden, T = 50, in = H, one layer (not in compare.py's table).
void Grid(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "T", "in", "H", "L"});
  for (int batch : {1, 8, 32, 128})
    for (int hidden : {64, 128, 256, 512, 1024}) b->Args({batch, 50, hidden, hidden, 1});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
template <class Model>
void GridForward(benchmark::State& st) { run<Model>(st, false); }
template <class Model>
void GridTrain(benchmark::State& st) { run<Model>(st, true); }

// Each variant beside the plain cell at S2 (bench/variants.py runs them interleaved and prints
// the ratios): args {batch, time, input, hidden, layers, variant, training}.
template <class Model>
void Variants(benchmark::State& st) { run<Model>(st, st.range(6) != 0, st.range(5)); }
void VariantShapes(benchmark::internal::Benchmark* b, std::initializer_list<int> variants) {
  for (int training : {0, 1})
    for (int v : variants) b->Args({64, 50, 256, 256, 1, v, training});
}
BENCHMARK_TEMPLATE(Variants, recur::LSTM<float>)->Apply([](benchmark::internal::Benchmark* b) {
  VariantShapes(b, {kPlain, kPeephole, kClip, kProjection, kLayerNorm, kRecurrentDropout});
});
BENCHMARK_TEMPLATE(Variants, recur::GRU<float>)->Apply([](benchmark::internal::Benchmark* b) {
  VariantShapes(b, {kPlain, kResetBefore, kClip, kRecurrentDropout});
});
BENCHMARK_TEMPLATE(Variants, recur::RNN<float>)->Apply([](benchmark::internal::Benchmark* b) {
  VariantShapes(b, {kPlain, kClip});
});

#define RECUR_BENCH(Model)                                 \
  BENCHMARK_TEMPLATE(Forward, Model)->Apply(Shapes);       \
  BENCHMARK_TEMPLATE(Train, Model)->Apply(Shapes);
#define RECUR_GRID(Model)                                  \
  BENCHMARK_TEMPLATE(GridForward, Model)->Apply(Grid);     \
  BENCHMARK_TEMPLATE(GridTrain, Model)->Apply(Grid);

using RNNf = recur::RNN<float>;
using LSTMf = recur::LSTM<float>;
using GRUf = recur::GRU<float>;
using RNNd = recur::RNN<double>;
using LSTMd = recur::LSTM<double>;
using GRUd = recur::GRU<double>;
RECUR_BENCH(RNNf)
RECUR_BENCH(LSTMf)
RECUR_BENCH(GRUf)
RECUR_GRID(RNNf)
RECUR_GRID(LSTMf)
RECUR_GRID(GRUf)
RECUR_GRID(RNNd)
RECUR_GRID(LSTMd)
RECUR_GRID(GRUd)

BENCHMARK_MAIN();
