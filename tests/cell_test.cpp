// "Isolate one gate": zero every weight but one (or two), run a layer with hidden = input = 1
// and compare with the closed form of the recurrence written out by hand. A gate wired to
// the wrong block, a bias in the wrong place or a swapped state fails here by name.
#include "support.hpp"

namespace recur::test {
namespace {

double sigma(double v) { return 1.0 / (1.0 + std::exp(-v)); }

const std::vector<double> kX = {0.7, -1.3, 0.4, 2.0, -0.2};
constexpr double kH0 = 0.3, kC0 = -0.6;

// Parameters of a 1 -> 1 layer, all zero except the named entries: {param, row} -> value.
struct Setting {
  const char* param;
  Index row;
  double value;
};

template <class Cell>
std::pair<std::vector<double>, double> run(const Cell& cell, std::initializer_list<Setting> set) {
  Recurrent<Cell> layer(1, 1, Direction::Forward, cell);
  for (auto& p : layer.named_parameters("")) {
    p.value.setZero();
    for (auto& s : set)
      if (p.name == s.param) p.value(s.row, 0) = s.value;
  }
  const Index S = static_cast<Index>(kX.size());
  Tensor3<double> x(1, S, 1);
  for (Index t = 0; t < S; ++t) x(0, t, 0) = kX[static_cast<std::size_t>(t)];
  State<double> init;
  init.h = Tensor3<double>(1, 1, 1);
  init.h.setConstant(kH0);
  if constexpr (Cell::kStates == 2) {
    init.c = Tensor3<double>(1, 1, 1);
    init.c.setConstant(kC0);
  }
  auto out = layer.forward(x, init);
  std::vector<double> h(static_cast<std::size_t>(S));
  for (Index t = 0; t < S; ++t) h[static_cast<std::size_t>(t)] = out.output(0, t, 0);
  return {h, Cell::kStates == 2 ? out.state.c(0, 0, 0) : out.state.h(0, 0, 0)};
}

// Runs the scalar recurrence `step(x, h, c) -> (h', c')` over kX.
template <class Step>
std::pair<std::vector<double>, double> closed_form(Step step) {
  double h = kH0, c = kC0;
  std::vector<double> hs;
  for (double x : kX) {
    std::tie(h, c) = step(x, h, c);
    hs.push_back(h);
  }
  return {hs, c};
}

void expect_same(const std::pair<std::vector<double>, double>& got,
                 const std::pair<std::vector<double>, double>& want, bool check_c = true) {
  for (std::size_t t = 0; t < want.first.size(); ++t)
    EXPECT_NEAR(got.first[t], want.first[t], 1e-14) << "h at step " << t;
  if (check_c) {
    EXPECT_NEAR(got.second, want.second, 1e-14) << "final c";
  }
}

constexpr double w = 1.7, u = -0.9, beta = 0.8;
// LSTM gate rows with H = 1: i = 0, f = 1, g = 2, o = 3.
TEST(LSTMCellIsolated, InputGate) {
  expect_same(run(LSTMCell<double>{}, {{"weight_ih", 0, w}, {"bias_ih", 2, beta}}),
              closed_form([](double x, double, double c) {
                const double c2 = 0.5 * c + sigma(w * x) * std::tanh(beta);
                return std::make_pair(0.5 * std::tanh(c2), c2);
              }));
}
TEST(LSTMCellIsolated, ForgetGate) {
  expect_same(run(LSTMCell<double>{}, {{"weight_ih", 1, w}, {"bias_hh", 2, beta}}),
              closed_form([](double x, double, double c) {
                const double c2 = sigma(w * x) * c + 0.5 * std::tanh(beta);
                return std::make_pair(0.5 * std::tanh(c2), c2);
              }));
}
TEST(LSTMCellIsolated, CellCandidate) {
  expect_same(run(LSTMCell<double>{}, {{"weight_ih", 2, w}}),
              closed_form([](double x, double, double c) {
                const double c2 = 0.5 * c + 0.5 * std::tanh(w * x);
                return std::make_pair(0.5 * std::tanh(c2), c2);
              }));
}
TEST(LSTMCellIsolated, OutputGate) {
  expect_same(run(LSTMCell<double>{}, {{"weight_ih", 3, w}, {"bias_ih", 2, beta}}),
              closed_form([](double x, double, double c) {
                const double c2 = 0.5 * c + 0.5 * std::tanh(beta);
                return std::make_pair(sigma(w * x) * std::tanh(c2), c2);
              }));
}
TEST(LSTMCellIsolated, RecurrentWeight) {
  expect_same(run(LSTMCell<double>{}, {{"weight_hh", 2, u}}),
              closed_form([](double, double h, double c) {
                const double c2 = 0.5 * c + 0.5 * std::tanh(u * h);
                return std::make_pair(0.5 * std::tanh(c2), c2);
              }));
}

// GRU gate rows with H = 1: r = 0, z = 1, n = 2.
TEST(GRUCellIsolated, CandidateGate) {
  expect_same(run(GRUCell<double>{}, {{"weight_ih", 2, w}}),
              closed_form([](double x, double h, double) {
                return std::make_pair(0.5 * std::tanh(w * x) + 0.5 * h, 0.0);
              }),
              false);
}
TEST(GRUCellIsolated, UpdateGate) {
  expect_same(run(GRUCell<double>{}, {{"weight_ih", 1, w}, {"weight_ih", 2, u}}),
              closed_form([](double x, double h, double) {
                const double z = sigma(w * x);
                return std::make_pair((1 - z) * std::tanh(u * x) + z * h, 0.0);
              }),
              false);
}
TEST(GRUCellIsolated, ResetGateScalesRecurrentCandidate) {
  expect_same(run(GRUCell<double>{}, {{"weight_ih", 0, w}, {"weight_hh", 2, u}}),
              closed_form([](double x, double h, double) {
                const double n = std::tanh(sigma(w * x) * (u * h));
                return std::make_pair(0.5 * n + 0.5 * h, 0.0);
              }),
              false);
}
TEST(GRUCellIsolated, RecurrentCandidateBiasIsInsideReset) {
  // b_hn sits inside r * (W_hn h + b_hn); b_in does not.
  expect_same(run(GRUCell<double>{}, {{"weight_ih", 0, w}, {"bias_hh", 2, beta}}),
              closed_form([](double x, double h, double) {
                return std::make_pair(0.5 * std::tanh(sigma(w * x) * beta) + 0.5 * h, 0.0);
              }),
              false);
  expect_same(run(GRUCell<double>{}, {{"weight_ih", 0, w}, {"bias_ih", 2, beta}}),
              closed_form([](double, double h, double) {
                return std::make_pair(0.5 * std::tanh(beta) + 0.5 * h, 0.0);
              }),
              false);
}

TEST(RNNCellIsolated, InputWeightTanh) {
  expect_same(run(RNNCell<double>{}, {{"weight_ih", 0, w}}),
              closed_form([](double x, double, double) {
                return std::make_pair(std::tanh(w * x), 0.0);
              }),
              false);
}
TEST(RNNCellIsolated, RecurrentWeightAndBiasesReLU) {
  expect_same(run(RNNCell<double>{Nonlinearity::ReLU},
                  {{"weight_hh", 0, u}, {"weight_ih", 0, w}, {"bias_ih", 0, 0.1},
                   {"bias_hh", 0, -0.2}}),
              closed_form([](double x, double h, double) {
                return std::make_pair(std::max(0.0, w * x + 0.1 + u * h - 0.2), 0.0);
              }),
              false);
}

}  // namespace
}  // namespace recur::test
