// Stream<Model>: run a unidirectional model (RNN/LSTM/GRU, a Stack of Recurrent layers, or
// one Recurrent layer) one time step at a time — sampling, streaming inference, audio — with
// the state kept inside, optionally followed by a Linear head (a whole "LSTM + Dense" model).
//
//   recur::Stream<recur::LSTM<float>> stream(lstm);               // batch 1, no head
//   auto h = stream.step(x_t);                                     // x_t [batch, input] -> h
//
//   recur::Stream<recur::LSTM<float>> amp(lstm, head);             // LSTM + Linear head
//   amp.process(in, n, out);   // audio callback: n samples, in [n, batch, input] -> out [n, batch, output]
//
// The stream copies the model's weights when it is made (into its own layout for one step of
// a few samples: see recur/recurrent/streaming.hpp) and runs on its own from then on: the
// model may be trained further or destroyed; reload() copies the weights again. Each step's
// output equals that time step of a whole-sequence forward (eval mode) from the same state,
// within float rounding (tested).
//
// Real-time use: after construction nothing allocates, locks or throws in step(const T*),
// process(), reset(), save_state() and restore_state() (all noexcept; tested with a
// no-allocation harness). process() hoists what does not depend on the previous step out of
// the time loop: the input projection of each layer is one GEMM over the block, and so is
// the head. Blocks longer than max_block (a constructor argument) run as several blocks.
// Bidirectional models cannot stream: their reverse direction needs the future.
#pragma once

#include <algorithm>
#include <array>
#include <type_traits>
#include <utility>
#include <vector>

#include "recur/detail/check.hpp"
#include "recur/detail/matvec.hpp"
#include "recur/layers.hpp"
#include "recur/recurrent.hpp"
#include "recur/recurrent/streaming.hpp"
#include "recur/sequence_layer.hpp"
#include "recur/types.hpp"

namespace recur {

template <class Model>
class Stream {
 public:
  using Cell = typename Model::CellType;
  using T = typename Model::Scalar;
  using Scalar = T;
  static constexpr Index kStates = Model::kStates;
  static constexpr Index kDefaultBlock = 256;

  /// A stream over `model` for `batch` independent sequences (e.g. audio channels), without
  /// a head: each step outputs the last layer's h [batch, hidden] ([batch, proj_size] with a
  /// projection).
  explicit Stream(Model& model, Index batch = 1, Index max_block = kDefaultBlock)
      : batch_(batch), block_(max_block) {
    build(model, nullptr);
  }
  /// The same followed by `head` (its input: the model's hidden size): each step outputs
  /// head(h) [batch, head.out_features()].
  Stream(Model& model, Linear<T>& head, Index batch = 1, Index max_block = kDefaultBlock)
      : batch_(batch), block_(max_block) {
    build(model, &head);
  }

  Index batch() const { return batch_; }
  Index max_block() const { return block_; }
  Index num_layers() const { return static_cast<Index>(layers_.size()); }
  Index input_size() const { return layers_.front().input_size(); }
  Index hidden_size() const { return hidden_; }
  /// Features per sample out of step() and process(): the head's outputs, or h's width
  /// (hidden_size(), or the projection's).
  Index output_size() const { return head_out_ > 0 ? head_out_ : width(0); }
  bool has_head() const { return head_out_ > 0; }

  /// Copies the weights of `model` (and `head`) again: they must have the shapes the stream
  /// was made with. Not real-time safe (it repacks); allocates nothing for equal shapes.
  void reload(Model& model) { load(model, nullptr); }
  void reload(Model& model, Linear<T>& head) { load(model, &head); }

  /// Zero state (the start of a sequence).
  void reset() noexcept {
    for (auto& side : state_)
      for (auto& s : side) std::fill(s.begin(), s.end(), T(0));
  }

