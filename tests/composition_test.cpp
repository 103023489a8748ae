// Composition: bidirectional == a forward layer plus a reverse layer run by hand on the
// time-reversed input; stacking == manual chaining; dropout between layers == the layers
// chained by hand with the same mask, scaled by 1/(1-p).
#include "support.hpp"

namespace recur::test {
namespace {

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
  copy_values(pf, pb);
  copy_values(pr, pb, 4);
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
  copy_values(p0, ps);
  copy_values(p1, ps, 4);
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
  const Index B = 4, S = 6, I = 3, H = 8;
  const double p = 0.5;
  Tensor3<double> x = random_tensor<double>(B, S, I, rng);
  LSTM<double> drop(opts(I, H, 2, false, p), 1), plain(opts(I, H, 2, false, 0.0), 1);
  // The mask the model will draw for layer 1's input: the same generator, the same draws.
  std::mt19937_64 masks;
  detail::set_rng_state(masks, drop.rng_state());
  std::vector<double> mask(static_cast<std::size_t>(B * S * H));
  detail::fill_dropout_mask(mask.data(), mask.size(), p, masks);
  std::size_t zeros = 0;
  for (double m : mask) {
    EXPECT_TRUE(m == 0.0 || m == 1.0 / (1.0 - p)) << "a mask value is " << m;
    zeros += m == 0.0;
  }
  EXPECT_GT(zeros, mask.size() / 4);  // p = 0.5 of 192: far from none and from all
  EXPECT_LT(zeros, 3 * mask.size() / 4);
  auto a = drop.forward(x);
  // By hand: layer 0, the mask (scaled by 1 / (1 - p)), layer 1 -- the same parameters.
  auto pp = plain.named_parameters();
  Recurrent<LSTMCell<double>> l0(I, H), l1(H, H);
  auto q0 = l0.named_parameters(), q1 = l1.named_parameters();
  copy_values(q0, pp);
  copy_values(q1, pp, 4);
  Tensor3<double> h = l0.forward(x).output;
  for (Index i = 0; i < h.size(); ++i) h.data()[i] *= mask[static_cast<std::size_t>(i)];
  expect_equal("dropout 0.5 == layers chained by hand with the mask", a.output,
               l1.forward(h).output, 1e-12);
  auto a2 = drop.forward(x);
  EXPECT_GT(rel_diff(a.output.data(), to_doubles(a2.output).data(), a.output.size()), 1e-3)
      << "two training forwards drew the same dropout mask";
  drop.eval();
  plain.eval();
  auto c = drop.forward(x), d = plain.forward(x);
  expect_equal("eval mode ignores dropout", c.output, d.output, 1e-14);
  // A single layer has no dropout (it applies between layers only).
  LSTM<double> one(opts(I, H, 1, false, 0.9), 1), one_plain(opts(I, H, 1, false, 0.0), 1);
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
  copy_values(q, p, 4);
  Tensor3<double> zeros(2, 3, 4);
  zeros.setZero();
  expect_equal("output with dropout 1", o.output, l1.forward(zeros).output);
}

// Recurrent dropout (RecurrentOptions::recurrent_dropout): training only; one mask per
// sequence — two chunks with the state carried and the masks held equal one long run,
// forward and every gradient (truncated BPTT's chunks chained are full BPTT); new masks at
// each forward otherwise; the generators' state round-trips through rng_state.
void chunks_equal_one_run(LayerNorm ln) {
  auto o = opts(3, 5, 2, false);
  o.recurrent_dropout = 0.3;
  o.layer_norm = ln;
  std::mt19937_64 rng(12);
  const Index B = 4, S = 9, S1 = 4;
  Tensor3<double> x = random_tensor<double>(B, S, 3, rng), dy = random_tensor<double>(B, S, 5, rng);
  LSTM<double> whole(o, 3), chunked(o, 3);
  auto full = whole.forward(x);
  whole.zero_grad();
  auto g_full = whole.backward(dy);

  // Each chunk on its own copy (each backward needs its forward's caches): same weights and
  // the same generator, so the same masks as the whole run's.
  chunked.hold_recurrent_dropout_masks(true);
  LSTM<double> second = chunked;
  auto a = chunked.forward(slice_time(x, 0, S1));
  auto b = second.forward(slice_time(x, S1, S), a.state);
  EXPECT_LE(max_abs_diff(a.output, slice_time(full.output, 0, S1)), 1e-14);
  EXPECT_LE(max_abs_diff(b.output, slice_time(full.output, S1, S)), 1e-14);
  EXPECT_LE(max_abs_diff(b.state.h, full.state.h), 1e-14);
  // Backward: the second chunk, then the first with the state gradient carried.
  second.zero_grad();
  auto gb = second.backward(slice_time(dy, S1, S));
  chunked.zero_grad();
  auto ga = chunked.backward(slice_time(dy, 0, S1), gb.state);
  auto pw = whole.named_parameters(), pa = chunked.named_parameters(), pb = second.named_parameters();
  double worst = 0;
  for (std::size_t i = 0; i < pw.size(); ++i)
    for (Index k = 0; k < pw[i].grad.size(); ++k)
      worst = std::max(worst, std::abs(pw[i].grad.data()[k] - pa[i].grad.data()[k] - pb[i].grad.data()[k]));
  EXPECT_LE(worst, 1e-12);
  EXPECT_LE(max_abs_diff(ga.input, slice_time(g_full.input, 0, S1)), 1e-13);
}
// (and with the layer-norm LSTMs, whose backward leaves its own columns per step)
TEST(RecurrentDropout, ChunksWithHeldMasksEqualOneRun) {
  for (const auto ln : {LayerNorm::None, LayerNorm::Ba2016, LayerNorm::TFAddons}) {
    SCOPED_TRACE(static_cast<int>(ln));
    chunks_equal_one_run(ln);
  }
}

TEST(RecurrentDropout, TrainingOnlyNewMasksEachForwardAndStateRoundTrips) {
  auto o = opts(3, 6, 1, true);
  std::mt19937_64 rng(2);
  Tensor3<double> x = random_tensor<double>(3, 5, 3, rng);
  GRU<double> plain(o, 8);
  o.recurrent_dropout = 0.5;
  GRU<double> m(o, 8);
  m.eval();
  plain.eval();
  EXPECT_EQ(max_abs_diff(m.forward(x).output, plain.forward(x).output), 0.0);  // eval: no dropout
  m.train();
  plain.train();
  const std::string state = m.rng_state();
  EXPECT_NE(state.find('|'), std::string::npos) << "the masks' generators are in rng_state";
  auto y1 = m.forward(x).output;
  EXPECT_GT(max_abs_diff(y1, plain.forward(x).output), 1e-3);  // it drops
  auto y2 = m.forward(x).output;
  EXPECT_GT(max_abs_diff(y1, y2), 1e-3);  // new masks
  m.set_rng_state(state);
  EXPECT_EQ(max_abs_diff(m.forward(x).output, y1), 0.0);  // the same masks again
  EXPECT_THROW(m.set_rng_state(state.substr(0, state.find('|'))), std::invalid_argument);
  o.recurrent_dropout = 1.0;
  EXPECT_THROW(GRU<double> bad(o), std::invalid_argument);
}

}  // namespace
}  // namespace recur::test
