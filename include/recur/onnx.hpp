// recur::onnx — ONNX models whose nodes are the recurrent operators (LSTM, GRU, RNN), run by
// recur's layers. Optional target recur::onnx (Debian's libonnx-dev + libprotobuf-dev: the
// ONNX protobuf messages); the rest of recur stays header-only on Eigen alone.
//
//   auto model = recur::onnx::read_model("model.onnx");      // ::onnx::ModelProto
//   recur::onnx::Graph<float> graph(model);                  // rejects what recur cannot compute
//   auto outputs = graph.run({{"X", x}, {"W", w}, ...});     // name -> Tensor
//
// Each node becomes one recur::Recurrent<Cell> per direction, its weights taken from the
// graph's initializers or from the inputs given to run(). What the ONNX attributes map to:
//   gate orders      LSTM W/R/B blocks i,o,f,c -> recur's i,f,g,o; P = [p_i, p_o, p_f] ->
//                    peephole [p_i; p_f; p_o]; GRU z,r,h -> r,z,n; B = [Wb, Rb] -> bias_ih,
//                    bias_hh
//   direction        forward, reverse, bidirectional (two layers on the same input)
//   layout           0: X [seq, batch, in], Y [seq, dirs, batch, hidden], Y_h [dirs, batch,
//                    hidden]; 1: X [batch, seq, in], Y [batch, seq, dirs, hidden], Y_h
//                    [batch, dirs, hidden]
//   linear_before_reset (GRU), clip, sequence_lens (PyTorch's packed semantics: a sample's
//                    steps past its length output 0 and leave its state; the reverse direction
//                    starts at its last step), initial_h, initial_c
//   activations      the defaults (Sigmoid, Tanh, Tanh / Sigmoid, Tanh), and Tanh or Relu for
//                    RNN, per direction
// Anything else — input_forget = 1, other activations, activation_alpha/beta, an operator
// other than LSTM/GRU/RNN, a tensor whose shape does not fit — is rejected with an exception
// naming the node and the attribute or input: never a silent wrong answer.
#pragma once

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "recur/cells/gru.hpp"
#include "recur/cells/lstm.hpp"
#include "recur/cells/rnn.hpp"
#include "recur/recurrent.hpp"

namespace recur::onnx {

/// A tensor of ONNX: its shape and its values, floating-point ones as T, integer ones (e.g.
/// sequence_lens) in `ints`.
template <class T>
struct Tensor {
  std::vector<Index> shape;
  std::vector<T> values;
  std::vector<std::int64_t> ints;
  bool integer = false;

  Index size() const {
    Index n = 1;
    for (Index d : shape) n *= d;
    return n;
  }
  std::string shape_string() const {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
  }
};

namespace detail {
template <class... Parts>
std::string cat(Parts&&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  return s.str();
}
[[noreturn]] inline void fail(const std::string& what) { throw std::invalid_argument("onnx: " + what); }

template <class Msg>
Msg parse_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("onnx: cannot open " + path);
  std::ostringstream s;
  s << f.rdbuf();
  const std::string bytes = s.str();
  Msg m;
  if (!m.ParseFromString(bytes))
    throw std::runtime_error(cat("onnx: ", path, " is not ", what, " (", bytes.size(),
                                 " bytes that do not parse)"));
  return m;
}
}  // namespace detail

/// Reads an ONNX model file (throws std::runtime_error when it cannot be read or parsed).
inline ::onnx::ModelProto read_model(const std::string& path) {
  auto m = detail::parse_file<::onnx::ModelProto>(path, "an ONNX model");
  if (!m.has_graph()) throw std::runtime_error("onnx: " + path + " has no graph");
  return m;
}

