// Sampling one character at a time through the streaming API: embedding row -> Stream step
// -> linear head -> softmax with temperature / top-k / argmax. Nothing is allocated per step.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "model.hpp"

namespace char_rnn {

struct SampleOptions {
  double temperature = 1.0;
  std::int64_t top_k = 0;  // 0: all characters
  bool argmax = false;
};

class Sampler {
 public:
  Sampler(CharModel& m, const SampleOptions& o, std::uint64_t seed)
      : m_(m), o_(o), stream_(m.streamer(1)), rng_(seed) {
    const auto V = static_cast<std::size_t>(m.vocab().size());
    logits_.resize(1, m.vocab().size());
    probs_.resize(V);
    order_.resize(V);
  }

  /// Feeds character `id`; afterwards next() draws the character that follows.
  void feed(Index id) {
    auto h = std::visit([&](auto& s) { return s.step(m_.embedding().lookup(id).data()); }, stream_);
    m_.head().apply(h, recur::Rows<T>(logits_.data(), 1, logits_.cols(), Eigen::OuterStride<>(logits_.cols())));
  }

  Index next() {
    const Index V = logits_.cols();
    Index best = 0;
    logits_.row(0).maxCoeff(&best);
    if (o_.argmax) return best;
    const double mx = logits_(0, best);
    for (Index k = 0; k < V; ++k) order_[static_cast<std::size_t>(k)] = k;
    std::size_t n = static_cast<std::size_t>(V);
    if (o_.top_k > 0 && o_.top_k < V) {
      n = static_cast<std::size_t>(o_.top_k);
      std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(n), order_.end(),
                        [&](Index a, Index b) { return logits_(0, a) > logits_(0, b); });
    }
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      probs_[i] = std::exp((logits_(0, order_[i]) - mx) / o_.temperature);
      sum += probs_[i];
    }
    double u = std::uniform_real_distribution<double>(0.0, sum)(rng_);
    for (std::size_t i = 0; i < n; ++i) {
      u -= probs_[i];
      if (u < 0) return order_[i];
    }
    return order_[n - 1];
  }

 private:
  CharModel& m_;
  SampleOptions o_;
  CharModel::Streamer stream_;
  std::mt19937_64 rng_;
  recur::Matrix<T> logits_;
  std::vector<double> probs_;
  std::vector<Index> order_;
};

}  // namespace char_rnn
