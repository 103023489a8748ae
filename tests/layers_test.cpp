// Embedding, Linear, Dropout and cross_entropy against direct computations and central
// differences, and an end-to-end gradient check through embedding -> LSTM -> linear -> loss.
#include <functional>

#include "support.hpp"

namespace recur::test {
namespace {

Tokens tokens(Index B, Index S, Index vocab, std::mt19937_64& rng) {
  Tokens t(B, S);
  std::uniform_int_distribution<Index> u(0, vocab - 1);
  for (Index i = 0; i < t.size(); ++i) t.data()[i] = u(rng);
  return t;
}

// Central differences of f with respect to every element of v, against analytic[i].
double worst_gradient_error(double* v, Index n, const double* analytic,
                            const std::function<double()>& f) {
  double worst = 0;
  for (Index i = 0; i < n; ++i) {
    const double num = central_difference(f, v[i]);
    worst = std::max(worst, std::abs(num - analytic[i]) / std::max(1.0, std::abs(num)));
  }
  return worst;
}

TEST(Embedding, ForwardPicksRowsAndBackwardAddsIntoUsedRowsOnly) {
  Embedding<double> emb(7, 3, /*seed=*/1);
  auto w = emb.named_parameters()[0];
  EXPECT_EQ(w.name, "weight");
  EXPECT_EQ(w.shape, (std::vector<Index>{7, 3}));
  Tokens ids(2, 3);
  ids.setValues({{4, 0, 4}, {6, 2, 4}});
  auto y = emb.forward(ids);
  ASSERT_EQ(y.dimension(0), 2);
  ASSERT_EQ(y.dimension(2), 3);
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < 3; ++t)
      for (Index k = 0; k < 3; ++k) EXPECT_EQ(y(b, t, k), w.value(ids(b, t), k));
  Tensor3<double> d(2, 3, 3);
  for (Index i = 0; i < d.size(); ++i) d.data()[i] = static_cast<double>(i + 1);
  emb.zero_grad();
  emb.backward(d);
  for (Index row = 0; row < 7; ++row)
    for (Index k = 0; k < 3; ++k) {
      double expect = 0;
      for (Index b = 0; b < 2; ++b)
        for (Index t = 0; t < 3; ++t)
          if (ids(b, t) == row) expect += d(b, t, k);
      EXPECT_EQ(w.grad(row, k), expect) << "row " << row;  // rows 1, 3, 5 stay exactly 0
    }
}

TEST(Embedding, RejectsOutOfRangeIdsAndBadShapes) {
  Embedding<float> emb(5, 2);
  Tokens ids(1, 2);
  ids.setValues({{1, 5}});
  EXPECT_THROW(
      {
        try {
          emb.forward(ids);
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("id 5 at [0, 1]"), std::string::npos) << e.what();
          EXPECT_NE(std::string(e.what()).find("[0, 5)"), std::string::npos) << e.what();
          throw;
        }
      },
      std::invalid_argument);
  ids.setValues({{1, -1}});
  EXPECT_THROW(emb.forward(ids), std::invalid_argument);
  ids.setValues({{1, 2}});
  emb.forward(ids);
  EXPECT_THROW(emb.backward(Tensor3<float>(1, 3, 2)), std::invalid_argument);
  Tensor3<float> d(1, 2, 2);
  d.setZero();
  EXPECT_NO_THROW(emb.backward(d));  // the rejected call kept the caches
  EXPECT_THROW(emb.backward(d), std::logic_error);  // consumed
  EXPECT_THROW(Embedding<float>(0, 2), std::invalid_argument);
}

TEST(Linear, ForwardIsOneAffineMapPerStepAndGradientsMatchFiniteDifferences) {
  std::mt19937_64 rng(3);
  Linear<double> lin(4, 3, /*seed=*/2);
  auto params = lin.named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].name, "weight");
  EXPECT_EQ(params[0].shape, (std::vector<Index>{3, 4}));
  EXPECT_EQ(params[1].name, "bias");
  EXPECT_EQ(params[1].shape, (std::vector<Index>{3}));
  const double bound = 0.5;  // 1 / sqrt(in_features)
  for (auto& p : params) EXPECT_LE(p.value.cwiseAbs().maxCoeff(), bound);

  Tensor3<double> x = random_tensor<double>(2, 5, 4, rng), g = random_tensor<double>(2, 5, 3, rng);
  auto y = lin.forward(x);
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < 5; ++t)
      for (Index o = 0; o < 3; ++o) {
        double e = params[1].value(o, 0);
        for (Index i = 0; i < 4; ++i) e += params[0].value(o, i) * x(b, t, i);
        EXPECT_NEAR(y(b, t, o), e, 1e-14);
      }
  lin.zero_grad();
  auto dx = lin.backward(g);
  auto loss = [&] {
    lin.eval();
    const double l = dot(lin.forward(x), g);
    lin.train();
    return l;
  };
  EXPECT_LT(worst_gradient_error(x.data(), x.size(), dx.data(), loss), 1e-8);
  for (auto& p : params) {
    Matrix<double> analytic = p.grad;
    EXPECT_LT(worst_gradient_error(p.value.data(), p.value.size(), analytic.data(), loss), 1e-8)
        << p.name;
  }
  Linear<double> no_bias(4, 3, 0, /*bias=*/false);
  EXPECT_EQ(no_bias.named_parameters().size(), 1u);
  EXPECT_THROW(lin.forward(Tensor3<double>(1, 1, 5)), std::invalid_argument);
}

