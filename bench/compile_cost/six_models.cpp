// The translation unit of a user's training program: the six public models (RNN, LSTM, GRU x
// float, double), bidirectional with 2 layers, forward and backward. bench/compile_cost.py
// times its compile (and lstm_float.cpp's) against other trees and in the compiled mode.
#include <recur/recur.hpp>

namespace {

template <class Model>
double run(int seed) {
  using T = typename Model::Scalar;
  recur::RecurrentOptions o;
  o.input_size = 5;
  o.hidden_size = 7;
  o.num_layers = 2;
  o.bidirectional = true;
  Model m(o, static_cast<std::uint64_t>(seed));
  recur::Tensor3<T> x(3, 4, 5);
  x.setConstant(T(0.5));
  auto r = m.forward(x);
  recur::Tensor3<T> dy = r.output;
  dy.setConstant(T(1));
  auto g = m.backward(dy);
  return static_cast<double>(r.output(0, 0, 0)) + static_cast<double>(g.input(0, 0, 0));
}

}  // namespace

int main(int argc, char**) {
  double s = 0;
  s += run<recur::RNN<float>>(argc);
  s += run<recur::LSTM<float>>(argc);
  s += run<recur::GRU<float>>(argc);
  s += run<recur::RNN<double>>(argc);
  s += run<recur::LSTM<double>>(argc);
  s += run<recur::GRU<double>>(argc);
  return s == s ? 0 : 1;
}
