// Gradient clipping over a list of parameters, as torch.nn.utils.clip_grad_norm_ and
// clip_grad_value_.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "recur/detail/check.hpp"
#include "recur/parameters.hpp"
#include "recur/threads.hpp"
#include "recur/types.hpp"

namespace recur {

/// torch.nn.utils.clip_grad_norm_: the norm of all gradients together (norm_type 2, 1, ... or
/// infinity); when it exceeds max_norm every gradient is scaled by max_norm / (norm + 1e-6).
/// Returns the norm before clipping (non-finite if a gradient is; the gradients are then
/// scaled by NaN as in PyTorch, so check the result).
template <class T>
double clip_grad_norm(const std::vector<Parameter<T>>& params, double max_norm,
                      double norm_type = 2.0) {
  detail::require(max_norm >= 0, "clip_grad_norm: max_norm ", max_norm, " must be >= 0");
  detail::require(norm_type > 0, "clip_grad_norm: norm_type ", norm_type, " must be > 0");
  double total = 0;
  const bool inf = std::isinf(norm_type);
  if (norm_type == 2.0) {
    // The common case, threaded: each thread sums its slice of every gradient (four
    // independent sums, in double), the slices are added in order.
    Index n = 0;
    for (auto& p : params) n += p.grad.size();
    const int parts = detail::threads_for(n, 4.0 * static_cast<double>(n));
    std::vector<double> partial(static_cast<std::size_t>(std::max(parts, 1)), 0.0);
    detail::parallel(parts, [&](int q, int np) {
      double acc[4] = {0, 0, 0, 0};
      for (auto& p : params) {
        const auto [k0, k1] = detail::split(p.grad.size(), q, np);
        const T* g = p.grad.data();
        Index k = k0;
        for (; k + 4 <= k1; k += 4)
          for (int u = 0; u < 4; ++u) {
            const double a = static_cast<double>(g[k + u]);
            acc[u] += a * a;
          }
        for (; k < k1; ++k) acc[0] += static_cast<double>(g[k]) * static_cast<double>(g[k]);
      }
      partial[static_cast<std::size_t>(q)] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    });
    for (double v : partial) total += v;
  } else {
    for (auto& p : params) {
      const T* g = p.grad.data();
      for (Index k = 0; k < p.grad.size(); ++k) {
        const double a = std::abs(static_cast<double>(g[k]));
        if (inf)
          total = (a > total || std::isnan(a)) ? a : total;
        else if (norm_type == 1.0)
          total += a;
        else
          total += std::pow(a, norm_type);
      }
    }
  }
  if (!inf) total = norm_type == 2.0 ? std::sqrt(total)
                    : norm_type == 1.0 ? total
                                       : std::pow(total, 1.0 / norm_type);
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0 || std::isnan(coef))
    for (auto& p : params) detail::writable(p.grad) *= static_cast<T>(coef);
  return total;
}

/// torch.nn.utils.clip_grad_value_: every gradient element clamped to [-clip, clip].
template <class T>
void clip_grad_value(const std::vector<Parameter<T>>& params, double clip) {
  detail::require(clip >= 0, "clip_grad_value: clip ", clip, " must be >= 0");
  const T c = static_cast<T>(clip);
  for (auto& p : params) detail::writable(p.grad) = p.grad.cwiseMax(-c).cwiseMin(c);
}

}  // namespace recur
