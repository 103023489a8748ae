// recur::RNN<T>, recur::LSTM<T>, recur::GRU<T>: PyTorch-shaped multi-layer, optionally
// bidirectional models (nn.RNN / nn.LSTM / nn.GRU with batch_first=True), composed of
// Stack<Recurrent<Cell>> or Stack<Bidirectional<Cell>>.
//
//   recur::LSTM<float> lstm({.input_size = 65, .hidden_size = 128, .num_layers = 2});
//   auto [y, state] = lstm.forward(x);          // x [B, T, 65] -> y [B, T, 128]
//   auto grads = lstm.backward(dy);             // parameter gradients accumulate
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "recur/bidirectional.hpp"
#include "recur/cells/gru.hpp"
#include "recur/cells/lstm.hpp"
#include "recur/cells/rnn.hpp"
#include "recur/recurrent.hpp"
#include "recur/stack.hpp"

namespace recur {

namespace detail {
// The options of a model whose cell has `gates` gates and `states` state tensors of
// `scalar_bytes`-byte values, checked (one function for every model: it depends on no type).
inline RecurrentOptions validated_options(const RecurrentOptions& o, Index gates, Index states,
                                          std::size_t scalar_bytes) {
  require(o.input_size > 0 && o.hidden_size > 0 && o.num_layers > 0,
          "RecurrentOptions: input_size, hidden_size and num_layers must be positive, "
          "got input_size=",
          o.input_size, " hidden_size=", o.hidden_size, " num_layers=", o.num_layers);
  require(o.dropout >= 0.0 && o.dropout <= 1.0, "RecurrentOptions: dropout = ", o.dropout,
          " is outside [0, 1]");
  require(o.recurrent_dropout >= 0.0 && o.recurrent_dropout < 1.0,
          "RecurrentOptions: recurrent_dropout = ", o.recurrent_dropout, " is outside [0, 1)");
  require(o.proj_size == 0 || states == 2, "RecurrentOptions: proj_size = ", o.proj_size,
          " is an LSTM option (a projection of h needs a cell state c)");
  require(o.proj_size >= 0 && o.proj_size < o.hidden_size,
          "RecurrentOptions: proj_size = ", o.proj_size,
          " must be in [0, hidden_size = ", o.hidden_size, ") (0: no projection)");
  // Every layer's parameters (the widest input: directions * hidden_size), checked against
  // overflow before the first layer is built.
  const std::string who = "RecurrentOptions (input_size=" + std::to_string(o.input_size) +
                          " hidden_size=" + std::to_string(o.hidden_size) +
                          " num_layers=" + std::to_string(o.num_layers) + ")";
  const Index D = o.bidirectional ? 2 : 1;
  const Index GH = checked_count(who + ": gates * hidden_size", {gates, o.hidden_size}, 1);
  const Index widest = std::max(
      o.input_size, checked_count(who + ": directions * hidden_size", {D, o.hidden_size}, 1));
  const Index row = checked_sum(who + ": input + hidden_size + 2", widest,
                                checked_sum(who + ": hidden_size + 2", o.hidden_size, 2));
  checked_count(
      who + ": parameters [layers * directions, gates * hidden_size, input + hidden_size + 2]",
      {o.num_layers, D, GH, row}, 2 * scalar_bytes);
  return o;
}
}  // namespace detail

template <class Cell>
class Model : public SequenceLayer<Model<Cell>, typename Cell::Scalar, Cell::kStates> {
 public:
  using Scalar = typename Cell::Scalar;
  using T = Scalar;
  using CellType = Cell;
  static constexpr Index kStates = Cell::kStates;
  using In = SequenceIn<T, kStates>;
  using Out = SequenceOut<T, kStates>;
  static constexpr std::uint64_t kDefaultSeed = 0x7265637572ULL;

  /// Parameters ~ U(-1/sqrt(H), 1/sqrt(H)) drawn from `seed` (PyTorch's default
  /// initialisation); dropout masks use a stream derived from the same seed.
  explicit Model(const RecurrentOptions& options, std::uint64_t seed = kDefaultSeed,
                 const Cell& cell = Cell());

  const RecurrentOptions& options() const { return options_; }
  /// The cell every layer runs (the same object in each: a cell's options, e.g. RNN's
  /// nonlinearity, are the model's).
  const Cell& cell() const { return cell_; }
  Index input_size() const { return options_.input_size; }
  Index hidden_size() const { return options_.hidden_size; }
  Index proj_size() const { return options_.proj_size; }
  Index num_directions() const { return options_.bidirectional ? 2 : 1; }
  /// The width of h (hidden_size, or proj_size) and of c (hidden_size).
  Index state_size(Index s) const {
    return s == 0 && options_.proj_size > 0 ? options_.proj_size : options_.hidden_size;
  }
  Index output_size() const { return num_directions() * state_size(0); }
  Index state_slots() const { return options_.num_layers * num_directions(); }

  /// PyTorch's names and order: weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0,
  /// then the `_reverse` four, then layer 1, ...
  std::vector<Parameter<T>> named_parameters();
  void zero_grad();
  /// The state of the generator of the between-layer dropout masks (see Stack::rng_state).
  std::string rng_state() const;
  void set_rng_state(const std::string& state);
  /// Recurrent dropout (RecurrentOptions::recurrent_dropout): while held, training forwards
  /// reuse the current masks — the chunks of the same sequences in truncated BPTT get one
  /// mask per sequence; released (the default), each training forward draws new ones.
  void hold_recurrent_dropout_masks(bool hold);
  std::size_t workspace_bytes() const;

