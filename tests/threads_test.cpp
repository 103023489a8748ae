// Threads: every threaded path equals a single-threaded run -- the batch split (with the
// weight gradients split by rows) and, with one sample, the split of the hidden units.
#include <cstdlib>

#include "support.hpp"

namespace recur::test {
namespace {

// Threads split the batch (and the weight gradients by rows), or with one sample the hidden
// units of each step: the results equal a single-threaded run's, for every cell, with
// lengths, both directions and two layers.
template <class Model>
void threads_match_one_thread(Index B, Index S, Index H, std::vector<Index> lengths) {
  if (num_threads() < 2 && !std::getenv("RECUR_REQUIRE_THREADS")) {
    set_num_threads(2);
    if (num_threads() < 2) GTEST_SKIP() << "built without OpenMP: one thread only";
  }
  const Index I = 24;
  auto run = [&](int threads) {
    set_num_threads(threads);
    Model m(opts(I, H, 2, true), 3);
    std::mt19937_64 r(5);
    Tensor3<double> x = random_tensor<double>(B, S, I, r);
    Tensor3<double> dy = random_tensor<double>(B, S, 2 * H, r);
    State<double> s0;  // a nonzero initial state, so its gradient and carry are checked too
    s0.h = random_tensor<double>(4, B, H, r);
    if (std::is_same_v<typename Model::CellType, LSTMCell<double>>) s0.c = random_tensor<double>(4, B, H, r);
    auto out = m.forward(x, s0, lengths);
    auto g = m.backward(dy);
    std::vector<double> all(out.output.data(), out.output.data() + out.output.size());
    all.insert(all.end(), g.input.data(), g.input.data() + g.input.size());
    all.insert(all.end(), out.state.h.data(), out.state.h.data() + out.state.h.size());
    all.insert(all.end(), g.state.h.data(), g.state.h.data() + g.state.h.size());
    all.insert(all.end(), g.state.c.data(), g.state.c.data() + g.state.c.size());
    for (auto& p : m.named_parameters()) all.insert(all.end(), p.grad.data(), p.grad.data() + p.grad.size());
    return all;
  };
  const auto one = run(1), two = run(2);
  set_num_threads(0);
  ASSERT_EQ(one.size(), two.size());
  EXPECT_TRUE(close("two threads vs one", two.data(), one, 1e-12));
}

const std::vector<Index> kLengths{17, 3, 0, 17, 9, 16, 1, 17, 12};
TEST(Threads, MatchOneThreadLSTM) { threads_match_one_thread<LSTM<double>>(9, 17, 40, kLengths); }
TEST(Threads, MatchOneThreadGRU) { threads_match_one_thread<GRU<double>>(9, 17, 40, kLengths); }
TEST(Threads, MatchOneThreadRNN) { threads_match_one_thread<RNN<double>>(9, 17, 40, kLengths); }
// Batch 1 (hidden units split across threads; H = 136 is not a multiple of the 16-unit
// chunks), over the whole sequence and over a shorter length.
TEST(Threads, BatchOneMatchesOneThreadLSTM) {
  threads_match_one_thread<LSTM<double>>(1, 20, 136, {20});
  threads_match_one_thread<LSTM<double>>(1, 20, 136, {13});
}
TEST(Threads, BatchOneMatchesOneThreadGRU) {
  threads_match_one_thread<GRU<double>>(1, 20, 136, {20});
  threads_match_one_thread<GRU<double>>(1, 20, 136, {13});
}
TEST(Threads, BatchOneMatchesOneThreadRNN) {
  threads_match_one_thread<RNN<double>>(1, 20, 136, {20});
  threads_match_one_thread<RNN<double>>(1, 20, 136, {13});
}

}  // namespace
}  // namespace recur::test
