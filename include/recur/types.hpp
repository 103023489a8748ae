// The public vocabulary of recur: tensors, options, states, outputs, gradients, parameters.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "recur/detail/eigen.hpp"

namespace recur {

using Index = Eigen::Index;

/// A sequence batch [batch, time, features], row-major: PyTorch's `batch_first=True` layout.
/// Also used for states [layers * directions, batch, hidden].
template <class T>
using Tensor3 = Eigen::Tensor<T, 3, Eigen::RowMajor>;

namespace detail {
/// Storage for everything Eigen computes on, aligned as Eigen's own allocations: reductions
/// and matrix-vector products then take the same path on every run, so results are
/// bit-for-bit reproducible (they would otherwise depend on where malloc put a buffer).
template <class T>
using Buffer = std::vector<T, Eigen::aligned_allocator<T>>;

/// Workspaces grow to the largest call seen and are reused (no allocation once warm).
template <class V>
void grow(V& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
}
}  // namespace detail

/// Integer token ids [batch, time] (inputs of Embedding, targets of cross_entropy).
using Tokens = Eigen::Tensor<Index, 2, Eigen::RowMajor>;

/// Row-major matrix, and views of rows with a stride (a time step of a [B, T, F] tensor is the
/// B rows b*T + t, i.e. a B x F view with outer stride T*F).
template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Rows = Eigen::Map<Matrix<T>, 0, Eigen::OuterStride<>>;
template <class T>
using ConstRows = Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>>;

enum class Nonlinearity { Tanh, ReLU };
/// Layer-norm LSTM (Ba et al. 2016; recur/cells/lstm.hpp): off, or which cell state it carries.
///   Ba2016    c_t = f * c + i * g is carried; LN(c_t) feeds only the output's tanh (the
///             paper; DyNet's ln_lstm)
///   TFAddons  the normalised cell LN(c_t) is carried (TensorFlow Addons' LayerNormLSTMCell,
///             TF 1's LayerNormBasicLSTMCell)
enum class LayerNorm { None, Ba2016, TFAddons };
enum class Direction { Forward, Reverse };

/// Options of the PyTorch-shaped models RNN<T>, LSTM<T>, GRU<T>.
struct RecurrentOptions {
  Index input_size = 0;
  Index hidden_size = 0;
  Index num_layers = 1;
  bool bidirectional = false;
  double dropout = 0.0;                            // between layers, training mode only
  double recurrent_dropout = 0.0;  // on h where it enters W_hh, one mask per sequence (Gal &
                                   // Ghahramani; Keras' recurrent_dropout), training only
  Nonlinearity nonlinearity = Nonlinearity::Tanh;  // RNN only
  // Cell variants (recur/cells/*.hpp; the defaults are PyTorch's cells). A variant a cell
  // does not have is rejected with std::invalid_argument.
  double cell_clip = 0.0;           // > 0: gate pre-activations clipped to [-cell_clip,
                                    // cell_clip] (ONNX's clip); any cell
  bool peephole = false;            // LSTM: i, f see c, o sees c' (ONNX's P)
  Index proj_size = 0;              // LSTM: > 0 projects h (PyTorch's proj_size): h_t =
                                    // W_hr (o * tanh(c_t)), h and the output of width
                                    // proj_size < hidden_size, parameter weight_hr_l{k}
  bool linear_before_reset = true;  // GRU: false = the reset gate before the product,
                                    // n = tanh(a_n + W_hn (r * h) + b_hn) (ONNX's
                                    // linear_before_reset = 0, Keras' reset_after=False)
  LayerNorm layer_norm = LayerNorm::None;  // LSTM: layer norm on x W_ih^T + b_ih and on
                                           // h W_hh^T + b_hh (all 4H gates together) and on
                                           // the cell, with learned gains and shifts
                                           // (parameters ln_ih_{weight,bias}_l{k}, ln_hh_...,
                                           // ln_c_...; recur/cells/lstm.hpp)
  double layer_norm_eps = 1e-5;            // added to each variance (PyTorch's LayerNorm;
                                           // TensorFlow Addons: 1e-3)
};

/// h and c are [num_layers * directions, batch, hidden], direction fastest (PyTorch's h_n
/// layout; h is [.., proj_size] with a projection); c is used by LSTM only; an empty tensor
/// means zeros.
template <class T>
struct State {
  Tensor3<T> h;
  Tensor3<T> c;
};

/// output: [batch, time, directions * hidden]; state: the final state.
template <class T>
struct Output {
  Tensor3<T> output;
  State<T> state;
};

/// d loss / d input and d loss / d initial state.
template <class T>
struct Gradients {
  Tensor3<T> input;
  State<T> state;
};

namespace detail {
// r x c contiguous rows at p, as the row views every layer computes on.
template <class T>
Rows<T> rows(T* p, Index r, Index c) {
  return Rows<T>(p, r, c, Eigen::OuterStride<>(c));
}
template <class T>
ConstRows<T> rows(const T* p, Index r, Index c) {
  return ConstRows<T>(p, r, c, Eigen::OuterStride<>(c));
}
// A read-only view of the same rows.
template <class T>
ConstRows<T> const_rows(const Rows<T>& m) {
  return ConstRows<T>(m.data(), m.rows(), m.cols(), Eigen::OuterStride<>(m.outerStride()));
}

}  // namespace detail

/// A named parameter: writable views of its value and its gradient over contiguous row-major
/// storage owned by the layer. `shape` is PyTorch's ([rows, cols] for weights, [n] for biases);
/// the views are rows x cols (biases n x 1).
template <class T>
struct Parameter {
  std::string name;
  std::vector<Index> shape;
  Eigen::Map<Matrix<T>> value;
  Eigen::Map<Matrix<T>> grad;
};

}  // namespace recur
