// cross_entropy: softmax cross-entropy over logits [B, T, V] and integer targets [B, T], as
// torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
// ignore_index=...) with mean reduction over the counted tokens. A token counts when its step
// is inside its sample's length (when lengths are given) and its target is not ignore_index.
// Numerically stable (log-sum-exp; sums and the loss accumulated in double), threaded by rows.
// Returns the loss and d loss / d logits; when no token counts the loss is 0 and the gradient
// is zero (PyTorch gives NaN).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "recur/detail/check.hpp"
#include "recur/threads.hpp"
#include "recur/types.hpp"

namespace recur {

template <class T>
struct Loss {
  double loss = 0;       // mean over the counted tokens, in nats
  Index count = 0;       // tokens counted
  Tensor3<T> d_logits;   // [B, T, V]
};

template <class T>
Loss<T> cross_entropy(const Tensor3<T>& logits, const Tokens& targets,
                      const std::vector<Index>& lengths = {}, Index ignore_index = -100) {
  const Index B = logits.dimension(0), S = logits.dimension(1), V = logits.dimension(2);
  detail::require(V > 0, "cross_entropy: logits ", detail::dims_str(logits.dimensions()),
                  " have no classes");
  detail::require(targets.dimension(0) == B && targets.dimension(1) == S,
                  "cross_entropy: targets are ", detail::dims_str(targets.dimensions()),
                  " but logits are ", detail::dims_str(logits.dimensions()),
                  " (targets must be [batch, time])");
  detail::require(lengths.empty() || static_cast<Index>(lengths.size()) == B,
                  "cross_entropy: got ", lengths.size(), " lengths for a batch of ", B);
  for (std::size_t b = 0; b < lengths.size(); ++b)
    detail::require(lengths[b] >= 0 && lengths[b] <= S, "cross_entropy: lengths[", b, "] = ",
                    lengths[b], " is outside [0, ", S, "]");
  auto counted = [&](Index b, Index t) {
    return (lengths.empty() || t < lengths[static_cast<std::size_t>(b)]) &&
           targets(b, t) != ignore_index;
  };
  Loss<T> r;
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < S; ++t) {
      if (!counted(b, t)) continue;
      const Index y = targets(b, t);
      detail::require(y >= 0 && y < V, "cross_entropy: target ", y, " at [", b, ", ", t,
                      "] is outside [0, ", V, ") (logits are ",
                      detail::dims_str(logits.dimensions()), ", ignore_index = ", ignore_index,
                      ")");
      ++r.count;
    }
  r.d_logits.resize(B, S, V);
  r.d_logits.setZero();
  if (r.count == 0) return r;
  const double inv = 1.0 / static_cast<double>(r.count);
  // Rows are independent: threads take contiguous blocks of them (exp is most of the cost);
  // each block's loss is summed on its own, then the blocks in order.
  const Index N = B * S;
  const int parts = detail::threads_for(N, 20.0 * static_cast<double>(N) * V);
  std::vector<double> partial(static_cast<std::size_t>(std::max(parts, 1)), 0.0);
  detail::parallel(parts, [&](int p, int n) {
    const auto [r0, r1] = detail::split(N, p, n);
    double total = 0;
    for (Index row = r0; row < r1; ++row) {
      const Index b = row / S, t = row % S;
      if (!counted(b, t)) continue;
      const Index y = targets(b, t);
      Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>> z(logits.data() + row * V, V);
      Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>> d(r.d_logits.data() + row * V, V);
      const T m = z.maxCoeff();
      d = (z - m).exp();  // vectorised; every term <= 1
      double sum = 0;
      for (Index k = 0; k < V; ++k) sum += static_cast<double>(d[k]);
      // log(sum_k e^{z_k}) - z_y = log(sum) - (z_y - m): never m + log(sum) - z_y, which
      // rounds log(sum) away next to a huge m (logits [1e20, 1e20] gave 0, not ln 2).
      total += std::log(sum) - (static_cast<double>(z[y]) - static_cast<double>(m));
      d *= static_cast<T>(inv / sum);
      d[y] -= static_cast<T>(inv);
    }
    partial[static_cast<std::size_t>(p)] = total;
  });
  double total = 0;
  for (double v : partial) total += v;
  r.loss = total * inv;
  return r;
}

}  // namespace recur
