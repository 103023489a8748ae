// Bidirectional<Cell>: a forward and a reverse Recurrent<Cell> over the same input, outputs
// concatenated on the feature axis, forward first: output[b, t] = [h_fwd(t), h_rev(t)].
// States are [2, B, H] (forward, reverse), d x is the sum of both directions' d x.
#pragma once

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
  static constexpr Index kStates = Cell::kStates;
  using StatePtrs = std::array<const T*, kStates>;
  using StateOutPtrs = std::array<T*, kStates>;

  Bidirectional(Index input_size, Index hidden_size, const Cell& cell = Cell())
      : fwd_(input_size, hidden_size, Direction::Forward, cell),
        rev_(input_size, hidden_size, Direction::Reverse, cell) {}

  Index input_size() const { return fwd_.input_size(); }
  Index hidden_size() const { return fwd_.hidden_size(); }
  Index output_size() const { return 2 * fwd_.hidden_size(); }
  Index state_slots() const { return 2; }
  Recurrent<Cell>& forward_layer() { return fwd_; }
  Recurrent<Cell>& reverse_layer() { return rev_; }

  std::vector<Parameter<T>> parameters(const std::string& suffix = "") {
    auto p = fwd_.parameters(suffix);
    auto r = rev_.parameters(suffix + "_reverse");
    p.insert(p.end(), r.begin(), r.end());
    return p;
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

  void forward_rows(ConstRows<T> x, Index batch, Index steps, const Index* lengths,
                    const StatePtrs& init, Rows<T> out, const StateOutPtrs& final_state,
                    bool training) {
    const Index H = hidden_size(), BH = batch * H, N = batch * steps;
    bh_ = BH;
    const Eigen::OuterStride<> ld(out.outerStride());
    fwd_.forward_rows(x, batch, steps, lengths, init, Rows<T>(out.data(), N, H, ld), final_state,
                      training);
    rev_.forward_rows(x, batch, steps, lengths, detail::offset(init, BH),
                      Rows<T>(out.data() + H, N, H, ld), detail::offset(final_state, BH), training);
  }

  void backward_rows(ConstRows<T> d_out, const StatePtrs& d_final, Rows<T> d_x, bool accumulate_dx,
                     const StateOutPtrs& d_init) {
    const Index H = hidden_size(), N = d_out.rows();
    const Eigen::OuterStride<> ld(d_out.outerStride());
    fwd_.backward_rows(ConstRows<T>(d_out.data(), N, H, ld), d_final, d_x, accumulate_dx, d_init);
    rev_.backward_rows(ConstRows<T>(d_out.data() + H, N, H, ld), detail::offset(d_final, bh_), d_x,
                       true, detail::offset(d_init, bh_));
  }

 private:
  Recurrent<Cell> fwd_, rev_;
  Index bh_ = 0;  // batch * hidden of the last forward: the offset of the reverse state
};

}  // namespace recur
