// Equivalences that hold whatever the parameters: chunked == one call (forward and truncated
// BPTT), a padded sample == the same sample alone, bidirectional == a forward layer plus a
// reverse layer run by hand on the time-reversed input, stacking == manual chaining, and
// the behaviour of dropout and eval mode.
#include "support.hpp"

namespace recur::test {
namespace {


// t-slice [t0, t1) of a [B, T, F] tensor.
template <class T>
Tensor3<T> slice_time(const Tensor3<T>& x, Index t0, Index t1) {
  Eigen::array<Index, 3> off{0, t0, 0}, ext{x.dimension(0), t1 - t0, x.dimension(2)};
  return x.slice(off, ext);
}
template <class T>
Tensor3<T> slice_batch(const Tensor3<T>& x, Index b0, Index b1) {
  Eigen::array<Index, 3> off{b0, 0, 0}, ext{b1 - b0, x.dimension(1), x.dimension(2)};
  return x.slice(off, ext);
}
template <class T>
Tensor3<T> reverse_time(const Tensor3<T>& x) {
  Eigen::array<bool, 3> rev{false, true, false};
  return x.reverse(rev);
}

void expect_equal(const std::string& what, const Tensor3<double>& a, const Tensor3<double>& b,
                  double tol = 1e-12) {
  ASSERT_EQ(a.dimensions(), b.dimensions()) << what;
  EXPECT_TRUE(close(what, a.data(), to_doubles(b), tol));
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

// Bidirectional == a forward Recurrent plus a reverse direction computed by running a
// *forward* Recurrent (the reverse weights) on the time-reversed input.
template <class Cell>
void bidirectional_by_hand() {
  std::mt19937_64 rng(4);
  const Index B = 2, S = 6, I = 3, H = 4;
  Bidirectional<Cell> bi(I, H);
  bi.reset_parameters(rng);
  Recurrent<Cell> fwd(I, H, Direction::Forward), rev_as_fwd(I, H, Direction::Forward);
  auto pb = bi.named_parameters();
  auto pf = fwd.named_parameters(), pr = rev_as_fwd.named_parameters();
  for (std::size_t i = 0; i < 4; ++i) {
    pf[i].value = pb[i].value;
    pr[i].value = pb[i + 4].value;
  }
  Tensor3<double> x = random_tensor<double>(B, S, I, rng);
  auto o = bi.forward(x);
  auto of = fwd.forward(x);
  auto orr = rev_as_fwd.forward(reverse_time(x));
  Tensor3<double> expect(B, S, 2 * H);
  expect.slice(Eigen::array<Index, 3>{0, 0, 0}, Eigen::array<Index, 3>{B, S, H}) = of.output;
  expect.slice(Eigen::array<Index, 3>{0, 0, H}, Eigen::array<Index, 3>{B, S, H}) =
      reverse_time(orr.output);
  expect_equal("bidirectional output", o.output, expect);
  Tensor3<double> hb = o.state.h.slice(Eigen::array<Index, 3>{1, 0, 0}, Eigen::array<Index, 3>{1, B, H});
  expect_equal("reverse final h", hb, orr.state.h);
}

TEST(Equivalence, BidirectionalByHandLSTM) { bidirectional_by_hand<LSTMCell<double>>(); }
TEST(Equivalence, BidirectionalByHandGRU) { bidirectional_by_hand<GRUCell<double>>(); }

TEST(Equivalence, StackEqualsManualChaining) {
  std::mt19937_64 rng(5);
  const Index B = 2, S = 5, I = 3, H = 4;
  std::vector<Recurrent<GRUCell<double>>> layers;
  layers.emplace_back(I, H);
  layers.emplace_back(H, H);
  Stack<Recurrent<GRUCell<double>>> stack(layers);
  stack.reset_parameters(rng);
  Recurrent<GRUCell<double>> l0(I, H), l1(H, H);
  auto ps = stack.named_parameters();
  auto p0 = l0.named_parameters(), p1 = l1.named_parameters();
  for (std::size_t i = 0; i < 4; ++i) {
    p0[i].value = ps[i].value;
    p1[i].value = ps[i + 4].value;
  }
  Tensor3<double> x = random_tensor<double>(B, S, I, rng);
  State<double> init{random_tensor<double>(2, B, H, rng), {}};
  State<double> i0{init.h.slice(Eigen::array<Index, 3>{0, 0, 0}, Eigen::array<Index, 3>{1, B, H}), {}};
  State<double> i1{init.h.slice(Eigen::array<Index, 3>{1, 0, 0}, Eigen::array<Index, 3>{1, B, H}), {}};
  auto o = stack.forward(x, init);
  auto o0 = l0.forward(x, i0);
  auto o1 = l1.forward(o0.output, i1);
  expect_equal("stack output", o.output, o1.output);
  Tensor3<double> h1 = o.state.h.slice(Eigen::array<Index, 3>{1, 0, 0}, Eigen::array<Index, 3>{1, B, H});
  expect_equal("layer 1 final h", h1, o1.state.h);

  // Backward chains the same way.
  Tensor3<double> g = random_tensor<double>(B, S, H, rng);
  auto gs = stack.backward(g);
  auto g1 = l1.backward(g);
  auto g0 = l0.backward(g1.input);
  expect_equal("stack d x", gs.input, g0.input);
}

TEST(Dropout, ActiveInTrainingOnlyAndScaled) {
  std::mt19937_64 rng(6);
  Tensor3<double> x = random_tensor<double>(4, 6, 3, rng);
  LSTM<double> drop(opts(3, 8, 2, false, 0.5), 1), plain(opts(3, 8, 2, false, 0.0), 1);
  auto a = drop.forward(x), b = plain.forward(x), a2 = drop.forward(x);
  EXPECT_GT(rel_diff(a.output.data(), to_doubles(b.output).data(), a.output.size()), 1e-3)
      << "dropout 0.5 in training mode changed nothing";
  EXPECT_GT(rel_diff(a.output.data(), to_doubles(a2.output).data(), a.output.size()), 1e-3)
      << "two training forwards drew the same dropout mask";
  drop.eval();
  plain.eval();
  auto c = drop.forward(x), d = plain.forward(x);
  expect_equal("eval mode ignores dropout", c.output, d.output, 1e-14);
  // A single layer has no dropout (it applies between layers only).
  LSTM<double> one(opts(3, 8, 1, false, 0.9), 1), one_plain(opts(3, 8, 1, false, 0.0), 1);
  expect_equal("one layer: no dropout", one.forward(x).output, one_plain.forward(x).output, 1e-14);
}

TEST(Dropout, ProbabilityOneZeroesTheNextLayersInput) {
  std::mt19937_64 rng(7);
  Tensor3<double> x = random_tensor<double>(2, 3, 3, rng);
  LSTM<double> m(opts(3, 4, 2, false, 1.0), 1);
  auto o = m.forward(x);
  // Layer 1 sees zeros: its output is what a zero input gives.
  LSTM<double> ref(opts(3, 4, 2, false, 0.0), 1);
  auto p = ref.named_parameters();
  Recurrent<LSTMCell<double>> l1(4, 4);
  auto q = l1.named_parameters();
  for (std::size_t i = 0; i < 4; ++i) q[i].value = p[i + 4].value;
  Tensor3<double> zeros(2, 3, 4);
  zeros.setZero();
  expect_equal("output with dropout 1", o.output, l1.forward(zeros).output);
}

TEST(Models, InitialisationIsPyTorchsUniformAndSeeded) {
  LSTM<double> a(opts(5, 16, 2, true), 123), b(opts(5, 16, 2, true), 123), c(opts(5, 16, 2, true), 124);
  auto pa = a.named_parameters(), pb = b.named_parameters(), pc = c.named_parameters();
  ASSERT_EQ(pa.size(), 16u);
  double lo = 1, hi = -1;
  bool differs = false;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].value, pb[i].value) << "same seed, same parameters";
    differs = differs || pa[i].value != pc[i].value;
    lo = std::min(lo, pa[i].value.minCoeff());
    hi = std::max(hi, pa[i].value.maxCoeff());
  }
  EXPECT_TRUE(differs);
  EXPECT_GE(lo, -0.25);  // 1/sqrt(16)
  EXPECT_LE(hi, 0.25);
  EXPECT_LT(lo, -0.2);
  EXPECT_GT(hi, 0.2);
  const std::vector<std::string> names = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                          "bias_hh_l0", "weight_ih_l0_reverse"};
  for (std::size_t i = 0; i < names.size(); ++i) EXPECT_EQ(pa[i].name, names[i]);
  EXPECT_EQ(pa[8].shape, (std::vector<Index>{64, 32}));  // weight_ih_l1: [4H, 2H]
  EXPECT_EQ(pa[15].name, "bias_hh_l1_reverse");
  EXPECT_EQ(pa[15].shape, (std::vector<Index>{64}));
}

