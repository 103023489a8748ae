// The layers around the recurrent core, PyTorch-shaped: Embedding (nn.Embedding), Linear
// applied to every time step (nn.Linear on a [B, T, F] tensor) and Dropout (nn.Dropout).
// Forward and backward side by side; backward ADDS into the parameter gradients (zero_grad()
// starts afresh), as the recurrent layers do. Training mode (the default) keeps what
// backward needs; eval mode keeps nothing and makes Dropout the identity.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "recur/detail/check.hpp"
#include "recur/detail/dropout.hpp"
#include "recur/sequence_layer.hpp"
#include "recur/types.hpp"

namespace recur {

namespace detail {

template <class T>
Parameter<T> make_parameter(std::string name, std::vector<Index> shape, T* value, T* grad) {
  const Index r = shape[0], c = shape.size() > 1 ? shape[1] : 1;
  return Parameter<T>{std::move(name), std::move(shape), Eigen::Map<Matrix<T>>(value, r, c),
                      Eigen::Map<Matrix<T>>(grad, r, c)};
}

}  // namespace detail

/// Embedding<T>: a [num_embeddings, embedding_dim] table; ids [B, T] -> rows [B, T, dim].
/// Initialised N(0, 1) as PyTorch. backward() adds d out into the rows that were used only.
template <class T>
class Embedding : public Mode {
 public:
  Embedding(Index num_embeddings, Index embedding_dim, std::uint64_t seed = 0)
      : vocab_(num_embeddings), dim_(embedding_dim) {
    detail::require(num_embeddings > 0 && embedding_dim > 0,
                    "Embedding: num_embeddings and embedding_dim must be positive, got ",
                    num_embeddings, " and ", embedding_dim);
    detail::checked_count("Embedding: [num_embeddings, embedding_dim]", {vocab_, dim_}, 2 * sizeof(T));
    weight_.resize(static_cast<std::size_t>(vocab_ * dim_));
    grad_.assign(weight_.size(), T(0));
    std::mt19937_64 rng(seed);
    reset_parameters(rng);
  }

  Index num_embeddings() const { return vocab_; }
  Index embedding_dim() const { return dim_; }

  template <class Rng>
  void reset_parameters(Rng& rng) {
    std::normal_distribution<double> n(0.0, 1.0);
    for (auto& v : weight_) v = static_cast<T>(n(rng));
  }
  std::vector<Parameter<T>> named_parameters() {
    return {detail::make_parameter<T>("weight", {vocab_, dim_}, weight_.data(), grad_.data())};
  }
  void zero_grad() { std::fill(grad_.begin(), grad_.end(), T(0)); }

  Tensor3<T> forward(const Tokens& ids) {
    const Index B = ids.dimension(0), S = ids.dimension(1);
    for (Index i = 0; i < ids.size(); ++i) {
      const Index id = ids.data()[i];
      if (id < 0 || id >= vocab_)
        detail::fail("Embedding: id ", id, " at [", i / S, ", ", i % S, "] of ids ",
                     detail::dims_str(ids.dimensions()), " is outside [0, ", vocab_, ")");
    }
    Tensor3<T> out(B, S, dim_);
    for (Index i = 0; i < ids.size(); ++i)
      std::copy_n(weight_.data() + ids.data()[i] * dim_, dim_, out.data() + i * dim_);
    if (training_) ids_ = ids;
    has_forward_ = training_;
    return out;
  }

  /// Row `id` of the table (1 x dim), for one step at a time (no copy, no cache).
  Eigen::Map<const Matrix<T>> lookup(Index id) const {
    detail::require(id >= 0 && id < vocab_, "Embedding: id ", id, " is outside [0, ", vocab_, ")");
    return Eigen::Map<const Matrix<T>>(weight_.data() + id * dim_, 1, dim_);
  }

  /// d_out: [B, T, dim] of the last training forward.
  void backward(const Tensor3<T>& d_out) {
    check_backward("Embedding::backward");
    detail::require(d_out.dimension(0) == ids_.dimension(0) &&
                        d_out.dimension(1) == ids_.dimension(1) && d_out.dimension(2) == dim_,
                    "Embedding::backward: d_out is ", detail::dims_str(d_out.dimensions()),
                    " but the forward's output is ",
                    detail::shape_str({ids_.dimension(0), ids_.dimension(1), dim_}));
    has_forward_ = false;
    for (Index i = 0; i < ids_.size(); ++i) {
      T* g = grad_.data() + ids_.data()[i] * dim_;
      const T* d = d_out.data() + i * dim_;
      for (Index k = 0; k < dim_; ++k) g[k] += d[k];
    }
  }

 private:
  Index vocab_, dim_;
  detail::Buffer<T> weight_, grad_;
  Tokens ids_;
};

/// Linear<T>: y = x W^T + b on every time step of x [B, T, in] -> [B, T, out], as one GEMM
/// over the B*T rows. weight [out, in], bias [out]; initialised U(-1/sqrt(in), 1/sqrt(in)) as
/// PyTorch.
template <class T>
class Linear : public Mode {
 public:
  Linear(Index in_features, Index out_features, std::uint64_t seed = 0, bool bias = true)
      : in_(in_features), out_(out_features), bias_(bias) {
    detail::require(in_features > 0 && out_features > 0,
                    "Linear: in_features and out_features must be positive, got ", in_features,
                    " and ", out_features);
    detail::checked_count("Linear: [out_features, in_features + 1]",
                          {out_, detail::checked_sum("Linear: in_features + 1", in_, 1)}, 2 * sizeof(T));
    params_.assign(static_cast<std::size_t>(out_ * in_ + (bias_ ? out_ : 0)), T(0));
    grads_.assign(params_.size(), T(0));
    std::mt19937_64 rng(seed);
    reset_parameters(rng);
  }