/// A TensorProto's values (float, double, int32, int64; raw or typed fields) as a Tensor.
template <class T>
Tensor<T> from_proto(const ::onnx::TensorProto& p, const std::string& what) {
  using P = ::onnx::TensorProto;
  Tensor<T> t;
  for (auto d : p.dims()) {
    if (d < 0) detail::fail(detail::cat(what, ": negative dimension ", d));
    t.shape.push_back(static_cast<Index>(d));
  }
  const Index n = t.size();
  if (p.data_location() == P::EXTERNAL)
    detail::fail(what + ": external data is not supported");
  const std::string& raw = p.raw_data();
  auto take = [&](auto zero, const auto& typed, auto& out) {
    using V = decltype(zero);
    out.resize(static_cast<std::size_t>(n));
    if (!raw.empty()) {
      if (raw.size() != static_cast<std::size_t>(n) * sizeof(V))
        detail::fail(detail::cat(what, ": ", raw.size(), " bytes of data for shape ",
                                 t.shape_string(), " of ", sizeof(V), "-byte values"));
      for (Index i = 0; i < n; ++i) {
        V v;
        std::memcpy(&v, raw.data() + i * static_cast<Index>(sizeof(V)), sizeof(V));
        out[static_cast<std::size_t>(i)] = static_cast<typename std::decay_t<decltype(out)>::value_type>(v);
      }
    } else {
      if (typed.size() != n)
        detail::fail(detail::cat(what, ": ", typed.size(), " values for shape ", t.shape_string()));
      for (Index i = 0; i < n; ++i)
        out[static_cast<std::size_t>(i)] =
            static_cast<typename std::decay_t<decltype(out)>::value_type>(typed.Get(static_cast<int>(i)));
    }
  };
  switch (p.data_type()) {
    case P::FLOAT: take(float{}, p.float_data(), t.values); break;
    case P::DOUBLE: take(double{}, p.double_data(), t.values); break;
    case P::INT32: take(std::int32_t{}, p.int32_data(), t.ints); t.integer = true; break;
    case P::INT64: take(std::int64_t{}, p.int64_data(), t.ints); t.integer = true; break;
    default:
      detail::fail(detail::cat(what, ": element type ", P::DataType_Name(static_cast<P::DataType>(p.data_type())),
                               " is not supported (float, double, int32, int64)"));
  }
  return t;
}

/// Reads a serialised TensorProto (ONNX's test data: input_0.pb, output_0.pb, ...).
template <class T>
Tensor<T> read_tensor(const std::string& path) {
  return from_proto<T>(detail::parse_file<::onnx::TensorProto>(path, "a TensorProto"), path);
}

/// What a recurrent node asks for: its operator, attributes and input/output names.
struct NodeInfo {
  std::string name, op;
  Index hidden_size = 0;
  std::string direction = "forward";
  Index layout = 0;
  bool linear_before_reset = false;
  double clip = 0;
  std::vector<std::string> activations;
  std::vector<std::string> inputs, outputs;
  Index directions() const { return direction == "bidirectional" ? 2 : 1; }
  Index gates() const { return op == "LSTM" ? 4 : op == "GRU" ? 3 : 1; }
};

