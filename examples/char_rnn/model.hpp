// The char-RNN model: embedding -> RNN/LSTM/GRU (batch_first) -> [dropout] -> linear head,
// named as a PyTorch module with attributes `embedding`, `rnn` and `head`, and its
// checkpoints (model file + training-state file, safetensors).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <recur/checkpoint.hpp>
#include <recur/recur.hpp>

#include "common/cli.hpp"
#include "text.hpp"

namespace char_rnn {
using namespace recur_examples;  // Flags, UsageError, exact, TrainingLog

using T = float;

struct Hyper {
  std::string model = "lstm";  // lstm | gru | rnn
  Index rnn_size = 128;
  Index num_layers = 2;
  Index embedding_size = 64;
  double dropout = 0.0;

  std::map<std::string, std::string> metadata() const {
    return {{"model", model},
            {"rnn_size", std::to_string(rnn_size)},
            {"num_layers", std::to_string(num_layers)},
            {"embedding_size", std::to_string(embedding_size)},
            {"dropout", exact(dropout)}};
  }
};

class CharModel {
 public:
  using Rnn = std::variant<recur::LSTM<T>, recur::GRU<T>, recur::RNN<T>>;
  using Streamer = std::variant<recur::Stream<recur::LSTM<T>>, recur::Stream<recur::GRU<T>>,
                                recur::Stream<recur::RNN<T>>>;

  CharModel(const Hyper& h, const Vocab& vocab, std::uint64_t seed)
      : hyper_(h),
        vocab_(vocab),
        embedding_(vocab.size(), h.embedding_size, seed),
        rnn_(make_rnn(h, seed + 1)),
        dropout_(h.dropout, seed + 2),
        head_(h.rnn_size, vocab.size(), seed + 3) {}

  const Hyper& hyper() const { return hyper_; }
  const Vocab& vocab() const { return vocab_; }

  std::vector<recur::Parameter<T>> parameters() {
    return std::visit(
        [&](auto& rnn) {
          return recur::gather(recur::named("embedding", embedding_), recur::named("rnn", rnn),
                               recur::named("head", head_));
        },
        rnn_);
  }

  void train(bool on) {
    embedding_.train(on);
    std::visit([&](auto& r) { r.train(on); }, rnn_);
    dropout_.train(on);
    head_.train(on);
  }

  /// Logits [B, S, V] for ids [B, S] from `state`, which becomes the final state.
  recur::Tensor3<T> forward(const recur::Tokens& x, recur::State<T>& state) {
    return std::visit(
        [&](auto& rnn) {
          auto out = rnn.forward(embedding_.forward(x), state);
          state = std::move(out.state);
          return head_.forward(dropout_.forward(out.output));
        },
        rnn_);
  }
  /// After a training forward: adds the parameter gradients (truncated at the chunk start).
  void backward(const recur::Tensor3<T>& d_logits) {
    std::visit(
        [&](auto& rnn) {
          embedding_.backward(rnn.backward(dropout_.backward(head_.backward(d_logits))).input);
        },
        rnn_);
  }

  /// Generator states of the dropout layers, for an exact resume.
  std::map<std::string, std::string> rng_states() const {
    return {{"rng.dropout", dropout_.rng_state()},
            {"rng.rnn_dropout", std::visit([](auto& r) { return r.rng_state(); }, rnn_)}};
  }
  void set_rng_states(const std::map<std::string, std::string>& m) {
    dropout_.set_rng_state(m.at("rng.dropout"));
    std::visit([&](auto& r) { r.set_rng_state(m.at("rng.rnn_dropout")); }, rnn_);
  }

  Streamer streamer(Index batch) {
    return std::visit([&](auto& rnn) -> Streamer { return recur::Stream<std::decay_t<decltype(rnn)>>(rnn, batch); },
                      rnn_);
  }
  recur::Embedding<T>& embedding() { return embedding_; }
  recur::Linear<T>& head() { return head_; }

  /// The model file's metadata: vocab + hyper, and `extra`.
  std::map<std::string, std::string> metadata(std::map<std::string, std::string> extra = {}) const {
    auto meta = hyper_.metadata();
    meta["vocab"] = nlohmann::json(vocab_.chars()).dump();
    for (auto& [k, v] : extra) meta[k] = v;
    return meta;
  }
  /// Model file alone (no training state): exactly the state_dict of the PyTorch module.
  void save(const std::string& path, std::map<std::string, std::string> extra = {}) {
    recur::save_model(path, parameters(), metadata(std::move(extra)));
  }

