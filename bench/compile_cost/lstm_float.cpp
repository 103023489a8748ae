// A translation unit that uses one model, LSTM<float> (forward and backward).
#include <recur/recur.hpp>

int main(int argc, char**) {
  recur::RecurrentOptions o;
  o.input_size = 5;
  o.hidden_size = 7;
  recur::LSTM<float> m(o, static_cast<std::uint64_t>(argc));
  recur::Tensor3<float> x(3, 4, 5);
  x.setConstant(0.5f);
  auto r = m.forward(x);
  recur::Tensor3<float> dy = r.output;
  dy.setConstant(1.f);
  auto g = m.backward(dy);
  const double s = static_cast<double>(r.output(0, 0, 0)) + static_cast<double>(g.input(0, 0, 0));
  return s == s ? 0 : 1;
}
