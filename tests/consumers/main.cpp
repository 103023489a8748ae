// A program outside recur that uses it as a user would.
#include <recur/recur.hpp>

int main() {
  recur::RecurrentOptions o;
  o.input_size = 3;
  o.hidden_size = 4;
  recur::GRU<float> gru(o);
  recur::Tensor3<float> x(2, 5, 3);
  x.setConstant(0.5f);
  auto out = gru.forward(x);
  return out.output.dimension(2) == 4 && out.state.h.dimension(0) == 1 ? 0 : 1;
}