  /// Parameters of the model `h` describes, from its shapes alone (nothing allocated).
  static std::int64_t parameter_count(const Hyper& h, std::int64_t vocab) {
    const std::int64_t G = h.model == "lstm" ? 4 : h.model == "gru" ? 3 : 1, H = h.rnn_size;
    std::int64_t n = vocab * h.embedding_size + vocab * H + vocab;  // embedding, head
    for (std::int64_t l = 0; l < h.num_layers; ++l)
      n += G * H * ((l == 0 ? h.embedding_size : H) + H + 2);
    return n;
  }

  /// Reads a model file's metadata and rebuilds the model it describes, with its weights.
  /// Every number is checked (strictly parsed, in range, and the tensors the metadata implies
  /// against those the file holds) before the model is built, so a file can make it allocate
  /// no more than the file itself holds.
  static std::unique_ptr<CharModel> load(const std::string& path) {
    return from_file(recur::safetensors::File::read(path));
  }
  static std::unique_ptr<CharModel> from_file(const recur::safetensors::File& file) {
    const std::string& path = file.origin();
    const auto& meta = file.metadata();
    if (!meta.count("model") || !meta.count("vocab"))
      throw std::runtime_error(path + ": not a char_rnn checkpoint (no 'model' and 'vocab' in "
                               "its metadata)");
    Hyper h;
    h.model = meta.at("model");
    if (h.model != "lstm" && h.model != "gru" && h.model != "rnn")
      throw std::runtime_error(path + ": unknown model '" + h.model + "' (lstm, gru or rnn)");
    h.rnn_size = recur::metadata_integer(meta, "rnn_size", path, 1, 65536);
    h.num_layers = recur::metadata_integer(meta, "num_layers", path, 1, 64);
    h.embedding_size = recur::metadata_integer(meta, "embedding_size", path, 1, 65536);
    h.dropout = recur::metadata_number(meta, "dropout", path);
    if (!(h.dropout >= 0 && h.dropout < 1))
      throw std::runtime_error(path + ": __metadata__ 'dropout' = " + meta.at("dropout") +
                               " is outside [0, 1)");
    Vocab vocab;
    try {
      auto chars = nlohmann::json::parse(meta.at("vocab")).get<std::vector<std::string>>();
      if (chars.empty() || chars.size() > (1u << 21))
        throw std::runtime_error("it has " + std::to_string(chars.size()) + " characters");
      for (auto& c : chars)
        if (utf8_chars(c).size() != 1)
          throw std::runtime_error("'" + c + "' is not one character");
      vocab = Vocab(std::move(chars));
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": bad vocabulary in the metadata: " + e.what());
    }
    std::uint64_t held = 0;
    for (auto& t : file.tensors()) held += t.numel();
    const std::int64_t wanted = parameter_count(h, vocab.size());
    if (held != static_cast<std::uint64_t>(wanted))
      throw std::runtime_error(path + ": its metadata describes a " + h.model + " of " +
                               std::to_string(h.num_layers) + " x " + std::to_string(h.rnn_size) +
                               " with " + std::to_string(wanted) +
                               " parameters, but the file holds " + std::to_string(held) +
                               " values");
    auto m = std::make_unique<CharModel>(h, vocab, 0);
    recur::safetensors::load(file, recur::values(m->parameters()));
    return m;
  }

 private:
  static Rnn make_rnn(const Hyper& h, std::uint64_t seed) {
    recur::RecurrentOptions o;
    o.input_size = h.embedding_size;
    o.hidden_size = h.rnn_size;
    o.num_layers = h.num_layers;
    o.dropout = h.dropout;
    if (h.model == "lstm") return Rnn(std::in_place_type<recur::LSTM<T>>, o, seed);
    if (h.model == "gru") return Rnn(std::in_place_type<recur::GRU<T>>, o, seed);
    if (h.model == "rnn") return Rnn(std::in_place_type<recur::RNN<T>>, o, seed);
    throw std::invalid_argument("unknown model '" + h.model + "' (lstm, gru or rnn)");
  }

  Hyper hyper_;
  Vocab vocab_;
  recur::Embedding<T> embedding_;
  Rnn rnn_;
  recur::Dropout<T> dropout_;
  recur::Linear<T> head_;
};

}  // namespace char_rnn
