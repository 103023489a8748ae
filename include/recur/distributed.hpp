// Data-parallel training over MPI (target recur::mpi: recur + MPI; recur itself never needs
// MPI): every rank holds the whole model and takes its share of each batch; before each
// optimizer step the gradients are averaged over the ranks, so every rank takes the same step
// and the parameters stay identical — N ranks with batch B/N each train as one process with
// batch B, up to the order of the floating-point sums.
//
//   recur::mpi::Session mpi(&argc, &argv);          // MPI_Init .. MPI_Finalize
//   recur::mpi::broadcast(mpi.comm(), params);       // rank 0's weights everywhere
//   recur::mpi::GradientAverager<float> avg(mpi.comm(), params);
//   ... forward, loss over this rank's n tokens, backward ...
//   const auto global = avg.average(loss.loss, loss.count);   // gradients and the loss
//   clip_grad_norm(params, 5);  opt.step();                   // the same on every rank
//
// One collective per step for the gradients: they are copied into one contiguous buffer
// (each scaled by its rank's share of the tokens), summed in place with MPI_Allreduce, and
// copied back — never one message per tensor. The loss and the token count are summed in
// double in a second, tiny collective before it, so the mean loss over all ranks' tokens is
// exact and ranks with unequal shares weigh right. MPI errors throw std::runtime_error with
// MPI's message (the communicator is set to return errors, not to abort).
#pragma once

// The C API only: MPI's deprecated C++ bindings (removed in MPI-3; Open MPI and MPICH still
// ship them) stay out, with their warnings, unless something included <mpi.h> before.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "recur/optimizer.hpp"
#include "recur/parameters.hpp"

namespace recur::mpi {

/// Throws std::runtime_error "MPI: <what>: <MPI's message>" when err is not MPI_SUCCESS.
inline void check(int err, const char* what) {
  if (err == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(err, text, &len);
  throw std::runtime_error(std::string("MPI: ") + what + ": " + std::string(text, static_cast<std::size_t>(len)));
}

template <class T>
MPI_Datatype datatype() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "recur::mpi: float or double");
  return std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
}

/// Whether this process was started by an MPI launcher (mpirun / mpiexec of Open MPI, MPICH,
/// or a PMI/PMIx process manager such as Slurm's srun): a program can stay MPI-free when not.
inline bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

/// MPI for the life of the object: MPI_Init_thread (the main thread calls MPI; recur's own
/// threads never do) unless MPI is already initialised, MPI_Finalize when it initialised it.
/// MPI_COMM_WORLD returns errors (they become exceptions) instead of aborting.
class Session {
 public:
  Session(int* argc, char*** argv) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owner_ = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~Session() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owner_ && !finalized) MPI_Finalize();
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  MPI_Comm comm() const { return MPI_COMM_WORLD; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  /// Ends every rank of the job (after an error on this one: the others must not wait for it
  /// in a collective forever).
  [[noreturn]] void abort(int code) const {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::abort();
  }

 private:
  bool owner_ = false;
  int rank_ = 0, size_ = 1;
};

