// Test helpers: PyTorch reference cases, tensor comparison, finite differences.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <recur/recur.hpp>

namespace recur::test {

// ---- PyTorch reference cases (format: tests/reference/torch/README.md) ----
struct RefTensor {
  std::vector<Index> shape;
  std::vector<double> values;
};
struct RefCase {
  std::string name;
  std::map<std::string, std::string> meta;
  std::map<std::string, RefTensor> tensors;
  bool has(const std::string& k) const { return tensors.count(k) != 0; }
  const RefTensor& at(const std::string& k) const { return tensors.at(k); }
  Index meta_int(const std::string& k) const { return std::stol(meta.at(k)); }
};

// Two sets of cases: the ones committed with the tests (tests/reference/torch, made by
// tests/reference/make_torch_reference.py; always there), and ../shared/testdata's when present.
// A case is named "committed/<name>" or "shared/<name>".
inline std::filesystem::path testdata_dir() {
  if (const char* env = std::getenv("RECUR_TESTDATA_DIR")) return env;
  return RECUR_TESTDATA_DIR;
}
inline std::filesystem::path committed_reference_dir() { return RECUR_COMMITTED_REFERENCE_DIR; }
inline std::filesystem::path shared_reference_dir() { return testdata_dir() / "torch-reference"; }
inline std::filesystem::path reference_path(const std::string& id) {
  const auto slash = id.find('/');
  const std::string set = id.substr(0, slash), name = id.substr(slash + 1);
  return (set == "committed" ? committed_reference_dir() : shared_reference_dir()) / (name + ".txt");
}

// The case ids of one set ("committed" or "shared"), sorted; none when its folder is missing.
inline std::vector<std::string> reference_case_names(const std::string& set) {
  const auto dir = set == "committed" ? committed_reference_dir() : shared_reference_dir();
  std::vector<std::string> names;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return names;
  for (auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".txt") names.push_back(set + "/" + e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

inline RefCase read_case(const std::string& id) {
  RefCase c;
  c.name = id;
  std::ifstream f(reference_path(id));
  if (!f) throw std::runtime_error("cannot open reference case " + id);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    std::istringstream ss(line);
    if (line[0] == '#') {
      std::string hash, key, val;
      ss >> hash >> key >> val;
      c.meta[key] = val;
      continue;
    }
    std::string tname, colon;
    int rank = 0;
    ss >> tname >> rank;
    RefTensor t;
    t.shape.resize(static_cast<std::size_t>(rank));
    for (auto& d : t.shape) ss >> d;
    ss >> colon;
    Index n = 1;
    for (auto d : t.shape) n *= d;
    t.values.resize(static_cast<std::size_t>(n));
    for (auto& v : t.values) ss >> v;
    if (!ss) throw std::runtime_error("bad tensor line for " + tname + " in " + id);
    c.tensors[tname] = std::move(t);
  }
  return c;
}

template <class T>
Tensor3<T> to_tensor3(const RefTensor& r) {
  if (r.shape.size() != 3) throw std::runtime_error("expected a rank-3 reference tensor");
  Tensor3<T> t(r.shape[0], r.shape[1], r.shape[2]);
  for (std::size_t i = 0; i < r.values.size(); ++i) t.data()[i] = static_cast<T>(r.values[i]);
  return t;
}

inline RecurrentOptions opts(Index in, Index hidden, Index layers = 1, bool bidir = false,
                             double dropout = 0.0) {
  RecurrentOptions o;
  o.input_size = in;
  o.hidden_size = hidden;
  o.num_layers = layers;
  o.bidirectional = bidir;
  o.dropout = dropout;
  return o;
}

// ---- comparison ----
// max |a - b| / max(max |b|, floor): relative to the reference's scale.
template <class T>
double rel_diff(const T* a, const double* b, Index n, double floor = 1e-6) {
  double diff = 0, scale = floor;
  for (Index i = 0; i < n; ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return diff / scale;
}

// The largest relative difference seen by close() since the last reset (printed by tests).
inline double& worst_diff() {
  static double w = 0;
  return w;
}

template <class T>
::testing::AssertionResult close(const std::string& what, const T* a, const std::vector<double>& b,
                                 double tol) {
  const double d = rel_diff(a, b.data(), static_cast<Index>(b.size()));
  worst_diff() = std::max(worst_diff(), d);
  if (d <= tol)
    return ::testing::AssertionSuccess() << what << ": max relative difference " << d;
  return ::testing::AssertionFailure() << what << ": max relative difference " << d
                                       << " exceeds " << tol;
}

template <class T>
std::vector<double> to_doubles(const T* p, Index n) {
  return std::vector<double>(p, p + n);
}
template <class T>
std::vector<double> to_doubles(const Tensor3<T>& t) {
  return to_doubles(t.data(), t.size());
}

template <class T>
Tensor3<T> random_tensor(Index a, Index b, Index c, std::mt19937_64& rng, double scale = 1.0) {
  std::normal_distribution<double> n(0.0, scale);
  Tensor3<T> t(a, b, c);
  for (Index i = 0; i < t.size(); ++i) t.data()[i] = static_cast<T>(n(rng));
  return t;
}

template <class T>
double max_abs_diff(const Tensor3<T>& a, const Tensor3<T>& b) {
  double m = 0;
  for (Index i = 0; i < a.size(); ++i)
    m = std::max(m, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i])));
  return m;
}

