// Stream: a model stepped one time step at a time.
#include "support.hpp"

namespace recur::test {
namespace {

// Streaming: a model stepped one time step at a time (Stream) gives each step of a
// whole-sequence eval forward, from a given initial state, and ends in its final state.
// The variants (clip, peephole, GRU's reset before the product) too.
RecurrentOptions with(RecurrentOptions o, double clip, bool peephole, bool lbr, Index proj = 0,
                      LayerNorm ln = LayerNorm::None) {
  o.layer_norm = ln;
  o.proj_size = proj;
  o.cell_clip = clip;
  o.peephole = peephole;
  o.linear_before_reset = lbr;
  return o;
}

template <class Model>
void stream_equals_whole_sequence(double clip = 0, bool peephole = false, bool lbr = true,
                                  Index proj = 0, LayerNorm ln = LayerNorm::None) {
  using T = typename Model::Scalar;
  std::mt19937_64 rng(8);
  const Index B = 3, S = 7, I = 5, H = 6, L = 2, HO = proj > 0 ? proj : H;
  Model m(with(opts(I, H, L), clip, peephole, lbr, proj, ln), 4);
  m.eval();
  Tensor3<T> x = random_tensor<T>(B, S, I, rng);
  State<T> init;
  init.h = random_tensor<T>(L, B, HO, rng, 0.5);
  if (Model::kStates == 2) init.c = random_tensor<T>(L, B, H, rng, 0.5);
  auto whole = m.forward(x, init);

  Stream<Model> stream(m, B);
  stream.set_state(init);
  Matrix<T> xt(B, I);
  double worst = 0;
  for (Index t = 0; t < S; ++t) {
    for (Index b = 0; b < B; ++b)
      for (Index i = 0; i < I; ++i) xt(b, i) = x(b, t, i);
    auto y = stream.step(xt.data());
    for (Index b = 0; b < B; ++b)
      for (Index k = 0; k < HO; ++k)
        worst = std::max(worst, std::abs(static_cast<double>(y(b, k) - whole.output(b, t, k))));
  }
  auto fin = stream.state();
  for (Index i = 0; i < fin.h.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(fin.h.data()[i] - whole.state.h.data()[i])));
  for (Index i = 0; i < fin.c.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(fin.c.data()[i] - whole.state.c.data()[i])));
  // 1 ulp seen: B vs B*T-row GEMM; layer norm divides by each row's sigma, which scales that
  // (1.3e-6 seen in float, built without -march=native)
  const double tol = std::is_same_v<T, double> ? 1e-14 : (ln == LayerNorm::None ? 1e-6 : 4e-6);
  EXPECT_LE(worst, tol);
  stream.reset();
  auto from_zero = m.forward(x);
  for (Index b = 0; b < B; ++b)
    for (Index i = 0; i < I; ++i) xt(b, i) = x(b, 0, i);
  auto y0 = stream.step(xt.data());
  for (Index b = 0; b < B; ++b)
    for (Index k = 0; k < HO; ++k) EXPECT_NEAR(y0(b, k), from_zero.output(b, 0, k), tol);
}

TEST(Stream, EqualsWholeSequenceLSTM) { stream_equals_whole_sequence<LSTM<double>>(); }
TEST(Stream, EqualsWholeSequenceGRUFloat) { stream_equals_whole_sequence<GRU<float>>(); }
TEST(Stream, EqualsWholeSequenceRNN) { stream_equals_whole_sequence<RNN<double>>(); }
TEST(Stream, EqualsWholeSequenceVariants) {
  stream_equals_whole_sequence<LSTM<double>>(0.5, true);
  stream_equals_whole_sequence<LSTM<float>>(0, true);
  stream_equals_whole_sequence<GRU<double>>(0, false, false);
  stream_equals_whole_sequence<GRU<float>>(0.5, false, false);
  stream_equals_whole_sequence<RNN<double>>(0.5);
  stream_equals_whole_sequence<LSTM<double>>(0, false, true, 4);
  stream_equals_whole_sequence<LSTM<float>>(0.5, true, true, 3);
  stream_equals_whole_sequence<LSTM<double>>(0, false, true, 0, LayerNorm::Ba2016);
  stream_equals_whole_sequence<LSTM<float>>(0, false, true, 4, LayerNorm::TFAddons);
}

