// Gathering the parameters of several modules into one named list, for an optimizer and for
// checkpoints, with the dotted names a PyTorch module with those attributes would have:
//
//   auto params = recur::gather(recur::named("embedding", embedding),   // embedding.weight
//                               recur::named("rnn", lstm),              // rnn.weight_ih_l0 ...
//                               recur::named("head", head));            // head.weight, head.bias
//
// A module is anything with named_parameters() (Embedding, Linear, RNN/LSTM/GRU, ...). The
// list holds views into the modules' storage: keep the modules alive (and in place) while the
// list is used.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "recur/detail/check.hpp"
#include "recur/types.hpp"

namespace recur {

/// The parameters of `module` with "prefix." in front of their names.
template <class Module>
auto named(const std::string& prefix, Module& module) {
  auto params = module.named_parameters();
  if (!prefix.empty())
    for (auto& p : params) p.name = prefix + "." + p.name;
  return params;
}

/// The lists one after the other; throws std::invalid_argument on a repeated name.
template <class T, class... More>
std::vector<Parameter<T>> gather(std::vector<Parameter<T>> first, More&&... more) {
  (first.insert(first.end(), more.begin(), more.end()), ...);
  std::set<std::string> seen;
  for (auto& p : first)
    detail::require(seen.insert(p.name).second, "gather: parameter name '", p.name,
                    "' appears twice; give the modules different prefixes");
  return first;
}

/// A named, shaped view of contiguous row-major data: what checkpoints read and write.
template <class T>
struct TensorRef {
  std::string name;
  std::vector<Index> shape;
  T* data;
  Index size() const {
    Index n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

namespace detail {
// A Parameter is a view: a const Parameter still refers to writable storage.
template <class T>
Eigen::Map<Matrix<T>> writable(const Eigen::Map<Matrix<T>>& m) {
  return Eigen::Map<Matrix<T>>(const_cast<T*>(m.data()), m.rows(), m.cols());
}
}  // namespace detail

/// Views of the parameters' values.
template <class T>
std::vector<TensorRef<T>> values(const std::vector<Parameter<T>>& params) {
  std::vector<TensorRef<T>> out;
  for (auto& p : params)
    out.push_back(TensorRef<T>{p.name, p.shape, detail::writable(p.value).data()});
  return out;
}

}  // namespace recur
