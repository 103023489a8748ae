// Threads: every threaded path equals a single-threaded run -- the batch split (with the
// weight gradients split by rows) and, with one sample, the split of the hidden units.
#include <atomic>
#include <cstdlib>
#include <thread>

#include "support.hpp"

namespace recur::test {
namespace {

// Threads split the batch (and the weight gradients by rows), or with one sample the hidden
// units of each step: the results equal a single-threaded run's, for every cell, with
// lengths, both directions and two layers.
template <class Model>
void threads_match_one_thread(Index B, Index S, Index H, std::vector<Index> lengths,
                              RecurrentOptions (*vary)(RecurrentOptions) = nullptr,
                              int threads = 2) {
  if (num_threads() < 2 && !std::getenv("RECUR_REQUIRE_THREADS")) {
    set_num_threads(2);
    if (num_threads() < 2) GTEST_SKIP() << "built without OpenMP: one thread only";
  }
  const Index I = 24;
  auto run = [&](int threads) {
    set_num_threads(threads);
    Model m(vary ? vary(opts(I, H, 2, true)) : opts(I, H, 2, true), 3);
    std::mt19937_64 r(5);
    Tensor3<double> x = random_tensor<double>(B, S, I, r);
    Tensor3<double> dy = random_tensor<double>(B, S, m.output_size(), r);
    State<double> s0;  // a nonzero initial state, so its gradient and carry are checked too
    s0.h = random_tensor<double>(4, B, m.state_size(0), r);
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
  const auto one = run(1), many = run(threads);
  set_num_threads(0);
  ASSERT_EQ(one.size(), many.size());
  EXPECT_TRUE(close((std::to_string(threads) + " threads vs one").c_str(), many.data(), one, 1e-12));
}

const std::vector<Index> kThreadsLengths{17, 3, 0, 17, 9, 16, 1, 17, 12};
TEST(Threads, MatchOneThreadLSTM) { threads_match_one_thread<LSTM<double>>(9, 17, 40, kThreadsLengths); }
TEST(Threads, MatchOneThreadGRU) { threads_match_one_thread<GRU<double>>(9, 17, 40, kThreadsLengths); }
TEST(Threads, MatchOneThreadRNN) { threads_match_one_thread<RNN<double>>(9, 17, 40, kThreadsLengths); }
// The variants and recurrent dropout (masks drawn before the threads start: the same masks).
TEST(Threads, MatchOneThreadVariants) {
  threads_match_one_thread<LSTM<double>>(9, 17, 40, kThreadsLengths, [](RecurrentOptions o) {
    o.peephole = true;
    o.cell_clip = 0.8;
    o.proj_size = 12;
    o.recurrent_dropout = 0.3;
    return o;
  });
  threads_match_one_thread<GRU<double>>(9, 17, 40, kThreadsLengths, [](RecurrentOptions o) {
    o.linear_before_reset = false;
    o.cell_clip = 0.8;
    o.recurrent_dropout = 0.3;
    return o;
  });
  threads_match_one_thread<LSTM<double>>(1, 20, 136, {13}, [](RecurrentOptions o) {
    o.recurrent_dropout = 0.2;  // batch 1: the batch loop, not the split of units
    return o;
  });
  threads_match_one_thread<LSTM<double>>(9, 17, 40, kThreadsLengths, [](RecurrentOptions o) {
    o.layer_norm = LayerNorm::Ba2016;
    o.recurrent_dropout = 0.3;
    return o;
  });
  threads_match_one_thread<LSTM<double>>(1, 20, 136, {13}, [](RecurrentOptions o) {
    o.layer_norm = LayerNorm::TFAddons;  // batch 1: the batch loop (per-row norms)
    return o;
  });
}
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
// Three threads on H = 200 (13 chunks: 5 + 4 + 4), more threads than this machine's cores:
// each waits for two others' progress, and waiters yield.
TEST(Threads, BatchOneMatchesOneThreadThreeParts) {
  threads_match_one_thread<LSTM<double>>(1, 20, 200, {20}, nullptr, 3);
  threads_match_one_thread<GRU<double>>(1, 20, 200, {13}, nullptr, 3);
}

// One model used from two threads at once is detected (it corrupted memory): the second call
// throws std::logic_error and the first completes; models of their own run side by side and
// give what one thread alone gives.
TEST(Threads, OneModelFromTwoThreadsIsDetected) {
  LSTM<float> shared(opts(16, 64, 2));
  std::mt19937_64 rng(7);
  const Tensor3<float> x = random_tensor<float>(8, 200, 16, rng);
  std::atomic<int> refused{0}, done{0};
  std::atomic<bool> go{false};
  auto worker = [&] {
    while (!go) std::this_thread::yield();
    for (int i = 0; i < 40 && refused == 0; ++i) {
      try {
        auto out = shared.forward(x);
        (void)shared.backward(out.output);
        ++done;
      } catch (const std::logic_error& e) {
        const std::string msg = e.what();
        if (msg.find("another call on the same layer") != std::string::npos) ++refused;
        else if (msg.find("needs a forward") == std::string::npos) throw;  // the other's backward
      }
    }
  };
  std::thread a(worker), b(worker);
  go = true;
  a.join();
  b.join();
  EXPECT_GT(refused.load(), 0) << "40 overlapping forward/backward pairs were never detected";
  EXPECT_GT(done.load(), 0);
  // Afterwards the model works as before.
  auto out = shared.forward(x);
  EXPECT_TRUE(std::isfinite(out.output(0, 0, 0)));
}

TEST(Threads, OwnModelsRunSideBySide) {
  std::mt19937_64 rng(8);
  const Tensor3<float> x = random_tensor<float>(4, 30, 8, rng);
  GRU<float> alone(opts(8, 16, 2), 3);
  const auto want = alone.forward(x).output;
  std::vector<Tensor3<float>> got(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&, i] {
      GRU<float> own(opts(8, 16, 2), 3);
      for (int k = 0; k < 5; ++k) got[static_cast<std::size_t>(i)] = own.forward(x).output;
    });
  for (auto& t : threads) t.join();
  for (auto& g : got)
    for (Index j = 0; j < want.size(); ++j) ASSERT_EQ(g.data()[j], want.data()[j]);
}

}  // namespace
}  // namespace recur::test