  Index in_features() const { return in_; }
  Index out_features() const { return out_; }

  template <class Rng>
  void reset_parameters(Rng& rng) {
    const double k = 1.0 / std::sqrt(static_cast<double>(in_));
    std::uniform_real_distribution<double> u(-k, k);
    for (auto& v : params_) v = static_cast<T>(u(rng));
  }
  std::vector<Parameter<T>> named_parameters() {
    std::vector<Parameter<T>> p{
        detail::make_parameter<T>("weight", {out_, in_}, params_.data(), grads_.data())};
    if (bias_)
      p.push_back(detail::make_parameter<T>("bias", {out_}, params_.data() + out_ * in_,
                                            grads_.data() + out_ * in_));
    return p;
  }
  void zero_grad() { std::fill(grads_.begin(), grads_.end(), T(0)); }

  Tensor3<T> forward(const Tensor3<T>& x) {
    const Index B = x.dimension(0), S = x.dimension(1);
    detail::require(x.dimension(2) == in_, "Linear: input has ", x.dimension(2),
                    " features but in_features = ", in_, " (x is ",
                    detail::dims_str(x.dimensions()), ")");
    Tensor3<T> y(B, S, out_);
    auto Y = detail::rows(y.data(), B * S, out_);
    Y.noalias() = detail::rows(x.data(), B * S, in_) * weight().transpose();
    if (bias_) Y.rowwise() += bias().transpose();
    if (training_) x_ = x;
    has_forward_ = training_;
    return y;
  }

  /// y = x W^T + b on rows x [n, in] into y [n, out]: no cache, no allocation (streaming).
  void apply(ConstRows<T> x, Rows<T> y) const {
    detail::require(x.cols() == in_ && y.cols() == out_ && y.rows() == x.rows(),
                    "Linear::apply: x is [", x.rows(), ", ", x.cols(), "] and y [", y.rows(),
                    ", ", y.cols(), "] but the layer maps ", in_, " to ", out_, " features");
    y.noalias() = x * weight().transpose();
    if (bias_) y.rowwise() += bias().transpose();
  }

  /// d_y: [B, T, out] of the last training forward; returns d x [B, T, in].
  Tensor3<T> backward(const Tensor3<T>& d_y) {
    check_backward("Linear::backward");
    const Index B = x_.dimension(0), S = x_.dimension(1), N = B * S;
    detail::require(d_y.dimension(0) == B && d_y.dimension(1) == S && d_y.dimension(2) == out_,
                    "Linear::backward: d_y is ", detail::dims_str(d_y.dimensions()),
                    " but the forward's output is ", detail::shape_str({B, S, out_}));
    has_forward_ = false;
    auto dY = detail::rows(d_y.data(), N, out_);
    Eigen::Map<Matrix<T>> dW(grads_.data(), out_, in_);
    dW.noalias() += dY.transpose() * detail::rows(x_.data(), N, in_);
    if (bias_) Eigen::Map<Matrix<T>>(grads_.data() + out_ * in_, out_, 1) += dY.colwise().sum().transpose();
    Tensor3<T> dx(B, S, in_);
    detail::rows(dx.data(), N, in_).noalias() = dY * weight();
    return dx;
  }

 private:
  Eigen::Map<const Matrix<T>> weight() const { return {params_.data(), out_, in_}; }
  Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>> bias() const {
    return Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(params_.data() + out_ * in_, out_);
  }

  Index in_, out_;
  bool bias_;
  detail::Buffer<T> params_, grads_;  // [weight | bias]
  Tensor3<T> x_;
};

/// Dropout<T>: in training mode zeroes each element with probability p and scales the rest
/// by 1 / (1 - p) (inverted dropout, as nn.Dropout); the identity in eval mode. Seeded; the
/// generator state can be saved (rng_state) for an exact resume.
template <class T>
class Dropout : public Mode {
 public:
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0) : p_(p), rng_(seed) {
    detail::require(p >= 0.0 && p <= 1.0, "Dropout: p = ", p, " is outside [0, 1]");
  }
  double p() const { return p_; }
  std::string rng_state() const { return detail::rng_state(rng_); }
  void set_rng_state(const std::string& s) { detail::set_rng_state(rng_, s); }

  Tensor3<T> forward(const Tensor3<T>& x) {
    has_forward_ = training_;
    if (!training_ || p_ == 0.0) {
      mask_ = Tensor3<T>();
      return x;
    }
    mask_.resize(x.dimensions());
    detail::fill_dropout_mask(mask_.data(), static_cast<std::size_t>(x.size()), p_, rng_);
    return x * mask_;
  }

  Tensor3<T> backward(const Tensor3<T>& d_y) {
    check_backward("Dropout::backward");
    if (mask_.size() == 0) {
      has_forward_ = false;
      return d_y;
    }
    detail::require(d_y.dimensions() == mask_.dimensions(), "Dropout::backward: d_y is ",
                    detail::dims_str(d_y.dimensions()), " but the forward's output is ",
                    detail::dims_str(mask_.dimensions()));
    has_forward_ = false;
    return d_y * mask_;
  }

 private:
  double p_;
  std::mt19937_64 rng_;
  Tensor3<T> mask_;
};

}  // namespace recur
