// The time loop allocates nothing: after a first call has sized the workspace, a training
// forward and its backward through the row-view API make no heap allocation at all — neither
// through Eigen (EIGEN_RUNTIME_NO_MALLOC, with assertions on in this file) nor through
// operator new (counted by the replacement below). Sizes are small enough that Eigen's GEMM
// keeps its blocking buffers on the stack.
#undef NDEBUG
#define EIGEN_RUNTIME_NO_MALLOC

#include <atomic>
#include <cstdlib>
#include <new>

#include "support.hpp"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

// GCC sees the free() in the replaced operator delete as mismatched with `new`: it is not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t n) {
  if (counting) ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace recur::test {
namespace {

template <class Model>
void expect_no_allocation(bool bidirectional, bool with_lengths, double dropout) {
  using T = typename Model::Scalar;
  constexpr Index K = Model::kStates;
  const Index B = 4, S = 6, I = 5, H = 8, L = 2, D = bidirectional ? 2 : 1;
  Model m(opts(I, H, L, bidirectional, dropout));
  std::mt19937_64 rng(1);
  Tensor3<T> x = random_tensor<T>(B, S, I, rng), dy = random_tensor<T>(B, S, D * H, rng);
  Tensor3<T> y(B, S, D * H), dx(B, S, I);
  std::vector<std::vector<T>> h0(K, std::vector<T>(static_cast<std::size_t>(L * D * B * H), T(0.1)));
  auto hn = h0, dh = h0, dh0 = h0;
  std::array<const T*, K> init{}, dfin{};
  std::array<T*, K> fin{}, dinit{};
  for (Index s = 0; s < K; ++s) {
    init[s] = h0[s].data();
    fin[s] = hn[s].data();
    dfin[s] = dh[s].data();
    dinit[s] = dh0[s].data();
  }
  const std::vector<Index> lengths = {6, 2, 0, 5};
  auto step = [&] {
    m.forward_rows({ConstRows<T>(x.data(), B * S, I, Eigen::OuterStride<>(I)), B, S,
                    with_lengths ? lengths.data() : nullptr, init},
                   {Rows<T>(y.data(), B * S, D * H, Eigen::OuterStride<>(D * H)), fin}, true);
    m.backward_rows({ConstRows<T>(dy.data(), B * S, D * H, Eigen::OuterStride<>(D * H)), B, S,
                     nullptr, dfin},
                    {Rows<T>(dx.data(), B * S, I, Eigen::OuterStride<>(I)), dinit});
  };
  step();  // sizes the workspace
  allocations = 0;
  counting = true;
  Eigen::internal::set_is_malloc_allowed(false);  // any Eigen heap allocation asserts
  step();
  step();
  Eigen::internal::set_is_malloc_allowed(true);
  counting = false;
  EXPECT_EQ(allocations.load(), 0) << "operator new was called inside forward/backward";
}

TEST(NoMalloc, LSTM) { expect_no_allocation<LSTM<float>>(false, false, 0.0); }
TEST(NoMalloc, GRUBidirectionalWithLengths) { expect_no_allocation<GRU<float>>(true, true, 0.0); }
TEST(NoMalloc, RNNWithDropout) { expect_no_allocation<RNN<double>>(false, true, 0.3); }
TEST(NoMalloc, LSTMBidirectionalWithLengthsAndDropout) {
  expect_no_allocation<LSTM<double>>(true, true, 0.2);
}

// Sampling one character at a time: embedding row -> Stream step -> linear head, batch 1.
TEST(NoMalloc, StreamingOneStepAtATime) {
  const Index V = 30, E = 16, H = 32;
  Embedding<float> emb(V, E);
  LSTM<float> lstm(opts(E, H, 2));
  Linear<float> head(H, V);
  Stream<LSTM<float>> stream(lstm, 1);
  Matrix<float> logits(1, V);
  Index id = 3;
  auto step = [&] {
    auto h = stream.step(emb.lookup(id).data());
    head.apply(h, Rows<float>(logits.data(), 1, V, Eigen::OuterStride<>(V)));
    logits.row(0).maxCoeff(&id);
  };
  step();
  allocations = 0;
  counting = true;
  Eigen::internal::set_is_malloc_allowed(false);
  for (int i = 0; i < 20; ++i) step();
  Eigen::internal::set_is_malloc_allowed(true);
  counting = false;
  EXPECT_EQ(allocations.load(), 0) << "operator new was called while streaming";
}

// The real-time calls of a stream with a head: blocks (longer than max_block too), single
// steps, state save/restore and reset allocate nothing, through Eigen or operator new.
template <class Model>
void stream_block_no_malloc() {
  const Index I = 2, H = 24, O = 3, B = 2;
  Model rnn(opts(I, H, 2));
  Linear<float> head(H, O);
  Stream<Model> stream(rnn, head, B, /*max_block=*/32);
  std::vector<float> in(static_cast<std::size_t>(100 * B * I), 0.25f), out(static_cast<std::size_t>(100 * B * O));
  std::vector<float> saved(static_cast<std::size_t>(stream.state_size()));
  auto run = [&] {
    stream.process(in.data(), 100, out.data());
    stream.save_state(saved.data());
    stream.step(in.data());
    stream.restore_state(saved.data());
    stream.reset();
  };
  run();
  allocations = 0;
  counting = true;
  Eigen::internal::set_is_malloc_allowed(false);
  for (int i = 0; i < 3; ++i) run();
  Eigen::internal::set_is_malloc_allowed(true);
  counting = false;
  EXPECT_EQ(allocations.load(), 0) << "operator new was called by a real-time stream call";
}
TEST(NoMalloc, StreamBlocksLSTM) { stream_block_no_malloc<LSTM<float>>(); }
TEST(NoMalloc, StreamBlocksGRU) { stream_block_no_malloc<GRU<float>>(); }

// Large enough to run on several threads (when built with OpenMP): no allocation either,
// whether the threads split the batch or, with one sample, the hidden units.
void threaded_no_malloc(Index B, Index H) {
  set_num_threads(2);
  const Index S = 20, I = 32;
  LSTM<float> m(opts(I, H, 2));
  std::mt19937_64 rng(1);
  Tensor3<float> x = random_tensor<float>(B, S, I, rng), dy = random_tensor<float>(B, S, H, rng);
  Tensor3<float> y(B, S, H), dx(B, S, I);
  auto step = [&] {
    m.forward_rows({ConstRows<float>(x.data(), B * S, I, Eigen::OuterStride<>(I)), B, S},
                   {Rows<float>(y.data(), B * S, H, Eigen::OuterStride<>(H))}, true);
    m.backward_rows({ConstRows<float>(dy.data(), B * S, H, Eigen::OuterStride<>(H)), B, S},
                    {Rows<float>(dx.data(), B * S, I, Eigen::OuterStride<>(I))});
  };
  step();
  allocations = 0;
  counting = true;
  Eigen::internal::set_is_malloc_allowed(false);
  step();
  step();
  Eigen::internal::set_is_malloc_allowed(true);
  counting = false;
  set_num_threads(0);
  EXPECT_EQ(allocations.load(), 0) << "operator new was called inside a threaded forward/backward"
                                    << " (batch " << B << ")";
}
TEST(NoMalloc, Threaded) { threaded_no_malloc(8, 48); }
TEST(NoMalloc, ThreadedBatchOne) { threaded_no_malloc(1, 128); }

TEST(NoMalloc, TheCountersWork) {
  allocations = 0;
  counting = true;
  auto* p = new std::vector<int>(10);
  counting = false;
  delete p;
  EXPECT_GE(allocations.load(), 2);
}

}  // namespace
}  // namespace recur::test
