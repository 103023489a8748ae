// SequenceLayer<Derived>: the tensor-level API shared by Recurrent, Bidirectional, Stack and the
// models. It validates shapes, owns the copy of the input a training forward keeps for
// backward, allocates the results and calls the layer's row-view API (forward_rows /
// backward_rows), which is where the work happens.
#pragma once

#include <array>
#include <stdexcept>
#include <vector>

#include "recur/detail/check.hpp"
#include "recur/detail/mode.hpp"
#include "recur/types.hpp"

namespace recur {

template <class Derived, class T, Index K>
class SequenceLayer : public detail::Mode {
 public:
  /// x: [batch, time, input_size]; initial.h (and .c for LSTM): [slots, batch, hidden] or
  /// empty (zeros), slots = num_layers * directions; lengths: empty or one per sample in
  /// [0, time]. Returns the output [batch, time, output_size] and the final state.
  Output<T> forward(const Tensor3<T>& x, const State<T>& initial = {},
                    const std::vector<Index>& lengths = {}) {
    Derived& self = derived();
    const Index B = x.dimension(0), S = x.dimension(1), F = x.dimension(2);
    const Index slots = self.state_slots(), H = self.hidden_size(), O = self.output_size();
    detail::require(B > 0 && S > 0, "forward: empty input ", detail::dims_str(x.dimensions()),
                    "; batch and time must be at least 1");
    detail::require(F == self.input_size(), "forward: input has ", F,
                    " features but the layer expects input_size = ", self.input_size(),
                    " (x is ", detail::dims_str(x.dimensions()), ")");
    check_state(initial, "initial", slots, B, H);
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
    if constexpr (K == 2) out.state.c.resize(slots, B, H);
    std::array<const T*, K> init{};
    std::array<T*, K> fin{};
    init[0] = initial.h.size() ? initial.h.data() : nullptr;
    fin[0] = out.state.h.data();
    if constexpr (K == 2) {
      init[1] = initial.c.size() ? initial.c.data() : nullptr;
      fin[1] = out.state.c.data();
    }
    has_forward_ = false;
    self.forward_rows(ConstRows<T>(xdata, B * S, F, Eigen::OuterStride<>(F)), B, S,
                      lengths.empty() ? nullptr : lengths.data(), init,
                      Rows<T>(out.output.data(), B * S, O, Eigen::OuterStride<>(O)), fin,
                      training_);
    has_forward_ = training_;
    batch_ = B;
    steps_ = S;
    return out;
  }

  /// After a training-mode forward: d_output [batch, time, output_size], d_state (the
  /// gradient of the loss w.r.t. the final state; empty = zero). Adds the parameter
  /// gradients and returns d loss / d x and d loss / d initial state.
  Gradients<T> backward(const Tensor3<T>& d_output, const State<T>& d_state = {}) {
    Derived& self = derived();
    check_backward("backward");
    const Index B = batch_, S = steps_, slots = self.state_slots(), H = self.hidden_size();
    const Index O = self.output_size(), F = self.input_size();
    detail::require(d_output.dimension(0) == B && d_output.dimension(1) == S &&
                        d_output.dimension(2) == O,
                    "backward: d_output is ", detail::dims_str(d_output.dimensions()),
                    " but the forward's output is ", detail::shape_str({B, S, O}));
    check_state(d_state, "d_state", slots, B, H);
    has_forward_ = false;
    Gradients<T> g;
    g.input.resize(B, S, F);
    g.state.h.resize(slots, B, H);
    if constexpr (K == 2) g.state.c.resize(slots, B, H);
    std::array<const T*, K> dfin{};
    std::array<T*, K> dinit{};
    dfin[0] = d_state.h.size() ? d_state.h.data() : nullptr;
    dinit[0] = g.state.h.data();
    if constexpr (K == 2) {
      dfin[1] = d_state.c.size() ? d_state.c.data() : nullptr;
      dinit[1] = g.state.c.data();
    }
    self.backward_rows(ConstRows<T>(d_output.data(), B * S, O, Eigen::OuterStride<>(O)), dfin,
                       Rows<T>(g.input.data(), B * S, F, Eigen::OuterStride<>(F)), false, dinit);
    return g;
  }

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }

  static void check_one(const Tensor3<T>& s, const char* what, Index slots, Index B, Index H) {
    if (s.size() == 0) return;
    detail::require(s.dimension(0) == slots && s.dimension(1) == B && s.dimension(2) == H, what,
                    " is ", detail::dims_str(s.dimensions()), " but must be ",
                    detail::shape_str({slots, B, H}),
                    " ([num_layers * directions, batch, hidden]) or empty");
  }
  static void check_state(const State<T>& s, const char* what, Index slots, Index B, Index H) {
    const std::string name(what);
    check_one(s.h, (name + ".h").c_str(), slots, B, H);
    if constexpr (K == 2) {
      check_one(s.c, (name + ".c").c_str(), slots, B, H);
    } else {
      detail::require(s.c.size() == 0, name, ".c is ", detail::dims_str(s.c.dimensions()),
                      " but this cell has no cell state c; leave it empty");
    }
  }

  Tensor3<T> x_;
  Index batch_ = 0, steps_ = 0;
};

}  // namespace recur