TEST(Models, FloatMatchesDouble) {
  std::mt19937_64 rng(8);
  GRU<double> d(opts(3, 6, 2, true), 3);
  GRU<float> f(opts(3, 6, 2, true), 3);
  auto pd = d.named_parameters();
  auto pf = f.named_parameters();
  for (std::size_t i = 0; i < pd.size(); ++i) pf[i].value = pd[i].value.cast<float>();
  Tensor3<double> x = random_tensor<double>(2, 5, 3, rng);
  Tensor3<float> xf = x.cast<float>();
  auto od = d.forward(x);
  auto of = f.forward(xf);
  EXPECT_TRUE(close("float output", of.output.data(), to_doubles(od.output), 1e-5));
}

TEST(Models, WorkspaceHoldsWhatBackwardNeedsAndIsReused) {
  // workspace_bytes(): at least the caches backward needs (per layer and token: the gate
  // activations, the states each step started from, the cell's extra; both directions), the
  // same after another call of the same size (reused), larger for a larger batch.
  std::mt19937_64 rng(9);
  LSTM<double> m(opts(3, 8, 2, true), 4);
  m.train(true);
  const Index B = 5, T = 7, H = 8;
  Tensor3<double> x = random_tensor<double>(B, T, 3, rng);
  Tensor3<double> dy = random_tensor<double>(B, T, 2 * H, rng);
  m.forward(x);
  m.backward(dy);
  const std::size_t w1 = m.workspace_bytes();
  const std::size_t needed = 2 /*layers*/ * 2 /*directions*/ * B * T * H * (4 + 2 + 1) * sizeof(double);
  EXPECT_GE(w1, needed);
  m.forward(x);
  m.backward(dy);
  EXPECT_EQ(m.workspace_bytes(), w1);
  Tensor3<double> x2 = random_tensor<double>(2 * B, T, 3, rng);
  m.forward(x2);
  EXPECT_GT(m.workspace_bytes(), w1);
}

}  // namespace
}  // namespace recur::test