/// The node's attributes, checked: anything recur cannot compute is rejected here.
inline NodeInfo describe(const ::onnx::NodeProto& node) {
  NodeInfo n;
  n.op = node.op_type();
  n.name = node.name().empty() ? "(unnamed " + n.op + ")" : node.name();
  const std::string who = "node '" + n.name + "' (" + n.op + ")";
  if (n.op != "LSTM" && n.op != "GRU" && n.op != "RNN")
    detail::fail(who + ": operator " + n.op + " is not supported (LSTM, GRU, RNN)");
  if (!node.domain().empty() && node.domain() != "ai.onnx")
    detail::fail(who + ": domain '" + node.domain() + "' is not supported");
  n.inputs.assign(node.input().begin(), node.input().end());
  n.outputs.assign(node.output().begin(), node.output().end());
  bool has_hidden = false;
  for (const auto& a : node.attribute()) {
    const std::string& k = a.name();
    if (k == "hidden_size") {
      n.hidden_size = static_cast<Index>(a.i());
      has_hidden = true;
    } else if (k == "direction") {
      n.direction = a.s();
      if (n.direction != "forward" && n.direction != "reverse" && n.direction != "bidirectional")
        detail::fail(who + ": direction '" + n.direction + "' is not forward, reverse or bidirectional");
    } else if (k == "layout") {
      n.layout = static_cast<Index>(a.i());
      if (n.layout != 0 && n.layout != 1) detail::fail(detail::cat(who, ": layout ", n.layout, " is not 0 or 1"));
    } else if (k == "linear_before_reset" && n.op == "GRU") {
      n.linear_before_reset = a.i() != 0;
    } else if (k == "clip") {
      n.clip = static_cast<double>(a.f());
      if (!(n.clip > 0)) detail::fail(detail::cat(who, ": clip ", n.clip, " is not positive"));
    } else if (k == "activations") {
      for (const auto& s : a.strings()) n.activations.push_back(s);
    } else if (k == "input_forget" && n.op == "LSTM") {
      if (a.i() != 0) detail::fail(who + ": attribute input_forget = 1 (coupled input and forget gates) is not supported");
    } else if (k == "activation_alpha" || k == "activation_beta") {
      detail::fail(who + ": attribute " + k + " is not supported (only activations without parameters)");
    } else {
      detail::fail(who + ": attribute " + k + " is not supported");
    }
  }
  if (!has_hidden || n.hidden_size <= 0)
    detail::fail(who + ": needs a positive hidden_size attribute");
  // Activations: per direction, the defaults (or Tanh / Relu for RNN).
  const Index D = n.directions();
  const std::vector<std::string> lstm{"Sigmoid", "Tanh", "Tanh"}, gru{"Sigmoid", "Tanh"};
  const std::size_t per = n.op == "LSTM" ? 3 : n.op == "GRU" ? 2 : 1;
  if (!n.activations.empty() && n.activations.size() != per * static_cast<std::size_t>(D))
    detail::fail(detail::cat(who, ": ", n.activations.size(), " activations for ", D,
                             " direction(s); expected ", per * static_cast<std::size_t>(D)));
  for (std::size_t i = 0; i < n.activations.size(); ++i) {
    const std::string& f = n.activations[i];
    const bool ok = n.op == "RNN" ? (f == "Tanh" || f == "Relu")
                                  : f == (n.op == "LSTM" ? lstm : gru)[i % per];
    if (!ok)
      detail::fail(who + ": activation '" + f + "' (position " + std::to_string(i) +
                   ") is not supported (" + (n.op == "RNN" ? "Tanh or Relu" : "only the defaults") + ")");
  }
  if (n.inputs.size() < 3 || n.inputs[0].empty() || n.inputs[1].empty() || n.inputs[2].empty())
    detail::fail(who + ": needs inputs X, W and R");
  return n;
}

/// An ONNX graph of recurrent nodes, run by recur's layers in T (float or double).
template <class T>
class Graph {
 public:
  explicit Graph(const ::onnx::ModelProto& model) {
    const auto& g = model.graph();
    for (const auto& init : g.initializer()) constants_[init.name()] = from_proto<T>(init, "initializer " + init.name());
    for (const auto& node : g.node()) nodes_.push_back(describe(node));
    for (const auto& in : g.input())
      if (!constants_.count(in.name())) inputs_.push_back(in.name());
    for (const auto& out : g.output()) outputs_.push_back(out.name());
  }

  const std::vector<NodeInfo>& nodes() const { return nodes_; }
  /// The graph's inputs that are not initializers, and its outputs, in the graph's order.
  const std::vector<std::string>& input_names() const { return inputs_; }
  const std::vector<std::string>& output_names() const { return outputs_; }

  /// Runs every node in order on the inputs given (by name); returns the graph's outputs.
  std::map<std::string, Tensor<T>> run(const std::map<std::string, Tensor<T>>& inputs) const {
    std::map<std::string, Tensor<T>> values = constants_;
    for (const auto& [k, v] : inputs) values[k] = v;
    for (const auto& name : inputs_)
      if (!values.count(name)) detail::fail("graph input '" + name + "' was not given");
    for (const auto& n : nodes_) run_node(n, values);
    std::map<std::string, Tensor<T>> out;
    for (const auto& name : outputs_) {
      auto it = values.find(name);
      if (it == values.end()) detail::fail("graph output '" + name + "' is computed by no node");
      out[name] = it->second;
    }
    return out;
  }

 private:
  using Cells = std::variant<RNNCell<T>, LSTMCell<T>, GRUCell<T>>;

