// Lengths and carried state, as equivalences that hold whatever the parameters: a sequence
// cut into chunks with the state carried == one call (forward and truncated BPTT), a padded
// sample == the same sample alone, a length of 0 keeps the initial state.
#include "support.hpp"

namespace recur::test {
namespace {

// An inference forward on one thread takes the input projection step by step once A (every
// step's) would outgrow L2 (BatchSlices::input_by_step); a training forward, over all steps
// at once. Their outputs and final states agree, with lengths, two layers, both directions
// and the cells' variants. The shapes make A over 1 MiB, so that the inference does go step
// by step: all it holds (packed weights included) is then less than A of every step.
template <class Model>
void inference_equals_training(RecurrentOptions (*vary)(RecurrentOptions) = nullptr) {
  const Index B = 16, S = 64, I = 8, H = 136;  // RNN: A = 16 x 64 x 136 doubles, 1.1 MB
  std::mt19937_64 rng(4);
  Tensor3<double> x = random_tensor<double>(B, S, I, rng);
  std::vector<Index> lengths(static_cast<std::size_t>(B), S);
  lengths[1] = 0, lengths[4] = 5, lengths[9] = 1, lengths[15] = 63;
  set_num_threads(1);
  const RecurrentOptions o = vary ? vary(opts(I, H, 2, true)) : opts(I, H, 2, true);
  Model trainer(o, 9), inferrer(o, 9);
  State<double> s0;
  s0.h = random_tensor<double>(4, B, trainer.state_size(0), rng);
  if constexpr (Model::kStates == 2) s0.c = random_tensor<double>(4, B, H, rng);
  trainer.train();
  const auto trained = trainer.forward(x, s0, lengths);
  inferrer.eval();
  const auto inferred = inferrer.forward(x, s0, lengths);
  set_num_threads(0);
  expect_equal("inference output", inferred.output, trained.output);
  expect_equal("inference final h", inferred.state.h, trained.state.h);
  if constexpr (Model::kStates == 2) expect_equal("inference final c", inferred.state.c, trained.state.c);
  // Step by step, the inference keeps B rows of A per layer and direction instead of B * S:
  // with the default tuning (a build that tunes the bounds, detail/tuning.hpp, may not take
  // this shape step by step; the second layer's W_ih, 2H wide, is the larger).
  const Index GH = Model::CellType::kGates * H, bytes = sizeof(double);
  const double a_all = 4.0 * B * S * GH * bytes;
  namespace tuning = detail::tuning;
  if (B >= tuning::kStepInputMinRows && B * S * GH * bytes > tuning::kStepInputMinABytes &&
      GH * 2 * H * bytes <= tuning::kStepInputMaxBytes) {
    EXPECT_LT(static_cast<double>(inferrer.workspace_bytes()), a_all);
  }
}
TEST(Equivalence, InferenceEqualsTrainingLSTM) { inference_equals_training<LSTM<double>>(); }
TEST(Equivalence, InferenceEqualsTrainingGRU) { inference_equals_training<GRU<double>>(); }
TEST(Equivalence, InferenceEqualsTrainingRNN) { inference_equals_training<RNN<double>>(); }
TEST(Equivalence, InferenceEqualsTrainingVariants) {
  inference_equals_training<LSTM<double>>([](RecurrentOptions o) {
    o.peephole = true;
    o.cell_clip = 0.8;
    o.proj_size = 12;
    return o;
  });
  inference_equals_training<LSTM<double>>([](RecurrentOptions o) {
    o.layer_norm = LayerNorm::TFAddons;
    return o;
  });
  inference_equals_training<GRU<double>>([](RecurrentOptions o) {
    o.linear_before_reset = false;
    return o;
  });
}

template <class Model>
void chunked_equals_one_call() {
  std::mt19937_64 rng(1);
  const Index B = 3, S = 10, I = 4, H = 5;
  constexpr bool kTwo = Model::kStates == 2;
  Model full(opts(I, H, 2, false), 7);
  Tensor3<double> x = random_tensor<double>(B, S, I, rng);
  Tensor3<double> g_out = random_tensor<double>(B, S, H, rng);
  State<double> init, g_state;
  init.h = random_tensor<double>(2, B, H, rng);
  g_state.h = random_tensor<double>(2, B, H, rng);
  if (kTwo) {
    init.c = random_tensor<double>(2, B, H, rng);
    g_state.c = random_tensor<double>(2, B, H, rng);
  }
  auto one = full.forward(x, init);
  auto g_one = full.backward(g_out, g_state);

  // Three chunks [0,3) [3,7) [7,10), each run by its own copy of the model (each keeps the
  // caches of its chunk), the final state of one the initial state of the next.
  const Index cuts[] = {0, 3, 7, 10};
  std::vector<Model> parts(3, Model(opts(I, H, 2, false), 7));
  std::vector<Output<double>> outs;
  State<double> state = init;
  for (int k = 0; k < 3; ++k) {
    parts[static_cast<std::size_t>(k)].zero_grad();
    outs.push_back(parts[static_cast<std::size_t>(k)].forward(slice_time(x, cuts[k], cuts[k + 1]), state));
    state = outs.back().state;
    expect_equal("chunk output", outs.back().output, slice_time(one.output, cuts[k], cuts[k + 1]));
  }
  expect_equal("final h", state.h, one.state.h);
  if (kTwo) expect_equal("final c", state.c, one.state.c);

  // Truncated BPTT: each chunk's backward returns d loss / d its initial state, which is
  // the d final state of the chunk before. Chained, they give the full gradient.
  State<double> d = g_state;
  Tensor3<double> d_x(B, S, I);
  for (int k = 2; k >= 0; --k) {
    auto g = parts[static_cast<std::size_t>(k)].backward(slice_time(g_out, cuts[k], cuts[k + 1]), d);
    Eigen::array<Index, 3> off{0, cuts[k], 0}, ext{B, cuts[k + 1] - cuts[k], I};
    d_x.slice(off, ext) = g.input;
    d = g.state;
  }
  expect_equal("d x", d_x, g_one.input);
  expect_equal("d h0", d.h, g_one.state.h);
  if (kTwo) expect_equal("d c0", d.c, g_one.state.c);
  auto pf = full.named_parameters();
  for (std::size_t i = 0; i < pf.size(); ++i) {
    Matrix<double> sum = Matrix<double>::Zero(pf[i].grad.rows(), pf[i].grad.cols());
    for (auto& part : parts) sum += part.named_parameters()[i].grad;
    EXPECT_LT((sum - pf[i].grad).cwiseAbs().maxCoeff(), 1e-12) << pf[i].name;
  }
}

TEST(Equivalence, ChunkedEqualsOneCallLSTM) { chunked_equals_one_call<LSTM<double>>(); }
TEST(Equivalence, ChunkedEqualsOneCallGRU) { chunked_equals_one_call<GRU<double>>(); }
TEST(Equivalence, ChunkedEqualsOneCallRNN) { chunked_equals_one_call<RNN<double>>(); }

template <class Model>
void padded_sample_equals_alone() {
  std::mt19937_64 rng(2);
  const Index B = 3, S = 7, I = 3, H = 4, L = 2, D = 2;
  constexpr bool kTwo = Model::kStates == 2;
  Model m(opts(I, H, L, true), 9);
  Tensor3<double> x = random_tensor<double>(B, S, I, rng);
  const std::vector<Index> lengths = {7, 3, 5};
  State<double> init;
  init.h = random_tensor<double>(L * D, B, H, rng);
  if (kTwo) init.c = random_tensor<double>(L * D, B, H, rng);
  Tensor3<double> g_out = random_tensor<double>(B, S, D * H, rng);
  auto out = m.forward(x, init, lengths);
  auto g = m.backward(g_out);

  for (Index b = 0; b < B; ++b) {
    const Index len = lengths[static_cast<std::size_t>(b)];
    Model alone(opts(I, H, L, true), 9);
    State<double> init_b;
    init_b.h = init.h.slice(Eigen::array<Index, 3>{0, b, 0}, Eigen::array<Index, 3>{L * D, 1, H});
    if (kTwo)
      init_b.c = init.c.slice(Eigen::array<Index, 3>{0, b, 0}, Eigen::array<Index, 3>{L * D, 1, H});
    Tensor3<double> xb = slice_time(slice_batch(x, b, b + 1), 0, len);
    auto ob = alone.forward(xb, init_b);
    auto gb = alone.backward(slice_time(slice_batch(g_out, b, b + 1), 0, len));
    expect_equal("output of sample " + std::to_string(b),
                 slice_time(slice_batch(out.output, b, b + 1), 0, len), ob.output);
    Tensor3<double> hb = out.state.h.slice(Eigen::array<Index, 3>{0, b, 0},
                                           Eigen::array<Index, 3>{L * D, 1, H});
    expect_equal("final h of sample " + std::to_string(b), hb, ob.state.h);
    expect_equal("d x of sample " + std::to_string(b),
                 slice_time(slice_batch(g.input, b, b + 1), 0, len), gb.input);
    // Padded steps: output exactly zero, gradient exactly zero.
    for (Index t = len; t < S; ++t)
      for (Index f = 0; f < D * H; ++f) ASSERT_EQ(out.output(b, t, f), 0.0);
    for (Index t = len; t < S; ++t)
      for (Index f = 0; f < I; ++f) ASSERT_EQ(g.input(b, t, f), 0.0);
  }
}

TEST(Equivalence, PaddedSampleEqualsAloneLSTM) { padded_sample_equals_alone<LSTM<double>>(); }
TEST(Equivalence, PaddedSampleEqualsAloneGRU) { padded_sample_equals_alone<GRU<double>>(); }
TEST(Equivalence, PaddedSampleEqualsAloneRNN) { padded_sample_equals_alone<RNN<double>>(); }

// Padded steps reach nothing whatever they hold: NaN and infinity in the padding (input and
// the gradient of the output) give exactly the outputs, states and every gradient of zero
// padding, for both strategies (batch 3, and batch 1 where the units are split).
template <class Model>
void padding_values_never_matter(Index B) {
  using T = typename Model::Scalar;
  constexpr bool kTwo = Model::kStates == 2;
  std::mt19937_64 rng(4);
  const Index S = 6, I = 3, H = 5, L = 2, D = 2;
  Tensor3<T> x = random_tensor<T>(B, S, I, rng), dy = random_tensor<T>(B, S, D * H, rng);
  std::vector<Index> lengths = {4, 6, 0};
  lengths.resize(static_cast<std::size_t>(B));
  for (Index b = 0; b < B; ++b)
    for (Index t = lengths[static_cast<std::size_t>(b)]; t < S; ++t) {
      for (Index f = 0; f < I; ++f) x(b, t, f) = 0;
      for (Index f = 0; f < D * H; ++f) dy(b, t, f) = 0;
    }
  Tensor3<T> xp = x, dyp = dy;
  const T bad[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                   -std::numeric_limits<T>::infinity()};
  int k = 0;
  for (Index b = 0; b < B; ++b)
    for (Index t = lengths[static_cast<std::size_t>(b)]; t < S; ++t) {
      for (Index f = 0; f < I; ++f) xp(b, t, f) = bad[k++ % 3];
      for (Index f = 0; f < D * H; ++f) dyp(b, t, f) = bad[k++ % 3];
    }
  Model clean(opts(I, H, L, true), 5), dirty(opts(I, H, L, true), 5);
  State<T> d_state;
  d_state.h = random_tensor<T>(L * D, B, H, rng);
  if (kTwo) d_state.c = random_tensor<T>(L * D, B, H, rng);
  auto oc = clean.forward(x, {}, lengths);
  auto gc = clean.backward(dy, d_state);
  auto od = dirty.forward(xp, {}, lengths);
  auto gd = dirty.backward(dyp, d_state);
  auto same = [](const std::string& what, const Tensor3<T>& a, const Tensor3<T>& b) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (Index i = 0; i < a.size(); ++i) ASSERT_EQ(a.data()[i], b.data()[i]) << what << " at " << i;
  };
  same("output", oc.output, od.output);
  same("final h", oc.state.h, od.state.h);
  if (kTwo) same("final c", oc.state.c, od.state.c);
  same("d x", gc.input, gd.input);
  same("d initial h", gc.state.h, gd.state.h);
  auto pc = clean.named_parameters(), pd = dirty.named_parameters();
  for (std::size_t i = 0; i < pc.size(); ++i)
    for (Index j = 0; j < pc[i].grad.size(); ++j)
      ASSERT_EQ(pc[i].grad.data()[j], pd[i].grad.data()[j]) << pc[i].name << " at " << j;
  // And eval mode (no caches): the same outputs.
  dirty.train(false);
  same("eval output", oc.output, dirty.forward(xp, {}, lengths).output);
}

TEST(Padding, ValuesNeverMatterLSTM) {
  padding_values_never_matter<LSTM<float>>(3);
  padding_values_never_matter<LSTM<double>>(1);
}
TEST(Padding, ValuesNeverMatterGRU) {
  padding_values_never_matter<GRU<float>>(3);
  padding_values_never_matter<GRU<double>>(1);
}
TEST(Padding, ValuesNeverMatterRNN) {
  padding_values_never_matter<RNN<float>>(3);
  padding_values_never_matter<RNN<double>>(1);
}

TEST(Equivalence, LengthZeroKeepsInitialState) {
  std::mt19937_64 rng(3);
  LSTM<double> m(opts(2, 3, 2, true));
  Tensor3<double> x = random_tensor<double>(2, 4, 2, rng);
  State<double> init{random_tensor<double>(4, 2, 3, rng), random_tensor<double>(4, 2, 3, rng)};
  auto out = m.forward(x, init, {0, 4});
  for (Index s = 0; s < 4; ++s)
    for (Index h = 0; h < 3; ++h) {
      EXPECT_EQ(out.state.h(s, 0, h), init.h(s, 0, h));
      EXPECT_EQ(out.state.c(s, 0, h), init.c(s, 0, h));
    }
  for (Index t = 0; t < 4; ++t)
    for (Index f = 0; f < 6; ++f) EXPECT_EQ(out.output(0, t, f), 0.0);
}

}  // namespace
}  // namespace recur::test
