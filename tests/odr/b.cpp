#include <recur/recur.hpp>

int odr_b() {
  recur::RecurrentOptions o;
  o.input_size = 2;
  o.hidden_size = 3;
  recur::LSTM<double> m(o);
  recur::Tensor3<double> x(1, 2, 2);
  x.setZero();
  return static_cast<int>(m.forward(x).output.dimension(2));
}
