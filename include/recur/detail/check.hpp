// Error helpers: every bad input becomes an exception that names the problem and the shapes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "recur/detail/eigen.hpp"

namespace recur::detail {

// "[2, 3, 4]"
inline std::string shape_str(std::initializer_list<Eigen::Index> dims) {
  std::ostringstream s;
  s << '[';
  bool first = true;
  for (auto d : dims) {
    s << (first ? "" : ", ") << d;
    first = false;
  }
  s << ']';
  return s.str();
}

template <class Dims>
std::string dims_str(const Dims& dims) {
  std::ostringstream s;
  s << '[';
  for (std::size_t i = 0; i < static_cast<std::size_t>(dims.size()); ++i) s << (i ? ", " : "") << dims[i];
  s << ']';
  return s.str();
}

// A double as text that reads back to the same double ("%.17g").
inline std::string format_double(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  throw std::invalid_argument(s.str());
}

template <class... Parts>
void require(bool ok, Parts&&... parts) {
  if (!ok) fail(std::forward<Parts>(parts)...);
}

// The product of `factors` (each >= 0) as an element count, checked: when it overflows, or its
// bytes (elements of `bytes_each`) would exceed what one allocation can address, throws
// std::invalid_argument naming `what` and the factors. Every size a layer allocates from
// user-given dimensions goes through here.
// (`what` is a string or a literal: nothing is built unless the check fails — the time loop
// calls this and allocates nothing.)
template <class What>
Eigen::Index checked_count(const What& what, std::initializer_list<Eigen::Index> factors,
                                  std::size_t bytes_each) {
  const auto limit = static_cast<unsigned long long>(PTRDIFF_MAX) / bytes_each;
  unsigned long long n = 1;
  bool ok = true;
  for (auto f : factors) {
    if (f < 0 || (f != 0 && n > limit / static_cast<unsigned long long>(f))) ok = false;
    if (ok) n *= static_cast<unsigned long long>(f);
  }
  if (!ok)
    fail(what, ": ", shape_str(factors), " is too large: its product overflows or exceeds ",
         limit, " elements of ", bytes_each, " bytes");
  return static_cast<Eigen::Index>(n);
}
// a + b for non-negative sizes, checked the same way.
template <class What>
Eigen::Index checked_sum(const What& what, Eigen::Index a, Eigen::Index b) {
  if (a > PTRDIFF_MAX - b) fail(what, ": ", a, " + ", b, " overflows");
  return a + b;
}

}  // namespace recur::detail
