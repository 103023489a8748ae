// Bidirectional<Cell>: a forward and a reverse Recurrent<Cell> over the same input, outputs
// concatenated on the feature axis, forward first: output[b, t] = [h_fwd(t), h_rev(t)].
// States are [2, B, H] (forward, reverse), d x is the sum of both directions' d x.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "recur/recurrent.hpp"

namespace recur {

template <class Cell>
class Bidirectional
    : public SequenceLayer<Bidirectional<Cell>, typename Cell::Scalar, Cell::kStates> {
 public:
  using Scalar = typename Cell::Scalar;
  using T = Scalar;
  using CellType = Cell;
  static constexpr Index kStates = Cell::kStates;
  using In = SequenceIn<T, kStates>;
  using Out = SequenceOut<T, kStates>;

  Bidirectional(Index input_size, Index hidden_size, const Cell& cell = Cell(),
                Index proj_size = 0)
      : fwd_(input_size, hidden_size, Direction::Forward, cell, proj_size),
        rev_(input_size, hidden_size, Direction::Reverse, cell, proj_size) {}

  Index input_size() const { return fwd_.input_size(); }
  Index hidden_size() const { return fwd_.hidden_size(); }
  Index output_size() const { return 2 * fwd_.output_size(); }
  Index state_size(Index s) const { return fwd_.state_size(s); }
  Index state_slots() const { return 2; }
  const Cell& cell() const { return fwd_.cell(); }
  Recurrent<Cell>& forward_layer() { return fwd_; }
  Recurrent<Cell>& reverse_layer() { return rev_; }

  /// PyTorch's names: weight_ih_l0, ..., then weight_ih_l0_reverse, ... (suffix `_l0` by
  /// default; a stack passes `_l{l}`).
  std::vector<Parameter<T>> named_parameters(const std::string& suffix = "_l0") {
    auto p = fwd_.named_parameters(suffix);
    auto r = rev_.named_parameters(suffix + "_reverse");
    p.insert(p.end(), r.begin(), r.end());
    return p;
  }
  /// Deprecated (0.1): named_parameters(suffix); note the default suffix here is "".
  [[deprecated("use named_parameters(suffix)")]] std::vector<Parameter<T>> parameters(
      const std::string& suffix = "") {
    return named_parameters(suffix);
  }
  void zero_grad() {
    fwd_.zero_grad();
    rev_.zero_grad();
  }
  template <class Rng>
  void reset_parameters(Rng& rng) {
    fwd_.reset_parameters(rng);
    rev_.reset_parameters(rng);
  }
  std::size_t workspace_bytes() const { return fwd_.workspace_bytes() + rev_.workspace_bytes(); }

  /// Recurrent dropout in both directions (Recurrent::set_recurrent_dropout), each its own masks.
  void set_recurrent_dropout(double p, std::uint64_t seed) {
    fwd_.set_recurrent_dropout(p, seed);
    rev_.set_recurrent_dropout(p, seed ^ 0x5bd1e995ULL);
  }
  double recurrent_dropout() const { return fwd_.recurrent_dropout(); }
  void hold_recurrent_dropout_masks(bool hold) {
    fwd_.hold_recurrent_dropout_masks(hold);
    rev_.hold_recurrent_dropout_masks(hold);
  }
  void recurrent_dropout_states(std::vector<std::string>& out) const {
    fwd_.recurrent_dropout_states(out);
    rev_.recurrent_dropout_states(out);
  }
  std::size_t set_recurrent_dropout_states(const std::vector<std::string>& in, std::size_t at) {
    return rev_.set_recurrent_dropout_states(in, fwd_.set_recurrent_dropout_states(in, at));
  }

  void forward_rows(const In& in, const Out& out, bool training) {
    const Index H = fwd_.output_size();
    const auto reverse = reverse_offsets(in.batch);
    fwd_.forward_rows(in, out.columns(0, H), training);
    rev_.forward_rows(in.state_at(reverse), out.columns(H, H).state_at(reverse), training);
  }

  void backward_rows(const In& d_out, const Out& d_in) {
    const Index H = fwd_.output_size();
    const auto reverse = reverse_offsets(d_out.batch);
    fwd_.backward_rows(d_out.columns(0, H), d_in);
    // The reverse direction adds its d x to the forward one's.
    rev_.backward_rows(d_out.columns(H, H).state_at(reverse),
                       d_in.state_at(reverse).with_rows(d_in.rows, true));
  }

 private:
  // Where the reverse direction's slot starts in each state ([2, batch, width]).
  std::array<Index, kStates> reverse_offsets(Index batch) const {
    std::array<Index, kStates> o{};
    for (Index s = 0; s < kStates; ++s) o[static_cast<std::size_t>(s)] = batch * state_size(s);
    return o;
  }

  Recurrent<Cell> fwd_, rev_;
};

}  // namespace recur
