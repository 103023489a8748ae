// char_rnn's view of the processes it trains on: one process, or the ranks of an MPI job
// (`mpirun -np N char_rnn train ...`, when char_rnn is built with MPI: recur::mpi found).
// Every rank holds the model and trains on its rows of each global batch (--batch-size / N
// streams); the gradients are averaged before each step, so the ranks take identical steps
// and N ranks equal one process with the whole batch. Without mpirun, or built without MPI,
// size() is 1 and every call is a no-op: nothing changes.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <recur/recur.hpp>

#if defined(CHAR_RNN_MPI)
#include <recur/distributed.hpp>
#endif

namespace char_rnn {

class Cluster {
 public:
  using T = float;  // char_rnn's scalar
  using Index = recur::Index;

  /// One process.
  Cluster() = default;
  /// Joins the MPI job when launched by mpirun (and built with MPI); else one process.
  Cluster(int* argc, char*** argv) {
#if defined(CHAR_RNN_MPI)
    if (recur::mpi::launched_by_mpirun()) {
      session_ = std::make_unique<recur::mpi::Session>(argc, argv);
      rank_ = session_->rank();
      size_ = session_->size();
    }
#else
    (void)argc;
    (void)argv;
#endif
  }

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }
  /// Seconds this rank spent in the gradient collective (the benchmark's "allreduce time").
  double reduce_seconds() const { return reduce_seconds_; }

  /// Averages the gradients over the ranks (weighted by their token counts); returns the mean
  /// loss over all ranks' tokens. One process: the loss as it is.
  double average(const std::vector<recur::Parameter<T>>& params, double loss, double count) {
#if defined(CHAR_RNN_MPI)
    if (size_ > 1) {
      if (!averager_) averager_ = std::make_unique<recur::mpi::GradientAverager<T>>(comm(), params);
      const auto t0 = std::chrono::steady_clock::now();
      const double global = averager_->average(loss, count).value;
      reduce_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return global;
    }
#endif
    (void)params;
    (void)count;
    return loss;
  }
  /// The mean over all ranks of per-rank means weighted by their counts.
  double mean(double value, double count) const {
#if defined(CHAR_RNN_MPI)
    if (size_ > 1) return recur::mpi::mean(comm(), value, count).value;
#endif
    (void)count;
    return value;
  }
  /// Whether `flag` holds on any rank (a stop every rank must take together).
  bool any(bool flag) const {
#if defined(CHAR_RNN_MPI)
    if (size_ > 1) return !recur::mpi::all(comm(), !flag);
#endif
    return flag;
  }
  /// Rank 0's parameters and optimizer state on every rank.
  void broadcast(const std::vector<recur::Parameter<T>>& params, recur::Optimizer<T>* opt) const {
#if defined(CHAR_RNN_MPI)
    if (size_ > 1) {
      recur::mpi::broadcast(comm(), params);
      if (opt) recur::mpi::broadcast(comm(), *opt);
    }
#endif
    (void)params;
    (void)opt;
  }
  /// The rows of every rank's [L, rows, H] slice, in rank order, as [L, size() * rows, H] on
  /// rank 0 (the carried state of the whole batch, for its checkpoint).
  void gather_rows(const recur::Tensor3<T>& mine, recur::Tensor3<T>& all) const {
    const Index L = mine.dimension(0), R = mine.dimension(1), H = mine.dimension(2);
    all.resize(L, R * size_, H);
    if (size_ == 1) {
      all = mine;
      return;
    }
#if defined(CHAR_RNN_MPI)
    std::vector<T> buffer(static_cast<std::size_t>(L * R * H * size_));
    recur::mpi::check(MPI_Gather(mine.data(), static_cast<int>(L * R * H), MPI_FLOAT, buffer.data(),
                                 static_cast<int>(L * R * H), MPI_FLOAT, 0, comm()),
                      "MPI_Gather (carried state)");
    for (int r = 0; r < size_; ++r)
      for (Index l = 0; l < L; ++l)
        std::memcpy(&all(l, r * R, 0), buffer.data() + (static_cast<Index>(r) * L + l) * R * H,
                    sizeof(T) * static_cast<std::size_t>(R * H));
#endif
  }
  /// Every rank waits for the others (after rank 0 wrote a checkpoint).
  void barrier() const {
#if defined(CHAR_RNN_MPI)
    if (size_ > 1) recur::mpi::check(MPI_Barrier(comm()), "MPI_Barrier");
#endif
  }
  /// After an error on this rank: ends the whole job (the other ranks would wait for this one
  /// in the next collective forever). One process: returns.
  void abort_job(int code) const {
#if defined(CHAR_RNN_MPI)
    if (size_ > 1) session_->abort(code);
#endif
    (void)code;
  }

 private:
#if defined(CHAR_RNN_MPI)
  MPI_Comm comm() const { return session_->comm(); }
  std::unique_ptr<recur::mpi::Session> session_;
  std::unique_ptr<recur::mpi::GradientAverager<T>> averager_;
#endif
  int rank_ = 0, size_ = 1;
  double reduce_seconds_ = 0;
};

}  // namespace char_rnn
