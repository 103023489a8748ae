// Error helpers: every bad input becomes an exception that names the problem and the shapes.
#pragma once

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

}  // namespace recur::detail
