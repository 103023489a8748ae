// Stream: a model stepped one time step at a time.
#include "support.hpp"

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
