// recur::onnx export: a recur model written as ONNX passes ONNX's checker (libonnx) and
// re-imports (recur::onnx::Graph) to the model's own outputs, every variant ONNX can express;
// what it cannot express is rejected. (Import is tested against ONNX's conformance cases,
// ours and torch.onnx exports: tests/CMakeLists.txt, `recur_onnx check`.)
#include <onnx/checker.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "recur/models.hpp"
#include "recur/onnx.hpp"
#include "support.hpp"

namespace recur::test {
namespace {

template <class T>
onnx::Tensor<T> to_onnx_tensor(const Tensor3<T>& t) {
  onnx::Tensor<T> o;
  o.shape = {t.dimension(0), t.dimension(1), t.dimension(2)};
  o.values.assign(t.data(), t.data() + t.size());
  return o;
}

template <class Model>
void round_trip(RecurrentOptions o, bool initial_state, double tol) {
  using T = typename Model::Scalar;
  Model m(o, 17);
  m.eval();
  std::mt19937_64 rng(3);
  const Index B = 3, S = 6, D = o.bidirectional ? 2 : 1, slots = o.num_layers * D;
  Tensor3<T> x = random_tensor<T>(B, S, o.input_size, rng);
  State<T> init;
  if (initial_state) {
    init.h = random_tensor<T>(slots, B, o.hidden_size, rng, 0.5);
    if (Model::kStates == 2) init.c = random_tensor<T>(slots, B, o.hidden_size, rng, 0.5);
  }
  auto want = m.forward(x, init);

  onnx::ExportOptions eo;
  eo.initial_state = initial_state;
  const ::onnx::ModelProto model = onnx::to_onnx(m, eo);
  ASSERT_NO_THROW(::onnx::checker::check_model(model));
  // One file per test and process: ctest runs the tests of this binary in parallel.
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const auto path = std::filesystem::temp_directory_path() /
                    ("recur_onnx_test_" + std::to_string(::getpid()) + "_" + info->name() + ".onnx");
  onnx::save_model(model, path.string());
  const onnx::Graph<T> g(onnx::read_model(path.string()));
  std::filesystem::remove(path);
  std::map<std::string, onnx::Tensor<T>> in{{"x", to_onnx_tensor(x)}};
  if (initial_state) {
    in["h0"] = to_onnx_tensor(init.h);
    if (Model::kStates == 2) in["c0"] = to_onnx_tensor(init.c);
  }
  const auto got = g.run(in);
  auto diff = [](const onnx::Tensor<T>& a, const Tensor3<T>& b) {
    EXPECT_EQ(a.shape, (std::vector<Index>{b.dimension(0), b.dimension(1), b.dimension(2)}));
    double d = 0;
    for (Index i = 0; i < b.size(); ++i)
      d = std::max(d, std::abs(static_cast<double>(a.values[static_cast<std::size_t>(i)] - b.data()[i])));
    return d;
  };
  const double dy = diff(got.at("y"), want.output), dh = diff(got.at("h_n"), want.state.h);
  const double dc = Model::kStates == 2 ? diff(got.at("c_n"), want.state.c) : 0.0;
  std::printf("  max |diff| y %.3g h_n %.3g c_n %.3g\n", dy, dh, dc);
  EXPECT_LE(std::max({dy, dh, dc}), tol);
}

RecurrentOptions base(Index layers, bool bi) {
  auto o = opts(4, 5, layers, bi);
  return o;
}

TEST(OnnxExport, LSTM) {
  round_trip<LSTM<double>>(base(2, true), true, 1e-12);
  round_trip<LSTM<float>>(base(1, false), false, 1e-5);
  auto o = base(2, true);
  o.peephole = true;
  o.cell_clip = 0.75;  // (ONNX stores clip as a float: a value exact in float round-trips exactly)
  round_trip<LSTM<double>>(o, true, 1e-12);
}
TEST(OnnxExport, GRUBothForms) {
  auto o = base(2, true);
  round_trip<GRU<double>>(o, true, 1e-12);
  o.linear_before_reset = false;
  o.cell_clip = 0.625;
  round_trip<GRU<double>>(o, false, 1e-12);
}
TEST(OnnxExport, RNN) {
  auto o = base(3, false);
  o.nonlinearity = Nonlinearity::ReLU;
  round_trip<RNN<double>>(o, true, 1e-12);
  round_trip<RNN<float>>(base(1, true), false, 1e-5);
}
TEST(OnnxExport, RejectsWhatOnnxCannotExpress) {
  auto o = base(1, false);
  o.proj_size = 2;
  LSTM<float> m(o);
  expect_throw<std::invalid_argument>([&] { onnx::to_onnx(m); }, {"proj_size = 2"});
  o.proj_size = 0;
  o.layer_norm = LayerNorm::TFAddons;
  LSTM<float> ln(o);
  expect_throw<std::invalid_argument>([&] { onnx::to_onnx(ln); }, {"layer-norm"});
}

}  // namespace
}  // namespace recur::test
