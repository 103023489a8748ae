// The oneDNN RNN primitive (libdnnl-dev) on the same configurations and with the same
// benchmark names as recurrent_bench.cpp, so bench/compare can put them side by side.
// Inference: weights are reordered into oneDNN's preferred (packed) layout once, outside the
// timing, as an inference engine would. Training step: forward_training + backward of every
// layer, including the per-step reorders of the (changing) weights into the layouts the
// forward and backward primitives want. Threads: OMP_NUM_THREADS (oneDNN's own runtime).
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace {

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;
using dims = memory::dims;

enum class Kind { RNN, LSTM, GRU };

memory filled(const memory::desc& md, const engine& eng, std::mt19937& rng) {
  memory m(md, eng);
  auto* p = static_cast<float*>(m.get_data_handle());
  std::uniform_real_distribution<float> u(-0.1f, 0.1f);
  for (std::size_t i = 0; i < md.get_size() / sizeof(float); ++i) p[i] = u(rng);
  return m;
}
void zero(memory& m) { std::memset(m.get_data_handle(), 0, m.get_desc().get_size()); }

struct Layer {
  memory wl_user, wi_user, bias, src, dst, wl, wi, ws;
  primitive fwd;
  std::unordered_map<int, memory> fwd_args;
  // training only
  memory bwd_wl, bwd_wi, dwl, dwi, dbias, dsrc, ddst;
  primitive bwd;
  std::unordered_map<int, memory> bwd_args;
  reorder to_fwd_wl, to_fwd_wi, to_bwd_wl, to_bwd_wi;
};

template <Kind K>
void run(benchmark::State& st, bool training) {
  const memory::dim B = st.range(0), S = st.range(1), I = st.range(2), H = st.range(3),
                    L = st.range(4);
  const memory::dim G = K == Kind::LSTM ? 4 : K == Kind::GRU ? 3 : 1;
  const memory::dim BG = K == Kind::GRU ? 4 : G;  // lbr_gru: b_hn separate, as PyTorch
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  std::mt19937 rng(1);
  const auto prop = training ? prop_kind::forward_training : prop_kind::forward_inference;
  const auto dir = rnn_direction::unidirectional_left2right;
  const memory::desc none;

  std::vector<Layer> layers(static_cast<std::size_t>(L));
  memory input = filled({{S, B, I}, dt::f32, tag::tnc}, eng, rng);
  for (memory::dim l = 0; l < L; ++l) {
    Layer& y = layers[static_cast<std::size_t>(l)];
    const memory::dim C = l == 0 ? I : H;
    const memory::desc src_md({S, B, C}, dt::f32, tag::tnc), dst_md({S, B, H}, dt::f32, tag::tnc);
    const memory::desc wl_any({1, 1, C, G, H}, dt::f32, tag::any), wi_any({1, 1, H, G, H}, dt::f32, tag::any);
    const memory::desc bias_md({1, 1, BG, H}, dt::f32, tag::ldgo);
    y.wl_user = filled({{1, 1, C, G, H}, dt::f32, tag::ldigo}, eng, rng);
    y.wi_user = filled({{1, 1, H, G, H}, dt::f32, tag::ldigo}, eng, rng);
    y.bias = filled(bias_md, eng, rng);
    y.src = l == 0 ? input : layers[static_cast<std::size_t>(l - 1)].dst;
    y.dst = memory(dst_md, eng);

    primitive_desc fwd_pd;
    if constexpr (K == Kind::LSTM) {
      lstm_forward::primitive_desc pd(lstm_forward::desc(prop, dir, src_md, none, none, wl_any, wi_any, bias_md, dst_md, none, none), eng);
      y.fwd = lstm_forward(pd);
      fwd_pd = pd;
    } else if constexpr (K == Kind::GRU) {
      lbr_gru_forward::primitive_desc pd(lbr_gru_forward::desc(prop, dir, src_md, none, wl_any, wi_any, bias_md, dst_md, none), eng);
      y.fwd = lbr_gru_forward(pd);
      fwd_pd = pd;
    } else {
      vanilla_rnn_forward::primitive_desc pd(vanilla_rnn_forward::desc(prop, algorithm::eltwise_tanh, dir, src_md, none, wl_any, wi_any, bias_md, dst_md, none), eng);
      y.fwd = vanilla_rnn_forward(pd);
      fwd_pd = pd;
    }
    y.wl = memory(fwd_pd.query_md(query::weights_md, 0), eng);
    y.wi = memory(fwd_pd.query_md(query::weights_md, 1), eng);
    y.to_fwd_wl = reorder(y.wl_user, y.wl);
    y.to_fwd_wi = reorder(y.wi_user, y.wi);
    y.to_fwd_wl.execute(s, y.wl_user, y.wl);
    y.to_fwd_wi.execute(s, y.wi_user, y.wi);
    y.fwd_args = {{DNNL_ARG_SRC_LAYER, y.src}, {DNNL_ARG_WEIGHTS_LAYER, y.wl}, {DNNL_ARG_WEIGHTS_ITER, y.wi},
                  {DNNL_ARG_BIAS, y.bias}, {DNNL_ARG_DST_LAYER, y.dst}};
    if (!training) continue;
    y.ws = memory(fwd_pd.query_md(query::workspace_md), eng);
    y.fwd_args[DNNL_ARG_WORKSPACE] = y.ws;

    const memory::desc dsrc_md({S, B, C}, dt::f32, tag::tnc), ddst_md({S, B, H}, dt::f32, tag::tnc);
    const memory::desc dwl_any({1, 1, C, G, H}, dt::f32, tag::any), dwi_any({1, 1, H, G, H}, dt::f32, tag::any);
    primitive_desc bwd_pd;
    if constexpr (K == Kind::LSTM) {
      lstm_backward::primitive_desc pd(
          lstm_backward::desc(prop_kind::backward, dir, src_md, none, none, wl_any, wi_any, bias_md, dst_md, none, none,
                              dsrc_md, none, none, dwl_any, dwi_any, bias_md, ddst_md, none, none),
          eng, lstm_forward::primitive_desc(fwd_pd.get()));
      y.bwd = lstm_backward(pd);
      bwd_pd = pd;
    } else if constexpr (K == Kind::GRU) {
      lbr_gru_backward::primitive_desc pd(
          lbr_gru_backward::desc(prop_kind::backward, dir, src_md, none, wl_any, wi_any, bias_md, dst_md, none,
                                 dsrc_md, none, dwl_any, dwi_any, bias_md, ddst_md, none),
          eng, lbr_gru_forward::primitive_desc(fwd_pd.get()));
      y.bwd = lbr_gru_backward(pd);
      bwd_pd = pd;
    } else {
      vanilla_rnn_backward::primitive_desc pd(
          vanilla_rnn_backward::desc(prop_kind::backward, algorithm::eltwise_tanh, dir, src_md, none, wl_any, wi_any,
                                     bias_md, dst_md, none, dsrc_md, none, dwl_any, dwi_any, bias_md, ddst_md, none),
          eng, vanilla_rnn_forward::primitive_desc(fwd_pd.get()));
      y.bwd = vanilla_rnn_backward(pd);
      bwd_pd = pd;
    }
    y.bwd_wl = memory(bwd_pd.query_md(query::weights_md, 0), eng);
    y.bwd_wi = memory(bwd_pd.query_md(query::weights_md, 1), eng);
    y.to_bwd_wl = reorder(y.wl_user, y.bwd_wl);
    y.to_bwd_wi = reorder(y.wi_user, y.bwd_wi);
    y.dwl = memory(bwd_pd.query_md(query::diff_weights_md, 0), eng);
    y.dwi = memory(bwd_pd.query_md(query::diff_weights_md, 1), eng);
    y.dbias = memory(bwd_pd.query_md(query::diff_weights_md, 2), eng);
    y.dsrc = memory(dsrc_md, eng);
    y.ddst = l == L - 1 ? filled(ddst_md, eng, rng) : memory();
    y.bwd_args = {{DNNL_ARG_SRC_LAYER, y.src}, {DNNL_ARG_WEIGHTS_LAYER, y.bwd_wl}, {DNNL_ARG_WEIGHTS_ITER, y.bwd_wi},
                  {DNNL_ARG_BIAS, y.bias}, {DNNL_ARG_DST_LAYER, y.dst}, {DNNL_ARG_WORKSPACE, y.ws},
                  {DNNL_ARG_DIFF_SRC_LAYER, y.dsrc}, {DNNL_ARG_DIFF_WEIGHTS_LAYER, y.dwl},
                  {DNNL_ARG_DIFF_WEIGHTS_ITER, y.dwi}, {DNNL_ARG_DIFF_BIAS, y.dbias}};
  }
  if (training)  // the d output of layer l is the d input of layer l + 1
    for (memory::dim l = 0; l < L; ++l) {
      Layer& y = layers[static_cast<std::size_t>(l)];
      y.bwd_args[DNNL_ARG_DIFF_DST_LAYER] = l == L - 1 ? y.ddst : layers[static_cast<std::size_t>(l + 1)].dsrc;
    }

  for (auto _ : st) {
    for (auto& y : layers) {
      if (training) {
        y.to_fwd_wl.execute(s, y.wl_user, y.wl);
        y.to_fwd_wi.execute(s, y.wi_user, y.wi);
      }
      y.fwd.execute(s, y.fwd_args);
    }
    if (training)
      for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
        it->to_bwd_wl.execute(s, it->wl_user, it->bwd_wl);
        it->to_bwd_wi.execute(s, it->wi_user, it->bwd_wi);
        zero(it->dwl);
        zero(it->dwi);
        zero(it->dbias);
        it->bwd.execute(s, it->bwd_args);
      }
    s.wait();
  }
  double flops = 0;
  for (memory::dim l = 0; l < L; ++l) flops += 2.0 * B * S * static_cast<double>((l == 0 ? I : H) + H) * G * H;
  if (training) flops *= 3;
  st.counters["tokens/s"] = benchmark::Counter(static_cast<double>(B * S), benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

template <Kind K>
void Forward(benchmark::State& st) { run<K>(st, false); }
template <Kind K>
void Train(benchmark::State& st) { run<K>(st, true); }

void Shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "T", "in", "H", "L"});
  b->Args({64, 50, 256, 256, 1});
  b->Args({32, 100, 512, 512, 1});
  b->Args({50, 50, 65, 512, 2});
  b->Args({1, 100, 128, 128, 1});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK_TEMPLATE(Forward, Kind::RNN)->Name("Forward<RNNf>")->Apply(Shapes);
BENCHMARK_TEMPLATE(Train, Kind::RNN)->Name("Train<RNNf>")->Apply(Shapes);
BENCHMARK_TEMPLATE(Forward, Kind::LSTM)->Name("Forward<LSTMf>")->Apply(Shapes);
BENCHMARK_TEMPLATE(Train, Kind::LSTM)->Name("Train<LSTMf>")->Apply(Shapes);
BENCHMARK_TEMPLATE(Forward, Kind::GRU)->Name("Forward<GRUf>")->Apply(Shapes);
BENCHMARK_TEMPLATE(Train, Kind::GRU)->Name("Train<GRUf>")->Apply(Shapes);

BENCHMARK_MAIN();