  /// Values in the state: h (and c for LSTM), each [num_layers, batch, width].
  Index state_size() const {
    Index n = 0;
    for (Index k = 0; k < kStates; ++k) n += num_layers() * batch_ * width(k);
    return n;
  }
  /// Copies the state to `to` (state_size() values: h, then c) — e.g. before a look-ahead.
  void save_state(T* to) const noexcept {
    for (const auto& s : state_[cur_]) to = std::copy(s.begin(), s.end(), to);
  }
  /// Sets the state from what save_state() wrote.
  void restore_state(const T* from) noexcept {
    for (auto& s : state_[cur_]) {
      std::copy(from, from + s.size(), s.begin());
      from += s.size();
    }
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
      detail::require(src.dimension(0) == num_layers() && src.dimension(1) == batch_ &&
                          src.dimension(2) == width(k),
                      "Stream::set_state: ", k == 0 ? "h" : "c", " is ",
                      detail::dims_str(src.dimensions()), " but must be ",
                      detail::shape_str({num_layers(), batch_, width(k)}));
      std::copy(src.data(), src.data() + src.size(), dst.begin());
    }
  }

  /// The current state, as forward() returns it.
  State<T> state() const {
    State<T> s;
    Tensor3<T>* parts[2] = {&s.h, &s.c};
    for (Index k = 0; k < kStates; ++k) {
      parts[k]->resize(num_layers(), batch_, width(k));
      const auto& src = state_[cur_][static_cast<std::size_t>(k)];
      std::copy(src.begin(), src.end(), parts[k]->data());
    }
    return s;
  }

  /// One time step: x [batch, input_size] -> the output [batch, output_size] (a view valid
  /// until the next call). Checks x's shape.
  ConstRows<T> step(ConstRows<T> x) {
    detail::require(x.rows() == batch_ && x.cols() == input_size(), "Stream::step: x is [",
                    x.rows(), ", ", x.cols(), "] but must be ",
                    detail::shape_str({batch_, input_size()}));
    if (x.outerStride() == input_size() || batch_ == 1) return step(x.data());
    for (Index b = 0; b < batch_; ++b)
      std::copy(x.row(b).data(), x.row(b).data() + input_size(), x_.data() + b * input_size());
    return step(x_.data());
  }
  /// The same from batch * input_size contiguous values.
  ConstRows<T> step(const T* x) noexcept;

  /// n time steps at once: in [n, batch, input_size] -> out [n, batch, output_size], both
  /// contiguous and time-major (step t of sample b at (t * batch + b) * features: interleaved
  /// channels). Equals n calls of step(); the input projections and the head run over whole
  /// blocks (which pays where they are a real share of a step: wide inputs, large heads; at
  /// batch 1 and a small hidden size the recurrence itself is the step, see
  /// docs/performance.md). in and out may not overlap.
  void process(const T* in, Index n, T* out) noexcept;

  /// Bytes the stream owns (packed weights, state and scratch).
  std::size_t bytes() const {
    std::size_t n = 0;
    for (const auto& l : layers_) n += l.bytes();
    for (const auto& side : state_)
      for (const auto& s : side) n += sizeof(T) * s.capacity();
    return n + head_.bytes() +
           sizeof(T) * (a_.capacity() + seq_.capacity() + out_.capacity() + head_h_.capacity() + x_.capacity() +
                        head_w_.capacity() + head_b_.capacity());
  }

 private:
  using Layer = detail::StreamingLayer<Cell>;

  // The width of state k: h (hidden, or the projection's), c (hidden).
  Index width(Index k) const { return k == 0 ? width_ : hidden_; }
  // The current and next states of layer l.
  std::pair<typename Layer::ConstStates, typename Layer::States> states(std::size_t l) {
    typename Layer::ConstStates prev{};
    typename Layer::States next{};
    for (std::size_t k = 0; k < static_cast<std::size_t>(kStates); ++k) {
      const Index off = static_cast<Index>(l) * batch_ * width(static_cast<Index>(k));
      prev[k] = state_[cur_][k].data() + off;
      next[k] = state_[1 - cur_][k].data() + off;
    }
    return {prev, next};
  }

