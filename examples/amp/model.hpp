// The amp model: a small LSTM or GRU over the input signal, a Linear head, and the input
// added back (a skip connection: the network learns what the effect adds to the signal),
//   y[t] = x[t] + fc(rnn(x)[t])
// as in PyTorch
//   class Amp(nn.Module):
//       def __init__(self, hidden): self.rnn = nn.LSTM(1, hidden, batch_first=True); self.fc = nn.Linear(hidden, 1)
//       def forward(self, x): return x + self.fc(self.rnn(x)[0])
// Its checkpoint is that module's state_dict (rnn.weight_ih_l0, ..., fc.weight, fc.bias) in
// safetensors with metadata (amp = 1, model, hidden_size, sample_rate, validation ESR), so
// PyTorch loads it with load_state_dict(strict=True) and recur::load_torch_model reads it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <variant>

#include <recur/recur.hpp>
#include <recur/torch_model.hpp>

namespace amp {

using T = float;

struct ModelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class AmpModel {
 public:
  using Rnn = std::variant<recur::LSTM<T>, recur::GRU<T>>;

  AmpModel(const std::string& kind, recur::Index hidden, std::uint64_t seed)
      : rnn_(make(kind, hidden, seed)), head_(hidden, 1, seed + 1), kind_(kind) {}

  /// Reads a checkpoint written by save() (or a PyTorch state_dict of the same module: the
  /// cell is then told by the weights' shapes). Throws ModelError naming the file.
  static AmpModel load(const std::string& path, std::map<std::string, std::string>* meta_out = nullptr) {
    std::optional<recur::safetensors::File> header;  // the header only
    try {
      header.emplace(recur::safetensors::File::read(path, false));
    } catch (const std::exception& e) {
      throw ModelError(e.what());
    }
    const std::map<std::string, std::string>& meta = header->metadata();
    std::string kind;
    if (meta.count("model")) {
      kind = meta.at("model");
    } else {  // a PyTorch state_dict: 4 gates are an LSTM, 3 a GRU
      const auto* w = header->find("rnn.weight_hh_l0");
      if (w && w->shape.size() == 2 && w->shape[1] > 0)
        kind = w->shape[0] == 4 * w->shape[1] ? "lstm" : w->shape[0] == 3 * w->shape[1] ? "gru" : "";
    }
    if (kind != "lstm" && kind != "gru")
      throw ModelError(path + ": not an amp model (no rnn.weight_hh_l0 of an LSTM or GRU, and no "
                              "'model' metadata naming one)");
    try {
      AmpModel m = kind == "lstm" ? from(recur::load_torch_model<recur::LSTM<T>>(path, "rnn", "fc"), kind)
                                  : from(recur::load_torch_model<recur::GRU<T>>(path, "rnn", "fc"), kind);
      if (m.input_size() != 1 || m.head_.out_features() != 1)
        throw ModelError(path + ": an amp model maps 1 sample to 1, this one " +
                         std::to_string(m.input_size()) + " to " + std::to_string(m.head_.out_features()));
      if (meta_out) *meta_out = meta;
      return m;
    } catch (const ModelError&) {
      throw;
    } catch (const std::exception& e) {
      throw ModelError(e.what());
    }
  }

  const std::string& kind() const { return kind_; }
  recur::Index hidden_size() const {
    return std::visit([](const auto& r) { return r.hidden_size(); }, rnn_);
  }
  recur::Index input_size() const {
    return std::visit([](const auto& r) { return r.input_size(); }, rnn_);
  }
  Rnn& rnn() { return rnn_; }
  recur::Linear<T>& head() { return head_; }

  std::vector<recur::Parameter<T>> parameters() {
    auto rnn = std::visit([](auto& r) { return recur::named("rnn", r); }, rnn_);
    return recur::gather(std::move(rnn), recur::named("fc", head_));
  }

  void save(const std::string& path, std::map<std::string, std::string> meta) {
    meta["amp"] = "1";
    meta["model"] = kind_;
    meta["hidden_size"] = std::to_string(hidden_size());
    recur::save_model(path, parameters(), meta);
  }

 private:
  static Rnn make(const std::string& kind, recur::Index hidden, std::uint64_t seed) {
    const recur::RecurrentOptions o{1, hidden, 1, false, 0.0};
    if (kind == "lstm") return recur::LSTM<T>(o, seed);
    if (kind == "gru") return recur::GRU<T>(o, seed);
    throw ModelError("--model: '" + kind + "' is not lstm or gru");
  }
  template <class M>
  static AmpModel from(recur::TorchModel<M>&& t, const std::string& kind) {
    return AmpModel(Rnn(std::move(t.rnn)), std::move(*t.head), kind);
  }
  AmpModel(Rnn rnn, recur::Linear<T> head, std::string kind)
      : rnn_(std::move(rnn)), head_(std::move(head)), kind_(std::move(kind)) {}

  Rnn rnn_;
  recur::Linear<T> head_;
  std::string kind_;
};

}  // namespace amp
