// How recur runs on several threads: the thread count (recur::num_threads and
// set_num_threads in recur/threads.hpp are its public face), the parallel region, the split of
// n items into parts, and the step-by-step synchronisation of the time loops (SpinBarrier,
// StepProgress). With OpenMP (-fopenmp) the parts run on OpenMP's threads; without it on the
// calling thread. Every file of recur that runs threads includes this one.
#pragma once

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "recur/detail/tuning.hpp"
#include "recur/types.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace recur::detail {

// recur::set_num_threads' value (0: not set, use OpenMP's default).
inline std::atomic<int>& thread_setting() {
  static std::atomic<int> n{0};
  return n;
}

// The number of threads recur uses (1 without OpenMP): recur::num_threads().
inline int thread_count() {
#if defined(_OPENMP)
  const int n = thread_setting().load();
  return n > 0 ? n : omp_get_max_threads();
#else
  return 1;
#endif
}


// Calls f(part, parts) for part in [0, parts) on `parts` threads (serially without OpenMP).
template <class F>
void parallel(int parts, F&& f) {
#if defined(_OPENMP)
  if (parts > 1) {
#pragma omp parallel num_threads(parts)
    f(omp_get_thread_num(), omp_get_num_threads());
    return;
  }
#else
  (void)parts;
#endif
  f(0, 1);
}

// Detects a second call entering an object while a call on it runs (from another thread: a
// layer, stack or model is used by one thread at a time). The cost is one atomic exchange and
// one store per call. Copies and moves start free.
class UseFlag {
 public:
  UseFlag() = default;
  UseFlag(const UseFlag&) noexcept {}
  UseFlag& operator=(const UseFlag&) noexcept { return *this; }

  class Hold {
   public:
    Hold(UseFlag& flag, const char* what) : flag_(flag) {
      if (flag_.busy_.exchange(true, std::memory_order_acquire))
        throw std::logic_error(std::string(what) +
                               ": called while another call on the same layer is running (from "
                               "another thread?); a layer, stack or model is used by one thread "
                               "at a time; give each thread its own model (see the README, "
                               "Threads)");
    }
    ~Hold() { flag_.busy_.store(false, std::memory_order_release); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    UseFlag& flag_;
  };

 private:
  std::atomic<bool> busy_{false};
};

// [begin, end) of part p when n items are cut into `parts` nearly equal contiguous ranges.
inline std::pair<Index, Index> split(Index n, int p, int parts) {
  const Index q = n / parts, r = n % parts;
  const Index begin = p * q + std::min<Index>(p, r);
  return {begin, begin + q + (p < r ? 1 : 0)};
}

// Spins (then yields, so an oversubscribed machine still makes progress) until done().
template <class Done>
void spin_until(Done&& done) {
  for (int spins = 0; !done(); ++spins) {
    if (spins < 64) {  // ~1 us in all; lets an SMT sibling run
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
      __builtin_ia32_pause();
#elif defined(__GNUC__) && defined(__aarch64__)
      __asm__ __volatile__("yield");
#endif
    } else {
      std::this_thread::yield();
    }
  }
}

// A barrier for the n threads of one parallel region, for loops that synchronise at every
// time step (a few hundred nanoseconds apart, where an OpenMP barrier costs about three times
// as much as this one here). Waiters spin, then yield, so an oversubscribed machine still
// makes progress. Everything a thread wrote before wait() is visible to every thread after.
class SpinBarrier {
 public:
  void wait(int n) {
    if (n <= 1) return;
    const unsigned gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
      count_.store(0, std::memory_order_relaxed);
      gen_.store(gen + 1, std::memory_order_release);
      return;
    }
    spin_until([&] { return gen_.load(std::memory_order_acquire) != gen; });
  }

 private:
  alignas(64) std::atomic<int> count_{0};
  alignas(64) std::atomic<unsigned> gen_{0};
};

// Progress of the n threads of one parallel region through a loop of steps, for loops where a
// thread needs the others' results of a step only at one point of the next: each thread
// publishes how many steps it has done, and waits for the others' count where it reads their
// results, so the work before that point overlaps their last step (a barrier would wait at
// the end of every step). Everything a thread wrote before publish(p, k) is visible to a
// thread after its wait_others(., ., k).
class StepProgress {
 public:
  static constexpr int kMaxParts = 64;
  void publish(int p, Index steps) { done_[p].steps.store(steps, std::memory_order_release); }
  void wait_others(int p, int n, Index steps) const {
    for (int q = 0; q < n; ++q)
      if (q != p)
        spin_until([&] { return done_[q].steps.load(std::memory_order_acquire) >= steps; });
  }

 private:
  struct alignas(64) Slot {
    std::atomic<Index> steps{0};
  };
  Slot done_[kMaxParts];
};

// Threads worth using for `work` multiply-adds over `items` independent items.
inline int threads_for(Index items, double work) {
  const int n = thread_count();
  if (n <= 1 || items < 2 || work < tuning::kParallelMinWork) return 1;
  return static_cast<int>(std::min<Index>(n, items));
}

}  // namespace recur::detail