  // m steps, layer after layer: each layer's input projection is one GEMM over the block,
  // then its time loop; its outputs (h per step, written straight into the block's sequence
  // [m, B, H], which the next layer projects) are the next layer's input.
  void block(const T* in, Index m, T* out) noexcept {
    const Index B = batch_, H = width(0), GS = layers_.front().gate_stride();
    const std::size_t start = cur_;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      auto& layer = layers_[l];
      cur_ = start;
      if (l == 0)
        layer.project_block(in, input_size(), m * B, a_.data());
      else
        layer.project_block(seq_.data(), H, m * B, a_.data());
      const bool last = l + 1 == layers_.size();
      T* hs = last && !has_head() ? out : seq_.data();  // [m, B, H]
      for (Index t = 0; t < m; ++t) {
        auto [prev, next] = states(l);
        if (t > 0) prev[0] = hs + (t - 1) * B * H;
        next[0] = hs + t * B * H;
        if (B == 1)
          layer.step_one(a_.data() + t * GS, prev, next);
        else
          layer.step(a_.data() + t * B * GS, B, prev, next);
        cur_ = 1 - cur_;
      }
      // The last h is the layer's state (c, if any, is there already).
      T* h = state_[cur_][0].data() + static_cast<Index>(l) * B * H;
      std::copy(hs + (m - 1) * B * H, hs + m * B * H, h);
    }
    if (has_head()) apply_head(seq_.data(), m * B, out);
  }

  // y [m, head_out] = head_b + h W^T for m rows of h [m, hidden].
  void apply_head(const T* h, Index m, T* y) noexcept {
    const Index H = width(0), O = head_out_;
    for (Index r = 0; r < m; ++r) {
      if (few_outputs()) {  // one dot product each
        for (Index o = 0; o < O; ++o)
          y[r * O + o] = head_b_[static_cast<std::size_t>(o)] +
                         detail::PackedMatVec<T>::dot(head_w_.data() + o * H, h + r * H, H);
      } else {
        head_.apply(h + r * H, head_h_.data());
        std::copy(head_h_.data(), head_h_.data() + O, y + r * O);
      }
    }
  }
  // Fewer outputs than half a packet: dot products beat the packed product's mostly idle lanes.
  bool few_outputs() const { return 2 * head_out_ < detail::PackedMatVec<T>::padded(1); }

  void build(Model& model, Linear<T>* head);

  void load(Model& model, Linear<T>* head);

  Index batch_, block_, hidden_ = 0, width_ = 0, head_out_ = 0;  // width_: of h
  std::size_t per_layer_ = 4;  // parameters per layer: the four, then the cell's own
  std::vector<Layer> layers_;
  std::array<std::array<detail::Buffer<T>, kStates>, 2> state_;  // [current/next][h, c]: [L, B, H]
  std::size_t cur_ = 0;
  detail::Buffer<T> a_;    // gate pre-activations: [rows, gate stride]
  detail::Buffer<T> seq_;  // a layer's outputs over a block: [rows, H]
  detail::Buffer<T> out_;  // step()'s head output [B, O]
  detail::Buffer<T> head_h_;  // the packed head's output, padded to whole packets
  detail::Buffer<T> x_;    // step(ConstRows)'s input when its rows are not contiguous
  detail::PackedMatVec<T> head_;    // the head's W and b, packed (many outputs)
  detail::Buffer<T> head_w_, head_b_;  // W [O, H] (few outputs), b
};

// The work is defined out of the class: under the compiled mode (recur/compiled.hpp) a
// user's translation unit does not instantiate it.
template <class Model>
auto Stream<Model>::step(const T* x) noexcept -> ConstRows<T> {
  const Index B = batch_, H = width(0);
  const T* in = x;
  Index ld = input_size();
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    auto& layer = layers_[l];
    layer.project_rows(in, ld, B, a_.data());
    const auto [prev, next] = states(l);
    if (B == 1)
      layer.step_one(a_.data(), prev, next);
    else
      layer.step(a_.data(), B, prev, next);
    in = next[0];
    ld = H;
  }
  cur_ = 1 - cur_;
  if (!has_head()) return ConstRows<T>(in, B, H, Eigen::OuterStride<>(H));
  apply_head(in, B, out_.data());
  return ConstRows<T>(out_.data(), B, head_out_, Eigen::OuterStride<>(head_out_));
}

template <class Model>
void Stream<Model>::process(const T* in, Index n, T* out) noexcept {
  const Index B = batch_, I = input_size(), O = output_size();
  for (Index t0 = 0; t0 < n; t0 += block_) {
    const Index m = std::min(block_, n - t0);
    block(in + t0 * B * I, m, out + t0 * B * O);
  }
}