// process(): a block of n steps equals n step() calls and the whole-sequence forward with
// the head applied to every output, for any max_block (blocks split across calls too), for
// batch > 1 (time-major, interleaved samples) and stacked layers.
template <class Model>
void block_equals_steps_and_sequence(Index max_block, double clip = 0, bool peephole = false,
                                     bool lbr = true, Index proj = 0,
                                     LayerNorm ln = LayerNorm::None) {
  using T = typename Model::Scalar;
  std::mt19937_64 rng(21);
  const Index B = 2, S = 9, I = 3, H = 5, L = 2, O = 4;
  Model m(with(opts(I, H, L), clip, peephole, lbr, proj, ln), 6);
  m.eval();
  Linear<T> head(proj > 0 ? proj : H, O, 7);
  Tensor3<T> x = random_tensor<T>(B, S, I, rng);
  auto whole = m.forward(x);
  Tensor3<T> y = head.forward(whole.output);  // [B, S, O]

  Stream<Model> by_block(m, head, B, max_block), by_step(m, head, B, max_block);
  std::vector<T> in(static_cast<std::size_t>(S * B * I)), out(static_cast<std::size_t>(S * B * O));
  for (Index t = 0; t < S; ++t)
    for (Index b = 0; b < B; ++b)
      for (Index i = 0; i < I; ++i) in[static_cast<std::size_t>((t * B + b) * I + i)] = x(b, t, i);
  by_block.process(in.data(), 4, out.data());  // two calls: 4 + 5 steps
  by_block.process(in.data() + 4 * B * I, S - 4, out.data() + 4 * B * O);
  const double tol = std::is_same_v<T, double> ? 1e-13 : 2e-6;
  for (Index t = 0; t < S; ++t) {
    auto ys = by_step.step(in.data() + t * B * I);
    for (Index b = 0; b < B; ++b)
      for (Index o = 0; o < O; ++o) {
        const T blk = out[static_cast<std::size_t>((t * B + b) * O + o)];
        EXPECT_NEAR(blk, ys(b, o), tol) << "t=" << t << " b=" << b << " o=" << o;
        EXPECT_NEAR(blk, y(b, t, o), tol) << "t=" << t << " b=" << b << " o=" << o;
      }
  }
  auto a = by_block.state(), c = by_step.state();
  for (Index i = 0; i < a.h.size(); ++i) {
    EXPECT_NEAR(a.h.data()[i], whole.state.h.data()[i], tol);
    EXPECT_NEAR(a.h.data()[i], c.h.data()[i], tol);
  }
}

TEST(Stream, BlockEqualsStepsLSTM) { block_equals_steps_and_sequence<LSTM<double>>(256); }
TEST(Stream, BlockEqualsStepsGRUSmallBlocks) { block_equals_steps_and_sequence<GRU<double>>(2); }
TEST(Stream, BlockEqualsStepsRNNFloat) { block_equals_steps_and_sequence<RNN<float>>(3); }
TEST(Stream, BlockEqualsStepsLSTMFloat) { block_equals_steps_and_sequence<LSTM<float>>(4); }
TEST(Stream, BlockEqualsStepsVariants) {
  block_equals_steps_and_sequence<LSTM<double>>(3, 0.5, true);
  block_equals_steps_and_sequence<GRU<double>>(256, 0, false, false);
  block_equals_steps_and_sequence<GRU<float>>(4, 0.5, false, false);
  block_equals_steps_and_sequence<LSTM<double>>(4, 0, false, true, 3);
  block_equals_steps_and_sequence<LSTM<float>>(256, 0, true, true, 2);
  block_equals_steps_and_sequence<LSTM<double>>(3, 0, false, true, 0, LayerNorm::TFAddons);
  block_equals_steps_and_sequence<LSTM<float>>(256, 0, false, true, 2, LayerNorm::Ba2016);
}

// The streaming kernels at the sizes they specialise: hidden sizes around the SIMD widths
// (the packed product's blocks and tails, the cells' chunks of 16, 8 and 4), a head of one
// output (dot products) and of many (the packed product), input 1 as in audio.
TEST(Stream, EveryHiddenSizeAgreesWithTheSequenceForward) {
  std::mt19937_64 rng(5);
  for (Index H : {1, 3, 4, 7, 8, 12, 16, 17, 24, 31, 33, 48, 64, 65})
    for (Index O : {1, 20}) {
      GRU<float> gru(with(opts(1, H), 0, false, H % 2 == 0), static_cast<std::uint64_t>(H));
      gru.eval();
      Linear<float> head(H, O, 3);
      Tensor3<float> x = random_tensor<float>(1, 12, 1, rng);
      Tensor3<float> y = head.forward(gru.forward(x).output);
      Stream<GRU<float>> s(gru, head);
      std::vector<float> out(static_cast<std::size_t>(12 * O));
      s.process(x.data(), 12, out.data());
      for (Index t = 0; t < 12; ++t)
        for (Index o = 0; o < O; ++o)
          ASSERT_NEAR(out[static_cast<std::size_t>(t * O + o)], y(0, t, o), 2e-6) << "H=" << H << " O=" << O;
      LSTM<float> lstm(with(opts(1, H), 0, H % 3 == 0, true), static_cast<std::uint64_t>(H));
      lstm.eval();
      Tensor3<float> yl = head.forward(lstm.forward(x).output);
      Stream<LSTM<float>> sl(lstm, head);
      for (Index t = 0; t < 12; ++t) {
        auto v = sl.step(x.data() + t);
        for (Index o = 0; o < O; ++o) ASSERT_NEAR(v(0, o), yl(0, t, o), 2e-6) << "H=" << H << " O=" << O;
      }
    }
}

