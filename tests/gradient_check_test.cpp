// Finite-difference gradient checks in double: every cell, one and several layers, both
// directions, per-sample lengths, initial states, dropout, and a cell written outside recur.
// loss = sum(output * G_out) + sum(h_n * G_h) [+ sum(c_n * G_c)]; central differences.
#include <functional>
#include <string>

#include "custom_cell.hpp"
#include "support.hpp"

namespace recur::test {
namespace {

struct Problem {
  Index batch = 3, steps = 5;
  std::vector<Index> lengths;
  bool with_initial_state = true;
};

template <class Layer>
double loss_of(Layer& m, const Tensor3<double>& x, const State<double>& init,
               const std::vector<Index>& lengths, const Tensor3<double>& g_out,
               const State<double>& g_state) {
  auto out = m.forward(x, init, lengths);
  double l = dot(out.output, g_out) + dot(out.state.h, g_state.h);
  if (g_state.c.size()) l += dot(out.state.c, g_state.c);
  return l;
}

// Checks d loss / d (every parameter, input, initial state) against central differences.
// `reset` is called before every forward (the dropout test re-seeds its masks there).
template <class Layer>
void check_gradients(Layer& m, std::vector<Parameter<double>> params, const Problem& pb,
                     std::function<void()> reset = [] {}) {
  std::mt19937_64 rng(99);
  const Index B = pb.batch, S = pb.steps, slots = m.state_slots(), H = m.state_size(0);
  const Index HC = m.state_size(Layer::kStates - 1);
  constexpr bool kTwo = Layer::kStates == 2;
  Tensor3<double> x = random_tensor<double>(B, S, m.input_size(), rng);
  State<double> init, g_state;
  if (pb.with_initial_state) {
    init.h = random_tensor<double>(slots, B, H, rng, 0.5);
    if (kTwo) init.c = random_tensor<double>(slots, B, HC, rng, 0.5);
  }
  Tensor3<double> g_out = random_tensor<double>(B, S, m.output_size(), rng);
  g_state.h = random_tensor<double>(slots, B, H, rng);
  if (kTwo) g_state.c = random_tensor<double>(slots, B, HC, rng);

  reset();
  m.zero_grad();
  m.forward(x, init, pb.lengths);
  auto g = m.backward(g_out, g_state);

  double worst = 0;
  auto numeric = [&](double& v) {
    return central_difference(
        [&] {
          reset();
          return loss_of(m, x, init, pb.lengths, g_out, g_state);
        },
        v);
  };
  auto expect_close = [&](const std::string& what, double analytic, double num) {
    const double err = std::abs(analytic - num) / std::max(1.0, std::abs(num));
    worst = std::max(worst, err);
    EXPECT_LT(err, 1e-6) << what << ": analytic " << analytic << " numeric " << num;
  };
  for (auto& p : params)
    for (Index i = 0; i < p.value.size(); ++i)
      expect_close(p.name + "[" + std::to_string(i) + "]", p.grad.data()[i],
                   numeric(p.value.data()[i]));
  for (Index i = 0; i < x.size(); ++i)
    expect_close("x[" + std::to_string(i) + "]", g.input.data()[i], numeric(x.data()[i]));
  if (pb.with_initial_state) {
    for (Index i = 0; i < init.h.size(); ++i)
      expect_close("h0[" + std::to_string(i) + "]", g.state.h.data()[i],
                   numeric(init.h.data()[i]));
    for (Index i = 0; i < init.c.size(); ++i)
      expect_close("c0[" + std::to_string(i) + "]", g.state.c.data()[i],
                   numeric(init.c.data()[i]));
  }
  std::printf("  max relative difference to finite differences: %.3g\n", worst);
}


template <class M>
void check_model(const RecurrentOptions& o, const Problem& pb) {
  M m(o, 11);
  check_gradients(m, m.named_parameters(), pb);
}

const Problem kPlain{3, 5, {}, true};
const Problem kLengths{4, 6, {6, 2, 0, 4}, true};

TEST(GradientCheck, RNNTanh) { check_model<RNN<double>>(opts(3, 4, 1, false), kPlain); }
TEST(GradientCheck, RNNReLUStackedBidirectional) {
  auto o = opts(3, 4, 2, true);
  o.nonlinearity = Nonlinearity::ReLU;
  check_model<RNN<double>>(o, kPlain);
}
TEST(GradientCheck, LSTM) { check_model<LSTM<double>>(opts(3, 4, 1, false), kPlain); }
TEST(GradientCheck, GRU) { check_model<GRU<double>>(opts(3, 4, 1, false), kPlain); }
TEST(GradientCheck, LSTMStackedBidirectional) {
  check_model<LSTM<double>>(opts(3, 3, 2, true), kPlain);
}
TEST(GradientCheck, GRUStackedBidirectional) {
  check_model<GRU<double>>(opts(3, 3, 2, true), kPlain);
}
TEST(GradientCheck, LSTMWithLengths) { check_model<LSTM<double>>(opts(2, 3, 2, true), kLengths); }
TEST(GradientCheck, GRUWithLengths) { check_model<GRU<double>>(opts(2, 3, 2, true), kLengths); }
TEST(GradientCheck, RNNWithLengths) { check_model<RNN<double>>(opts(2, 3, 2, true), kLengths); }
TEST(GradientCheck, ZeroInitialState) {
  check_model<LSTM<double>>(opts(2, 3, 1, false), Problem{2, 4, {}, false});
}

// The variants (RecurrentOptions): each through the generic layer, stacked, both directions,
// with lengths, and with batch 1 (the per-row products) and one step.
RecurrentOptions variant(Index layers, bool bi, double clip, bool peephole, bool lbr) {
  auto o = opts(3, 4, layers, bi);
  o.cell_clip = clip;
  o.peephole = peephole;
  o.linear_before_reset = lbr;
  return o;
}
const Problem kOne{1, 5, {}, true};
const Problem kOneStep{3, 1, {}, true};
TEST(GradientCheck, LSTMPeephole) {
  check_model<LSTM<double>>(variant(2, true, 0, true, true), kPlain);
  check_model<LSTM<double>>(variant(2, true, 0, true, true), kLengths);
  check_model<LSTM<double>>(variant(1, false, 0, true, true), kOne);
}
TEST(GradientCheck, LSTMClip) {
  check_model<LSTM<double>>(variant(2, true, 0.6, false, true), kPlain);
  check_model<LSTM<double>>(variant(1, true, 0.6, true, true), kLengths);
}
TEST(GradientCheck, LSTMProjection) {
  auto o = variant(2, true, 0, false, true);
  o.proj_size = 2;
  check_model<LSTM<double>>(o, kPlain);
  check_model<LSTM<double>>(o, kLengths);
  o = variant(2, false, 0.6, true, true);  // with peepholes and clip
  o.proj_size = 3;
  check_model<LSTM<double>>(o, kOne);
  check_model<LSTM<double>>(o, kOneStep);
}
// Layer norm: gains and shifts away from their initial 1 and 0 (and the layer's biases,
// which sit inside the norms), both carries, stacked, both directions, lengths, projection.
template <class M>
void check_layer_norm(const RecurrentOptions& o, const Problem& pb) {
  M m(o, 11);
  std::mt19937_64 rng(21);
  std::uniform_real_distribution<double> u(-0.5, 0.5);
  for (auto& p : m.named_parameters())
    if (p.name.rfind("ln_", 0) == 0)
      for (Index i = 0; i < p.value.size(); ++i)
        p.value.data()[i] = (p.name.find("weight") != std::string::npos ? 1.0 : 0.0) + u(rng);
  check_gradients(m, m.named_parameters(), pb);
}
TEST(GradientCheck, LSTMLayerNorm) {
  for (const auto mode : {LayerNorm::Ba2016, LayerNorm::TFAddons}) {
    auto o = variant(2, true, 0, false, true);
    o.layer_norm = mode;
    check_layer_norm<LSTM<double>>(o, kPlain);
    check_layer_norm<LSTM<double>>(o, kLengths);
    o = variant(1, false, 0, false, true);
    o.layer_norm = mode;
    o.proj_size = 2;
    check_layer_norm<LSTM<double>>(o, kOne);
    check_layer_norm<LSTM<double>>(o, kOneStep);
  }
}
TEST(GradientCheck, GRUResetBefore) {
  check_model<GRU<double>>(variant(2, true, 0, false, false), kPlain);
  check_model<GRU<double>>(variant(2, true, 0, false, false), kLengths);
  check_model<GRU<double>>(variant(1, false, 0, false, false), kOne);
  check_model<GRU<double>>(variant(1, true, 0, false, false), kOneStep);
}
TEST(GradientCheck, GRUClip) {
  check_model<GRU<double>>(variant(2, true, 0.6, false, true), kPlain);
  check_model<GRU<double>>(variant(1, true, 0.6, false, false), kLengths);
}
// The clip of the checks above clips (else they would check the plain cells again).
TEST(GradientCheck, ClipChangesTheProblemsAbove) {
  std::mt19937_64 rng(4);
  Tensor3<double> x = random_tensor<double>(3, 5, 3, rng);
  LSTM<double> lstm(variant(1, false, 0, false, true), 11), clipped(variant(1, false, 0.6, false, true), 11);
  GRU<double> gru(variant(1, false, 0, false, false), 11), gclipped(variant(1, false, 0.6, false, false), 11);
  EXPECT_GT(max_abs_diff(lstm.forward(x).output, clipped.forward(x).output), 1e-3);
  EXPECT_GT(max_abs_diff(gru.forward(x).output, gclipped.forward(x).output), 1e-3);
}
TEST(GradientCheck, RNNClip) {
  check_model<RNN<double>>(variant(2, true, 0.6, false, true), kLengths);
}

// Recurrent dropout: the masks held, so every forward of the finite differences uses the
// masks of the first.
template <class M>
void check_recurrent_dropout(RecurrentOptions o, const Problem& pb) {
  o.recurrent_dropout = 0.4;
  M m(o, 11);
  m.hold_recurrent_dropout_masks(true);
  check_gradients(m, m.named_parameters(), pb);
}
TEST(GradientCheck, RecurrentDropout) {
  check_recurrent_dropout<LSTM<double>>(variant(2, true, 0, false, true), kLengths);
  check_recurrent_dropout<GRU<double>>(variant(2, true, 0, false, true), kPlain);
  check_recurrent_dropout<GRU<double>>(variant(2, true, 0, false, false), kLengths);  // reset before
  auto o = variant(1, false, 0, true, true);
  o.proj_size = 2;
  check_recurrent_dropout<LSTM<double>>(o, kPlain);
  check_recurrent_dropout<RNN<double>>(variant(2, false, 0, false, true), kOne);
  o = variant(1, true, 0, false, true);
  o.layer_norm = LayerNorm::Ba2016;
  check_recurrent_dropout<LSTM<double>>(o, kLengths);
}

TEST(GradientCheck, DropoutBetweenLayers) {
  auto o = opts(3, 4, 3, false);
  o.dropout = 0.4;
  LSTM<double> m(o, 5);
  // A fresh model with the same seed draws the same masks: copy it back before each forward.
  const LSTM<double> pristine = m;
  auto params = m.named_parameters();
  auto reset = [&] {
    std::vector<std::vector<double>> values;
    for (auto& p : params) values.emplace_back(p.value.data(), p.value.data() + p.value.size());
    std::vector<std::vector<double>> grads;
    for (auto& p : params) grads.emplace_back(p.grad.data(), p.grad.data() + p.grad.size());
    m = pristine;
    auto fresh = m.named_parameters();
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      std::copy(values[i].begin(), values[i].end(), fresh[i].value.data());
      std::copy(grads[i].begin(), grads[i].end(), fresh[i].grad.data());
    }
    params = fresh;
  };
  check_gradients(m, params, kPlain, reset);
}

// A cell written outside recur gets the time loop, both directions, stacking, lengths and
// gradients for free.
TEST(GradientCheck, CustomCellRecurrent) {
  Recurrent<MGUCell<double>> layer(3, 4, Direction::Reverse);
  std::mt19937_64 rng(3);
  layer.reset_parameters(rng);
  check_gradients(layer, layer.named_parameters(), kLengths);
}
TEST(GradientCheck, CustomCellStackedBidirectional) {
  std::vector<Bidirectional<MGUCell<double>>> layers;
  layers.emplace_back(3, 4);
  layers.emplace_back(8, 4);
  Stack<Bidirectional<MGUCell<double>>> stack(std::move(layers));
  std::mt19937_64 rng(4);
  stack.reset_parameters(rng);
  check_gradients(stack, stack.named_parameters(), kLengths);
}

}  // namespace
}  // namespace recur::test