namespace recur::test {
namespace {

// Streaming: a model stepped one time step at a time (Stream) gives each step of a
// whole-sequence eval forward, from a given initial state, and ends in its final state.
template <class Model>
void stream_equals_whole_sequence() {
  using T = typename Model::Scalar;
  std::mt19937_64 rng(8);
  const Index B = 3, S = 7, I = 5, H = 6, L = 2;
  Model m(opts(I, H, L), 4);
  m.eval();
  Tensor3<T> x = random_tensor<T>(B, S, I, rng);
  State<T> init;
  init.h = random_tensor<T>(L, B, H, rng, 0.5);
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
      for (Index k = 0; k < H; ++k)
        worst = std::max(worst, std::abs(static_cast<double>(y(b, k) - whole.output(b, t, k))));
  }
  auto fin = stream.state();
  for (Index i = 0; i < fin.h.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(fin.h.data()[i] - whole.state.h.data()[i])));
  const double tol = std::is_same_v<T, double> ? 1e-14 : 1e-6;  // 1 ulp seen: B vs B*T-row GEMM
  EXPECT_LE(worst, tol);
  stream.reset();
  auto from_zero = m.forward(x);
  for (Index b = 0; b < B; ++b)
    for (Index i = 0; i < I; ++i) xt(b, i) = x(b, 0, i);
  auto y0 = stream.step(xt.data());
  for (Index b = 0; b < B; ++b)
    for (Index k = 0; k < H; ++k) EXPECT_NEAR(y0(b, k), from_zero.output(b, 0, k), tol);
}

