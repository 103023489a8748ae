// Streaming one sample at a time, RTNeural's protocol: input 1, one LSTM or GRU layer of H
// units, a Dense H -> 1 head, one call per sample (what an audio plugin does at 48 kHz).
// recur: Stream<Model> + Linear::apply; RTNeural (configured with -DRECUR_BENCH_RTNEURAL=ON,
// see bench/CMakeLists.txt): ModelT<float, 1, 1, LSTMLayerT/GRULayerT<float, 1, H>, DenseT<float, H, 1>>,
// its compile-time-sized path, with the same weights (checked: the outputs agree to 1e-5).
//
//   build/bench/stream_bench --benchmark_filter=LSTM
//
// Reported: ns per sample (real time / samples) and the counter x_realtime_48k.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include <recur/recur.hpp>

#if defined(RECUR_WITH_RTNEURAL)
#include <RTNeural.h>
#endif

namespace {

using recur::Index;
constexpr Index kSamples = 4096;  // one run: this many samples, one call each

std::vector<float> input_signal() {
  std::vector<float> x(kSamples);
  for (Index i = 0; i < kSamples; ++i)
    x[static_cast<std::size_t>(i)] = 0.5f * std::sin(0.05f * static_cast<float>(i)) +
                                    0.3f * std::sin(0.31f * static_cast<float>(i));
  return x;
}

template <class Model>
struct RecurSide {
  Model rnn;
  recur::Linear<float> head;
  recur::Stream<Model> stream;
  explicit RecurSide(Index H)
      : rnn(recur::RecurrentOptions{1, H, 1, false, 0.0}, 11), head(H, 1, 12), stream(rnn, head) {}
  float process(float x) { return stream.step(&x)(0, 0); }
};

void report(benchmark::State& state) {
  const double samples = static_cast<double>(state.iterations()) * kSamples;
  state.SetItemsProcessed(static_cast<std::int64_t>(samples));
  state.counters["ns_per_sample"] =
      benchmark::Counter(samples, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["x_realtime_48k"] = benchmark::Counter(samples / 48000.0, benchmark::Counter::kIsRate);
}

template <class Model>
void Recur(benchmark::State& state) {
  const Index H = state.range(0);
  RecurSide<Model> side(H);
  const auto x = input_signal();
  float sink = 0;
  for (auto _ : state) {
    for (float v : x) sink += side.process(v);
    benchmark::DoNotOptimize(sink);
  }
  report(state);
}

#if defined(RECUR_WITH_RTNEURAL)
// The recur model's weights, in RTNeural's layout: kernel [in][G*H] and recurrent [H][G*H]
// (transposed), Keras gate order (LSTM i f c o = PyTorch i f g o; GRU z r c = PyTorch's z, r, n
// after moving r and z), LSTM with one bias b_ih + b_hh, GRU with both.
template <bool gru, class Model, class RtModel>
void copy_weights(Model& rnn, recur::Linear<float>& head, RtModel& rt) {
  auto p = rnn.named_parameters();
  const auto& w_ih = p[0].value;
  const auto& w_hh = p[1].value;
  const auto& b_ih = p[2].value;
  const auto& b_hh = p[3].value;
  const Index GH = w_ih.rows(), H = w_hh.cols();
  auto row_of = [&](Index k) {  // RTNeural's gate row k -> PyTorch's
    if (!gru) return k;
    const Index gate = k / H, unit = k % H;
    return (gate == 0 ? 1 : gate == 1 ? 0 : 2) * H + unit;  // z <- 1, r <- 0, n <- 2
  };
  std::vector<std::vector<float>> W(1, std::vector<float>(static_cast<std::size_t>(GH))),
      U(static_cast<std::size_t>(H), std::vector<float>(static_cast<std::size_t>(GH)));
  for (Index k = 0; k < GH; ++k) {
    W[0][static_cast<std::size_t>(k)] = w_ih(row_of(k), 0);
    for (Index j = 0; j < H; ++j) U[static_cast<std::size_t>(j)][static_cast<std::size_t>(k)] = w_hh(row_of(k), j);
  }
  auto& layer = rt.template get<0>();
  layer.setWVals(W);
  layer.setUVals(U);
  if constexpr (gru) {
    std::vector<std::vector<float>> b(2, std::vector<float>(static_cast<std::size_t>(GH)));
    for (Index k = 0; k < GH; ++k) {
      b[0][static_cast<std::size_t>(k)] = b_ih(row_of(k), 0);
      b[1][static_cast<std::size_t>(k)] = b_hh(row_of(k), 0);
    }
    layer.setBVals(b);
  } else {
    std::vector<float> b(static_cast<std::size_t>(GH));
    for (Index k = 0; k < GH; ++k) b[static_cast<std::size_t>(k)] = b_ih(k, 0) + b_hh(k, 0);
    layer.setBVals(b);
  }
  auto hp = head.named_parameters();
  std::vector<std::vector<float>> dense(1, std::vector<float>(static_cast<std::size_t>(H)));
  for (Index j = 0; j < H; ++j) dense[0][static_cast<std::size_t>(j)] = hp[0].value(0, j);
  rt.template get<1>().setWeights(dense);
  const float bias = hp[1].value(0, 0);
  rt.template get<1>().setBias(&bias);
  rt.reset();
}

template <class Model, int H>
void RTNeuralModel(benchmark::State& state) {
  constexpr bool kGru = Model::CellType::kGates == 3;
  using Layer = std::conditional_t<kGru, RTNeural::GRULayerT<float, 1, H>, RTNeural::LSTMLayerT<float, 1, H>>;
  RTNeural::ModelT<float, 1, 1, Layer, RTNeural::DenseT<float, H, 1>> rt;
  RecurSide<Model> side(H);
  copy_weights<kGru>(side.rnn, side.head, rt);
  const auto x = input_signal();
  // Same weights, same outputs (the check that the comparison is fair).
  for (std::size_t i = 0; i < 256; ++i) {
    const float a = side.process(x[i]), b = rt.forward(&x[i]);
    if (!(std::abs(a - b) <= 1e-5f * std::max(1.f, std::abs(a)))) {
      state.SkipWithError("RTNeural and recur disagree: the weight mapping is wrong");
      return;
    }
  }
  rt.reset();
  float sink = 0;
  for (auto _ : state) {
    for (const float& v : x) sink += rt.forward(&v);
    benchmark::DoNotOptimize(sink);
  }
  report(state);
}
#define RECUR_RT_CASES(Model, name)                                              \
  BENCHMARK(RTNeuralModel<Model, 8>)->Name("RTNeural<" name ">/H:8");            \
  BENCHMARK(RTNeuralModel<Model, 16>)->Name("RTNeural<" name ">/H:16");          \
  BENCHMARK(RTNeuralModel<Model, 24>)->Name("RTNeural<" name ">/H:24");          \
  BENCHMARK(RTNeuralModel<Model, 32>)->Name("RTNeural<" name ">/H:32");          \
  BENCHMARK(RTNeuralModel<Model, 48>)->Name("RTNeural<" name ">/H:48");          \
  BENCHMARK(RTNeuralModel<Model, 64>)->Name("RTNeural<" name ">/H:64");
RECUR_RT_CASES(recur::LSTM<float>, "LSTM")
RECUR_RT_CASES(recur::GRU<float>, "GRU")
#endif

// The block API: an audio callback of `block` samples, one process() call.
template <class Model>
void RecurBlock(benchmark::State& state) {
  const Index H = state.range(0), block = state.range(1);
  RecurSide<Model> side(H);
  const auto x = input_signal();
  std::vector<float> y(x.size());
  for (auto _ : state) {
    for (Index t = 0; t < kSamples; t += block) side.stream.process(x.data() + t, block, y.data() + t);
    benchmark::DoNotOptimize(y.data());
  }
  report(state);
}

// What bounds a step on this core, measured in the same run: the vector FMA throughput (lane
// FMAs per ns, 12 independent accumulators of Eigen's widest float packet) and the latency of
// one dependent FMA, logistic and tanh on a packet (Eigen's packet functions, which the cells
// use). bench/stream_compare.py turns them into the floor under each row: a step of an LSTM
// does 4H(H+1) lane FMAs (GRU 3H(H+1)), and between two steps lie a matrix-vector product,
// a logistic, a tanh and a few FMAs that cannot overlap.
using Packet = Eigen::internal::packet_traits<float>::type;
constexpr int kLanes = Eigen::internal::packet_traits<float>::size;

void FmaThroughput(benchmark::State& state) {
  using namespace Eigen::internal;
  Packet acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = pset1<Packet>(0.001f * static_cast<float>(i));
  const Packet a = pset1<Packet>(0.999f), b = pset1<Packet>(1e-4f);
  constexpr int kRounds = 1024;
  for (auto _ : state) {
    for (int r = 0; r < kRounds; ++r) {
      for (int i = 0; i < 12; ++i) acc[i] = pmadd(acc[i], a, b);
    }
    benchmark::ClobberMemory();
  }
  float sink = 0;
  for (int i = 0; i < 12; ++i) sink += predux(acc[i]);
  benchmark::DoNotOptimize(sink);
  const double fmas = static_cast<double>(state.iterations()) * kRounds * 12 * kLanes;
  state.counters["lane_fma_per_ns"] = benchmark::Counter(fmas * 1e-9, benchmark::Counter::kIsRate);
}

template <int kind>  // 0: FMA, 1: logistic, 2: tanh
void ChainLatency(benchmark::State& state) {
  using namespace Eigen::internal;
  Packet x = pset1<Packet>(0.3f);
  const Packet a = pset1<Packet>(0.999f), b = pset1<Packet>(1e-4f);
  constexpr int kRounds = 1024;
  for (auto _ : state) {
    for (int r = 0; r < kRounds; ++r) {
      if constexpr (kind == 0) x = pmadd(x, a, b);
      if constexpr (kind == 1) x = Eigen::internal::scalar_logistic_op<float>().packetOp(x);
      if constexpr (kind == 2) x = ptanh(x);
    }
    benchmark::DoNotOptimize(x);
  }
  state.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(state.iterations()) * kRounds,
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(FmaThroughput)->Name("Core/fma_throughput");
BENCHMARK(ChainLatency<0>)->Name("Core/latency:fma");
BENCHMARK(ChainLatency<1>)->Name("Core/latency:logistic");
BENCHMARK(ChainLatency<2>)->Name("Core/latency:tanh");

BENCHMARK(Recur<recur::LSTM<float>>)->Name("Stream<LSTM>")->ArgName("H")->Arg(8)->Arg(16)->Arg(24)->Arg(32)->Arg(48)->Arg(64);
BENCHMARK(Recur<recur::GRU<float>>)->Name("Stream<GRU>")->ArgName("H")->Arg(8)->Arg(16)->Arg(24)->Arg(32)->Arg(48)->Arg(64);

BENCHMARK(RecurBlock<recur::LSTM<float>>)->Name("StreamBlock<LSTM>")->ArgNames({"H", "block"})->ArgsProduct({{8, 16, 24, 32, 48, 64}, {64, 512}});
BENCHMARK(RecurBlock<recur::GRU<float>>)->Name("StreamBlock<GRU>")->ArgNames({"H", "block"})->ArgsProduct({{8, 16, 24, 32, 48, 64}, {64, 512}});

}  // namespace

BENCHMARK_MAIN();
