// Recurrent<Cell>: one recurrent layer (one direction of one layer of PyTorch's nn.RNN /
// nn.LSTM / nn.GRU). It walks any cell (recur/cells/contract.hpp) over the time axis of a
// [batch, time, features] sequence, forward or reverse, from an initial state, honouring
// per-sample lengths, and runs full back-propagation through time.
//
// The layer picks a strategy for each call and owns the parts the strategies share, each in
// its own file under recur/recurrent/:
//   weights.hpp       parameters and gradients, PyTorch's names and initialisation
//   timeline.hpp      step order (direction) and which samples take part in a step (lengths)
//   products.hpp      every matrix product on the weights (packed kernel or Eigen)
//   workspace.hpp     the caches kept for backward and all scratch
//   batch_slices.hpp  strategy: each thread runs the time loop for a slice of the batch
//   unit_split.hpp    strategy: one sample, the threads split the hidden units of each step
// A new strategy (the cell fused into the product's epilogue, a fixed-size streaming path)
// is one more file beside these and one more case in Recurrent::strategy().
//
// After the time loop, whatever the strategy, backward runs the products over all steps:
//   d x = dA W_ih;  dW_ih += dA^T X;  dW_hh += dR^T H_prev;  db_ih += sum dA, db_hh += sum dR
// (and the cell's own parameter gradients, unless the strategy took them step by step).
//
// Gradient contract: backward() ADDS d loss / d parameter into the parameter gradients (call
// zero_grad() to start afresh) and RETURNS d loss / d input and d loss / d initial state.
#pragma once

#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "recur/cells/contract.hpp"
#include "recur/detail/dropout.hpp"
#include "recur/recurrent/batch_slices.hpp"
#include "recur/recurrent/core.hpp"
#include "recur/recurrent/unit_split.hpp"
#include "recur/sequence_layer.hpp"
#include "recur/threads.hpp"
#include "recur/types.hpp"

