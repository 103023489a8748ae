// Stack<Layer>: layers applied one after the other; the output sequence of layer l is the
// input of layer l + 1, with optional (inverted) dropout between layers in training mode, as
// PyTorch's `dropout` argument. Layer is Recurrent<Cell> or Bidirectional<Cell> (or any type
// with the same row-view API). States are [L * D, B, H]: layer l owns slots l*D .. l*D+D-1.
#pragma once

#include <array>

#include <cstdint>
#include <new>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "recur/bidirectional.hpp"
#include "recur/detail/dropout.hpp"
#include "recur/recurrent.hpp"

namespace recur {

template <class Layer>
class Stack : public SequenceLayer<Stack<Layer>, typename Layer::Scalar, Layer::kStates> {
 public:
  using Scalar = typename Layer::Scalar;
  using T = Scalar;
  using CellType = typename Layer::CellType;
  static constexpr Index kStates = Layer::kStates;
  using In = SequenceIn<T, kStates>;
  using Out = SequenceOut<T, kStates>;

  /// dropout: probability in [0, 1] of zeroing an element of each layer's output except the
  /// last, in training mode; seed: of the dropout masks.
  explicit Stack(std::vector<Layer> layers, double dropout = 0.0, std::uint64_t seed = 0)
      : layers_(std::move(layers)), dropout_(dropout), rng_(seed) {
    detail::require(!layers_.empty(), "Stack: needs at least one layer");
    detail::require(dropout >= 0.0 && dropout <= 1.0, "Stack: dropout = ", dropout,
                    " is outside [0, 1]");
    for (std::size_t l = 1; l < layers_.size(); ++l)
      detail::require(layers_[l].input_size() == layers_[l - 1].output_size(), "Stack: layer ", l,
                      " expects input_size = ", layers_[l].input_size(), " but layer ", l - 1,
                      " outputs ", layers_[l - 1].output_size(), " features");
    for (std::size_t l = 1; l < layers_.size(); ++l)
      detail::require(layers_[l].hidden_size() == layers_[0].hidden_size() &&
                          layers_[l].state_size(0) == layers_[0].state_size(0) &&
                          layers_[l].state_slots() == layers_[0].state_slots(),
                      "Stack: every layer must have the same hidden size and directions "
                      "(states are [layers * directions, batch, hidden])");
    buffers_.resize(layers_.size() - 1);
    masks_.resize(layers_.size() - 1);
  }

  Index num_layers() const { return static_cast<Index>(layers_.size()); }
  Layer& layer(Index l) { return layers_[static_cast<std::size_t>(l)]; }
  const Layer& layer(Index l) const { return layers_[static_cast<std::size_t>(l)]; }
  /// The cell of the layers (each layer has its own copy; recur's models give all the same).
  const CellType& cell() const { return layers_.front().cell(); }
  Index input_size() const { return layers_.front().input_size(); }
  Index hidden_size() const { return layers_.front().hidden_size(); }
  Index output_size() const { return layers_.back().output_size(); }
  Index state_size(Index s) const { return layers_.front().state_size(s); }
  Index state_slots() const { return num_layers() * layers_.front().state_slots(); }
  double dropout() const { return dropout_; }
  /// The dropout generators' state as text, to save with a checkpoint and restore on resume:
  /// the between-layer dropout's, then (`|`-separated) each layer's recurrent dropout's.
  std::string rng_state() const {
    std::string s = detail::rng_state(rng_);
    std::vector<std::string> layers;
    for (const auto& l : layers_) l.recurrent_dropout_states(layers);
    for (const auto& p : layers) s += "|" + p;
    return s;
  }
  void set_rng_state(const std::string& state) {
    std::vector<std::string> parts;
    std::size_t from = 0;
    for (std::size_t bar; (bar = state.find('|', from)) != std::string::npos; from = bar + 1)
      parts.push_back(state.substr(from, bar - from));
    parts.push_back(state.substr(from));
    std::mt19937_64 rng;
    detail::set_rng_state(rng, parts[0]);
    std::size_t at = 1;
    for (auto& l : layers_) at = l.set_recurrent_dropout_states(parts, at);
    detail::require(at == parts.size(), "set_rng_state: ", parts.size() - 1,
                    " recurrent dropout states for ", at - 1, " layers that drop");
    rng_ = rng;
  }

  /// Recurrent dropout in every layer (Recurrent::set_recurrent_dropout), each its own masks.
  void set_recurrent_dropout(double p, std::uint64_t seed) {
    for (std::size_t l = 0; l < layers_.size(); ++l)
      layers_[l].set_recurrent_dropout(p, seed + 0x9e3779b97f4a7c15ULL * (l + 1));
  }
  /// While held, training forwards reuse the masks (truncated BPTT over the same sequences).
  void hold_recurrent_dropout_masks(bool hold) {
    for (auto& l : layers_) l.hold_recurrent_dropout_masks(hold);
  }
  void recurrent_dropout_states(std::vector<std::string>& out) const {
    for (const auto& l : layers_) l.recurrent_dropout_states(out);
  }
  std::size_t set_recurrent_dropout_states(const std::vector<std::string>& in, std::size_t at) {
    for (auto& l : layers_) at = l.set_recurrent_dropout_states(in, at);
    return at;
  }

