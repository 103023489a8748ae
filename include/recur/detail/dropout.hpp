// Inverted dropout masks, shared by Stack (between recurrent layers) and Dropout: an element
// is kept with probability 1 - p and then scaled by 1 / (1 - p), so eval mode is the identity.
// The generator's state can be saved and restored as text, so a resumed run draws the same
// masks as an uninterrupted one.
#pragma once

#include <algorithm>
#include <cstddef>
#include <random>
#include <sstream>
#include <string>

#include "recur/detail/check.hpp"

namespace recur::detail {

template <class T>
void fill_dropout_mask(T* mask, std::size_t n, double p, std::mt19937_64& rng) {
  if (p >= 1.0) {
    std::fill(mask, mask + n, T(0));
    return;
  }
  std::bernoulli_distribution keep(1.0 - p);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  for (std::size_t i = 0; i < n; ++i) mask[i] = keep(rng) ? scale : T(0);
}

inline std::string rng_state(const std::mt19937_64& rng) {
  std::ostringstream s;
  s << rng;
  return s.str();
}

inline void set_rng_state(std::mt19937_64& rng, const std::string& state) {
  std::istringstream s(state);
  std::mt19937_64 r;
  s >> r;
  if (!s) fail("set_rng_state: not a saved generator state (", state.size(), " characters)");
  rng = r;
}

}  // namespace recur::detail