  static const Tensor<T>* optional_input(const NodeInfo& n, std::size_t i,
                                         const std::map<std::string, Tensor<T>>& values) {
    if (i >= n.inputs.size() || n.inputs[i].empty()) return nullptr;
    auto it = values.find(n.inputs[i]);
    if (it == values.end())
      detail::fail("node '" + n.name + "': input '" + n.inputs[i] + "' has no value");
    return &it->second;
  }
  static void expect_shape(const NodeInfo& n, const char* what, const Tensor<T>& t,
                           const std::vector<Index>& shape) {
    if (t.shape != shape || t.integer) {
      Tensor<T> want;
      want.shape = shape;
      detail::fail(detail::cat("node '", n.name, "' (", n.op, "): input ", what, " is ",
                               t.integer ? "an integer tensor " : "", t.shape_string(),
                               ", expected ", want.shape_string()));
    }
  }

  // recur's gate block k takes ONNX's block order[k].
  static std::vector<Index> gate_order(const std::string& op) {
    if (op == "LSTM") return {0, 2, 3, 1};  // ONNX i o f c -> recur i f g o
    if (op == "GRU") return {1, 0, 2};      // ONNX z r h -> recur r z n
    return {0};
  }

  void run_node(const NodeInfo& n, std::map<std::string, Tensor<T>>& values) const {
    const Tensor<T>& X = *optional_input(n, 0, values);
    const Tensor<T>& W = *optional_input(n, 1, values);
    const Tensor<T>& R = *optional_input(n, 2, values);
    const Tensor<T>* Bias = optional_input(n, 3, values);
    const Tensor<T>* lens = optional_input(n, 4, values);
    const Tensor<T>* h0 = optional_input(n, 5, values);
    const Tensor<T>* c0 = n.op == "LSTM" ? optional_input(n, 6, values) : nullptr;
    const Tensor<T>* P = n.op == "LSTM" ? optional_input(n, 7, values) : nullptr;
    if (X.shape.size() != 3 || X.integer)
      detail::fail(detail::cat("node '", n.name, "' (", n.op, "): input X is ", X.shape_string(),
                               ", expected a float tensor of rank 3"));
    const Index D = n.directions(), H = n.hidden_size, G = n.gates();
    const Index S = n.layout == 0 ? X.shape[0] : X.shape[1];
    const Index B = n.layout == 0 ? X.shape[1] : X.shape[0];
    const Index I = X.shape[2];
    expect_shape(n, "W", W, {D, G * H, I});
    expect_shape(n, "R", R, {D, G * H, H});
    if (Bias) expect_shape(n, "B", *Bias, {D, 2 * G * H});
    if (P) expect_shape(n, "P", *P, {D, 3 * H});
    const std::vector<Index> state_shape = n.layout == 0 ? std::vector<Index>{D, B, H} : std::vector<Index>{B, D, H};
    if (h0) expect_shape(n, "initial_h", *h0, state_shape);
    if (c0) expect_shape(n, "initial_c", *c0, state_shape);
    std::vector<Index> lengths;
    if (lens) {
      if (!lens->integer || lens->shape != std::vector<Index>{B})
        detail::fail(detail::cat("node '", n.name, "' (", n.op, "): input sequence_lens is ",
                                 lens->shape_string(), ", expected an integer tensor [", B, "]"));
      for (auto v : lens->ints) {
        if (v < 0 || v > S)
          detail::fail(detail::cat("node '", n.name, "' (", n.op, "): sequence_lens holds ", v,
                                   ", outside [0, ", S, "]"));
        lengths.push_back(static_cast<Index>(v));
      }
    }

    // x as recur's [batch, time, features].
    Tensor3<T> x(B, S, I);
    for (Index b = 0; b < B; ++b)
      for (Index t = 0; t < S; ++t)
        for (Index i = 0; i < I; ++i)
          x(b, t, i) = X.values[static_cast<std::size_t>(n.layout == 0 ? (t * B + b) * I + i : (b * S + t) * I + i)];

    Tensor<T> Y, Yh, Yc;
    Y.shape = n.layout == 0 ? std::vector<Index>{S, D, B, H} : std::vector<Index>{B, S, D, H};
    Y.values.assign(static_cast<std::size_t>(S * D * B * H), T(0));
    Yh.shape = state_shape;
    Yh.values.assign(static_cast<std::size_t>(D * B * H), T(0));
    Yc = Yh;
    auto state_at = [&](Index d, Index b) {  // offset of [d, b, :] in a state tensor
      return static_cast<std::size_t>((n.layout == 0 ? d * B + b : b * D + d) * H);
    };

    for (Index d = 0; d < D; ++d) {
      const bool reverse = n.direction == "reverse" || d == 1;
      RecurrentOptions o;
      o.cell_clip = n.clip;
      if (n.op == "LSTM") o.peephole = P != nullptr;
      if (n.op == "GRU") o.linear_before_reset = n.linear_before_reset;
      if (n.op == "RNN" && !n.activations.empty() && n.activations[static_cast<std::size_t>(d)] == "Relu")
        o.nonlinearity = Nonlinearity::ReLU;
      Cells cell = n.op == "LSTM" ? Cells(LSTMCell<T>(o)) : n.op == "GRU" ? Cells(GRUCell<T>(o)) : Cells(RNNCell<T>(o));
      std::visit(
          [&](const auto& c) {
            using Cell = std::decay_t<decltype(c)>;
            Recurrent<Cell> layer(I, H, reverse ? Direction::Reverse : Direction::Forward, c);
            layer.eval();
            auto p = layer.named_parameters("");
            const auto order = gate_order(n.op);
            for (Index k = 0; k < G; ++k) {
              const Index src = order[static_cast<std::size_t>(k)];
              for (Index j = 0; j < H; ++j) {
                const Index to = k * H + j, from = src * H + j;
                for (Index i = 0; i < I; ++i)
                  p[0].value(to, i) = W.values[static_cast<std::size_t>((d * G * H + from) * I + i)];
                for (Index i = 0; i < H; ++i)
                  p[1].value(to, i) = R.values[static_cast<std::size_t>((d * G * H + from) * H + i)];
                p[2].value(to, 0) = Bias ? Bias->values[static_cast<std::size_t>(d * 2 * G * H + from)] : T(0);
                p[3].value(to, 0) = Bias ? Bias->values[static_cast<std::size_t>(d * 2 * G * H + G * H + from)] : T(0);
              }
            }
            if (P) {  // ONNX [p_i, p_o, p_f] -> recur [p_i; p_f; p_o]
              const Index porder[3] = {0, 2, 1};
              for (Index k = 0; k < 3; ++k)
                for (Index j = 0; j < H; ++j)
                  p[4].value.data()[k * H + j] = P->values[static_cast<std::size_t>(d * 3 * H + porder[k] * H + j)];
            }
            State<T> init;
            if (h0 || c0) {
              init.h = Tensor3<T>(1, B, H);
              init.h.setZero();
              if (Cell::kStates == 2) {
                init.c = Tensor3<T>(1, B, H);
                init.c.setZero();
              }
              for (Index b = 0; b < B; ++b)
                for (Index j = 0; j < H; ++j) {
                  if (h0) init.h(0, b, j) = h0->values[state_at(d, b) + static_cast<std::size_t>(j)];
                  if (c0 && Cell::kStates == 2) init.c(0, b, j) = c0->values[state_at(d, b) + static_cast<std::size_t>(j)];
                }
            }
            auto out = layer.forward(x, init, lengths);
            for (Index b = 0; b < B; ++b)
              for (Index t = 0; t < S; ++t)
                for (Index j = 0; j < H; ++j)
                  Y.values[static_cast<std::size_t>(n.layout == 0 ? ((t * D + d) * B + b) * H + j
                                                                  : ((b * S + t) * D + d) * H + j)] = out.output(b, t, j);
            for (Index b = 0; b < B; ++b)
              for (Index j = 0; j < H; ++j) {
                Yh.values[state_at(d, b) + static_cast<std::size_t>(j)] = out.state.h(0, b, j);
                if (Cell::kStates == 2) Yc.values[state_at(d, b) + static_cast<std::size_t>(j)] = out.state.c(0, b, j);
              }
          },
          cell);
    }
    const Tensor<T>* results[3] = {&Y, &Yh, &Yc};
    for (std::size_t i = 0; i < n.outputs.size() && i < 3; ++i)
      if (!n.outputs[i].empty()) {
        if (i == 2 && n.op != "LSTM") detail::fail("node '" + n.name + "': " + n.op + " has no output Y_c");
        values[n.outputs[i]] = *results[i];
      }
  }

  std::map<std::string, Tensor<T>> constants_;
  std::vector<NodeInfo> nodes_;
  std::vector<std::string> inputs_, outputs_;
};

}  // namespace recur::onnx