  /// Parameters of layer l get the suffix `_l{l}` (PyTorch's names).
  std::vector<Parameter<T>> named_parameters() {
    std::vector<Parameter<T>> out;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      auto p = layers_[l].named_parameters("_l" + std::to_string(l));
      out.insert(out.end(), p.begin(), p.end());
    }
    return out;
  }
  /// Deprecated (0.1): named_parameters().
  [[deprecated("use named_parameters()")]] std::vector<Parameter<T>> parameters() {
    return named_parameters();
  }
  void zero_grad() {
    for (auto& l : layers_) l.zero_grad();
  }
  template <class Rng>
  void reset_parameters(Rng& rng) {
    for (auto& l : layers_) l.reset_parameters(rng);
  }
  std::size_t workspace_bytes() const {
    std::size_t n = 0;
    for (auto& l : layers_) n += l.workspace_bytes();
    for (auto& b : buffers_) n += b.capacity() * sizeof(T);
    for (auto& m : masks_) n += m.capacity() * sizeof(T);
    for (auto& d : dbuffer_) n += d.capacity() * sizeof(T);
    return n;
  }

  void forward_rows(const In& in, const Out& out, bool training) {
    const Index N = in.batch * in.steps;
    const auto per_layer = state_values_per_layer(in.batch);
    dropped_ = training && dropout_ > 0.0;
    ConstRows<T> x = in.rows;  // input of layer l
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const bool last = l + 1 == layers_.size();
      const Index O = layers_[l].output_size();
      if (!last) detail::grow(buffers_[l], static_cast<std::size_t>(N * O));
      Rows<T> o = last ? out.rows : detail::rows(buffers_[l].data(), N, O);
      const auto off = times(per_layer, static_cast<Index>(l));
      layers_[l].forward_rows(in.with_rows(x).state_at(off), out.with_rows(o, false).state_at(off),
                              training);
      if (!last && dropped_) apply_dropout(o, masks_[l]);
      new (&x) ConstRows<T>(  // (rebinding a Map: Eigen's documented way)
          o.data(), N, o.cols(), Eigen::OuterStride<>(o.outerStride()));
    }
  }

  void backward_rows(const In& d_out, const Out& d_in) {
    const Index N = d_out.rows.rows();
    const auto per_layer = state_values_per_layer(d_out.batch);
    ConstRows<T> d = d_out.rows;  // d of layer l's output
    for (std::size_t l = layers_.size(); l-- > 0;) {
      const Index I = layers_[l].input_size();
      const auto off = times(per_layer, static_cast<Index>(l));
      // d of this layer's input: the caller's d x for layer 0, else a scratch buffer (two,
      // used in turn, since d is read while the next one is written).
      detail::Buffer<T>& buf = dbuffer_[l % 2];
      if (l > 0) detail::grow(buf, static_cast<std::size_t>(N * I));
      Rows<T> dx = l == 0 ? d_in.rows : detail::rows(buf.data(), N, I);
      layers_[l].backward_rows(d_out.with_rows(d).state_at(off),
                               d_in.with_rows(dx, l == 0 && d_in.accumulate).state_at(off));
      if (l > 0) {
        if (dropped_) dx.array() *= detail::rows(masks_[l - 1].data(), N, I).array();
        new (&d) ConstRows<T>(  // (rebinding)
            dx.data(), N, I, Eigen::OuterStride<>(I));
      }
    }
  }

 private:
  // Values of one layer's D slots of each [L * D, B, width] state: layer l's start at l
  // times it.
  std::array<Index, kStates> state_values_per_layer(Index batch) const {
    std::array<Index, kStates> n{};
    for (Index s = 0; s < kStates; ++s)
      n[static_cast<std::size_t>(s)] = layers_.front().state_slots() * batch * state_size(s);
    return n;
  }
  static std::array<Index, kStates> times(std::array<Index, kStates> a, Index l) {
    for (auto& v : a) v *= l;
    return a;
  }
  void apply_dropout(Rows<T> o, detail::Buffer<T>& mask) {
    const std::size_t n = static_cast<std::size_t>(o.rows() * o.cols());
    detail::grow(mask, n);
    detail::fill_dropout_mask(mask.data(), n, dropout_, rng_);
    o.array() *= detail::rows(mask.data(), o.rows(), o.cols()).array();
  }

  std::vector<Layer> layers_;
  double dropout_;
  std::mt19937_64 rng_;
  std::vector<detail::Buffer<T>> buffers_;  // outputs of layers 0 .. L-2: [B*T, D*H]
  std::vector<detail::Buffer<T>> masks_;    // their dropout masks (0 or 1/(1-p))
  detail::Buffer<T> dbuffer_[2];            // d of the inputs of layers 1 .. L-1
  bool dropped_ = false;
};

}  // namespace recur
