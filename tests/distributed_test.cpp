// recur::mpi, run under mpirun with 2 (or more) ranks (tests/CMakeLists.txt). The truth is one
// process with the whole batch, computed by every rank itself without MPI: N ranks training
// on B/N rows each, gradients averaged, equal it after several optimizer steps within float
// summation order — and the ranks agree with each other bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <recur/distributed.hpp>
#include <recur/recur.hpp>

namespace {

using recur::Index;
recur::mpi::Session* session = nullptr;

MPI_Comm comm() { return session->comm(); }

// Embedding -> 2-layer recurrent model -> Linear, as char_rnn and the README build it.
template <class Model>
struct Net {
  using T = typename Model::Scalar;
  recur::Embedding<T> embedding;
  Model rnn;
  recur::Linear<T> head;
  std::vector<recur::Parameter<T>> params;
  Net(Index vocab, std::uint64_t seed)
      : embedding(vocab, 6, seed), rnn(options(), seed + 1), head(9, vocab, seed + 2) {
    params = recur::gather(recur::named("embedding", embedding), recur::named("rnn", rnn),
                           recur::named("head", head));
  }
  static recur::RecurrentOptions options() {
    recur::RecurrentOptions o;
    o.input_size = 6;
    o.hidden_size = 9;
    o.num_layers = 2;
    return o;
  }
  // Forward and backward on (x, y): the mean loss over the tokens and their number.
  recur::Loss<T> gradients(const recur::Tokens& x, const recur::Tokens& y) {
    auto [h, state] = rnn.forward(embedding.forward(x));
    auto loss = recur::cross_entropy(head.forward(h), y);
    embedding.backward(rnn.backward(head.backward(loss.d_logits)).input);
    return loss;
  }
};

recur::Tokens batch(Index B, Index S, Index vocab, int step) {
  std::mt19937 gen(1000 + static_cast<unsigned>(step));
  std::uniform_int_distribution<int> d(0, static_cast<int>(vocab) - 1);
  recur::Tokens t(B, S);
  for (Index b = 0; b < B; ++b)
    for (Index s = 0; s < S; ++s) t(b, s) = d(gen);
  return t;
}

recur::Tokens rows(const recur::Tokens& t, Index first, Index n) {
  recur::Tokens out(n, t.dimension(1));
  for (Index b = 0; b < n; ++b)
    for (Index s = 0; s < t.dimension(1); ++s) out(b, s) = t(first + b, s);
  return out;
}

template <class T>
std::vector<T> flat(const std::vector<recur::Parameter<T>>& params) {
  std::vector<T> out;
  for (auto& p : params) out.insert(out.end(), p.value.data(), p.value.data() + p.value.size());
  return out;
}

template <class Model>
void equals_one_big_batch(double tol) {
  using T = typename Model::Scalar;
  const int N = session->size(), rank = session->rank();
  const Index vocab = 7, B = 4 * N, S = 11, per = B / N;
  // Every rank starts from a different initialisation: the broadcast must make them equal.
  Net<Model> one(vocab, 5), dist(vocab, 50 + 10 * static_cast<std::uint64_t>(rank));
  recur::mpi::broadcast(comm(), dist.params);
  // The truth starts from rank 0's initialisation too.
  Net<Model> rank0(vocab, 50);
  for (std::size_t i = 0; i < one.params.size(); ++i) one.params[i].value = rank0.params[i].value;

  recur::AdamOptions ao;
  ao.lr = 0.01;
  recur::Adam<T> opt_one(one.params, ao), opt_dist(dist.params, ao);
  recur::mpi::GradientAverager<T> avg(comm(), dist.params);
  for (int step = 0; step < 6; ++step) {
    const auto x = batch(B, S, vocab, step), y = batch(B, S, vocab, 100 + step);
    opt_one.zero_grad();
    const auto l1 = one.gradients(x, y);
    recur::clip_grad_norm(one.params, 0.5);  // active: the norm is of the averaged gradient
    opt_one.step();

    opt_dist.zero_grad();
    const recur::Tokens xs = rows(x, rank * per, per), ys = rows(y, rank * per, per);
    const auto ld = dist.gradients(xs, ys);
    const auto global = avg.average(ld.loss, static_cast<double>(ld.count));
    recur::clip_grad_norm(dist.params, 0.5);
    opt_dist.step();
    EXPECT_EQ(global.count, static_cast<double>(l1.count));
    EXPECT_NEAR(global.value, l1.loss, tol * 10) << "step " << step;
  }
  const auto a = flat(one.params), b = flat(dist.params);
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
  EXPECT_LE(worst, tol) << "N ranks x batch B/N vs 1 process x batch B, after 6 Adam steps";
  if (session->rank() == 0) std::printf("max difference from one process: %.3g\n", worst);
  EXPECT_GT(std::abs(double(a[0]) - double(rank0.params[0].value(0, 0))), 0) << "the parameters moved";

  // The ranks agree exactly: the elementwise max and min over the ranks are this rank's values.
  std::vector<T> hi(b.size()), lo(b.size());
  MPI_Allreduce(b.data(), hi.data(), static_cast<int>(b.size()), recur::mpi::datatype<T>(), MPI_MAX, comm());
  MPI_Allreduce(b.data(), lo.data(), static_cast<int>(b.size()), recur::mpi::datatype<T>(), MPI_MIN, comm());
  EXPECT_EQ(hi, b);
  EXPECT_EQ(lo, b);
}

TEST(Distributed, LstmFloatEqualsOneBigBatch) { equals_one_big_batch<recur::LSTM<float>>(1e-5); }
TEST(Distributed, GruFloatEqualsOneBigBatch) { equals_one_big_batch<recur::GRU<float>>(1e-5); }
TEST(Distributed, LstmDoubleEqualsOneBigBatch) { equals_one_big_batch<recur::LSTM<double>>(1e-12); }
TEST(Distributed, GruDoubleEqualsOneBigBatch) { equals_one_big_batch<recur::GRU<double>>(1e-12); }

TEST(Distributed, UnequalSharesWeighByCount) {
  // Rank r has r + 1 items of value r: the mean over all items, not the mean of the means.
  const int N = session->size();
  const int r = session->rank();
  const auto m = recur::mpi::mean(comm(), r, r + 1);
  double num = 0, den = 0;
  for (int k = 0; k < N; ++k) {
    num += double(k) * (k + 1);
    den += k + 1;
  }
  EXPECT_DOUBLE_EQ(m.value, num / den);
  EXPECT_EQ(m.count, den);
  EXPECT_EQ(recur::mpi::sum(comm(), std::int64_t{r}), std::int64_t{N} * (N - 1) / 2);
  EXPECT_TRUE(recur::mpi::all(comm(), true));
  EXPECT_FALSE(recur::mpi::all(comm(), r != 0));
}

TEST(Distributed, OptimizerStateBroadcast) {
  Net<recur::LSTM<float>> net(5, 3 + static_cast<std::uint64_t>(session->rank()));
  recur::Adam<float> opt(net.params, recur::AdamOptions{});
  for (int i = 0; i <= session->rank(); ++i) {  // different state and step count per rank
    opt.zero_grad();
    net.gradients(batch(2, 4, 5, i), batch(2, 4, 5, i + 7));
    opt.step();
  }
  recur::mpi::broadcast(comm(), opt);
  EXPECT_EQ(opt.steps(), 1);
  for (auto& t : opt.state()) {
    std::vector<float> mine(t.data, t.data + t.size()), hi(mine.size());
    MPI_Allreduce(mine.data(), hi.data(), static_cast<int>(mine.size()), MPI_FLOAT, MPI_MAX, comm());
    EXPECT_EQ(hi, mine) << t.name;
  }
}

TEST(Distributed, DifferentModelsThrowOnEveryRank) {
  // Rank 0 has a larger model: every rank throws (none hangs in the next collective).
  Net<recur::GRU<float>> net(session->rank() == 0 ? 8 : 5, 1);
  EXPECT_THROW(recur::mpi::broadcast(comm(), net.params), std::runtime_error);
  EXPECT_THROW(recur::mpi::GradientAverager<float>(comm(), net.params), std::invalid_argument);
  // And the communicator still works afterwards.
  EXPECT_EQ(recur::mpi::sum(comm(), 1.0), session->size());
}

}  // namespace

int main(int argc, char** argv) {
  recur::mpi::Session mpi(&argc, &argv);
  session = &mpi;
  ::testing::InitGoogleTest(&argc, argv);
  const int failed = RUN_ALL_TESTS();
  const bool all_passed = recur::mpi::all(mpi.comm(), failed == 0);
  if (mpi.rank() == 0 && !all_passed && failed == 0) std::fprintf(stderr, "a test failed on another rank\n");
  return all_passed ? 0 : 1;
}
