// Loading a model trained in PyTorch: a state_dict of an nn.RNN / nn.LSTM / nn.GRU (any
// number of layers, uni- or bidirectional; batch_first does not change the weights) and
// optionally an nn.Linear head, saved with safetensors, becomes a recur model in one call —
// the sizes are read from the tensors' shapes.
//
//   # PyTorch                                    // C++
//   class Amp(nn.Module):                        auto amp = recur::load_torch_model<recur::LSTM<float>>(
//       def __init__(self):                          "amp.safetensors", "rnn", "fc");
//           super().__init__()                   recur::Stream<recur::LSTM<float>> stream(amp.rnn, *amp.head);
//           self.rnn = nn.LSTM(1, 16, batch_first=True)
//           self.fc = nn.Linear(16, 1)
//   safetensors.torch.save_file(Amp().state_dict(), "amp.safetensors")
//
// The file must hold exactly the module's tensors (PyTorch's strict=True): a missing or
// extra tensor, a shape that does not fit, the wrong cell (an LSTM's 4 gates loaded as a
// GRU) or a non-finite value is an std::runtime_error naming the file and the tensor.
// Needs nlohmann/json (CMake target recur::checkpoint).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "recur/checkpoint.hpp"
#include "recur/layers.hpp"
#include "recur/models.hpp"

namespace recur {

template <class Model>
struct TorchModel {
  Model rnn;
  std::optional<Linear<typename Model::Scalar>> head;  // when a head prefix was given
};

/// Reads `path`: the recurrent module's tensors under `rnn_prefix` ("rnn" -> rnn.weight_ih_l0,
/// ...; "" for a bare module's state_dict) and, when `head_prefix` is not empty, an nn.Linear's
/// under it. `nonlinearity`: an nn.RNN's (the state_dict does not say).
template <class Model>
TorchModel<Model> load_torch_model(const std::string& path, const std::string& rnn_prefix,
                                   const std::string& head_prefix = "",
                                   Nonlinearity nonlinearity = Nonlinearity::Tanh) {
  using T = typename Model::Scalar;
  constexpr Index G = Model::CellType::kGates;
  const safetensors::File file = safetensors::File::read(path);
  const std::string p = rnn_prefix.empty() ? "" : rnn_prefix + ".";
  auto shape_of = [&](const std::string& name) -> const std::vector<std::int64_t>* {
    const auto* t = file.find(name);
    return t ? &t->shape : nullptr;
  };
  const auto* ih0 = shape_of(p + "weight_ih_l0");
  const auto* hh0 = shape_of(p + "weight_hh_l0");
  if (!ih0 || !hh0) {
    std::string names;
    for (std::size_t i = 0; i < file.tensors().size() && i < 8; ++i)
      names += (i ? ", '" : "'") + file.tensors()[i].name + "'";
    safetensors::detail::corrupt(path, "no recurrent module under the prefix '", rnn_prefix, "' (no '", p,
                    "weight_ih_l0' and '", p, "weight_hh_l0'); the file holds ", names,
                    file.tensors().size() > 8 ? ", ..." : "");
  }
  // A projection (nn.LSTM(proj_size=P)): weight_hr_l0 [P, hidden], weight_hh [G * hidden, P].
  const auto* hr0 = shape_of(p + "weight_hr_l0");
  const bool proj = hr0 && hr0->size() == 2;
  if (ih0->size() != 2 || hh0->size() != 2 || (*hh0)[1] <= 0 || (*ih0)[0] % G != 0 ||
      (*hh0)[0] != (*ih0)[0] || (!proj && (*hh0)[0] != G * (*hh0)[1]) ||
      (proj && ((*hr0)[0] != (*hh0)[1] || G * (*hr0)[1] != (*hh0)[0])))
    safetensors::detail::corrupt(path, "'", p, "weight_ih_l0' is ", safetensors::shape_str(*ih0), " and '", p,
                    "weight_hh_l0' ", safetensors::shape_str(*hh0), ": not a layer of ", G,
                    " gates (", G == 4 ? "LSTM" : G == 3 ? "GRU" : "RNN",
                    "; weight_hh must be [", G, " * hidden, hidden], or [", G,
                    " * hidden, proj_size] with weight_hr [proj_size, hidden])");
  RecurrentOptions o;
  o.input_size = (*ih0)[1];
  o.hidden_size = (*ih0)[0] / G;
  o.proj_size = proj ? (*hr0)[0] : 0;
  o.num_layers = 0;
  while (shape_of(p + "weight_ih_l" + std::to_string(o.num_layers))) ++o.num_layers;
  o.bidirectional = shape_of(p + "weight_ih_l0_reverse") != nullptr;
  o.nonlinearity = nonlinearity;
  TorchModel<Model> out{Model(o), std::nullopt};
  out.rnn.eval();
  std::vector<Parameter<T>> params = named(rnn_prefix, out.rnn);
  if (!head_prefix.empty()) {
    const auto* w = shape_of(head_prefix + ".weight");
    if (!w || w->size() != 2)
      safetensors::detail::corrupt(path, "no Linear head under the prefix '", head_prefix, "' (no 2-d '",
                      head_prefix, ".weight')");
    const bool bias = shape_of(head_prefix + ".bias") != nullptr;
    out.head.emplace((*w)[1], (*w)[0], 0, bias);
    out.head->eval();
    params = gather(std::move(params), named(head_prefix, *out.head));
  }
  load_model(file, params);  // strict: every tensor, shapes, finite values
  return out;
}

}  // namespace recur

#if defined(RECUR_COMPILED) && defined(RECUR_COMPILED_CHECKPOINT)
#include "recur/detail/instantiations.hpp"
RECUR_EXTERN(RECUR_INSTANTIATE_TORCH_MODEL)
#endif
