// detail::PackedWeight (the packed-weight GEMM under every recurrent layer) against Eigen's
// product, over shapes that hit every path of the kernel: full and partial weight panels
// (n around multiples of 3 packets), every tail width of X's row panels (m = 1..20), depths
// that are not multiples of the k-unrolling, row blocking (m above a block), row strides.
#include <gtest/gtest.h>

#include <recur/detail/gemm.hpp>

namespace {

using recur::Index;
using recur::Matrix;
using recur::detail::WeightOp;

template <class T>
void check(Index m, Index n, Index k, WeightOp op, Index pad) {
  const bool t = op == WeightOp::Transposed;
  Matrix<T> w = Matrix<T>::Random(t ? n : k, t ? k : n);
  Matrix<T> x = Matrix<T>::Random(m, k + pad);  // row stride k + pad
  Matrix<T> y0 = Matrix<T>::Random(m, n + pad);
  recur::detail::PackedWeight<T> pw;
  pw.pack(w.data(), w.rows(), w.cols(), op);
  recur::detail::Buffer<T> work(static_cast<std::size_t>(pw.workspace_size(m)));
  Matrix<T> y = y0;
  pw.multiply(x.data(), m, x.cols(), y.data(), y.cols(), work.data());
  Matrix<T> ref = y0;
  if (t)
    ref.leftCols(n) += x.leftCols(k) * w.transpose();
  else
    ref.leftCols(n) += x.leftCols(k) * w;
  const double tol = (std::is_same_v<T, float> ? 2e-5 : 1e-13) * static_cast<double>(k);
  ASSERT_LE(static_cast<double>((ref - y).cwiseAbs().maxCoeff()), tol)
      << "m=" << m << " n=" << n << " k=" << k << " op=" << (t ? "W^T" : "W") << " pad=" << pad;
  // Padding columns of y untouched.
  if (pad) {
    ASSERT_EQ(y.rightCols(pad), y0.rightCols(pad));
  }
}

template <class T>
void sweep() {
  for (WeightOp op : {WeightOp::Transposed, WeightOp::AsIs})
    for (Index m : {1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 20})
      for (Index n : {1, 5, 16, 47, 48, 49, 96, 100})
        for (Index k : {1, 3, 6, 33})
          check<T>(m, n, k, op, (m + n + k) % 3);
  // Row blocking: more rows than one block of packed X holds (k large).
  check<T>(300, 64, 1500, WeightOp::Transposed, 1);
  check<T>(300, 50, 1500, WeightOp::AsIs, 0);
}

TEST(PackedWeight, MatchesEigenFloat) { sweep<float>(); }
TEST(PackedWeight, MatchesEigenDouble) { sweep<double>(); }

TEST(PackedWeight, RepackReusesTheObject) {
  // The layer packs W^T for forward and W for backward into the same object, every call.
  Matrix<double> w = Matrix<double>::Random(40, 24), x = Matrix<double>::Random(6, 24);
  recur::detail::PackedWeight<double> pw;
  recur::detail::Buffer<double> work(4096);
  for (int round = 0; round < 2; ++round) {
    pw.pack(w.data(), 40, 24, WeightOp::Transposed);
    Matrix<double> y = Matrix<double>::Zero(6, 40);
    pw.multiply(x.data(), 6, 24, y.data(), 40, work.data());
    EXPECT_LE((y - x * w.transpose()).cwiseAbs().maxCoeff(), 1e-12);
    pw.pack(w.data(), 40, 24, WeightOp::AsIs);
    Matrix<double> x2 = Matrix<double>::Random(6, 40), y2 = Matrix<double>::Zero(6, 24);
    pw.multiply(x2.data(), 6, 40, y2.data(), 24, work.data());
    EXPECT_LE((y2 - x2 * w).cwiseAbs().maxCoeff(), 1e-12);
  }
}

}  // namespace
