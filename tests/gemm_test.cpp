// detail::PackedWeight (the packed-weight GEMM under every recurrent layer) against Eigen's
// product, over shapes that hit every path of the kernel: full and partial weight panels
// (n around multiples of 3 packets; a last panel of 1 or 2 packets, full or not), every tail width of X's row panels (m = 1..20), depths
// that are not multiples of the k-unrolling, row and depth blocking, row strides of W, X and
// Y, X given transposed (the weight-gradient products), and the three updates: Y += X op(W),
// Y = X op(W) and Y = bias + X op(W) (assigning: Y's old content, NaN here, must be neither
// read nor kept).
#include <gtest/gtest.h>

#include <limits>
#include <utility>

#ifdef RECUR_TEST_TUNED  // gemm_tuned_test: the kernel under tuning values other than the defaults
#undef RECUR_GEMM_TILE_ROWS
#undef RECUR_GEMM_DEPTH_BLOCK
#undef RECUR_GEMM_X_BLOCK_BYTES
#undef RECUR_GEMM_XT_ROWS
#define RECUR_GEMM_TILE_ROWS 4      // the 16-register machines' tile
#define RECUR_GEMM_DEPTH_BLOCK 16   // blocks small enough that the sweep crosses them
#define RECUR_GEMM_X_BLOCK_BYTES 1024
#define RECUR_GEMM_XT_ROWS 8
#endif
#include <recur/detail/gemm.hpp>
#ifdef RECUR_TEST_TUNED
static_assert(recur::detail::tuning::kTileRows == 4 && recur::detail::tuning::kDepthBlock == 16,
              "gemm_tuned_test must run the kernel under its own tuning values");
#endif
#include <recur/detail/matvec.hpp>

