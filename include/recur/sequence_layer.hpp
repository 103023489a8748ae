// The layer interface every recurrent module shares (Recurrent, Bidirectional, Stack and the
// models RNN/LSTM/GRU), in two levels:
//
//   tensors  SequenceLayer<Derived>::forward(x, initial, lengths) -> {output, final state}
//            SequenceLayer<Derived>::backward(d_output, d_state)   -> {d x, d initial state}
//            shapes validated, results allocated, the input kept for backward;
//   rows     Derived::forward_rows(SequenceIn in, SequenceOut out, bool training)
//            Derived::backward_rows(SequenceIn d_out, SequenceOut d_in)
//            where the work happens, on row views of caller-owned memory: nothing allocated
//            once warm. Layers call each other at this level (a Stack hands each layer's
//            output rows to the next), and so can a user who owns their buffers.
//
// Mode: training mode (the default) keeps what backward needs and applies dropout; eval mode
// keeps nothing. Each backward consumes the caches of one training forward.
#pragma once

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

#include "recur/detail/check.hpp"
#include "recur/threads.hpp"
#include "recur/types.hpp"

namespace recur {

/// The train/eval switch shared by every layer (recurrent layers and the toolkit's).
class Mode {
 public:
  void train(bool on = true) {
    training_ = on;
    has_forward_ = false;
  }
  void eval() { train(false); }
  bool training() const { return training_; }

 protected:
  // Each backward calls check_backward first and clears has_forward_ once its own arguments
  // are validated (a rejected call keeps the caches).
  void check_backward(const char* what) {
    if (!has_forward_)
      throw std::logic_error(std::string(what) +
                             ": needs a forward() in training mode first (eval-mode "
                             "forwards keep no caches, and each backward consumes the caches of "
                             "one forward)");
  }
  bool training_ = true;
  bool has_forward_ = false;
};

/// The input side of the row API: a sequence batch as rows and a state. Forward: the input x
/// and the initial state; backward: d loss / d output and d loss / d final state, with the
/// forward's batch and steps (the lengths are the forward's; backward ignores them).
template <class T, Index K>
struct SequenceIn {
  ConstRows<T> rows;               // [batch * steps, features], row b * steps + t (any stride)
  Index batch = 0, steps = 0;
  const Index* lengths = nullptr;  // one per sample in [0, steps], or null (all full)
  std::array<const T*, K> state{};  // h (, c): each [slots, batch, H] or null (zeros)

  /// The same sequence, columns [first, first + count) of the rows.
  SequenceIn columns(Index first, Index count) const {
    return {ConstRows<T>(rows.data() + first, rows.rows(), count,
                         Eigen::OuterStride<>(rows.outerStride())),
            batch, steps, lengths, state};
  }
  /// The same rows, the state pointers moved `offset` values on (the slots of one layer);
  /// or each by its own offset (states of different widths).
  SequenceIn state_at(Index offset) const {
    return {rows, batch, steps, lengths, shifted(state, offset)};
  }
  SequenceIn state_at(const std::array<Index, K>& offsets) const {
    return {rows, batch, steps, lengths, shifted(state, offsets)};
  }
  /// The same state and lengths with other rows.
  SequenceIn with_rows(ConstRows<T> r) const { return {r, batch, steps, lengths, state}; }

  template <class P>
  static std::array<P, K> shifted(const std::array<P, K>& p, Index by) {
    std::array<P, K> q = p;
    for (auto& e : q)
      if (e) e += by;
    return q;
  }
  template <class P>
  static std::array<P, K> shifted(const std::array<P, K>& p, const std::array<Index, K>& by) {
    std::array<P, K> q = p;
    for (std::size_t k = 0; k < q.size(); ++k)
      if (q[k]) q[k] += by[k];
    return q;
  }
};

/// The output side of the row API. Forward: the output and the final state; backward:
/// d loss / d x (assigned, or added with accumulate) and d loss / d initial state.
template <class T, Index K>
struct SequenceOut {
  // [batch * steps, features] (any stride); null data: not wanted. A view: writable through
  // a const SequenceOut as well (mutable), as a pointer would be.
  mutable Rows<T> rows;
  std::array<T*, K> state{};  // each [slots, batch, H] or null (not wanted)
  bool accumulate = false;    // backward: d x += instead of =

  SequenceOut columns(Index first, Index count) const {
    return {Rows<T>(rows.data() + first, rows.rows(), count,
                    Eigen::OuterStride<>(rows.outerStride())),
            state, accumulate};
  }
  SequenceOut state_at(Index offset) const {
    return {rows, SequenceIn<T, K>::shifted(state, offset), accumulate};
  }
  SequenceOut state_at(const std::array<Index, K>& offsets) const {
    return {rows, SequenceIn<T, K>::shifted(state, offsets), accumulate};
  }
  SequenceOut with_rows(Rows<T> r, bool acc) const { return {r, state, acc}; }
};

/// The tensor-level forward/backward of a layer whose Derived class provides the row API and
/// input_size(), output_size(), state_slots() and state_size(s) (the width of state s: h is
/// hidden_size, or proj_size with a projection; c is hidden_size). K: state tensors (2: LSTM).
template <class Derived, class T, Index K>
class SequenceLayer : public Mode {
 public:
  using In = SequenceIn<T, K>;
  using Out = SequenceOut<T, K>;

  /// x: [batch, time, input_size]; initial.h (and .c for LSTM): [slots, batch, hidden] or
  /// empty (zeros), slots = num_layers * directions; lengths: empty or one per sample in
  /// [0, time]. Returns the output [batch, time, output_size] and the final state.
  Output<T> forward(const Tensor3<T>& x, const State<T>& initial = {},
                    const std::vector<Index>& lengths = {});

