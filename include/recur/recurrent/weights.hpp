// RecurrentWeights<T>: the parameters of one recurrent layer (one direction of one layer of
// PyTorch's nn.RNN/nn.LSTM/nn.GRU) and their gradients, each in one contiguous buffer
//   [weight_ih (G*H x in) | weight_hh (G*H x R) | bias_ih (G*H) | bias_hh (G*H) |
//    weight_hr (P x H) | the cell's],
// gate blocks of H rows in the cell's order; with a projection (PyTorch's proj_size P > 0)
// the recurrent state h has width R = P and weight_hr projects the cell's output onto it
// (R = H and no weight_hr otherwise); then the parameters the cell owns (peepholes:
// recur/cells/contract.hpp), if any. Depends on the scalar type only (the gate count
// G is a run-time value), so it is compiled once per scalar type, not once per cell.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "recur/cells/contract.hpp"
#include "recur/detail/check.hpp"
#include "recur/types.hpp"

namespace recur::detail {

template <class T>
class RecurrentWeights {
 public:
  using Map = Eigen::Map<Matrix<T>>;
  using ConstMap = Eigen::Map<const Matrix<T>>;
  using RowVec = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;

  RecurrentWeights(Index gates, Index input_size, Index hidden_size,
                   std::vector<CellParameter> cell_parameters = {}, Index proj_size = 0)
      : gates_(gates), input_(input_size), hidden_(hidden_size), proj_(proj_size),
        cell_(std::move(cell_parameters)) {
    require(proj_size >= 0 && proj_size < hidden_size, "Recurrent: proj_size must be in [0, ",
            "hidden_size) (0: no projection), got proj_size=", proj_size, " hidden_size=",
            hidden_size);
    for (const auto& p : cell_) cell_count_ += parameter_size(p);
    require(input_size > 0 && hidden_size > 0,
            "Recurrent: input_size and hidden_size must be positive, got input_size=",
            input_size, " hidden_size=", hidden_size);
    // G*H*(in + H + 2) values, checked against overflow before anything is allocated.
    checked_count("Recurrent: parameters [gates * hidden_size, input_size + hidden_size + 2]",
                  {checked_count("Recurrent: gates * hidden_size", {gates, hidden_size}, sizeof(T)),
                   checked_sum("Recurrent: input_size + hidden_size + 2", input_size,
                               checked_sum("Recurrent: hidden_size + 2", hidden_size, 2))},
                  2 * sizeof(T));  // values and gradients
    params_.assign(static_cast<std::size_t>(count()), T(0));
    grads_.assign(params_.size(), T(0));
  }

  Index gates() const { return gates_; }
  Index input_size() const { return input_; }
  Index hidden_size() const { return hidden_; }
  Index gate_rows() const { return gates_ * hidden_; }  // G*H
  /// The width of the recurrent state h: proj_size, or hidden_size without a projection.
  Index recurrent_size() const { return proj_ > 0 ? proj_ : hidden_; }
  Index proj_size() const { return proj_; }
  Index count() const {
    return gate_rows() * (input_ + recurrent_size() + 2) + proj_ * hidden_ + cell_count_;
  }
  /// The parameters the cell owns (after bias_hh): values and gradients.
  Index cell_count() const { return cell_count_; }
  const T* cell_values() const { return params_.data() + cell_offset(); }
  T* cell_grads() { return grads_.data() + cell_offset(); }

  /// PyTorch's names with `suffix` appended (`weight_ih` + `_l0_reverse`), in PyTorch's order.
  std::vector<Parameter<T>> named(const std::string& suffix) {
    const Index GH = gate_rows();
    std::vector<Parameter<T>> out;
    auto add = [&](const char* name, Index offset, Index r, Index c, std::vector<Index> shape) {
      out.push_back(Parameter<T>{std::string(name) + suffix, std::move(shape),
                                 Map(params_.data() + offset, r, c),
                                 Map(grads_.data() + offset, r, c)});
    };
    add("weight_ih", w_ih_offset(), GH, input_, {GH, input_});
    add("weight_hh", w_hh_offset(), GH, recurrent_size(), {GH, recurrent_size()});
    add("bias_ih", b_ih_offset(), GH, 1, {GH});
    add("bias_hh", b_hh_offset(), GH, 1, {GH});
    if (proj_ > 0) add("weight_hr", w_hr_offset(), proj_, hidden_, {proj_, hidden_});
    Index offset = cell_offset();
    for (const auto& p : cell_) {
      const Index n = parameter_size(p), c = p.shape.size() > 1 ? p.shape.back() : 1;
      add(p.name.c_str(), offset, n / c, c, p.shape);
      offset += n;
    }
    return out;
  }
  void zero_grad() { std::fill(grads_.begin(), grads_.end(), T(0)); }
  /// PyTorch's default initialisation: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)) (the
  /// cell's own as each says: uniform so, ones or zeros).
  template <class Rng>
  void reset(Rng& rng) {
    const double k = 1.0 / std::sqrt(static_cast<double>(hidden_));
    std::uniform_real_distribution<double> u(-k, k);
    for (Index i = 0; i < cell_offset(); ++i) params_[static_cast<std::size_t>(i)] = static_cast<T>(u(rng));
    T* v = params_.data() + cell_offset();
    for (const auto& p : cell_)
      for (Index i = 0, n = parameter_size(p); i < n; ++i, ++v)
        *v = p.init == ParameterInit::Uniform ? static_cast<T>(u(rng))
                                              : T(p.init == ParameterInit::Ones ? 1 : 0);
  }

  ConstMap w_ih() const { return {params_.data() + w_ih_offset(), gate_rows(), input_}; }
  ConstMap w_hh() const { return {params_.data() + w_hh_offset(), gate_rows(), recurrent_size()}; }
  ConstMap w_hr() const { return {params_.data() + w_hr_offset(), proj_, hidden_}; }
  Map d_w_hr() { return {grads_.data() + w_hr_offset(), proj_, hidden_}; }
  RowVec b_ih() const { return {params_.data() + b_ih_offset(), gate_rows()}; }
  RowVec b_hh() const { return {params_.data() + b_hh_offset(), gate_rows()}; }
  Map d_w_ih() { return {grads_.data() + w_ih_offset(), gate_rows(), input_}; }
  Map d_w_hh() { return {grads_.data() + w_hh_offset(), gate_rows(), recurrent_size()}; }
  Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>> d_b_ih() {
    return {grads_.data() + b_ih_offset(), gate_rows()};
  }
  Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>> d_b_hh() {
    return {grads_.data() + b_hh_offset(), gate_rows()};
  }

 private:
  Index w_ih_offset() const { return 0; }
  Index w_hh_offset() const { return gate_rows() * input_; }
  Index b_ih_offset() const { return w_hh_offset() + gate_rows() * recurrent_size(); }
  Index b_hh_offset() const { return b_ih_offset() + gate_rows(); }
  Index w_hr_offset() const { return b_hh_offset() + gate_rows(); }
  Index cell_offset() const { return w_hr_offset() + proj_ * hidden_; }

  Index gates_, input_, hidden_, proj_;
  std::vector<CellParameter> cell_;
  Index cell_count_ = 0;
  Buffer<T> params_, grads_;
};

}  // namespace recur::detail