namespace {

using recur::Index;
using recur::Matrix;
using recur::detail::WeightOp;

// How the product meets y: add to it, assign, or assign from a bias row.
enum Mode { kAdd, kAssign, kBias };

template <class T>
void check(Index m, Index n, Index k, WeightOp op, Index pad, bool xt = false, Mode mode = kAdd,
           int parts = 1) {
  const bool t = op == WeightOp::Transposed;
  const Index wr = t ? n : k, wc = t ? k : n;
  Matrix<T> wpad = Matrix<T>::Random(wr, wc + pad);  // W with row stride wc + pad
  Matrix<T> w = wpad.leftCols(wc);
  // X [m, k] with row stride k + pad, or X^T [k, m] with row stride m + pad.
  Matrix<T> xs = xt ? Matrix<T>(Matrix<T>::Random(k, m + pad)) : Matrix<T>(Matrix<T>::Random(m, k + pad));
  Matrix<T> x = xt ? Matrix<T>(xs.leftCols(m).transpose()) : Matrix<T>(xs.leftCols(k));
  Matrix<T> y0 = Matrix<T>::Random(m, n + pad);
  Eigen::Matrix<T, 1, Eigen::Dynamic> bias = Eigen::Matrix<T, 1, Eigen::Dynamic>::Random(n);
  recur::detail::PackedWeight<T> pw;
  if (parts == 1) {
    pw.pack(wpad.data(), wr, wc, op, wpad.cols());
  } else {  // in parts, as threads pack it (last part first: the parts are independent)
    pw.shape(wr, wc, op);
    for (int p = parts - 1; p >= 0; --p) pw.pack_part(wpad.data(), wpad.cols(), p, parts);
  }
  recur::detail::Buffer<T> work(static_cast<std::size_t>(pw.workspace_size(m, xt)));
  Matrix<T> y = y0;
  // Assigning never reads y: NaN there must not show.
  if (mode != kAdd) y.leftCols(n).setConstant(std::numeric_limits<T>::quiet_NaN());
  using Update = recur::detail::Update<T>;
  pw.multiply(xs.data(), m, xs.cols(), y.data(), y.cols(), work.data(), xt,
              mode == kAdd ? Update::add() : Update::assign_to(mode == kBias ? bias.data() : nullptr));
  Matrix<T> ref = y0;
  if (mode == kBias) ref.leftCols(n).rowwise() = bias;
  if (mode == kAssign) ref.leftCols(n).setZero();
  if (t)
    ref.leftCols(n) += x * w.transpose();
  else
    ref.leftCols(n) += x * w;
  const double tol = (std::is_same_v<T, float> ? 2e-5 : 1e-13) * static_cast<double>(k);
  ASSERT_LE(static_cast<double>((ref - y).cwiseAbs().maxCoeff()), tol)
      << "m=" << m << " n=" << n << " k=" << k << " op=" << (t ? "W^T" : "W") << " pad=" << pad
      << " x_transposed=" << xt << " mode=" << mode << " parts=" << parts;
  // Padding columns of y untouched.
  if (pad) {
    ASSERT_EQ(y.rightCols(pad), y0.rightCols(pad));
  }
}

template <class T>
void sweep() {
  for (WeightOp op : {WeightOp::Transposed, WeightOp::AsIs})
    // (9-11, 17, 19, 25-27: a tail of 1-3 rows after a full panel, split into two tiles)
    for (Index m : {1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 16, 17, 19, 20, 25, 26, 27})
      for (Index n : {1, 5, 16, 32, 47, 48, 49, 68, 80, 96, 100})
        for (Index k : {1, 3, 6, 33})
          for (bool xt : {false, true})
            for (Mode mode : {kAdd, kAssign, kBias})
              check<T>(m, n, k, op, (m + n + k) % 3, xt, mode);
  // Row and depth blocking: more rows than one block of packed X holds, depth > one block.
  check<T>(300, 64, 1500, WeightOp::Transposed, 1);
  check<T>(300, 50, 1500, WeightOp::AsIs, 0);
  check<T>(130, 50, 1100, WeightOp::AsIs, 2, true);
  // X^T: several groups of rows packed at once (256 a group), each split into row blocks.
  check<T>(601, 50, 1100, WeightOp::AsIs, 1, true);
  check<T>(517, 20, 70, WeightOp::Transposed, 0, true, kBias);
  check<T>(601, 50, 1100, WeightOp::AsIs, 1, true, kAssign);
  check<T>(300, 64, 1500, WeightOp::Transposed, 1, false, kBias);  // bias only in depth block 0
  check<T>(300, 50, 1500, WeightOp::AsIs, 2, false, kAssign);      // assign only in block 0
  // Packed in parts (by panels of W^T, by rows of W), more parts than panels or rows too.
  for (int parts : {2, 3, 7})
    for (WeightOp op : {WeightOp::Transposed, WeightOp::AsIs})
      for (Index n : {16, 100, 200})
        for (Index k : {3, 33}) check<T>(20, n, k, op, 1, false, kBias, parts);
}

// multiply_xt with two weights sharing each packed block of X (given as X^T) and X's row
// sums (the weight gradients dW_ih += dA^T X, dW_hh += dA^T H_prev and the bias sums, when a
// cell's dR is its dA): each output against Eigen's product, the sums against Eigen's.
template <class T>
void check_two(Index m, Index n1, Index n2, Index k) {
  Matrix<T> xs = Matrix<T>::Random(k, m + 3);  // X^T [k, m], row stride m + 3
  Matrix<T> w1 = Matrix<T>::Random(k, n1), w2 = Matrix<T>::Random(k, n2);
  Matrix<T> y1 = Matrix<T>::Random(m, n1), y2 = Matrix<T>::Random(m, n2 + 2);
  Eigen::Matrix<T, 1, Eigen::Dynamic> sums = Eigen::Matrix<T, 1, Eigen::Dynamic>::Random(m);
  const Matrix<T> ref1 = y1 + xs.leftCols(m).transpose() * w1;
  Matrix<T> ref2 = y2;
  ref2.leftCols(n2) += xs.leftCols(m).transpose() * w2;
  const Eigen::Matrix<T, 1, Eigen::Dynamic> ref_sums = sums + xs.leftCols(m).colwise().sum();
  recur::detail::PackedWeight<T> p1, p2;
  p1.pack(w1.data(), k, n1, WeightOp::AsIs);
  p2.pack(w2.data(), k, n2, WeightOp::AsIs);
  recur::detail::Buffer<T> work(
      static_cast<std::size_t>(std::max(p1.workspace_size(m, true), p2.workspace_size(m, true))));
  using Target = typename recur::detail::PackedWeight<T>::Target;
  p1.multiply_xt(xs.data(), m, xs.cols(),
                 {Target{&p1, y1.data(), y1.cols()}, Target{&p2, y2.data(), y2.cols()}},
                 work.data(), recur::detail::Update<T>::add(), sums.data());
  const double tol = (std::is_same_v<T, float> ? 2e-5 : 1e-13) * static_cast<double>(k);
  EXPECT_LE(static_cast<double>((ref1 - y1).cwiseAbs().maxCoeff()), tol) << "m=" << m << " k=" << k;
  EXPECT_LE(static_cast<double>((ref2 - y2).cwiseAbs().maxCoeff()), tol) << "m=" << m << " k=" << k;
  EXPECT_EQ(y2.rightCols(2), ref2.rightCols(2));  // padding untouched
  EXPECT_LE(static_cast<double>((ref_sums - sums).cwiseAbs().maxCoeff()), tol)
      << "m=" << m << " k=" << k;
}

TEST(PackedWeight, TwoWeightsShareXtAndSumItsRows) {
  // Row groups (256 rows of X at a time) and depth blocks (512) crossed, tails of both panels.
  for (Index m : {1, 9, 40, 300, 601})
    for (Index k : {1, 33, 1100}) {
      check_two<float>(m, 50, 20, k);
      check_two<double>(m, 16, 49, k);
    }
}

// multiply_joint: [X1 X2] [W1 W2]^T + bias, the weight packed from two sources (pack_part's
// w2; in parts, as threads pack it) and X from two, each with its own row stride, the depth
// k1 + k2 crossing depth blocks (in which the two sources meet) and row blocks.
template <class T>
void check_joint(Index m, Index n, Index k1, Index k2, int parts) {
  Matrix<T> w1 = Matrix<T>::Random(n, k1 + 1), w2 = Matrix<T>::Random(n, k2 + 2);
  Matrix<T> x1 = Matrix<T>::Random(m, k1 + 3), x2 = Matrix<T>::Random(m, k2);
  Eigen::Matrix<T, 1, Eigen::Dynamic> bias = Eigen::Matrix<T, 1, Eigen::Dynamic>::Random(n);
  Matrix<T> y = Matrix<T>::Constant(m, n + 1, std::numeric_limits<T>::quiet_NaN());
  y.col(n).setZero();
  Matrix<T> ref =
      (x1.leftCols(k1) * w1.leftCols(k1).transpose() + x2 * w2.leftCols(k2).transpose()).rowwise() +
      bias;
  recur::detail::PackedWeight<T> pw;
  pw.shape(n, k1 + k2, WeightOp::Transposed);
  for (int p = parts - 1; p >= 0; --p)
    pw.pack_part(w1.data(), w1.cols(), p, parts, w2.data(), w2.cols(), k1);
  recur::detail::Buffer<T> work(static_cast<std::size_t>(pw.workspace_size(m)));
  pw.multiply_joint(x1.data(), x1.cols(), x2.data(), x2.cols(), k1, m, y.data(), y.cols(),
                    work.data(), recur::detail::Update<T>::assign_to(bias.data()));
  const double tol = (std::is_same_v<T, float> ? 2e-5 : 1e-13) * static_cast<double>(k1 + k2);
  EXPECT_LE(static_cast<double>((ref - y.leftCols(n)).cwiseAbs().maxCoeff()), tol)
      << "m=" << m << " n=" << n << " k1=" << k1 << " k2=" << k2 << " parts=" << parts;
  EXPECT_EQ(y(0, n), T(0));  // past n: untouched
}

TEST(PackedWeight, JointProductOfTwoSources) {
  const std::pair<Index, Index> depths[] = {{1, 1}, {5, 30}, {256, 256}, {300, 400}, {600, 70}};
  for (Index m : {1, 8, 11, 64, 300})
    for (Index n : {16, 49, 100})
      for (const auto& [k1, k2] : depths)
        for (int parts : {1, 2}) {
          check_joint<float>(m, n, k1, k2, parts);
          check_joint<double>(m, n, k1, k2, parts);
        }
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


// PackedMatVec (the streaming step's y = b + W x): every row-block shape (full blocks of 8
// packets, the shorter last block, one packet and less), depths 1 and up (the unrolled and
// the plain loop), with and without a bias, against Eigen in double; rows past n come out 0.
template <class T>
void matvec_sweep() {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(-1, 1);
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-13;
  for (Index n : {1, 3, 8, 15, 16, 17, 31, 64, 100, 128, 129, 200, 256, 260})
    for (Index k : {1, 2, 3, 5, 8, 16, 17, 33})
      for (bool bias : {false, true}) {
        Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> w(n, k + 2);  // ld = k + 2
        Eigen::Matrix<T, Eigen::Dynamic, 1> b(n), x(k);
        for (Index i = 0; i < w.size(); ++i) w.data()[i] = static_cast<T>(u(rng));
        for (Index i = 0; i < n; ++i) b(i) = static_cast<T>(u(rng));
        for (Index i = 0; i < k; ++i) x(i) = static_cast<T>(u(rng));
        recur::detail::PackedMatVec<T> mv;
        mv.pack(w.data(), n, k, k + 2, bias ? b.data() : nullptr);
        ASSERT_GE(mv.padded_rows(), n);
        std::vector<T, Eigen::aligned_allocator<T>> y(static_cast<std::size_t>(mv.padded_rows()), T(7));
        mv.apply(x.data(), y.data());
        for (Index i = 0; i < n; ++i) {
          double want = bias ? static_cast<double>(b(i)) : 0.0;
          for (Index j = 0; j < k; ++j) want += static_cast<double>(w(i, j)) * static_cast<double>(x(j));
          ASSERT_NEAR(y[static_cast<std::size_t>(i)], want, tol)
              << "n=" << n << " k=" << k << " row " << i;
        }
        for (Index i = n; i < mv.padded_rows(); ++i) ASSERT_EQ(y[static_cast<std::size_t>(i)], T(0));
        // The dot product of the few-output head, over whole packets.
        const Index np = recur::detail::PackedMatVec<T>::padded(n);
        std::vector<T, Eigen::aligned_allocator<T>> a(static_cast<std::size_t>(np), T(0)), c(a);
        double want = 0;
        for (Index i = 0; i < n; ++i) {
          a[static_cast<std::size_t>(i)] = static_cast<T>(u(rng));
          c[static_cast<std::size_t>(i)] = static_cast<T>(u(rng));
          want += static_cast<double>(a[static_cast<std::size_t>(i)]) * static_cast<double>(c[static_cast<std::size_t>(i)]);
        }
        ASSERT_NEAR(recur::detail::PackedMatVec<T>::dot(a.data(), c.data(), np), want, tol);
      }
}
TEST(PackedMatVec, MatchesDoubleFloat) { matvec_sweep<float>(); }
TEST(PackedMatVec, MatchesDoubleDouble) { matvec_sweep<double>(); }

}  // namespace