  /// After a training-mode forward: d_output [batch, time, output_size], d_state (the
  /// gradient of the loss w.r.t. the final state; empty = zero). Adds the parameter
  /// gradients and returns d loss / d x and d loss / d initial state.
  Gradients<T> backward(const Tensor3<T>& d_output, const State<T>& d_state = {});

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }

  // The state tensors as the row API's pointers (an empty tensor: null).
  static std::array<const T*, K> pointers(const State<T>& s) {
    std::array<const T*, K> p{};
    p[0] = s.h.size() ? s.h.data() : nullptr;
    if constexpr (K == 2) p[1] = s.c.size() ? s.c.data() : nullptr;
    return p;
  }
  static std::array<T*, K> pointers(State<T>& s) {
    std::array<T*, K> p{};
    p[0] = s.h.data();
    if constexpr (K == 2) p[1] = s.c.data();
    return p;
  }

  static void check_one(const Tensor3<T>& s, const char* what, Index slots, Index B, Index H) {
    if (s.size() == 0) return;
    detail::require(s.dimension(0) == slots && s.dimension(1) == B && s.dimension(2) == H, what,
                    " is ", detail::dims_str(s.dimensions()), " but must be ",
                    detail::shape_str({slots, B, H}),
                    " ([num_layers * directions, batch, hidden]) or empty");
  }
  static void check_state(const State<T>& s, const char* what, Index slots, Index B, Index H,
                          Index HC) {
    const std::string name(what);
    check_one(s.h, (name + ".h").c_str(), slots, B, H);
    if constexpr (K == 2) {
      check_one(s.c, (name + ".c").c_str(), slots, B, HC);
    } else {
      detail::require(s.c.size() == 0, name, ".c is ", detail::dims_str(s.c.dimensions()),
                      " but this cell has no cell state c; leave it empty");
    }
  }

  Tensor3<T> x_;
  Index batch_ = 0, steps_ = 0;
  detail::UseFlag in_use_;
};

// forward and backward are defined out of the class: under the compiled mode
// (recur/compiled.hpp) a user's translation unit does not instantiate them.
template <class Derived, class T, Index K>
Output<T> SequenceLayer<Derived, T, K>::forward(const Tensor3<T>& x, const State<T>& initial,
                                                const std::vector<Index>& lengths) {
  const detail::UseFlag::Hold hold(in_use_, "forward");
  Derived& self = derived();
  const Index B = x.dimension(0), S = x.dimension(1), F = x.dimension(2);
  const Index slots = self.state_slots(), H = self.state_size(0), O = self.output_size();
  const Index HC = self.state_size(K - 1);
  detail::require(B > 0 && S > 0, "forward: empty input ", detail::dims_str(x.dimensions()),
                  "; batch and time must be at least 1");
  detail::require(F == self.input_size(), "forward: input has ", F,
                  " features but the layer expects input_size = ", self.input_size(),
                  " (x is ", detail::dims_str(x.dimensions()), ")");
  check_state(initial, "initial", slots, B, H, HC);
  detail::require(lengths.empty() || static_cast<Index>(lengths.size()) == B, "forward: got ",
                  lengths.size(), " lengths for a batch of ", B, " (x is ",
                  detail::dims_str(x.dimensions()), ")");
  for (std::size_t b = 0; b < lengths.size(); ++b)
    detail::require(lengths[b] >= 0 && lengths[b] <= S, "forward: lengths[", b, "] = ",
                    lengths[b], " is outside [0, ", S, "] (x is ",
                    detail::dims_str(x.dimensions()), ")");

  const T* xdata = x.data();
  if (training_) {
    x_ = x;  // kept for the weight gradient of backward()
    xdata = x_.data();
  }
  Output<T> out;
  out.output.resize(B, S, O);
  out.state.h.resize(slots, B, H);
  if constexpr (K == 2) out.state.c.resize(slots, B, HC);
  has_forward_ = false;
  self.forward_rows(In{ConstRows<T>(xdata, B * S, F, Eigen::OuterStride<>(F)), B, S,
                       lengths.empty() ? nullptr : lengths.data(), pointers(initial)},
                    Out{Rows<T>(out.output.data(), B * S, O, Eigen::OuterStride<>(O)),
                        pointers(out.state)},
                    training_);
  has_forward_ = training_;
  batch_ = B;
  steps_ = S;
  return out;
}

template <class Derived, class T, Index K>
Gradients<T> SequenceLayer<Derived, T, K>::backward(const Tensor3<T>& d_output,
                                                    const State<T>& d_state) {
  const detail::UseFlag::Hold hold(in_use_, "backward");
  Derived& self = derived();
  check_backward("backward");
  const Index B = batch_, S = steps_, slots = self.state_slots(), H = self.state_size(0);
  const Index HC = self.state_size(K - 1);
  const Index O = self.output_size(), F = self.input_size();
  detail::require(d_output.dimension(0) == B && d_output.dimension(1) == S &&
                      d_output.dimension(2) == O,
                  "backward: d_output is ", detail::dims_str(d_output.dimensions()),
                  " but the forward's output is ", detail::shape_str({B, S, O}));
  check_state(d_state, "d_state", slots, B, H, HC);
  has_forward_ = false;
  Gradients<T> g;
  g.input.resize(B, S, F);
  g.state.h.resize(slots, B, H);
  if constexpr (K == 2) g.state.c.resize(slots, B, HC);
  self.backward_rows(In{ConstRows<T>(d_output.data(), B * S, O, Eigen::OuterStride<>(O)), B,
                        S, nullptr, pointers(d_state)},
                     Out{Rows<T>(g.input.data(), B * S, F, Eigen::OuterStride<>(F)),
                         pointers(g.state)});
  return g;
}

}  // namespace recur
