// The PyTorch-shaped models: initialisation, float against double, the workspace.
#include "support.hpp"

namespace recur::test {
namespace {

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
