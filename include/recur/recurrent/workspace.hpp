// Workspace<T>: every buffer a recurrent layer computes in, sized on first use and reused (no
// allocation once warm). The caches a training forward keeps for backward, and scratch.
// Depends on the scalar type only.
#pragma once

#include <cstddef>

#include "recur/detail/check.hpp"
#include "recur/types.hpp"

namespace recur::detail {

template <class T>
struct Workspace {
  // Caches kept from a training forward for backward (N = B*T rows, row b*T + t):
  Buffer<T> gates;  // [N, G*H]: A, then the cell's cache (activations), then dA; or [B, G*H]
                    // (an inference that takes A one step at a time)
  Buffer<T> extra;  // [N, E*H] (training) or [B, E*H] (inference): the cell's extra cache
  Buffer<T> prev;   // K x [N, H]: the state each step started from (h: [N, R], R <= H)
  Buffer<T> m;      // projection: [N, H] (training) or [B, H]: the cell's output before W_hr
  Buffer<T> hd;     // recurrent dropout: [N, R] the masked h each step's product read
  Buffer<T> mask;   // recurrent dropout: [B, R] the masks (0 or 1 / (1 - p))
  Buffer<T> dhd;    // recurrent dropout: [B, R] d of the masked h of a step
  // Scratch:
  Buffer<T> r;       // [B, G*H]: R of the current step
  Buffer<T> state;   // 2 x K x [B, H]: current and next state
  Buffer<T> dr;      // [N, G*H]: dR, for cells whose dR differs from dA
  Buffer<T> dstate;  // 3 x K x [B, H]: d current and d next state, and d state kept aside
  Buffer<T> dproj;   // projection: [N, P] d loss / d h of every step (for dW_hr), then
                     // 2 x [B, H]: d m of the step and the cell's (unused) direct d m
  Buffer<T> unit_scratch;  // batch 1 split by units: A, R, extra of one step
  Buffer<T> unit_weights;  // and W_hh, b_hh in the threads' gate blocks
  Buffer<T> input;         // [N, in]: the input with non-finite padding zeroed (rarely used)
  Buffer<T> cell_grads;    // per thread: the cell's parameter gradients, summed after the loop

  /// Sizes for a forward over B samples x S steps of a cell with G gates, K states and E
  /// extra columns (units of H); `one_step`: A for one step only.
  void for_forward(Index B, Index S, Index G, Index K, Index E, Index H, bool training,
                   Index P = 0, bool one_step = false) {
    const Index N = B * S;
    if (P > 0) grow(m, static_cast<std::size_t>((training ? N : B) * H));
    checked_count("Recurrent: caches [batch * steps, (gates + states + extra) * hidden]",
                  {N, (G + K + E) * H}, sizeof(T));
    grow(gates, static_cast<std::size_t>((one_step ? B : N) * G * H));
    grow(r, static_cast<std::size_t>(B * G * H));
    grow(state, static_cast<std::size_t>(2 * K * B * H));
    grow(extra, static_cast<std::size_t>((training ? N : B) * E * H));
    if (training) grow(prev, static_cast<std::size_t>(K * N * H));
  }
  void for_backward(Index B, Index S, Index G, Index K, Index H, bool separate_dr, Index P = 0) {
    grow(dstate, static_cast<std::size_t>(3 * K * B * H));
    if (P > 0) grow(dproj, static_cast<std::size_t>(B * S * P + 2 * B * H));
    if (separate_dr) grow(dr, static_cast<std::size_t>(B * S * G * H));
  }
  void for_units(Index G, Index E, Index H, bool weights) {
    grow(unit_scratch, static_cast<std::size_t>(2 * G * H + E * H));
    if (weights) grow(unit_weights, static_cast<std::size_t>(G * H * H + G * H));
  }

  std::size_t bytes() const {
    return sizeof(T) * (gates.capacity() + extra.capacity() + prev.capacity() + m.capacity() +
                        hd.capacity() + mask.capacity() + dhd.capacity() +
                        dproj.capacity() + r.capacity() +
                        state.capacity() + dr.capacity() + dstate.capacity() +
                        unit_scratch.capacity() + unit_weights.capacity() + input.capacity() +
                        cell_grads.capacity());
  }
};

}  // namespace recur::detail
