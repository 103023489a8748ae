// Models trained in PyTorch: a state_dict saved as safetensors (nn.LSTM / nn.GRU / nn.RNN +
// nn.Linear, made by reference/torch_models/make_torch_models.py with PyTorch's own
// initialisation) loads with load_torch_model in one call, and the loaded model — streamed
// sample by sample, in blocks, and as a whole sequence — reproduces PyTorch's outputs.

#include <recur/torch_model.hpp>

#include "support.hpp"

namespace recur::test {
namespace {

const std::string kDir = RECUR_TORCH_MODELS_DIR;

struct Expected {
  Tensor3<float> input, output;
};
Expected expected(const std::string& name) {
  auto f = safetensors::File::read(kDir + "/" + name + ".expected.safetensors");
  Expected e;
  for (auto [key, t] : {std::pair{"input", &e.input}, std::pair{"output", &e.output}}) {
    const auto* info = f.find(key);
    EXPECT_NE(info, nullptr);
    t->resize(info->shape[0], info->shape[1], info->shape[2]);
    f.copy_to(*info, t->data());
  }
  return e;
}

template <class Model>
void reproduces_pytorch(const std::string& name, Nonlinearity nl = Nonlinearity::Tanh) {
  auto m = load_torch_model<Model>(kDir + "/" + name + ".safetensors", "rnn", "fc", nl);
  ASSERT_TRUE(m.head.has_value());
  const Expected e = expected(name);
  const Index S = e.input.dimension(1), I = e.input.dimension(2), O = e.output.dimension(2);
  EXPECT_EQ(m.rnn.input_size(), I);
  EXPECT_EQ(m.head->out_features(), O);
  // Whole sequence.
  Tensor3<float> y = m.head->forward(m.rnn.forward(e.input).output);
  // Streamed: one sample at a time, and the same in blocks of 16.
  Stream<Model> by_step(m.rnn, *m.head), by_block(m.rnn, *m.head, 1, 16);
  std::vector<float> blocks(static_cast<std::size_t>(S * O));
  by_block.process(e.input.data(), S, blocks.data());
  for (Index t = 0; t < S; ++t) {
    auto ys = by_step.step(e.input.data() + t * I);
    for (Index o = 0; o < O; ++o) {
      const float want = e.output(0, t, o);
      EXPECT_NEAR(y(0, t, o), want, 2e-6) << name << " sequence t=" << t;
      EXPECT_NEAR(ys(0, o), want, 2e-6) << name << " step t=" << t;
      EXPECT_NEAR(blocks[static_cast<std::size_t>(t * O + o)], want, 2e-6) << name << " block t=" << t;
    }
  }
}

TEST(TorchModel, LSTMWithHeadReproducesPyTorch) { reproduces_pytorch<LSTM<float>>("amp_lstm_h8"); }
TEST(TorchModel, TwoLayerGRUReproducesPyTorch) { reproduces_pytorch<GRU<float>>("gru_l2_h6"); }
TEST(TorchModel, ThreeLayerReluRNNReproducesPyTorch) {
  reproduces_pytorch<RNN<float>>("rnn_relu_l3_h5", Nonlinearity::ReLU);
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

TEST(TorchModel, WrongCellPrefixOrFileIsAClearError) {
  const std::string lstm = kDir + "/amp_lstm_h8.safetensors";
  // An LSTM's 4 gates are not a GRU's 3.
  EXPECT_NE(error_of([&] { load_torch_model<GRU<float>>(lstm, "rnn", "fc"); }).find("not a layer of 3 gates"),
            std::string::npos);
  // A prefix that is not there names what the file holds.
  const std::string e = error_of([&] { load_torch_model<LSTM<float>>(lstm, "lstm", "fc"); });
  EXPECT_NE(e.find("no recurrent module under the prefix 'lstm'"), std::string::npos) << e;
  EXPECT_NE(e.find("rnn.weight_ih_l0"), std::string::npos) << e;
  // Without the head's prefix the head's tensors are unexpected (strict loading).
  const std::string s = error_of([&] { load_torch_model<LSTM<float>>(lstm, "rnn"); });
  EXPECT_NE(s.find("fc.weight"), std::string::npos) << s;
  EXPECT_NE(error_of([&] { load_torch_model<LSTM<float>>(lstm, "rnn", "head"); }).find("no Linear head"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_torch_model<LSTM<float>>(kDir + "/missing.safetensors", "rnn"); }).find("missing.safetensors"),
            std::string::npos);
}

}  // namespace
}  // namespace recur::test
