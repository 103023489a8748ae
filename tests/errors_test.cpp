// Bad input gets a clear exception naming the problem and the shapes involved.
#include <limits>

#include "support.hpp"

namespace recur::test {
namespace {

TEST(Errors, WrongFeatureSize) {
  LSTM<float> m(opts(5, 4));
  Tensor3<float> x(2, 3, 7);
  x.setZero();
  expect_throw<std::invalid_argument>([&] { m.forward(x); }, {"7 features", "input_size = 5", "[2, 3, 7]"});
}

// A variant a cell does not have, or out of range, is rejected with a message naming it.
TEST(Errors, VariantsACellDoesNotHave) {
  auto o = opts(3, 4);
  o.proj_size = 2;
  expect_throw<std::invalid_argument>([&] { GRU<float> m(o); }, {"proj_size = 2", "LSTM option"});
  expect_throw<std::invalid_argument>([&] { RNN<float> m(o); }, {"proj_size = 2", "LSTM option"});
  o.proj_size = 4;
  expect_throw<std::invalid_argument>([&] { LSTM<float> m(o); }, {"proj_size = 4", "hidden_size = 4"});
  o = opts(3, 4);
  o.peephole = true;
  expect_throw<std::invalid_argument>([&] { GRU<float> m(o); }, {"GRU", "peephole"});
  expect_throw<std::invalid_argument>([&] { RNN<double> m(o); }, {"RNN", "peephole"});
  o = opts(3, 4);
  o.layer_norm = LayerNorm::Ba2016;
  expect_throw<std::invalid_argument>([&] { GRU<float> m(o); }, {"GRU", "layer_norm"});
  expect_throw<std::invalid_argument>([&] { RNN<double> m(o); }, {"RNN", "layer_norm"});
  o.peephole = true;
  expect_throw<std::invalid_argument>([&] { LSTM<float> m(o); }, {"layer_norm", "peephole=1"});
  o.peephole = false;
  o.cell_clip = 0.5;
  expect_throw<std::invalid_argument>([&] { LSTM<float> m(o); }, {"layer_norm", "cell_clip=0.5"});
  o.cell_clip = 0;
  o.layer_norm_eps = 0;
  expect_throw<std::invalid_argument>([&] { LSTM<double> m(o); }, {"layer_norm_eps", "0"});
  o = opts(3, 4);
  o.linear_before_reset = false;
  expect_throw<std::invalid_argument>([&] { LSTM<float> m(o); }, {"LSTM", "linear_before_reset"});
  o = opts(3, 4);
  o.cell_clip = -1;
  expect_throw<std::invalid_argument>([&] { LSTM<float> m(o); }, {"cell_clip", "-1"});
  o.cell_clip = std::numeric_limits<double>::infinity();
  expect_throw<std::invalid_argument>([&] { GRU<float> m(o); }, {"cell_clip", "inf"});
  // A projected LSTM's state: h is [.., proj_size], c is [.., hidden].
  o = opts(3, 4);
  o.proj_size = 2;
  LSTM<float> m(o);
  Tensor3<float> x(2, 3, 3);
  x.setZero();
  State<float> s;
  s.h = Tensor3<float>(1, 2, 4);
  s.h.setZero();
  expect_throw<std::invalid_argument>([&] { m.forward(x, s); }, {"initial.h", "[1, 2, 4]", "[1, 2, 2]"});
}

TEST(Errors, EmptyInput) {
  GRU<float> m(opts(5, 4));
  Tensor3<float> x(0, 3, 5);
  expect_throw<std::invalid_argument>([&] { m.forward(x); }, {"empty input", "[0, 3, 5]"});
}

TEST(Errors, WrongStateShape) {
  LSTM<float> m(opts(3, 4, 2, true));
  Tensor3<float> x(2, 3, 3);
  x.setZero();
  State<float> s;
  s.h = Tensor3<float>(2, 2, 4);  // needs [4, 2, 4]
  expect_throw<std::invalid_argument>([&] { m.forward(x, s); }, {"initial.h", "[2, 2, 4]", "[4, 2, 4]"});
  s.h = Tensor3<float>(4, 2, 4);
  s.c = Tensor3<float>(4, 3, 4);
  expect_throw<std::invalid_argument>([&] { m.forward(x, s); }, {"initial.c", "[4, 3, 4]", "[4, 2, 4]"});
}

TEST(Errors, CellStateForACellWithoutOne) {
  GRU<float> m(opts(3, 4));
  Tensor3<float> x(2, 3, 3);
  x.setZero();
  State<float> s;
  s.c = Tensor3<float>(1, 2, 4);
  expect_throw<std::invalid_argument>([&] { m.forward(x, s); }, {"initial.c", "no cell state"});
}

TEST(Errors, LengthsCountAndRange) {
  RNN<double> m(opts(3, 4));
  Tensor3<double> x(2, 3, 3);
  x.setZero();
  expect_throw<std::invalid_argument>([&] { m.forward(x, {}, {3}); }, {"1 lengths", "batch of 2"});
  expect_throw<std::invalid_argument>([&] { m.forward(x, {}, {3, 4}); }, {"lengths[1] = 4", "[0, 3]"});
  expect_throw<std::invalid_argument>([&] { m.forward(x, {}, {-1, 2}); }, {"lengths[0] = -1"});
}

TEST(Errors, GradientShape) {
  LSTM<double> m(opts(3, 4, 1, true));
  Tensor3<double> x(2, 3, 3);
  x.setZero();
  m.forward(x);
  Tensor3<double> d(2, 3, 4);  // needs [2, 3, 8]
  d.setZero();
  expect_throw<std::invalid_argument>([&] { m.backward(d); }, {"d_output is [2, 3, 4]", "[2, 3, 8]"});
  Tensor3<double> ok(2, 3, 8);
  ok.setZero();
  State<double> ds;
  ds.h = Tensor3<double>(1, 2, 4);
  expect_throw<std::invalid_argument>([&] { m.backward(ok, ds); }, {"d_state.h", "[1, 2, 4]", "[2, 2, 4]"});
}

TEST(Errors, BackwardWithoutTrainingForward) {
  GRU<double> m(opts(3, 4));
  Tensor3<double> x(2, 3, 3), d(2, 3, 4);
  x.setZero();
  d.setZero();
  expect_throw<std::logic_error>([&] { m.backward(d); }, {"training mode"});
  m.eval();
  m.forward(x);
  expect_throw<std::logic_error>([&] { m.backward(d); }, {"training mode"});
  m.train();
  m.forward(x);
  m.backward(d);
  expect_throw<std::logic_error>([&] { m.backward(d); }, {"consumes"});
}

TEST(Errors, BadOptions) {
  expect_throw<std::invalid_argument>([] { LSTM<float> m(opts(0, 4)); }, {"input_size=0"});
  expect_throw<std::invalid_argument>([] { LSTM<float> m(opts(3, 0)); }, {"hidden_size=0"});
  expect_throw<std::invalid_argument>([] { LSTM<float> m(opts(3, 4, 0)); }, {"num_layers=0"});
  auto o = opts(3, 4, 2);
  o.dropout = 1.5;
  expect_throw<std::invalid_argument>([&] { GRU<float> m(o); }, {"dropout = 1.5"});
  expect_throw<std::invalid_argument>([] { Recurrent<RNNCell<float>> r(3, -1); }, {"hidden_size=-1"});
}

// Sizes whose products overflow (or exceed what one allocation can address) are refused
// before anything is allocated, naming the sizes.
TEST(Errors, SizesThatOverflow) {
  const Index big = Index(1) << 62, h31 = Index(1) << 31;
  expect_throw<std::invalid_argument>([&] { LSTM<float> m(opts(big, 4)); }, {"too large", "4611686018427387904"});
  expect_throw<std::invalid_argument>([&] { LSTM<float> m(opts(3, h31)); }, {"too large", "2147483648"});
  expect_throw<std::invalid_argument>([&] { GRU<double> m(opts(3, 4, big)); }, {"num_layers", "too large"});
  expect_throw<std::invalid_argument>([&] { Recurrent<RNNCell<float>> r(big, 4); }, {"too large"});
  expect_throw<std::invalid_argument>([&] { Recurrent<RNNCell<float>> r(3, PTRDIFF_MAX); }, {"overflow"});
  expect_throw<std::invalid_argument>([&] { Linear<float> l(big, big); }, {"Linear", "too large"});
  expect_throw<std::invalid_argument>([&] { Embedding<float> e(big, 8); }, {"Embedding", "too large"});
}

TEST(Errors, StackOfMismatchedLayers) {
  std::vector<Recurrent<GRUCell<float>>> layers;
  layers.emplace_back(3, 4);
  layers.emplace_back(5, 4);
  expect_throw<std::invalid_argument>([&] { Stack<Recurrent<GRUCell<float>>> s(layers); },
                                      {"layer 1 expects input_size = 5", "outputs 4"});
}

}  // namespace
}  // namespace recur::test