TEST(Dropout, InvertedSeededTrainingOnlyAndResumable) {
  Dropout<double> drop(0.25, /*seed=*/5);
  Tensor3<double> x(4, 50, 20);
  x.setConstant(2.0);
  const std::string saved = drop.rng_state();
  auto y = drop.forward(x);
  Index zeros = 0;
  for (Index i = 0; i < y.size(); ++i) {
    if (y.data()[i] == 0) ++zeros;
    else EXPECT_DOUBLE_EQ(y.data()[i], 2.0 / 0.75);
  }
  EXPECT_NEAR(static_cast<double>(zeros) / static_cast<double>(y.size()), 0.25, 0.03);
  Tensor3<double> d(4, 50, 20);
  d.setConstant(1.0);
  auto dx = drop.backward(d);
  for (Index i = 0; i < y.size(); ++i) EXPECT_EQ(dx.data()[i], y.data()[i] / 2.0);
  // Restoring the generator state draws the same mask again.
  drop.set_rng_state(saved);
  auto again = drop.forward(x);
  for (Index i = 0; i < y.size(); ++i) EXPECT_EQ(again.data()[i], y.data()[i]);
  drop.eval();
  auto id = drop.forward(x);
  for (Index i = 0; i < x.size(); ++i) EXPECT_EQ(id.data()[i], 2.0);
  EXPECT_THROW(drop.set_rng_state("not a state"), std::invalid_argument);
  EXPECT_THROW(Dropout<double>(1.5), std::invalid_argument);
}

// Direct computation: -log softmax(z)[y], averaged over the counted tokens.
double direct_cross_entropy(const Tensor3<double>& z, const Tokens& y,
                            const std::vector<Index>& lengths, Index ignore) {
  double total = 0;
  Index n = 0;
  for (Index b = 0; b < z.dimension(0); ++b)
    for (Index t = 0; t < z.dimension(1); ++t) {
      if (!lengths.empty() && t >= lengths[static_cast<std::size_t>(b)]) continue;
      if (y(b, t) == ignore) continue;
      double s = 0;
      for (Index k = 0; k < z.dimension(2); ++k) s += std::exp(z(b, t, k));
      total += -std::log(std::exp(z(b, t, y(b, t))) / s);
      ++n;
    }
  return total / static_cast<double>(n);
}

TEST(CrossEntropy, MatchesDirectComputationAndFiniteDifferences) {
  std::mt19937_64 rng(11);
  Tensor3<double> z = random_tensor<double>(3, 4, 6, rng, 2.0);
  Tokens y = tokens(3, 4, 6, rng);
  y(0, 1) = -100;  // ignored
  const std::vector<Index> lengths{4, 2, 0};
  auto r = cross_entropy(z, y, lengths);
  EXPECT_EQ(r.count, 5);
  EXPECT_NEAR(r.loss, direct_cross_entropy(z, y, lengths, -100), 1e-14);
  auto f = [&] { return cross_entropy(z, y, lengths).loss; };
  EXPECT_LT(worst_gradient_error(z.data(), z.size(), r.d_logits.data(), f), 1e-8);
  // Padded and ignored positions get exactly zero gradient.
  for (Index k = 0; k < 6; ++k) {
    EXPECT_EQ(r.d_logits(0, 1, k), 0.0);
    EXPECT_EQ(r.d_logits(1, 3, k), 0.0);
    EXPECT_EQ(r.d_logits(2, 0, k), 0.0);
  }
  // A custom ignore index, no lengths.
  y(0, 1) = 1;
  auto r2 = cross_entropy(z, y, {}, 3);
  EXPECT_NEAR(r2.loss, direct_cross_entropy(z, y, {}, 3), 1e-14);
}

