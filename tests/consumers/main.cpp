// A program outside recur that uses it as a user would: a model, an optimizer step and a
// checkpoint written and read back (recur::checkpoint).
#include <cstdio>
#include <string>

#include <recur/checkpoint.hpp>
#include <recur/recur.hpp>

int main() {
  recur::RecurrentOptions o;
  o.input_size = 3;
  o.hidden_size = 4;
  recur::GRU<float> gru(o);
  recur::Linear<float> head(4, 2);
  auto params = recur::gather(recur::named("rnn", gru), recur::named("head", head));
  recur::Adam<float> adam(params);
  recur::Tensor3<float> x(2, 5, 3);
  x.setConstant(0.5f);
  auto out = gru.forward(x);
  auto y = head.forward(out.output);
  recur::Tokens targets(2, 5);
  targets.setZero();
  auto loss = recur::cross_entropy(y, targets);
  gru.backward(head.backward(loss.d_logits));
  adam.step();
  const std::string path = "consumer_checkpoint.safetensors";
  recur::save_model(path, params);
  recur::load_model(path, params);
  std::remove(path.c_str());
  return out.output.dimension(2) == 4 && out.state.h.dimension(0) == 1 ? 0 : 1;
}
