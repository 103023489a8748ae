// Stream<Model>: run a unidirectional model one time step at a time (sampling, streaming
// inference), keeping the state inside. After the first step nothing is allocated; each
// step's output equals that time step of a whole-sequence forward (eval mode) from the same
// initial state, up to rounding (the input projection is a GEMM over B rows instead of B*T:
// at most an ulp apart, tested).
//
//   recur::Stream<recur::LSTM<float>> stream(lstm, /*batch=*/1);
//   for (...) { auto h = stream.step(x_t); ... }        // x_t [batch, input] -> h [batch, H]
//
// Works with RNN/LSTM/GRU (and any layer with the forward_rows API: Recurrent, Stack, ...).
// Bidirectional models cannot stream (their reverse direction needs the future).
#pragma once

#include <algorithm>
#include <array>

#include "recur/detail/check.hpp"
#include "recur/sequence_layer.hpp"
#include "recur/types.hpp"

namespace recur {

template <class Model>
class Stream {
 public:
  using T = typename Model::Scalar;
  static constexpr Index kStates = Model::kStates;

  Stream(Model& model, Index batch) : model_(model), batch_(batch) {
    detail::require(batch > 0, "Stream: batch must be positive, got ", batch);
    detail::require(model.output_size() == model.hidden_size(),
                    "Stream: bidirectional models cannot run one step at a time");
    const Index n = model.state_slots() * batch * model.hidden_size();
    for (auto& side : state_)
      for (auto& s : side) s.assign(static_cast<std::size_t>(n), T(0));
    out_.assign(static_cast<std::size_t>(batch * model.output_size()), T(0));
  }

  Index batch() const { return batch_; }

  /// Zero state (the start of a sequence).
  void reset() {
    for (auto& side : state_)
      for (auto& s : side) std::fill(s.begin(), s.end(), T(0));
  }

  /// Sets the state: h (and c for LSTM) [num_layers, batch, hidden], as forward() returns it;
  /// an empty tensor means zeros.
  void set_state(const State<T>& s) {
    const Tensor3<T>* parts[2] = {&s.h, &s.c};
    for (Index k = 0; k < kStates; ++k) {
      auto& dst = state_[cur_][static_cast<std::size_t>(k)];
      const Tensor3<T>& src = *parts[k];
      if (src.size() == 0) {
        std::fill(dst.begin(), dst.end(), T(0));
        continue;
      }
      detail::require(src.dimension(0) == model_.state_slots() && src.dimension(1) == batch_ &&
                          src.dimension(2) == model_.hidden_size(),
                      "Stream::set_state: ", k == 0 ? "h" : "c", " is ",
                      detail::dims_str(src.dimensions()), " but must be ",
                      detail::shape_str({model_.state_slots(), batch_, model_.hidden_size()}));
      std::copy(src.data(), src.data() + src.size(), dst.begin());
    }
  }

  /// The current state, as forward() returns it.
  State<T> state() const {
    State<T> s;
    s.h.resize(model_.state_slots(), batch_, model_.hidden_size());
    std::copy(state_[cur_][0].begin(), state_[cur_][0].end(), s.h.data());
    if constexpr (kStates == 2) {
      s.c.resize(model_.state_slots(), batch_, model_.hidden_size());
      std::copy(state_[cur_][1].begin(), state_[cur_][1].end(), s.c.data());
    }
    return s;
  }

  /// One time step: x [batch, input_size] -> the output [batch, output_size] (a view valid
  /// until the next step). The model runs in eval mode (no dropout, no caches).
  ConstRows<T> step(ConstRows<T> x) {
    detail::require(x.rows() == batch_ && x.cols() == model_.input_size(), "Stream::step: x is [",
                    x.rows(), ", ", x.cols(), "] but must be ",
                    detail::shape_str({batch_, model_.input_size()}));
    SequenceIn<T, kStates> in{x, batch_, 1, nullptr, {}};
    const Index O = model_.output_size();
    SequenceOut<T, kStates> out{Rows<T>(out_.data(), batch_, O, Eigen::OuterStride<>(O)), {}};
    for (std::size_t k = 0; k < static_cast<std::size_t>(kStates); ++k) {
      in.state[k] = state_[cur_][k].data();
      out.state[k] = state_[1 - cur_][k].data();
    }
    model_.forward_rows(in, out, false);
    cur_ = 1 - cur_;
    return ConstRows<T>(out_.data(), batch_, O, Eigen::OuterStride<>(O));
  }
  ConstRows<T> step(const T* x) {
    const Index I = model_.input_size();
    return step(ConstRows<T>(x, batch_, I, Eigen::OuterStride<>(I)));
  }

 private:
  Model& model_;
  Index batch_;
  std::array<std::array<detail::Buffer<T>, 2>, 2> state_;  // [current/next][h, c]
  detail::Buffer<T> out_;
  std::size_t cur_ = 0;
};

}  // namespace recur
