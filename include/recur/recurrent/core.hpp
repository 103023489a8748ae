// LayerCore<Cell>: what a recurrent layer owns, in one place for its strategies (the time
// loops in batch_slices.hpp and unit_split.hpp): the cell, the weights, the timeline (step
// order and lengths), the weight products and the workspace; and the row views they share.
#pragma once

#include <algorithm>
#include <random>
#include <array>
#include <utility>

#include "recur/cells/contract.hpp"
#include "recur/recurrent/products.hpp"
#include "recur/recurrent/timeline.hpp"
#include "recur/recurrent/weights.hpp"
#include "recur/recurrent/workspace.hpp"
#include "recur/sequence_layer.hpp"

namespace recur::detail {

// The B rows {b * steps + t} of a [B * steps, cols] row block with leading dimension ld.
template <class T>
Rows<T> step_rows(T* base, Index t, Index batch, Index steps, Index cols, Index ld) {
  return Rows<T>(base + t * ld, batch, cols, Eigen::OuterStride<>(steps * ld));
}
template <class T>
ConstRows<T> step_rows(const T* base, Index t, Index batch, Index steps, Index cols, Index ld) {
  return ConstRows<T>(base + t * ld, batch, cols, Eigen::OuterStride<>(steps * ld));
}
template <class F, std::size_t... I>
auto make_array_impl(F&& f, std::index_sequence<I...>) {
  return std::array<decltype(f(std::size_t{0})), sizeof...(I)>{f(I)...};
}
// std::array{f(0), ..., f(K-1)}: builds arrays of (non default-constructible) Eigen maps.
template <std::size_t K, class F>
auto make_array(F&& f) {
  return make_array_impl(std::forward<F>(f), std::make_index_sequence<K>{});
}

// The cell's backward_step, with its parameters' gradients when it has parameters.
template <class Cell, class A, class P, class E, class D, class O, class T>
void cell_backward(const Cell& cell, A a, A dr, const P& prev, E extra, const D& dnext, O dprev,
                   T* grads) {
  if constexpr (has_cell_parameters<Cell>::value)
    cell.backward_step(a, dr, prev, extra, dnext, dprev, grads);
  else
    cell.backward_step(a, dr, prev, extra, dnext, dprev);
}

template <class Cell>
struct LayerCore {
  using T = typename Cell::Scalar;
  static constexpr Index G = Cell::kGates, K = Cell::kStates;
  using In = SequenceIn<T, K>;
  using Out = SequenceOut<T, K>;
  using States = std::array<T*, K>;

  LayerCore(Index input_size, Index hidden_size, Direction direction, Cell c, Index proj_size = 0)
      : cell(std::move(c)),
        weights(G, input_size, hidden_size, cell_parameters(cell, hidden_size), proj_size),
        time(direction) {
    require(proj_size == 0 || K == 2,
            "Recurrent: proj_size is an LSTM option (the cell's h must reach h' only through "
            "W_hh: its c carries the state), got proj_size=", proj_size, " for a cell with ", K,
            " state");
    require(late() >= 0 && late() < G && extra() >= (late() > 0 ? 1 : 0),
            "Recurrent: the cell's late_gates() = ", late(), " and extra_columns() = ", extra(),
            " do not fit its ", G, " gates (need 0 <= late < gates, extra >= 1 when late > 0)");
  }

  Index hidden() const { return weights.hidden_size(); }
  /// The projection's width P (0: none); the width of state s (h: P or H; c: H).
  Index proj() const { return weights.proj_size(); }
  Index width(Index s) const { return s == 0 ? weights.recurrent_size() : hidden(); }
  Index input() const { return weights.input_size(); }
  /// The cell's extra cache columns (units of H) and late gate blocks (contract.hpp).
  Index extra() const { return extra_columns(cell); }
  Index late() const { return late_gates(cell); }
  /// Points the cell at the parameters it owns (before every call: the layer may have moved).
  void bind() { bind_parameters(cell, weights.cell_values()); }

  // The current and the next state of sample b0 on, in a buffer of 2 x K x [B, H] (the K
  // current states, then the K next ones): what a strategy swaps from step to step.
  // (Each state takes [B, H] of the buffer and rows of its own width(s).)
  std::pair<States, States> state_pair(T* buffer, Index B, Index b0) const {
    const Index H = hidden();
    States cur{}, nxt{};
    for (Index s = 0; s < K; ++s) {
      cur[s] = buffer + s * B * H + b0 * width(s);
      nxt[s] = buffer + (K + s) * B * H + b0 * width(s);
    }
    return {cur, nxt};
  }
  // Rows [b0, b1) of the K states `from` ([B, width(s)] each, or null: zeros) into `to` (at b0).
  void load_states(const std::array<const T*, K>& from, const States& to, Index b0,
                   Index b1) const {
    for (Index s = 0; s < K; ++s) {
      const Index W = width(s);
      if (from[s])
        std::copy(from[s] + b0 * W, from[s] + b1 * W, to[s]);
      else
        std::fill(to[s], to[s] + (b1 - b0) * W, T(0));
    }
  }

  // Row views [B, cols] (cols: H, or a thread's range of units) of the K state pointers.
  std::array<Rows<T>, K> views(const States& p, Index B, Index cols) const {
    return make_array<K>([&](std::size_t s) { return rows<T>(p[s], B, cols); });
  }
  std::array<ConstRows<T>, K> const_views(const States& p, Index B, Index cols) const {
    return make_array<K>(
        [&](std::size_t s) { return rows<T>(static_cast<const T*>(p[s]), B, cols); });
  }

  // Recurrent (variational) dropout: p, its generator, the masks [B, width(0)] of the current
  // sequences (drawn at each training forward unless held), whether this call drops.
  double rdrop = 0.0;
  std::mt19937_64 rdrop_rng{0};
  bool hold_masks = false, masks_ready = false, dropping = false;
  Index mask_batch = 0;

  Cell cell;
  RecurrentWeights<T> weights;
  Timeline time;
  WeightProducts<T> products;
  Workspace<T> ws;
  // The input of the last training forward (kept alive by the caller until backward).
  const T* x = nullptr;
  Index ldx = 0;
  bool cached = false;
};

}  // namespace recur::detail