/// Sums over the ranks, in double (every rank gets the result).
inline double sum(MPI_Comm comm, double v) {
  double out = 0;
  check(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce (sum)");
  return out;
}
inline std::int64_t sum(MPI_Comm comm, std::int64_t v) {
  std::int64_t out = 0;
  check(MPI_Allreduce(&v, &out, 1, MPI_INT64_T, MPI_SUM, comm), "MPI_Allreduce (sum)");
  return out;
}

/// Whether `ok` holds on every rank (every rank gets the answer).
inline bool all(MPI_Comm comm, bool ok) {
  int in = ok ? 1 : 0, out = 0;
  check(MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce (all)");
  return out == 1;
}

/// Whether every rank has the same count n as `root`, whose count goes to `root_n` (one
/// broadcast, then every rank learns whether any differs, so that all can throw together and
/// none is left waiting in the next collective).
inline bool same_count(MPI_Comm comm, std::int64_t n, int root, std::int64_t& root_n) {
  root_n = n;
  check(MPI_Bcast(&root_n, 1, MPI_INT64_T, root, comm), "MPI_Bcast (sizes)");
  return all(comm, root_n == n);
}
/// n values as one message's count (MPI counts are int): throws past 2^31 - 1.
inline int message_count(std::int64_t n, const char* what) {
  if (n > std::numeric_limits<int>::max())
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(n) +
                                " values exceed one MPI message (2^31 - 1)");
  return static_cast<int>(n);
}

/// A mean over all ranks' items, each rank giving its own mean and how many items it has:
/// sum(mean_r * count_r) / sum(count_r), both sums in one collective, in double.
struct Mean {
  double value = 0;  // NaN when no rank has an item
  double count = 0;
};
inline Mean mean(MPI_Comm comm, double local_mean, double local_count) {
  double in[2] = {local_count > 0 ? local_mean * local_count : 0.0, local_count}, out[2] = {0, 0};
  check(MPI_Allreduce(in, out, 2, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce (mean)");
  return {out[1] > 0 ? out[0] / out[1] : std::numeric_limits<double>::quiet_NaN(), out[1]};
}

/// Root's tensors on every rank, in one message (the tensors copied into one buffer and out).
/// The ranks' shapes must match (checked: a rank that differs throws, naming the tensor).
template <class T>
void broadcast(MPI_Comm comm, const std::vector<TensorRef<T>>& tensors, int root = 0) {
  std::int64_t n = 0;
  for (auto& t : tensors) n += t.size();
  std::int64_t root_n = 0;
  if (!same_count(comm, n, root, root_n))
    throw std::runtime_error("recur::mpi::broadcast: the ranks' models differ (this rank has " +
                             std::to_string(n) + " values, rank " + std::to_string(root) + " " +
                             std::to_string(root_n) + ")");
  std::vector<T> buffer(static_cast<std::size_t>(n));
  T* at = buffer.data();
  for (auto& t : tensors) at = std::copy(t.data, t.data + t.size(), at);
  check(MPI_Bcast(buffer.data(), message_count(n, "recur::mpi::broadcast"), datatype<T>(), root, comm),
        "MPI_Bcast");
  const T* from = buffer.data();
  for (auto& t : tensors) {
    std::copy(from, from + t.size(), t.data);
    from += t.size();
  }
}
/// The parameters' values.
template <class T>
void broadcast(MPI_Comm comm, const std::vector<Parameter<T>>& params, int root = 0) {
  broadcast(comm, values(params), root);
}
/// An optimizer's state: its per-parameter slots and its step count (not the learning rate
/// or the other settings, which each rank sets from the same options).
template <class T>
void broadcast(MPI_Comm comm, Optimizer<T>& opt, int root = 0) {
  broadcast(comm, opt.state(), root);
  std::int64_t steps = opt.steps();
  check(MPI_Bcast(&steps, 1, MPI_INT64_T, root, comm), "MPI_Bcast (optimizer steps)");
  opt.set_steps(steps);
}

/// Averages the gradients of a list of parameters over the ranks of a communicator, each
/// rank weighted by its number of items (tokens): afterwards every rank holds
///   g = sum_r count_r g_r / sum_r count_r
/// — the gradient of the mean loss over all ranks' items, when each g_r is the gradient of
/// the mean over rank r's. One MPI_Allreduce over one contiguous buffer, made once.
template <class T>
class GradientAverager {
 public:
  GradientAverager(MPI_Comm comm, std::vector<Parameter<T>> params) : comm_(comm), params_(std::move(params)) {
    std::int64_t n = 0, root_n = 0;
    for (auto& p : params_) n += p.grad.size();
    if (!same_count(comm, n, 0, root_n))
      throw std::invalid_argument("recur::mpi::GradientAverager: the ranks' models differ (this rank has " +
                                  std::to_string(n) + " gradient values, rank 0 " + std::to_string(root_n) + ")");
    message_count(n, "recur::mpi::GradientAverager");  // throws past one message
    buffer_.resize(static_cast<std::size_t>(n));
  }

  /// Averages the gradients in place; `local_loss` is this rank's mean loss over its
  /// `local_count` items. Returns the mean loss over all ranks' items and their number.
  Mean average(double local_loss, double local_count) {
    const Mean global = mean(comm_, local_loss, local_count);
    const T scale = global.count > 0 ? static_cast<T>(local_count / global.count) : T(0);
    T* at = buffer_.data();
    for (auto& p : params_) {
      const T* g = p.grad.data();
      for (Index i = 0; i < p.grad.size(); ++i) at[i] = scale * g[i];
      at += p.grad.size();
    }
    check(MPI_Allreduce(MPI_IN_PLACE, buffer_.data(), static_cast<int>(buffer_.size()), datatype<T>(), MPI_SUM, comm_),
          "MPI_Allreduce (gradients)");
    const T* from = buffer_.data();
    for (auto& p : params_) {
      T* g = detail::writable(p.grad).data();
      std::copy(from, from + p.grad.size(), g);
      from += p.grad.size();
    }
    return global;
  }
  /// Bytes each rank contributes per step.
  std::size_t bytes() const { return buffer_.size() * sizeof(T); }

 private:
  MPI_Comm comm_;
  std::vector<Parameter<T>> params_;
  std::vector<T> buffer_;
};

}  // namespace recur::mpi
