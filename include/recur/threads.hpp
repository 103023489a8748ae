// Threads: recur splits its work across threads with OpenMP when the program is built with
// it (-fopenmp, or CMake's OpenMP::OpenMP_CXX); without OpenMP everything runs on the calling
// thread and these functions report 1.
//
//   recur::set_num_threads(2);   // default: OpenMP's (OMP_NUM_THREADS, else every core)
//
// A recurrent layer gives each thread a contiguous slice of the batch for the whole time loop
// (samples are independent, so the threads never wait for each other inside the loop) and
// splits the weight-gradient products by output rows; with one sample it splits the hidden
// units of every step instead (the threads meet once per step). Eigen's own products inside a
// slice run single-threaded (no oversubscription). Results are bit-for-bit reproducible for a
// given number of threads.
#pragma once

#include "recur/detail/threads.hpp"

namespace recur {

/// The number of threads recur uses (1 without OpenMP).
inline int num_threads() { return detail::thread_count(); }

/// Sets the number of threads recur uses; n <= 0 restores the default.
inline void set_num_threads(int n) { detail::thread_setting().store(n > 0 ? n : 0); }

}  // namespace recur
