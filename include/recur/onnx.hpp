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
// Between the recurrent nodes, the shape operators exporters put there (torch.onnx.export of
// nn.LSTM / nn.GRU / nn.RNN, recur's own export): Constant, Shape, Gather, Unsqueeze,
// Squeeze, Concat, Expand, Reshape, Slice, Transpose, Identity.
// Export: to_onnx(model) writes a recur RNN / LSTM / GRU model (its variants ONNX can express:
// peepholes, clip, either GRU form, Tanh / Relu) as the graph torch.onnx.export writes for
// the same PyTorch module (opset 14: x [batch, time, input] -> y, h_n (, c_n), PyTorch's
// layouts; optional inputs h0 (, c0)); save_model() writes it atomically. A projection
// (proj_size) has no ONNX form and is rejected.
//
// Anything else — input_forget = 1, other activations, activation_alpha/beta, another
// operator, a tensor whose shape does not fit — is rejected with an exception naming the node
// and the attribute or input: never a silent wrong answer.
#pragma once

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
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
  Index total = 1;
  for (auto d : p.dims()) {
    if (d < 0) detail::fail(detail::cat(what, ": negative dimension ", d));
    if (d > 0 && total > std::numeric_limits<Index>::max() / 8 / d)
      detail::fail(detail::cat(what, ": dimensions too large (", p.dims_size(), " of them, overflow)"));
    total *= d;
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

namespace detail {

inline bool is_recurrent(const std::string& op) { return op == "LSTM" || op == "GRU" || op == "RNN"; }
inline bool is_shape_op(const std::string& op) {
  return op == "Constant" || op == "Shape" || op == "Gather" || op == "Unsqueeze" ||
         op == "Squeeze" || op == "Concat" || op == "Expand" || op == "Reshape" ||
         op == "Transpose" || op == "Identity" || op == "Slice";
}

inline std::string who(const ::onnx::NodeProto& node) {
  return "node '" + (node.name().empty() ? "(unnamed " + node.op_type() + ")" : node.name()) + "' (" +
         node.op_type() + ")";
}

// Row-major strides of a shape.
inline std::vector<Index> strides(const std::vector<Index>& shape) {
  std::vector<Index> st(shape.size(), 1);
  for (std::size_t i = shape.size(); i-- > 1;) st[i - 1] = st[i] * shape[i];
  return st;
}
inline Index count(const std::vector<Index>& shape) {
  Index n = 1;
  for (Index d : shape) n *= d;
  return n;
}

// out[i] = in[f(i)] for the elements of an output of shape `out_shape`: the one place the
// shape operators move data (floating-point values and integers alike).
template <class T, class Map>
Tensor<T> gather_elements(const Tensor<T>& in, const std::vector<Index>& out_shape, Map&& f) {
  Tensor<T> out;
  out.shape = out_shape;
  out.integer = in.integer;
  const Index n = count(out_shape);
  const auto ost = strides(out_shape);
  std::vector<Index> idx(out_shape.size());
  if (in.integer) out.ints.resize(static_cast<std::size_t>(n)); else out.values.resize(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) {
    Index r = i;
    for (std::size_t k = 0; k < out_shape.size(); ++k) {
      idx[k] = r / ost[k];
      r %= ost[k];
    }
    const auto j = static_cast<std::size_t>(f(idx));
    if (in.integer) out.ints[static_cast<std::size_t>(i)] = in.ints[j]; else out.values[static_cast<std::size_t>(i)] = in.values[j];
  }
  return out;
}

template <class T>
std::vector<std::int64_t> int_values(const ::onnx::NodeProto& node, const Tensor<T>& t, const char* what) {
  if (!t.integer) fail(who(node) + ": input " + what + " must be an integer tensor");
  return t.ints;
}
inline const ::onnx::AttributeProto* attribute(const ::onnx::NodeProto& node, const char* name) {
  for (const auto& a : node.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}
inline Index axis_in(const ::onnx::NodeProto& node, std::int64_t axis, Index rank) {
  if (axis < -rank || axis >= rank)
    fail(cat(who(node), ": axis ", axis, " is outside [", -rank, ", ", rank, ")"));
  return static_cast<Index>(axis < 0 ? axis + rank : axis);
}

// Runs one shape operator on `values` (name -> tensor).
template <class T>
void run_shape_op(const ::onnx::NodeProto& node, std::map<std::string, Tensor<T>>& values) {
  const std::string& op = node.op_type();
  auto input = [&](int i) -> const Tensor<T>& {
    if (i >= node.input_size() || node.input(i).empty())
      fail(cat(who(node), ": needs input ", i));
    auto it = values.find(node.input(i));
    if (it == values.end()) fail(who(node) + ": input '" + node.input(i) + "' has no value");
    return it->second;
  };
  auto has_input = [&](int i) { return i < node.input_size() && !node.input(i).empty(); };
  for (const auto& a : node.attribute()) {
    const std::string& k = a.name();
    const bool known = (op == "Constant" && k == "value") || (op == "Gather" && k == "axis") ||
                       (op == "Concat" && k == "axis") || (op == "Transpose" && k == "perm") ||
                       ((op == "Unsqueeze" || op == "Squeeze") && k == "axes") ||
                       (op == "Reshape" && k == "allowzero" && a.i() == 0);
    if (!known) fail(who(node) + ": attribute " + k + " is not supported");
  }
  if (node.output_size() < 1 || node.output(0).empty()) fail(who(node) + ": has no output");
  Tensor<T> out;
  if (op == "Constant") {
    const auto* v = attribute(node, "value");
    if (!v || !v->has_t()) fail(who(node) + ": needs a tensor attribute 'value'");
    out = from_proto<T>(v->t(), who(node) + " value");
  } else if (op == "Identity") {
    out = input(0);
  } else if (op == "Shape") {
    const auto& x = input(0);
    out.integer = true;
    out.shape = {static_cast<Index>(x.shape.size())};
    out.ints.assign(x.shape.begin(), x.shape.end());
  } else if (op == "Transpose") {
    const auto& x = input(0);
    const Index r = static_cast<Index>(x.shape.size());
    std::vector<Index> perm(static_cast<std::size_t>(r));
    if (const auto* a = attribute(node, "perm")) {
      if (a->ints_size() != r) fail(cat(who(node), ": perm has ", a->ints_size(), " axes for rank ", r));
      std::vector<bool> seen(static_cast<std::size_t>(r), false);
      for (Index k = 0; k < r; ++k) {
        const Index p = axis_in(node, a->ints(static_cast<int>(k)), r);
        if (seen[static_cast<std::size_t>(p)]) fail(cat(who(node), ": perm repeats axis ", p));
        seen[static_cast<std::size_t>(p)] = true;
        perm[static_cast<std::size_t>(k)] = p;
      }
    } else {
      for (Index k = 0; k < r; ++k) perm[static_cast<std::size_t>(k)] = r - 1 - k;
    }
    std::vector<Index> shape(perm.size());
    for (std::size_t k = 0; k < perm.size(); ++k) shape[k] = x.shape[static_cast<std::size_t>(perm[k])];
    const auto ist = strides(x.shape);
    out = gather_elements(x, shape, [&](const std::vector<Index>& idx) {
      Index j = 0;
      for (std::size_t k = 0; k < perm.size(); ++k) j += idx[k] * ist[static_cast<std::size_t>(perm[k])];
      return j;
    });
  } else if (op == "Gather") {
    const auto& x = input(0);
    const auto ind = int_values(node, input(1), "indices");
    const Index r = static_cast<Index>(x.shape.size());
    const auto* a = attribute(node, "axis");
    const Index axis = axis_in(node, a ? a->i() : 0, r);
    const Index dim = x.shape[static_cast<std::size_t>(axis)];
    std::vector<Index> shape(x.shape.begin(), x.shape.begin() + axis);
    shape.insert(shape.end(), input(1).shape.begin(), input(1).shape.end());
    shape.insert(shape.end(), x.shape.begin() + axis + 1, x.shape.end());
    for (auto i : ind)
      if (i < -dim || i >= dim) fail(cat(who(node), ": index ", i, " is outside [", -dim, ", ", dim, ")"));
    const auto ist = strides(x.shape);
    const Index ir = static_cast<Index>(input(1).shape.size());
    const auto jst = strides(input(1).shape);
    out = gather_elements(x, shape, [&](const std::vector<Index>& idx) {
      Index flat = 0;
      for (Index k = 0; k < ir; ++k) flat += idx[static_cast<std::size_t>(axis + k)] * jst[static_cast<std::size_t>(k)];
      Index i = static_cast<Index>(ind[static_cast<std::size_t>(flat)]);
      if (i < 0) i += dim;
      Index j = i * ist[static_cast<std::size_t>(axis)];
      for (Index k = 0; k < axis; ++k) j += idx[static_cast<std::size_t>(k)] * ist[static_cast<std::size_t>(k)];
      for (Index k = axis + 1; k < r; ++k) j += idx[static_cast<std::size_t>(k + ir - 1)] * ist[static_cast<std::size_t>(k)];
      return j;
    });
  } else if (op == "Unsqueeze" || op == "Squeeze") {
    const auto& x = input(0);
    std::vector<std::int64_t> axes;
    if (has_input(1)) axes = int_values(node, input(1), "axes");
    else if (const auto* a = attribute(node, "axes")) axes.assign(a->ints().begin(), a->ints().end());
    std::vector<Index> shape;
    if (op == "Unsqueeze") {
      const Index r = static_cast<Index>(x.shape.size() + axes.size());
      std::vector<bool> inserted(static_cast<std::size_t>(r), false);
      for (auto ax : axes) inserted[static_cast<std::size_t>(axis_in(node, ax, r))] = true;
      std::size_t k = 0;
      for (Index i = 0; i < r; ++i) shape.push_back(inserted[static_cast<std::size_t>(i)] ? 1 : x.shape[k++]);
      if (k != x.shape.size()) fail(who(node) + ": repeated axes");
    } else {
      const Index r = static_cast<Index>(x.shape.size());
      std::vector<bool> drop(static_cast<std::size_t>(r), axes.empty());
      for (auto ax : axes) {
        const Index i = axis_in(node, ax, r);
        if (x.shape[static_cast<std::size_t>(i)] != 1)
          fail(cat(who(node), ": axis ", ax, " has size ", x.shape[static_cast<std::size_t>(i)], ", not 1"));
        drop[static_cast<std::size_t>(i)] = true;
      }
      for (Index i = 0; i < r; ++i)
        if (!(drop[static_cast<std::size_t>(i)] && x.shape[static_cast<std::size_t>(i)] == 1)) shape.push_back(x.shape[static_cast<std::size_t>(i)]);
    }
    out = x;
    out.shape = shape;
  } else if (op == "Reshape") {
    const auto& x = input(0);
    const auto want = int_values(node, input(1), "shape");
    std::vector<Index> shape;
    Index known = 1, infer = -1;
    for (std::size_t k = 0; k < want.size(); ++k) {
      Index d = static_cast<Index>(want[k]);
      if (d == 0) {
        if (k >= x.shape.size()) fail(cat(who(node), ": shape[", k, "] = 0 copies a dimension the input does not have"));
        d = x.shape[k];
      }
      if (d == -1) {
        if (infer >= 0) fail(who(node) + ": more than one -1 in shape");
        infer = static_cast<Index>(k);
        d = 1;
      } else if (d < 0) {
        fail(cat(who(node), ": shape[", k, "] = ", d));
      }
      known *= d;
      shape.push_back(d);
    }
    const Index n = x.size();
    if (infer >= 0) {
      if (known == 0 || n % known != 0) fail(cat(who(node), ": cannot reshape ", x.shape_string(), " to ", want.size(), " dimensions"));
      shape[static_cast<std::size_t>(infer)] = n / known;
    }
    if (count(shape) != n) {
      Tensor<T> t;
      t.shape = shape;
      fail(who(node) + ": cannot reshape " + x.shape_string() + " to " + t.shape_string());
    }
    out = x;
    out.shape = shape;
  } else if (op == "Concat") {
    const auto* a = attribute(node, "axis");
    if (!a) fail(who(node) + ": needs attribute axis");
    const Tensor<T>& first = input(0);
    const Index r = static_cast<Index>(first.shape.size());
    const Index axis = axis_in(node, a->i(), r);
    std::vector<const Tensor<T>*> parts;
    std::vector<Index> shape = first.shape;
    shape[static_cast<std::size_t>(axis)] = 0;
    for (int i = 0; i < node.input_size(); ++i) {
      const Tensor<T>& t = input(i);
      bool fits = t.shape.size() == first.shape.size() && t.integer == first.integer;
      for (Index k = 0; fits && k < r; ++k)
        fits = k == axis || t.shape[static_cast<std::size_t>(k)] == first.shape[static_cast<std::size_t>(k)];
      if (!fits) fail(who(node) + ": input " + t.shape_string() + " does not fit " + first.shape_string());
      shape[static_cast<std::size_t>(axis)] += t.shape[static_cast<std::size_t>(axis)];
      parts.push_back(&t);
    }
    out.shape = shape;
    out.integer = first.integer;
    const Index outer = count(std::vector<Index>(shape.begin(), shape.begin() + axis));
    for (Index o = 0; o < outer; ++o)
      for (const Tensor<T>* t : parts) {
        const Index inner = count(std::vector<Index>(t->shape.begin() + axis, t->shape.end()));
        if (t->integer) out.ints.insert(out.ints.end(), t->ints.begin() + o * inner, t->ints.begin() + (o + 1) * inner);
        else out.values.insert(out.values.end(), t->values.begin() + o * inner, t->values.begin() + (o + 1) * inner);
      }
  } else if (op == "Slice") {
    const auto& x = input(0);
    const Index r = static_cast<Index>(x.shape.size());
    const auto starts = int_values(node, input(1), "starts"), ends = int_values(node, input(2), "ends");
    std::vector<std::int64_t> axes, steps;
    if (has_input(3)) axes = int_values(node, input(3), "axes");
    else for (std::size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<std::int64_t>(k));
    if (has_input(4)) steps = int_values(node, input(4), "steps");
    else steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
      fail(who(node) + ": starts, ends, axes and steps differ in length");
    std::vector<Index> first(static_cast<std::size_t>(r), 0), step(static_cast<std::size_t>(r), 1), shape = x.shape;
    for (std::size_t k = 0; k < starts.size(); ++k) {
      const std::size_t a = static_cast<std::size_t>(axis_in(node, axes[k], r));
      const Index dim = x.shape[a], st = static_cast<Index>(steps[k]);
      if (st == 0) fail(who(node) + ": a step of 0");
      auto clampi = [](std::int64_t v, Index lo, Index hi) { return static_cast<Index>(std::max<std::int64_t>(lo, std::min<std::int64_t>(hi, v))); };
      Index b = static_cast<Index>(starts[k] < 0 ? starts[k] + dim : std::min<std::int64_t>(starts[k], dim));
      Index e = static_cast<Index>(ends[k] < 0 ? ends[k] + dim : std::min<std::int64_t>(ends[k], dim));
      Index n;
      if (st > 0) {
        b = clampi(b, 0, dim);
        e = clampi(e, 0, dim);
        n = e > b ? (e - b + st - 1) / st : 0;
      } else {
        b = clampi(b, 0, dim - 1);
        e = clampi(e, -1, dim - 1);
        n = b > e ? (b - e + (-st) - 1) / (-st) : 0;
      }
      first[a] = b;
      step[a] = st;
      shape[a] = n;
    }
    const auto ist = strides(x.shape);
    out = gather_elements(x, shape, [&](const std::vector<Index>& idx) {
      Index j = 0;
      for (std::size_t k = 0; k < idx.size(); ++k) j += (first[k] + idx[k] * step[k]) * ist[k];
      return j;
    });
  } else if (op == "Expand") {
    const auto& x = input(0);
    const auto want = int_values(node, input(1), "shape");
    const std::size_t r = std::max(x.shape.size(), want.size());
    std::vector<Index> xs(r, 1), shape(r, 1);
    std::copy(x.shape.begin(), x.shape.end(), xs.begin() + static_cast<std::ptrdiff_t>(r - x.shape.size()));
    for (std::size_t k = 0; k < want.size(); ++k) shape[r - want.size() + k] = static_cast<Index>(want[k]);
    for (std::size_t k = 0; k < r; ++k) {
      if (xs[k] != shape[k] && xs[k] != 1 && shape[k] != 1) {
        Tensor<T> t;
        t.shape = shape;
        fail(who(node) + ": cannot expand " + x.shape_string() + " to " + t.shape_string());
      }
      shape[k] = std::max(xs[k], shape[k]);
    }
    const auto ist = strides(xs);
    out = gather_elements(x, shape, [&](const std::vector<Index>& idx) {
      Index j = 0;
      for (std::size_t k = 0; k < r; ++k) j += (xs[k] == 1 ? 0 : idx[k]) * ist[k];
      return j;
    });
  }
  values[node.output(0)] = std::move(out);
}

}  // namespace detail

/// An ONNX graph of recurrent nodes (and the shape operators between them), run by recur's
/// layers in T (float or double).
template <class T>
class Graph {
 public:
  explicit Graph(const ::onnx::ModelProto& model) {
    const auto& g = model.graph();
    for (const auto& init : g.initializer()) constants_[init.name()] = from_proto<T>(init, "initializer " + init.name());
    for (const auto& node : g.node()) {
      if (detail::is_recurrent(node.op_type())) {
        steps_.push_back({nodes_.size(), node});
        nodes_.push_back(describe(node));
      } else if (detail::is_shape_op(node.op_type()) && (node.domain().empty() || node.domain() == "ai.onnx")) {
        steps_.push_back({kShapeOp, node});
      } else {
        detail::fail(detail::who(node) + ": operator " + node.op_type() +
                     " is not supported (LSTM, GRU, RNN and the shape operators Constant, Shape, "
                     "Gather, Unsqueeze, Squeeze, Concat, Expand, Reshape, Slice, Transpose, Identity)");
      }
    }
    for (const auto& in : g.input())
      if (!constants_.count(in.name())) inputs_.push_back(in.name());
    for (const auto& out : g.output()) outputs_.push_back(out.name());
  }

  /// The recurrent nodes, in the graph's order.
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
    for (const auto& step : steps_) {
      if (step.node == kShapeOp)
        detail::run_shape_op(step.proto, values);
      else
        run_node(nodes_[step.node], values);
    }
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

  static constexpr std::size_t kShapeOp = static_cast<std::size_t>(-1);
  struct Step {
    std::size_t node;  // index into nodes_, or kShapeOp
    ::onnx::NodeProto proto;
  };
  std::map<std::string, Tensor<T>> constants_;
  std::vector<Step> steps_;  // in the graph's order
  std::vector<NodeInfo> nodes_;
  std::vector<std::string> inputs_, outputs_;
};


// ---- export ----

/// What to_onnx writes besides the model.
struct ExportOptions {
  bool initial_state = false;  // graph inputs h0 (and c0) [layers * directions, batch, hidden];
                               // without them the model starts from zeros
  std::int64_t opset = 14;     // 14: the first with LSTM/GRU/RNN's layout attribute
  std::string graph_name = "recur";
};

namespace detail {
template <class T>
constexpr int onnx_type() {
  return std::is_same_v<T, double> ? ::onnx::TensorProto::DOUBLE : ::onnx::TensorProto::FLOAT;
}
template <class T>
void set_tensor(::onnx::TensorProto* t, const std::string& name, const std::vector<Index>& shape,
                const std::vector<T>& values) {
  t->set_name(name);
  t->set_data_type(onnx_type<T>());
  for (Index d : shape) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
}
inline void set_ints(::onnx::TensorProto* t, const std::string& name, const std::vector<std::int64_t>& v) {
  t->set_name(name);
  t->set_data_type(::onnx::TensorProto::INT64);
  t->add_dims(static_cast<std::int64_t>(v.size()));
  for (auto x : v) t->add_int64_data(x);
}
// A graph input or output: element type and shape (symbolic dimensions by name).
inline void value_info(::onnx::ValueInfoProto* v, const std::string& name, int type,
                       const std::vector<std::string>& dims) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(type);
  auto* sh = tt->mutable_shape();
  for (const auto& d : dims) {
    auto* dim = sh->add_dim();
    if (!d.empty() && d.find_first_not_of("0123456789") == std::string::npos)
      dim->set_dim_value(std::stoll(d));
    else
      dim->set_dim_param(d);
  }
}
inline ::onnx::NodeProto* add_node(::onnx::GraphProto* g, const std::string& op, const std::string& name,
                                   const std::vector<std::string>& in, const std::vector<std::string>& out) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& i : in) n->add_input(i);
  for (const auto& o : out) n->add_output(o);
  return n;
}
inline void attr_int(::onnx::NodeProto* n, const std::string& k, std::int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(k);
  a->set_type(::onnx::AttributeProto::INT);
  a->set_i(v);
}
inline void attr_ints(::onnx::NodeProto* n, const std::string& k, const std::vector<std::int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(k);
  a->set_type(::onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}
inline void attr_string(::onnx::NodeProto* n, const std::string& k, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(k);
  a->set_type(::onnx::AttributeProto::STRING);
  a->set_s(v);
}
inline void attr_strings(::onnx::NodeProto* n, const std::string& k, const std::vector<std::string>& v) {
  auto* a = n->add_attribute();
  a->set_name(k);
  a->set_type(::onnx::AttributeProto::STRINGS);
  for (const auto& x : v) a->add_strings(x);
}
inline void attr_float(::onnx::NodeProto* n, const std::string& k, float v) {
  auto* a = n->add_attribute();
  a->set_name(k);
  a->set_type(::onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
}  // namespace detail

/// The ONNX form of a recur RNN<T>, LSTM<T> or GRU<T> (see the top of this file).
template <class Model>
::onnx::ModelProto to_onnx(Model& model, const ExportOptions& opt = {}) {
  using T = typename Model::Scalar;
  using Cell = typename Model::CellType;
  const RecurrentOptions& o = model.options();
  const std::string op = Cell::kGates == 4 ? "LSTM" : Cell::kGates == 3 ? "GRU" : "RNN";
  if (o.proj_size > 0)
    detail::fail(detail::cat("to_onnx: an LSTM with proj_size = ", o.proj_size,
                             " has no ONNX form (ONNX's LSTM has no projection)"));
  if (o.layer_norm != LayerNorm::None)
    detail::fail("to_onnx: a layer-norm LSTM has no ONNX form (ONNX's LSTM has no layer norm)");
  const Index L = o.num_layers, D = o.bidirectional ? 2 : 1, H = o.hidden_size, G = Cell::kGates;
  const bool lstm = Cell::kStates == 2;
  ::onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("recur");
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(opt.opset);
  auto* g = m.mutable_graph();
  g->set_name(opt.graph_name);
  const int type = detail::onnx_type<T>();
  detail::value_info(g->add_input(), "x", type, {"batch", "time", std::to_string(o.input_size)});
  if (opt.initial_state) {
    detail::value_info(g->add_input(), "h0", type, {std::to_string(L * D), "batch", std::to_string(H)});
    if (lstm) detail::value_info(g->add_input(), "c0", type, {std::to_string(L * D), "batch", std::to_string(H)});
  }
  // Gate blocks: recur's block k is ONNX's block order[k].
  const std::vector<Index> order = op == "LSTM" ? std::vector<Index>{0, 2, 3, 1}
                                   : op == "GRU" ? std::vector<Index>{1, 0, 2} : std::vector<Index>{0};
  auto params = model.named_parameters();
  auto find = [&](const std::string& name) -> const Parameter<T>& {
    for (const auto& p : params)
      if (p.name == name) return p;
    detail::fail("to_onnx: the model has no parameter " + name);
  };
  auto* a = detail::add_node(g, "Transpose", "x_time_major", {"x"}, {"x_tbi"});
  detail::attr_ints(a, "perm", {1, 0, 2});
  std::string x = "x_tbi";
  std::vector<std::string> hs, cs;
  for (Index l = 0; l < L; ++l) {
    const std::string sl = "_l" + std::to_string(l);
    const Index I = l == 0 ? o.input_size : D * H;
    std::vector<T> W(static_cast<std::size_t>(D * G * H * I)), R(static_cast<std::size_t>(D * G * H * H)),
        B(static_cast<std::size_t>(D * 2 * G * H)), P(static_cast<std::size_t>(D * 3 * H));
    for (Index d = 0; d < D; ++d) {
      const std::string suffix = sl + (d == 1 ? "_reverse" : "");
      const auto& wih = find("weight_ih" + suffix);
      const auto& whh = find("weight_hh" + suffix);
      const auto& bih = find("bias_ih" + suffix);
      const auto& bhh = find("bias_hh" + suffix);
      for (Index k = 0; k < G; ++k)
        for (Index j = 0; j < H; ++j) {
          const Index from = k * H + j, to = order[static_cast<std::size_t>(k)] * H + j;
          for (Index i = 0; i < I; ++i) W[static_cast<std::size_t>((d * G * H + to) * I + i)] = wih.value(from, i);
          for (Index i = 0; i < H; ++i) R[static_cast<std::size_t>((d * G * H + to) * H + i)] = whh.value(from, i);
          B[static_cast<std::size_t>(d * 2 * G * H + to)] = bih.value(from, 0);
          B[static_cast<std::size_t>(d * 2 * G * H + G * H + to)] = bhh.value(from, 0);
        }
      if constexpr (Cell::kStates == 2) {
        if (model.cell().peephole()) {  // recur [p_i; p_f; p_o] -> ONNX [p_i, p_o, p_f]
          const auto& p = find("peephole" + suffix);
          const Index porder[3] = {0, 2, 1};
          for (Index k = 0; k < 3; ++k)
            for (Index j = 0; j < H; ++j)
              P[static_cast<std::size_t>(d * 3 * H + porder[k] * H + j)] = p.value.data()[k * H + j];
        }
      }
    }
    detail::set_tensor(g->add_initializer(), "W" + sl, {D, G * H, I}, W);
    detail::set_tensor(g->add_initializer(), "R" + sl, {D, G * H, H}, R);
    detail::set_tensor(g->add_initializer(), "B" + sl, {D, 2 * G * H}, B);
    std::vector<std::string> in{x, "W" + sl, "R" + sl, "B" + sl, "", "", ""};
    if (opt.initial_state) {  // this layer's slots of h0 (c0)
      detail::set_ints(g->add_initializer(), "starts" + sl, {l * D});
      detail::set_ints(g->add_initializer(), "ends" + sl, {(l + 1) * D});
      detail::set_ints(g->add_initializer(), "axes" + sl, {0});
      detail::add_node(g, "Slice", "h0" + sl, {"h0", "starts" + sl, "ends" + sl, "axes" + sl}, {"h0" + sl});
      in[5] = "h0" + sl;
      if (lstm) {
        detail::add_node(g, "Slice", "c0" + sl, {"c0", "starts" + sl, "ends" + sl, "axes" + sl}, {"c0" + sl});
        in[6] = "c0" + sl;
      }
    }
    bool peephole = false;
    if constexpr (Cell::kStates == 2) peephole = model.cell().peephole();
    if (peephole) {
      detail::set_tensor(g->add_initializer(), "P" + sl, {D, 3 * H}, P);
      in.push_back("P" + sl);
    }
    while (!in.empty() && in.back().empty()) in.pop_back();
    std::vector<std::string> out{"Y" + sl, "Y_h" + sl};
    if (lstm) out.push_back("Y_c" + sl);
    auto* n = detail::add_node(g, op, op + sl, in, out);
    detail::attr_int(n, "hidden_size", H);
    detail::attr_string(n, "direction", D == 2 ? "bidirectional" : "forward");
    const double clip = static_cast<double>(model.cell().cell_clip());
    if (clip > 0) detail::attr_float(n, "clip", static_cast<float>(clip));
    if constexpr (Cell::kGates == 3) detail::attr_int(n, "linear_before_reset", model.cell().linear_before_reset() ? 1 : 0);
    if constexpr (Cell::kGates == 1) {
      const std::string f = model.cell().nonlinearity() == Nonlinearity::ReLU ? "Relu" : "Tanh";
      detail::attr_strings(n, "activations", std::vector<std::string>(static_cast<std::size_t>(D), f));
    }
    hs.push_back("Y_h" + sl);
    if (lstm) cs.push_back("Y_c" + sl);
    // Y [T, D, B, H] -> [T, B, D * H]: the next layer's input (or the output).
    auto* t = detail::add_node(g, "Transpose", "Y_tbdh" + sl, {"Y" + sl}, {"Y_tbdh" + sl});
    detail::attr_ints(t, "perm", {0, 2, 1, 3});
    detail::set_ints(g->add_initializer(), "shape_tb_" + sl, {0, 0, -1});
    detail::add_node(g, "Reshape", "Y_tbf" + sl, {"Y_tbdh" + sl, "shape_tb_" + sl}, {"Y_tbf" + sl});
    x = "Y_tbf" + sl;
  }
  auto* t = detail::add_node(g, "Transpose", "y_batch_first", {x}, {"y"});
  detail::attr_ints(t, "perm", {1, 0, 2});
  auto* c = detail::add_node(g, L > 1 ? "Concat" : "Identity", "h_n", hs, {"h_n"});
  if (L > 1) detail::attr_int(c, "axis", 0);
  if (lstm) {
    auto* cc = detail::add_node(g, L > 1 ? "Concat" : "Identity", "c_n", cs, {"c_n"});
    if (L > 1) detail::attr_int(cc, "axis", 0);
  }
  const std::string Hs = std::to_string(H), LD = std::to_string(L * D);
  detail::value_info(g->add_output(), "y", type, {"batch", "time", std::to_string(D * H)});
  detail::value_info(g->add_output(), "h_n", type, {LD, "batch", Hs});
  if (lstm) detail::value_info(g->add_output(), "c_n", type, {LD, "batch", Hs});
  return m;
}

/// Writes `model` to `path` atomically (a temporary file beside it, then a rename).
inline void save_model(const ::onnx::ModelProto& model, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("onnx: cannot write " + tmp);
    if (!model.SerializeToOstream(&f) || !f.flush())
      throw std::runtime_error("onnx: writing " + tmp + " failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("onnx: cannot rename " + tmp + " to " + path);
  }
}

}  // namespace recur::onnx
