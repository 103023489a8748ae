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

}  // namespace
}  // namespace recur::test
