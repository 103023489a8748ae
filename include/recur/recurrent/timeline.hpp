// Timeline: which time step comes when, and which samples take part in it. Written once for
// every strategy of Recurrent<Cell>:
//   - step order: a Direction::Forward layer runs t = 0..T-1 forward and T-1..0 backward; a
//     Reverse layer the other way round;
//   - lengths (PyTorch's packed semantics): sample b takes part in the steps t < length[b];
//     at the others its output is 0, its state is carried unchanged, and no gradient flows
//     through the step.
#pragma once

#include <algorithm>
#include <vector>

#include "recur/detail/check.hpp"
#include "recur/types.hpp"

namespace recur::detail {

class Timeline {
 public:
  explicit Timeline(Direction direction = Direction::Forward) : direction_(direction) {}

  Direction direction() const { return direction_; }

  /// A call over `batch` samples of `steps` steps; lengths: one per sample, or null (all full).
  void start(Index batch, Index steps, const Index* lengths) {
    batch_ = batch;
    steps_ = steps;
    lengths_.assign(static_cast<std::size_t>(batch), steps);
    min_length_ = steps;
    if (!lengths) return;
    for (Index b = 0; b < batch; ++b) {
      if (lengths[b] < 0 || lengths[b] > steps)
        fail("Recurrent: lengths[", b, "] = ", lengths[b], " is outside [0, ", steps, "]");
      lengths_[static_cast<std::size_t>(b)] = lengths[b];
      min_length_ = std::min(min_length_, lengths[b]);
    }
  }
  Index batch() const { return batch_; }
  Index steps() const { return steps_; }

  /// The time step t of the k-th step of the forward pass, and of the backward pass.
  Index forward_step(Index k) const {
    return direction_ == Direction::Forward ? k : steps_ - 1 - k;
  }
  Index backward_step(Index k) const {
    return direction_ == Direction::Forward ? steps_ - 1 - k : k;
  }

  /// Sample b takes part in step t.
  bool active(Index b, Index t) const { return t < lengths_[static_cast<std::size_t>(b)]; }
  /// Every sample takes part in step t (the common case, with no per-sample work).
  bool all_active(Index t) const { return t < min_length_; }

 private:
  Direction direction_;
  Index batch_ = 0, steps_ = 0, min_length_ = 0;
  std::vector<Index> lengths_;
};

}  // namespace recur::detail