TEST(Stream, EqualsWholeSequenceLSTM) { stream_equals_whole_sequence<LSTM<double>>(); }
TEST(Stream, EqualsWholeSequenceGRUFloat) { stream_equals_whole_sequence<GRU<float>>(); }
TEST(Stream, EqualsWholeSequenceRNN) { stream_equals_whole_sequence<RNN<double>>(); }

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
}

}  // namespace
}  // namespace recur::test

namespace recur::test {
namespace {

// Threads split the batch (and the weight gradients by rows), or with one sample the hidden
// units of each step: the results equal a single-threaded run's, for every cell, with
// lengths, both directions and two layers.
template <class Model>
void threads_match_one_thread(Index B, Index S, Index H, std::vector<Index> lengths) {
  if (num_threads() < 2 && !std::getenv("RECUR_REQUIRE_THREADS")) {
    set_num_threads(2);
    if (num_threads() < 2) GTEST_SKIP() << "built without OpenMP: one thread only";
  }
  const Index I = 24;
  auto run = [&](int threads) {
    set_num_threads(threads);
    Model m(opts(I, H, 2, true), 3);
    std::mt19937_64 r(5);
    Tensor3<double> x = random_tensor<double>(B, S, I, r);
    Tensor3<double> dy = random_tensor<double>(B, S, 2 * H, r);
    State<double> s0;  // a nonzero initial state, so its gradient and carry are checked too
    s0.h = random_tensor<double>(4, B, H, r);
    if (std::is_same_v<typename Model::CellType, LSTMCell<double>>) s0.c = random_tensor<double>(4, B, H, r);
    auto out = m.forward(x, s0, lengths);
    auto g = m.backward(dy);
    std::vector<double> all(out.output.data(), out.output.data() + out.output.size());
    all.insert(all.end(), g.input.data(), g.input.data() + g.input.size());
    all.insert(all.end(), out.state.h.data(), out.state.h.data() + out.state.h.size());
    all.insert(all.end(), g.state.h.data(), g.state.h.data() + g.state.h.size());
    all.insert(all.end(), g.state.c.data(), g.state.c.data() + g.state.c.size());
    for (auto& p : m.named_parameters()) all.insert(all.end(), p.grad.data(), p.grad.data() + p.grad.size());
    return all;
  };
  const auto one = run(1), two = run(2);
  set_num_threads(0);
  ASSERT_EQ(one.size(), two.size());
  EXPECT_TRUE(close("two threads vs one", two.data(), one, 1e-12));
}

const std::vector<Index> kLengths{17, 3, 0, 17, 9, 16, 1, 17, 12};
TEST(Threads, MatchOneThreadLSTM) { threads_match_one_thread<LSTM<double>>(9, 17, 40, kLengths); }
TEST(Threads, MatchOneThreadGRU) { threads_match_one_thread<GRU<double>>(9, 17, 40, kLengths); }
TEST(Threads, MatchOneThreadRNN) { threads_match_one_thread<RNN<double>>(9, 17, 40, kLengths); }
// Batch 1 (hidden units split across threads; H = 136 is not a multiple of the 16-unit
// chunks), over the whole sequence and over a shorter length.
TEST(Threads, BatchOneMatchesOneThreadLSTM) {
  threads_match_one_thread<LSTM<double>>(1, 20, 136, {20});
  threads_match_one_thread<LSTM<double>>(1, 20, 136, {13});
}
TEST(Threads, BatchOneMatchesOneThreadGRU) {
  threads_match_one_thread<GRU<double>>(1, 20, 136, {20});
  threads_match_one_thread<GRU<double>>(1, 20, 136, {13});
}
TEST(Threads, BatchOneMatchesOneThreadRNN) {
  threads_match_one_thread<RNN<double>>(1, 20, 136, {20});
  threads_match_one_thread<RNN<double>>(1, 20, 136, {13});
}

}  // namespace
}  // namespace recur::test