// loss = sum(output * g_out) + sum(h_n * g_h) [+ sum(c_n * g_c)]
template <class T>
double dot(const Tensor3<T>& a, const Tensor3<T>& b) {
  double s = 0;
  for (Index i = 0; i < a.size(); ++i) s += static_cast<double>(a.data()[i]) * b.data()[i];
  return s;
}

// ---- tensor helpers for the equivalence tests ----
// t-slice [t0, t1) of a [B, T, F] tensor.
template <class T>
Tensor3<T> slice_time(const Tensor3<T>& x, Index t0, Index t1) {
  Eigen::array<Index, 3> off{0, t0, 0}, ext{x.dimension(0), t1 - t0, x.dimension(2)};
  return x.slice(off, ext);
}
template <class T>
Tensor3<T> slice_batch(const Tensor3<T>& x, Index b0, Index b1) {
  Eigen::array<Index, 3> off{b0, 0, 0}, ext{b1 - b0, x.dimension(1), x.dimension(2)};
  return x.slice(off, ext);
}
template <class T>
Tensor3<T> reverse_time(const Tensor3<T>& x) {
  Eigen::array<bool, 3> rev{false, true, false};
  return x.reverse(rev);
}
inline void expect_equal(const std::string& what, const Tensor3<double>& a,
                         const Tensor3<double>& b, double tol = 1e-12) {
  ASSERT_EQ(a.dimensions(), b.dimensions()) << what;
  EXPECT_TRUE(close(what, a.data(), to_doubles(b), tol));
}

// to[i].value = from[first + i].value for every parameter of `to` (a layer given the values
// of its part of a bigger module).
template <class T>
void copy_values(std::vector<Parameter<T>>& to, const std::vector<Parameter<T>>& from,
                 std::size_t first = 0) {
  for (std::size_t i = 0; i < to.size(); ++i) to[i].value = from[first + i].value;
}

// Runs f, expects E, and expects every fragment in its message.
template <class E, class F>
void expect_throw(F&& f, std::initializer_list<const char*> fragments) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const char* frag : fragments)
      EXPECT_NE(msg.find(frag), std::string::npos) << "message \"" << msg << "\" lacks \"" << frag << "\"";
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

// d f / d v by central differences (f evaluated with v moved by +-eps, v restored).
template <class F>
double central_difference(F&& f, double& v, double eps = 1e-6) {
  const double keep = v;
  v = keep + eps;
  const double plus = f();
  v = keep - eps;
  const double minus = f();
  v = keep;
  return (plus - minus) / (2 * eps);
}

}  // namespace recur::test