// The stream owns a copy of the weights: training the model further changes nothing until
// reload(); save_state/restore_state replay a stretch exactly; reset() is a fresh start.
TEST(Stream, WeightsAreCopiedStateSavedAndRestored) {
  std::mt19937_64 rng(9);
  LSTM<float> m(opts(2, 6), 3);
  m.eval();
  Stream<LSTM<float>> s(m, 1);
  Tensor3<float> x = random_tensor<float>(1, 5, 2, rng);
  std::vector<float> saved(static_cast<std::size_t>(s.state_size()));
  s.step(x.data());
  s.save_state(saved.data());
  std::vector<float> first, second;
  for (Index t = 1; t < 5; ++t) first.push_back(s.step(x.data() + 2 * t)(0, 0));
  s.restore_state(saved.data());
  for (Index t = 1; t < 5; ++t) second.push_back(s.step(x.data() + 2 * t)(0, 0));
  EXPECT_EQ(first, second);

  const float before = (s.reset(), s.step(x.data())(0, 0));
  for (auto& p : m.named_parameters()) p.value.array() += 0.25f;
  EXPECT_EQ((s.reset(), s.step(x.data())(0, 0)), before) << "the stream must not see the model change";
  s.reload(m);
  s.reset();
  const float after = s.step(x.data())(0, 0);
  EXPECT_NEAR(after, m.forward(slice_time(x, 0, 1)).output(0, 0, 0), 1e-6);
  EXPECT_NE(after, before);
  LSTM<float> other(opts(2, 7), 3);
  EXPECT_THROW(s.reload(other), std::invalid_argument);
}

// Real-time calls promise not to throw.
static_assert(noexcept(std::declval<Stream<LSTM<float>>&>().step(static_cast<const float*>(nullptr))));
static_assert(noexcept(std::declval<Stream<GRU<float>>&>().process(nullptr, 0, nullptr)));
static_assert(noexcept(std::declval<Stream<GRU<float>>&>().reset()));
static_assert(noexcept(std::declval<Stream<GRU<float>>&>().save_state(nullptr)));
static_assert(noexcept(std::declval<Stream<GRU<float>>&>().restore_state(nullptr)));

// One Recurrent layer and a Stack stream like the models.
TEST(Stream, LayersAndStacksStream) {
  std::mt19937_64 rng(4);
  Recurrent<GRUCell<double>> layer(3, 4);
  std::mt19937_64 init(2);
  layer.reset_parameters(init);
  layer.eval();
  Tensor3<double> x = random_tensor<double>(1, 6, 3, rng);
  auto whole = layer.forward(x);
  Stream<Recurrent<GRUCell<double>>> s(layer);
  for (Index t = 0; t < 6; ++t) {
    auto h = s.step(x.data() + 3 * t);
    for (Index k = 0; k < 4; ++k) EXPECT_NEAR(h(0, k), whole.output(0, t, k), 1e-14);
  }
  Recurrent<GRUCell<double>> reverse(3, 4, Direction::Reverse);
  EXPECT_THROW(Stream<Recurrent<GRUCell<double>>>{reverse}, std::invalid_argument);
}

TEST(Stream, RejectsBidirectionalModelsAndBadShapes) {
  LSTM<double> bi(opts(3, 4, 1, true));
  EXPECT_THROW(Stream<LSTM<double>>(bi, 1), std::invalid_argument);
  LSTM<double> uni(opts(3, 4, 2));
  Stream<LSTM<double>> s(uni, 2);
  Matrix<double> x(2, 4);
  EXPECT_THROW(s.step(ConstRows<double>(x.data(), 2, 4, Eigen::OuterStride<>(4))),
               std::invalid_argument);
  State<double> bad;
  bad.h.resize(2, 3, 4);
  EXPECT_THROW(s.set_state(bad), std::invalid_argument);
  EXPECT_THROW(Stream<LSTM<double>>(uni, 0), std::invalid_argument);
  EXPECT_THROW(Stream<LSTM<double>>(uni, 1, 0), std::invalid_argument);
  Linear<double> head(5, 1);
  EXPECT_THROW(Stream<LSTM<double>>(uni, head), std::invalid_argument);
}

}  // namespace
}  // namespace recur::test