template <class Model>
void Stream<Model>::build(Model& model, Linear<T>* head) {
  detail::require(batch_ > 0, "Stream: batch must be positive, got ", batch_);
  detail::require(block_ > 0, "Stream: max_block must be positive, got ", block_);
  detail::require(model.output_size() == model.state_size(0),
                  "Stream: bidirectional models cannot run one step at a time");
  if constexpr (std::is_same_v<Model, Recurrent<Cell>>)
    detail::require(model.direction() == Direction::Forward,
                    "Stream: a reverse layer cannot run one step at a time (it needs the future)");
  auto p = model.named_parameters();
  hidden_ = model.hidden_size();
  width_ = model.state_size(0);
  const Index proj = width_ < hidden_ ? width_ : 0;
  per_layer_ = 4 + (proj > 0 ? 1 : 0) + detail::cell_parameters(model.cell(), hidden_).size();
  const Index L = static_cast<Index>(p.size() / per_layer_);
  for (Index l = 0; l < L; ++l)
    layers_.emplace_back(model.cell(), p[static_cast<std::size_t>(l) * per_layer_].value.cols(), hidden_,
                         proj);
  head_out_ = head ? head->out_features() : 0;
  if (head)
    detail::require(head->in_features() == width_, "Stream: the head takes ",
                    head->in_features(), " features but the model outputs ", width_);
  const Index B = batch_, GS = layers_.front().gate_stride();
  const Index rows = detail::checked_count("Stream: max_block * batch", {block_, B}, 1);
  for (auto& layer : layers_) layer.reserve(B, rows);
  for (auto& side : state_)
    for (Index k = 0; k < kStates; ++k)
      side[static_cast<std::size_t>(k)].assign(static_cast<std::size_t>(L * B * width(k)), T(0));
  a_.assign(static_cast<std::size_t>(detail::checked_count("Stream: block gate buffer", {rows, GS}, sizeof(T))), T(0));
  seq_.assign(static_cast<std::size_t>(rows * width_), T(0));
  out_.assign(static_cast<std::size_t>(B * output_size()), T(0));
  head_h_.assign(static_cast<std::size_t>(detail::PackedMatVec<T>::padded(head_out_)), T(0));
  x_.assign(static_cast<std::size_t>(B * input_size()), T(0));
  load(model, head);
}

template <class Model>
void Stream<Model>::load(Model& model, Linear<T>* head) {
  auto p = model.named_parameters();
  const std::size_t n = per_layer_;
  detail::require(p.size() == n * layers_.size() && model.hidden_size() == hidden_ &&
                      (head ? head->out_features() : 0) == head_out_,
                  "Stream::reload: the model (", p.size() / n, " layers of ", model.hidden_size(),
                  " units, head of ", head ? head->out_features() : 0,
                  " outputs) is not the one the stream was made with (", layers_.size(),
                  " layers of ", hidden_, " units, head of ", head_out_, " outputs)");
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const auto* q = p.data() + n * l;  // the layer's four, then the cell's (contiguous)
    detail::require(q[0].value.cols() == layers_[l].input_size(), "Stream::reload: layer ",
                    l, " takes ", q[0].value.cols(), " features, the stream's ",
                    layers_[l].input_size());
    const std::size_t cell_at = layers_[l].proj_size() > 0 ? 5 : 4;  // after weight_hr
    layers_[l].load(q[0].value.data(), q[1].value.data(), q[2].value.data(), q[3].value.data(),
                    n > cell_at ? q[cell_at].value.data() : nullptr,
                    cell_at == 5 ? q[4].value.data() : nullptr);
  }
  if (!head) return;
  auto hp = head->named_parameters();
  const Index H = width_, O = head_out_;
  head_b_.assign(static_cast<std::size_t>(O), T(0));
  if (hp.size() > 1) std::copy(hp[1].value.data(), hp[1].value.data() + O, head_b_.begin());
  const T* w = hp[0].value.data();  // [O, H] row-major
  if (few_outputs()) {  // W as it is: one row per dot product
    head_w_.assign(w, w + O * H);
  } else {
    head_.pack(w, O, H, H, head_b_.data());
  }
}

}  // namespace recur
