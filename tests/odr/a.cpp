// Two translation units include recur and instantiate the same templates: a missing `inline`
// on a non-template function in a header fails to link.
#include <recur/recur.hpp>

int odr_b();

int odr_a() {
  recur::RecurrentOptions o;
  o.input_size = 2;
  o.hidden_size = 3;
  recur::LSTM<double> m(o);
  recur::Tensor3<double> x(1, 2, 2);
  x.setZero();
  return static_cast<int>(m.forward(x).output.dimension(2));
}

int main() { return odr_a() == 3 && odr_b() == 3 ? 0 : 1; }