TEST(CrossEntropy, IsStableForHugeLogitsAndRejectsBadTargets) {
  Tensor3<float> z(1, 2, 3);
  z.setValues({{{1000.f, 0.f, -1000.f}, {-5e4f, 5e4f, 0.f}}});
  Tokens y(1, 2);
  y.setValues({{0, 0}});
  auto r = cross_entropy(z, y);
  EXPECT_TRUE(std::isfinite(r.loss));
  EXPECT_NEAR(r.loss, (0.0 + 1e5) / 2, 1e-3);
  EXPECT_NEAR(r.d_logits(0, 1, 0), -0.5f, 1e-6);
  EXPECT_NEAR(r.d_logits(0, 1, 1), 0.5f, 1e-6);
  y.setValues({{0, 3}});
  EXPECT_THROW(
      {
        try {
          cross_entropy(z, y);
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("target 3 at [0, 1]"), std::string::npos)
              << e.what();
          throw;
        }
      },
      std::invalid_argument);
  EXPECT_THROW(cross_entropy(z, Tokens(2, 2)), std::invalid_argument);
  y.setValues({{0, 1}});
  EXPECT_THROW(cross_entropy(z, y, {3}), std::invalid_argument);
  auto none = cross_entropy(z, y, {0});
  EXPECT_EQ(none.count, 0);
  EXPECT_EQ(none.loss, 0.0);
}

// Exact for any finite logits: V equal logits give ln V however large they are (the loss was
// computed as m + log(sum) - z_y, which rounds to 0 for [1e20, 1e20]).
TEST(CrossEntropy, EqualHugeLogitsGiveLnV) {
  for (double v : {0.0, 1e20, -1e20, 3e38}) {
    Tensor3<float> zf(1, 1, 2);
    zf.setConstant(static_cast<float>(v));
    Tensor3<double> zd(1, 1, 5);
    zd.setConstant(v);
    Tokens y(1, 1);
    y.setValues({{1}});
    EXPECT_NEAR(cross_entropy(zf, y).loss, std::log(2.0), 1e-12) << v;
    EXPECT_NEAR(cross_entropy(zd, y).loss, std::log(5.0), 1e-12) << v;
    EXPECT_NEAR(cross_entropy(zd, y).d_logits(0, 0, 1), 1.0 / 5 - 1, 1e-12) << v;
  }
  Tensor3<double> z(1, 1, 2);
  z.setValues({{{1e20, 1e20 + 1e5}}});  // differ by 1e5 (representable at 1e20's scale? no: 0)
  Tokens y(1, 1);
  y.setValues({{0}});
  const double d = z(0, 0, 1) - z(0, 0, 0);
  EXPECT_NEAR(cross_entropy(z, y).loss, d + std::log1p(std::exp(-d)), 1e-9 * std::max(1.0, d));
}

// The whole language-model path: ids -> embedding -> dropout-free 2-layer LSTM -> linear ->
// cross-entropy, checked against central differences for every parameter.
TEST(EndToEnd, LanguageModelGradientsMatchFiniteDifferences) {
  std::mt19937_64 rng(21);
  const Index V = 5, E = 3, H = 4, B = 2, S = 4;
  Embedding<double> emb(V, E, 1);
  LSTM<double> lstm(opts(E, H, 2), 2);
  Linear<double> head(H, V, 3);
  auto params = gather(named("embedding", emb), named("rnn", lstm), named("head", head));
  ASSERT_EQ(params.front().name, "embedding.weight");
  EXPECT_EQ(params[1].name, "rnn.weight_ih_l0");
  EXPECT_EQ(params.back().name, "head.bias");
  EXPECT_THROW(gather(named("rnn", lstm), named("rnn", lstm)), std::invalid_argument);

  Tokens x = tokens(B, S, V, rng), y = tokens(B, S, V, rng);
  auto loss = [&] {
    emb.eval();
    lstm.eval();
    head.eval();
    const double l = cross_entropy(head.forward(lstm.forward(emb.forward(x)).output), y).loss;
    emb.train();
    lstm.train();
    head.train();
    return l;
  };
  for (auto& p : params) p.grad.setZero();
  auto r = cross_entropy(head.forward(lstm.forward(emb.forward(x)).output), y);
  emb.backward(lstm.backward(head.backward(r.d_logits)).input);
  for (auto& p : params) {
    Matrix<double> analytic = p.grad;
    EXPECT_LT(worst_gradient_error(p.value.data(), p.value.size(), analytic.data(), loss), 1e-7)
        << p.name;
  }
}

}  // namespace
}  // namespace recur::test