  void forward_rows(const In& in, const Out& out, bool training);
  void backward_rows(const In& d_out, const Out& d_in);

 private:
  using Uni = Stack<Recurrent<Cell>>;
  using Bi = Stack<Bidirectional<Cell>>;

  static std::variant<Uni, Bi> make_stack(const RecurrentOptions& o, std::uint64_t seed,
                                          const Cell& cell);

  RecurrentOptions options_;
  Cell cell_;
  std::variant<Uni, Bi> stack_;
};

// The members that reach the layers are defined out of the class: under the compiled mode
// (recur/compiled.hpp) a user's translation unit declares them `extern template` and does not
// instantiate them (an in-class member is inline and would be instantiated anyway).
template <class Cell>
Model<Cell>::Model(const RecurrentOptions& options, std::uint64_t seed, const Cell& cell)
    : options_(detail::validated_options(options, Cell::kGates, kStates, sizeof(T))),
      cell_(cell),
      stack_(make_stack(options_, seed, cell)) {
  std::mt19937_64 rng(seed);
  std::visit([&](auto& s) { s.reset_parameters(rng); }, stack_);
}
template <class Cell>
std::vector<Parameter<typename Cell::Scalar>> Model<Cell>::named_parameters() {
  return std::visit([](auto& s) { return s.named_parameters(); }, stack_);
}
template <class Cell>
void Model<Cell>::zero_grad() {
  std::visit([](auto& s) { s.zero_grad(); }, stack_);
}
template <class Cell>
std::string Model<Cell>::rng_state() const {
  return std::visit([](const auto& s) { return s.rng_state(); }, stack_);
}
template <class Cell>
void Model<Cell>::set_rng_state(const std::string& state) {
  std::visit([&](auto& s) { s.set_rng_state(state); }, stack_);
}
template <class Cell>
void Model<Cell>::hold_recurrent_dropout_masks(bool hold) {
  std::visit([&](auto& s) { s.hold_recurrent_dropout_masks(hold); }, stack_);
}
template <class Cell>
std::size_t Model<Cell>::workspace_bytes() const {
  return std::visit([](const auto& s) { return s.workspace_bytes(); }, stack_);
}
template <class Cell>
void Model<Cell>::forward_rows(const In& in, const Out& out, bool training) {
  std::visit([&](auto& s) { s.forward_rows(in, out, training); }, stack_);
}
template <class Cell>
void Model<Cell>::backward_rows(const In& d_out, const Out& d_in) {
  std::visit([&](auto& s) { s.backward_rows(d_out, d_in); }, stack_);
}

template <class Cell>
auto Model<Cell>::make_stack(const RecurrentOptions& o, std::uint64_t seed, const Cell& cell)
    -> std::variant<Uni, Bi> {
  const std::uint64_t dropout_seed = seed ^ 0x9e3779b97f4a7c15ULL;
  const Index out = o.proj_size > 0 ? o.proj_size : o.hidden_size;  // one direction's output
  if (o.bidirectional) {
    std::vector<Bidirectional<Cell>> layers;
    for (Index l = 0; l < o.num_layers; ++l)
      layers.emplace_back(l == 0 ? o.input_size : 2 * out, o.hidden_size, cell, o.proj_size);
    Bi stack(std::move(layers), o.dropout, dropout_seed);
    if (o.recurrent_dropout > 0) stack.set_recurrent_dropout(o.recurrent_dropout, seed ^ 0x72647270ULL);
    return stack;
  }
  std::vector<Recurrent<Cell>> layers;
  for (Index l = 0; l < o.num_layers; ++l)
    layers.emplace_back(l == 0 ? o.input_size : out, o.hidden_size, Direction::Forward, cell,
                        o.proj_size);
  Uni stack(std::move(layers), o.dropout, dropout_seed);
  if (o.recurrent_dropout > 0) stack.set_recurrent_dropout(o.recurrent_dropout, seed ^ 0x72647270ULL);
  return stack;
}

// Each model builds its cell from the options: the nonlinearity and the variants
// (RecurrentOptions: cell_clip, peephole, linear_before_reset); a variant the cell does not
// have is rejected with std::invalid_argument.
template <class T>
class RNN : public Model<RNNCell<T>> {
 public:
  explicit RNN(const RecurrentOptions& options,
               std::uint64_t seed = Model<RNNCell<T>>::kDefaultSeed)
      : Model<RNNCell<T>>(options, seed, RNNCell<T>(options)) {}
};

template <class T>
class LSTM : public Model<LSTMCell<T>> {
 public:
  explicit LSTM(const RecurrentOptions& options,
                std::uint64_t seed = Model<LSTMCell<T>>::kDefaultSeed)
      : Model<LSTMCell<T>>(options, seed, LSTMCell<T>(options)) {}
};

template <class T>
class GRU : public Model<GRUCell<T>> {
 public:
  explicit GRU(const RecurrentOptions& options,
               std::uint64_t seed = Model<GRUCell<T>>::kDefaultSeed)
      : Model<GRUCell<T>>(options, seed, GRUCell<T>(options)) {}
};

}  // namespace recur
