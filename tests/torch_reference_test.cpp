// Every PyTorch reference case: forward output, final state, and every gradient (input,
// initial state, each parameter), in double (1e-10 relative) and float (1e-4).
#include <cstdio>
#include <string>

#include "support.hpp"

namespace recur::test {
namespace {

template <class Model>
void check_case(const RefCase& c, double fwd_tol, double grad_tol) {
  using T = typename Model::Scalar;
  constexpr bool kLstm = Model::kStates == 2;
  RecurrentOptions o;
  o.input_size = c.meta_int("input");
  o.hidden_size = c.meta_int("hidden");
  o.num_layers = c.meta_int("layers");
  o.bidirectional = c.meta_int("bidirectional") == 1;
  o.nonlinearity = c.meta.at("cell") == "rnn_relu" ? Nonlinearity::ReLU : Nonlinearity::Tanh;
  if (c.meta.count("proj")) o.proj_size = c.meta_int("proj");  // nn.LSTM(proj_size=...)
  if (c.meta.count("layer_norm")) {  // the generator's autograd layer-norm LSTM
    const std::string ln = c.meta.at("layer_norm");
    ASSERT_TRUE(ln == "ba2016" || ln == "tfaddons") << "layer_norm " << ln;
    o.layer_norm = ln == "ba2016" ? LayerNorm::Ba2016 : LayerNorm::TFAddons;
    o.layer_norm_eps = std::stod(c.meta.at("layer_norm_eps"));
  }
  Model m(o);
  for (auto& p : m.named_parameters()) {
    ASSERT_TRUE(c.has(p.name)) << "the reference has no parameter " << p.name;
    const RefTensor& r = c.at(p.name);
    ASSERT_EQ(r.shape, p.shape) << p.name;
    ASSERT_EQ(static_cast<Index>(r.values.size()), p.value.size()) << p.name;
    for (Index i = 0; i < p.value.size(); ++i)
      p.value.data()[i] = static_cast<T>(r.values[static_cast<std::size_t>(i)]);
  }
  std::vector<Index> lengths;
  if (c.has("lengths"))
    for (double v : c.at("lengths").values) lengths.push_back(static_cast<Index>(v));

  State<T> init;
  init.h = to_tensor3<T>(c.at("h0"));
  if constexpr (kLstm) init.c = to_tensor3<T>(c.at("c0"));
  m.zero_grad();
  worst_diff() = 0;
  auto out = m.forward(to_tensor3<T>(c.at("x")), init, lengths);
  EXPECT_TRUE(close("output", out.output.data(), c.at("output").values, fwd_tol));
  EXPECT_TRUE(close("h_n", out.state.h.data(), c.at("h_n").values, fwd_tol));
  if constexpr (kLstm) {
    EXPECT_TRUE(close("c_n", out.state.c.data(), c.at("c_n").values, fwd_tol));
  }

  State<T> d_state;
  d_state.h = to_tensor3<T>(c.at("G_h"));
  if constexpr (kLstm) d_state.c = to_tensor3<T>(c.at("G_c"));
  auto g = m.backward(to_tensor3<T>(c.at("G_out")), d_state);
  EXPECT_TRUE(close("grad_x", g.input.data(), c.at("grad_x").values, grad_tol));
  EXPECT_TRUE(close("grad_h0", g.state.h.data(), c.at("grad_h0").values, grad_tol));
  if constexpr (kLstm) {
    EXPECT_TRUE(close("grad_c0", g.state.c.data(), c.at("grad_c0").values, grad_tol));
  }
  for (auto& p : m.named_parameters())
    EXPECT_TRUE(close("grad_" + p.name, p.grad.data(), c.at("grad_" + p.name).values, grad_tol));

  std::printf("  %s (%s): max relative difference %.3g\n", c.name.c_str(),
              sizeof(T) == 8 ? "double" : "float", worst_diff());

  // Padded inputs get exactly zero gradient.
  for (std::size_t b = 0; b < lengths.size(); ++b)
    for (Index t = lengths[b]; t < g.input.dimension(1); ++t)
      for (Index f = 0; f < g.input.dimension(2); ++f)
        ASSERT_EQ(g.input(static_cast<Index>(b), t, f), T(0));
}

template <class T>
void check(const std::string& name, double fwd_tol, double grad_tol) {
  const RefCase c = read_case(name);
  const std::string cell = c.meta.at("cell");
  if (cell == "lstm")
    check_case<LSTM<T>>(c, fwd_tol, grad_tol);
  else if (cell == "gru")
    check_case<GRU<T>>(c, fwd_tol, grad_tol);
  else
    check_case<RNN<T>>(c, fwd_tol, grad_tol);
}

class TorchReference : public ::testing::TestWithParam<std::string> {};
// Without ../shared there are no shared cases: TorchReferenceData.Shared then skips, loudly.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(TorchReference);

TEST_P(TorchReference, Double) { check<double>(GetParam(), 1e-10, 1e-10); }
TEST_P(TorchReference, Float) { check<float>(GetParam(), 1e-4, 1e-4); }

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (auto& ch : s)
    if (ch == '/') ch = '_';
  return s;
}
INSTANTIATE_TEST_SUITE_P(Committed, TorchReference,
                         ::testing::ValuesIn(reference_case_names("committed")), test_name);
INSTANTIATE_TEST_SUITE_P(Shared, TorchReference,
                         ::testing::ValuesIn(reference_case_names("shared")), test_name);

// The committed cases are part of the tests: a missing one is a failure, not a skip.
TEST(TorchReferenceData, Committed) {
  EXPECT_EQ(reference_case_names("committed").size(), 53u)
      << "tests/reference/torch should hold the 53 cases make_torch_reference.py writes ("
      << committed_reference_dir() << ")";
}
TEST(TorchReferenceData, Shared) {
  if (reference_case_names("shared").empty())
    GTEST_SKIP() << "the shared PyTorch reference cases are not in " << shared_reference_dir()
                 << " (set RECUR_TESTDATA_DIR); only the committed cases ran";
  EXPECT_EQ(reference_case_names("shared").size(), 43u);
}

}  // namespace
}  // namespace recur::test