namespace recur {

template <class Cell>
class Recurrent : public SequenceLayer<Recurrent<Cell>, detail::cell_scalar_t<Cell>,
                                       detail::cell_states<Cell>()> {
  static_assert(detail::check_cell<Cell>(), "Recurrent<Cell>: Cell breaks the cell contract");

 public:
  using Scalar = typename Cell::Scalar;
  using T = Scalar;
  using CellType = Cell;
  static constexpr Index kStates = Cell::kStates;
  static constexpr Index kGates = Cell::kGates;
  using In = SequenceIn<T, kStates>;
  using Out = SequenceOut<T, kStates>;

  /// proj_size > 0 (LSTM: PyTorch's proj_size): h_t = W_hr (the cell's h), of width
  /// proj_size < hidden_size; parameter weight_hr [proj_size, hidden_size].
  Recurrent(Index input_size, Index hidden_size, Direction direction = Direction::Forward,
            Cell cell = Cell(), Index proj_size = 0)
      : core_(input_size, hidden_size, direction, std::move(cell), proj_size) {}

  Index input_size() const { return core_.input(); }
  Index hidden_size() const { return core_.hidden(); }
  Index proj_size() const { return core_.proj(); }
  /// The width of h and of the output: proj_size, or hidden_size without a projection.
  Index output_size() const { return core_.width(0); }
  /// The width of state s (h: output_size(); c: hidden_size()).
  Index state_size(Index s) const { return core_.width(s); }
  Index state_slots() const { return 1; }
  Direction direction() const { return core_.time.direction(); }
  const Cell& cell() const { return core_.cell; }

  // ---- parameters: one contiguous buffer [weight_ih | weight_hh | bias_ih | bias_hh] ----
  Index parameter_count() const { return core_.weights.count(); }
  /// PyTorch's names with `suffix` appended: weight_ih_l0, weight_hh_l0, bias_ih_l0,
  /// bias_hh_l0 by default (a one-layer nn.RNN/LSTM/GRU); a stack passes `_l1_reverse` etc.
  std::vector<Parameter<T>> named_parameters(const std::string& suffix = "_l0") {
    return core_.weights.named(suffix);
  }
  /// Deprecated (0.1): named_parameters(suffix); note the default suffix here is "".
  [[deprecated("use named_parameters(suffix)")]] std::vector<Parameter<T>> parameters(
      const std::string& suffix = "") {
    return core_.weights.named(suffix);
  }
  void zero_grad() { core_.weights.zero_grad(); }
  /// PyTorch's default initialisation: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)).
  template <class Rng>
  void reset_parameters(Rng& rng) {
    core_.weights.reset(rng);
  }

  // ---- the row API (recur/sequence_layer.hpp) ----
  // In training mode the input rows must stay alive and unchanged until backward_rows.
  void forward_rows(const In& given, const Out& out, bool training);

  // d_out: rows d loss / d output and state d loss / d final state (null: zero). Writes (or
  // adds, with d_in.accumulate) d loss / d x into d_in.rows when its data is not null, and
  // d loss / d initial state into d_in.state. Adds the parameter gradients.
  void backward_rows(const In& d_out, const Out& d_in);

  // ---- recurrent (variational) dropout: Gal & Ghahramani; Keras' recurrent_dropout ----
  /// In training mode, h is multiplied by a mask (0, or 1 / (1 - p)) where it enters the
  /// recurrent product — one mask per sample and unit, the same at every step of a forward
  /// (a new one at each training forward unless held); the output and the cell's own use of h
  /// are not masked. `seed`: of the masks' generator.
  void set_recurrent_dropout(double p, std::uint64_t seed) {
    detail::require(p >= 0.0 && p < 1.0, "Recurrent: recurrent_dropout = ", p,
                    " is outside [0, 1)");
    core_.rdrop = p;
    core_.rdrop_rng.seed(seed);
    core_.masks_ready = false;
  }
  double recurrent_dropout() const { return core_.rdrop; }
  /// While held, training forwards reuse the current masks (the chunks of the same sequences
  /// in truncated BPTT: one mask per sequence); released, each draws new ones.
  void hold_recurrent_dropout_masks(bool hold) { core_.hold_masks = hold; }
  /// The masks' generator as text (checkpoints: Stack::rng_state), when it drops: appended to
  /// `out`; set_... reads them back from `in` at `at` and returns the position after.
  void recurrent_dropout_states(std::vector<std::string>& out) const {
    if (core_.rdrop > 0.0) out.push_back(detail::rng_state(core_.rdrop_rng));
  }
  std::size_t set_recurrent_dropout_states(const std::vector<std::string>& in, std::size_t at) {
    if (core_.rdrop <= 0.0) return at;
    detail::require(at < in.size(), "set_rng_state: no state for a layer's recurrent dropout");
    detail::set_rng_state(core_.rdrop_rng, in[at]);
    core_.masks_ready = false;
    return at + 1;
  }

  /// Bytes this layer keeps between a training forward and its backward (the caches), and
  /// the scratch it owns; both grow to the largest call seen and are reused.
  std::size_t workspace_bytes() const { return core_.ws.bytes() + core_.products.bytes(); }

 private:
  enum class Strategy { BatchSlices, UnitSplit };
  // Whether this call drops, and the masks it uses (drawn here, before any thread starts).
  void prepare_recurrent_dropout(Index B, Index S, bool training) {
    core_.dropping = training && core_.rdrop > 0.0;
    if (!core_.dropping) return;
    const Index R = core_.width(0);
    detail::grow(core_.ws.hd, static_cast<std::size_t>(B * S * R));
    detail::grow(core_.ws.dhd, static_cast<std::size_t>(B * R));
    if (core_.hold_masks && core_.masks_ready && core_.mask_batch == B) return;
    detail::grow(core_.ws.mask, static_cast<std::size_t>(B * R));
    detail::fill_dropout_mask(core_.ws.mask.data(), static_cast<std::size_t>(B * R), core_.rdrop,
                              core_.rdrop_rng);
    core_.masks_ready = true;
    core_.mask_batch = B;
  }
  int unit_parts(Index B, Index S) const {
    // The late product needs the whole of v; a cell's own parameters are per unit, and a
    // cell on a range of units does not know where the range starts.
    // A projection needs the whole of m; recurrent dropout runs in the batch loop only.
    if (core_.late() > 0 || core_.weights.cell_count() > 0 || core_.proj() > 0 || core_.dropping)
      return 1;
    return detail::UnitSplit<Cell>::parts(B, S, core_.hidden());
  }
  Strategy strategy(Index B, Index S) const {
    return unit_parts(B, S) > 1 ? Strategy::UnitSplit : Strategy::BatchSlices;
  }

  // The padded steps of a sample (t >= its length) must reach nothing, whatever they hold.
  // Their input rows still take part in the products over all steps (the input projection,
  // whose padded results go unused, and dW_ih += dA^T X, where dA is 0 there) — exact zeros
  // for finite values, but 0 * NaN = NaN. So when padding holds NaN or infinity, the layer
  // works on a copy of the input with those rows zeroed (found by a scan of the padding only).
  In without_non_finite_padding(const In& in) {
    if (!in.lengths) return in;
    const Index B = in.batch, S = in.steps, I = core_.input();
    bool clean = true;
    for (Index b = 0; b < B && clean; ++b)
      for (Index t = in.lengths[b]; t < S && clean; ++t) clean = in.rows.row(b * S + t).allFinite();
    if (clean) return in;
    detail::grow(core_.ws.input, static_cast<std::size_t>(B * S * I));
    Rows<T> x = detail::rows<T>(core_.ws.input.data(), B * S, I);
    for (Index b = 0; b < B; ++b)
      for (Index t = 0; t < S; ++t) {
        if (t < in.lengths[b])
          x.row(b * S + t) = in.rows.row(b * S + t);
        else
          x.row(b * S + t).setZero();
      }
    return in.with_rows(detail::rows<T>(static_cast<const T*>(x.data()), B * S, I));
  }

  // Input and weight gradients: big products over all steps, split by rows of the results
  // (d x by samples, the weight gradients by gate rows).
  void products_over_all_steps(const Out& d_in, const T* dr_base) {
    using detail::rows;
    auto& w = core_.weights;
    auto& products = core_.products;
    const Index B = core_.time.batch(), S = core_.time.steps(), H = core_.hidden();
    const Index GH = kGates * H, N = B * S, I = core_.input();
    ConstRows<T> dA = rows<T>(static_cast<const T*>(core_.ws.gates.data()), N, GH);
    ConstRows<T> dR = rows<T>(dr_base, N, GH);
    const Index EH = core_.extra() * H, P = core_.proj();
    // H_prev: the h each step's product read (masked, with recurrent dropout).
    const T* h_prev = core_.dropping ? core_.ws.hd.data() : core_.ws.prev.data();
    products.prepare_weight_grads(w, core_.x, core_.ldx, h_prev, N, core_.ws.extra.data(), EH,
                                  core_.ws.m.data());
    Rows<T>& d_x = d_in.rows;
    const auto update = d_in.accumulate ? detail::Update<T>::add() : detail::Update<T>::assign_to();
    const int parts = detail::threads_for(GH, static_cast<double>(N) * GH * (I + H));
    detail::parallel(parts, [&](int p, int n) {
      T* work = products.work(p);
      if (d_x.data()) {
        const auto [b0, b1] = detail::split(B, p, n);
        const Index r0 = b0 * S, nr = (b1 - b0) * S;
        products.input(w, dA.data() + r0 * GH, nr, GH, d_x.data() + r0 * d_x.outerStride(),
                       d_x.outerStride(), work, update);
      }
      const auto [g0, g1] = detail::split(GH, p, n);
      products.weight_grads(w, dA.data(), dR.data(), g0, g1, work);  // (and the biases')
      if (P > 0) {
        const auto [p0, p1] = detail::split(P, p, n);
        products.projection_grads(w, core_.ws.dproj.data(), p0, p1, work);
      }
    });
  }

  detail::LayerCore<Cell> core_;
  detail::UseFlag in_use_;
};

// The row API is defined out of the class: under the compiled mode (recur/compiled.hpp) a
// user's translation unit does not instantiate the time loops behind it.
template <class Cell>
void Recurrent<Cell>::forward_rows(const In& given, const Out& out, bool training) {
  const detail::UseFlag::Hold hold(in_use_, "Recurrent::forward");
  const Index B = given.batch, S = given.steps, H = core_.hidden();
  core_.time.start(B, S, given.lengths);
  core_.cached = false;
  core_.bind();
  prepare_recurrent_dropout(B, S, training);
  const In in = without_non_finite_padding(given);
  const bool slices = strategy(B, S) == Strategy::BatchSlices;
  core_.products.prepare(core_.weights, detail::WeightOp::Transposed, B, S, core_.late() * H,
                         slices && detail::BatchSlices<Cell>::joint_step(core_, B, S, training));
  core_.ws.for_forward(B, S, kGates, kStates, core_.extra(), H, training, core_.proj(),
                       slices && detail::BatchSlices<Cell>::input_by_step(core_, B, S, training));
  switch (strategy(B, S)) {
    case Strategy::UnitSplit:
      detail::UnitSplit<Cell>::forward(core_, in, out, training, unit_parts(B, S));
      break;
    case Strategy::BatchSlices:
      detail::BatchSlices<Cell>::forward(core_, in, out, training);
      break;
  }
  if (training) {
    core_.x = in.rows.data();
    core_.ldx = in.rows.outerStride();
    core_.cached = true;
  }
}

template <class Cell>
void Recurrent<Cell>::backward_rows(const In& d_out, const Out& d_in) {
  const detail::UseFlag::Hold hold(in_use_, "Recurrent::backward");
  if (!core_.cached)
    throw std::logic_error(
        "Recurrent::backward: no cache; call forward() in training mode first (each "
        "backward consumes the cache of one forward)");
  const Index B = core_.time.batch(), S = core_.time.steps(), H = core_.hidden();
  core_.bind();
  const bool same = detail::same_gate_grads(core_.cell);
  core_.ws.for_backward(B, S, kGates, kStates, H, !same, core_.proj());
  T* dr = same ? core_.ws.gates.data() : core_.ws.dr.data();
  core_.products.prepare(core_.weights, detail::WeightOp::AsIs, B, S, core_.late() * H);
  switch (strategy(B, S)) {
    case Strategy::UnitSplit:
      detail::UnitSplit<Cell>::backward(core_, d_out, d_in, dr, unit_parts(B, S));
      break;
    case Strategy::BatchSlices:
      detail::BatchSlices<Cell>::backward(core_, d_out, d_in, dr);  // (and the cell's own)
      break;
  }
  products_over_all_steps(d_in, dr);
  core_.cached = false;
}

}  // namespace recur
