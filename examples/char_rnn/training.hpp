// The training side of char_rnn: the state of a run (kept and resumed in one place), one
// training step, and the live progress line.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster.hpp"
#include "common/cli.hpp"
#include "model.hpp"
#include "train_options.hpp"

namespace char_rnn {
using namespace recur_examples;  // Flags, UsageError, exact, TrainingLog

inline std::unique_ptr<recur::Optimizer<T>> make_optimizer(const std::string& name,
                                                            std::vector<recur::Parameter<T>> params,
                                                            double lr) {
  if (name == "adam") {
    recur::AdamOptions o;
    o.lr = lr;
    return std::make_unique<recur::Adam<T>>(params, o);
  }
  if (name == "rmsprop") {  // char-rnn's optim.rmsprop: alpha 0.95, eps 1e-8
    recur::RMSpropOptions o;
    o.lr = lr;
    o.alpha = 0.95;
    return std::make_unique<recur::RMSprop<T>>(params, o);
  }
  if (name == "adagrad") {
    recur::AdagradOptions o;
    o.lr = lr;
    return std::make_unique<recur::Adagrad<T>>(params, o);
  }
  if (name == "sgd") {
    recur::SGDOptions o;
    o.lr = lr;
    return std::make_unique<recur::SGD<T>>(params, o);
  }
  throw UsageError("--optimizer: '" + name + "' is not one of adam, rmsprop, adagrad, sgd");
}

/// Everything a run is besides the model's weights: the optimizer, the iteration, the
/// smoothed and best loss, the training time so far, the dropout generators and the hidden
/// state carried from chunk to chunk. save() writes the model file and this state as one
/// checkpoint (recur::save_checkpoint: a reader never pairs files of different saves);
/// resume() reads back exactly what save() wrote.
///
/// Under MPI each rank carries the state of its rows of the batch (--batch-size / ranks); a
/// checkpoint holds the whole batch's (gathered on rank 0, which writes), so it resumes on
/// any number of ranks that divides the batch, or on one process.
class TrainingState {
 public:
  TrainingState(CharModel& model, const TrainOptions& o, const Cluster& cluster = single())
      : model_(model),
        cluster_(cluster),
        batch_(o.batch_size / cluster.size()),
        params_(model.parameters()),
        optimizer_(make_optimizer(o.optimizer, params_, o.learning_rate)) {
    zero_carried();
  }

  std::int64_t iteration = 0;
  double smooth = std::nan(""), best = std::numeric_limits<double>::infinity();
  double seconds_before = 0;  // training time of the runs this one resumes
  recur::State<T> carried;    // within an epoch, from chunk to chunk

  std::vector<recur::Parameter<T>>& params() { return params_; }
  recur::Optimizer<T>& optimizer() { return *optimizer_; }

  /// The start of an epoch: every stream starts from a zero state.
  void zero_carried() {
    const Hyper& h = model_.hyper();
    carried.h.resize(h.num_layers, batch_, h.rnn_size);
    carried.h.setZero();
    carried.c = recur::Tensor3<T>();
    if (h.model == "lstm") {
      carried.c.resize(h.num_layers, batch_, h.rnn_size);
      carried.c.setZero();
    }
  }

  /// Reads the training state the model file `model_path` names; false when it names none
  /// (a weights-only file). Throws when that state is missing, from another save, or not a
  /// char_rnn state of this run's shape (--batch-size must match the carried state's).
  bool resume(const std::string& model_path) {
    const Hyper& h = model_.hyper();
    recur::Tensor3<T> all_h(h.num_layers, batch_ * cluster_.size(), h.rnn_size), all_c;
    if (carried.c.size()) all_c.resize(all_h.dimensions());
    const auto meta = recur::load_training_state(model_path, *optimizer_, refs(all_h, all_c));
    if (!meta) return false;
    rows_of(all_h, carried.h);
    if (carried.c.size()) rows_of(all_c, carried.c);
    const std::string origin = model_path + "'s training state";
    iteration = recur::metadata_integer(*meta, "iteration", origin, 0,
                                        std::numeric_limits<std::int64_t>::max());
    smooth = recur::metadata_number(*meta, "smooth_loss", origin);
    best = recur::metadata_number(*meta, "best_loss", origin);
    seconds_before = recur::metadata_number(*meta, "seconds", origin);
    if (!(seconds_before >= 0) || !std::isfinite(seconds_before))
      throw std::runtime_error(origin + ": 'seconds' is not a duration");
    try {
      model_.set_rng_states(*meta);
    } catch (const std::exception& e) {
      throw std::runtime_error(origin + ": bad generator state (" + e.what() + ")");
    }
    return true;
  }

  /// Writes the model to `model_path` (with `model_meta`) and this state with it; `score`
  /// (the validation loss, else the smoothed training loss) updates the best loss, and a new
  /// best is also written as best.safetensors in the same folder.
  /// Under MPI every rank calls it (the carried state is gathered); rank 0 writes, the others
  /// wait until it has.
  void save(const std::string& model_path, const std::map<std::string, std::string>& model_meta,
            double score, double seconds) {
    cluster_.gather_rows(carried.h, all_h_);
    if (carried.c.size()) cluster_.gather_rows(carried.c, all_c_);
    if (!cluster_.root()) {
      if (score < best) best = score;
      cluster_.barrier();
      return;
    }
    const bool is_best = score < best;
    if (is_best) best = score;
    std::map<std::string, std::string> meta = model_.rng_states();
    meta["iteration"] = std::to_string(iteration);
    meta["smooth_loss"] = exact(smooth);
    meta["seconds"] = exact(seconds);
    meta["best_loss"] = exact(best);
    write(model_path, model_meta, meta);
    if (is_best) {
      const auto slash = model_path.find_last_of('/');
      const std::string dir = slash == std::string::npos ? "" : model_path.substr(0, slash + 1);
      write(dir + "best.safetensors", model_meta, meta);
    }
    cluster_.barrier();
  }

 private:
  void write(const std::string& path, const std::map<std::string, std::string>& model_meta,
             const std::map<std::string, std::string>& meta) {
    recur::save_checkpoint(path, params_, *optimizer_, model_.metadata(model_meta), meta,
                           refs(all_h_, all_c_));
  }
  // A carried hidden state of the whole batch as named tensors (for the training-state file).
  static std::vector<recur::TensorRef<T>> refs(recur::Tensor3<T>& h, recur::Tensor3<T>& c) {
    auto ref = [](const char* name, recur::Tensor3<T>& t) {
      return recur::TensorRef<T>{name, {t.dimension(0), t.dimension(1), t.dimension(2)}, t.data()};
    };
    std::vector<recur::TensorRef<T>> out{ref("carried.h", h)};
    if (c.size()) out.push_back(ref("carried.c", c));
    return out;
  }
  // This rank's rows of a whole batch's state.
  void rows_of(const recur::Tensor3<T>& all, recur::Tensor3<T>& mine) const {
    const Index first = batch_ * cluster_.rank();
    for (Index l = 0; l < mine.dimension(0); ++l)
      for (Index b = 0; b < batch_; ++b)
        for (Index j = 0; j < mine.dimension(2); ++j) mine(l, b, j) = all(l, first + b, j);
  }
  static const Cluster& single() {
    static const Cluster one;
    return one;
  }

  CharModel& model_;
  const Cluster& cluster_;
  Index batch_;  // this rank's rows
  recur::Tensor3<T> all_h_, all_c_;  // the whole batch's carried state, for a checkpoint
  std::vector<recur::Parameter<T>> params_;
  std::unique_ptr<recur::Optimizer<T>> optimizer_;
};

/// One iteration of truncated BPTT on a chunk: forward from the carried state (which it
/// advances), cross-entropy, backward, the gradients averaged over the ranks (MPI), gradient
/// clipping, optimizer step. Returns the loss (the mean over every rank's tokens); when it is
/// not finite, no step is taken (on any rank: they all see the same loss).
inline double train_step(CharModel& model, TrainingState& s, const recur::Tokens& x,
                         const recur::Tokens& y, double grad_clip, Cluster& cluster) {
  s.optimizer().zero_grad();
  auto r = recur::cross_entropy(model.forward(x, s.carried), y);
  if (cluster.size() == 1 && !std::isfinite(r.loss)) return r.loss;
  model.backward(r.d_logits);
  r.loss = cluster.average(s.params(), r.loss, static_cast<double>(r.count));
  if (!std::isfinite(r.loss)) return r.loss;
  if (grad_clip > 0) recur::clip_grad_norm(s.params(), grad_clip);
  s.optimizer().step();
  ++s.iteration;
  s.smooth = std::isnan(s.smooth) ? r.loss : 0.98 * s.smooth + 0.02 * r.loss;
  return r.loss;
}

/// The live progress line on stderr: epoch, iteration, smoothed loss, characters/s, elapsed
/// time and ETA; rewritten in place on a terminal (4 times a second), a line every 5 s else.
class Progress {
 public:
  using Clock = std::chrono::steady_clock;
  Progress(const TrainOptions& o, std::int64_t per_epoch, std::int64_t total_iters)
      : on_(!o.quiet),
        tty_(!o.quiet && ::isatty(2)),
        per_epoch_(per_epoch),
        total_(total_iters),
        chars_per_iter_(static_cast<double>(o.batch_size * o.seq_length)),
        max_seconds_(o.max_seconds) {}

  bool tty() const { return tty_; }

  /// After an iteration: `seconds` in all (with earlier runs), `train_seconds` and `done`
  /// iterations in this run, `before` the earlier runs' time.
  void update(std::int64_t iteration, double smooth, double seconds, double train_seconds,
              std::int64_t done, double before) {
    const auto now = Clock::now();
    if (!on_ || (now - last_ < std::chrono::milliseconds(tty_ ? 250 : 5000) && iteration != total_))
      return;
    last_ = now;
    const double tps = static_cast<double>(done) * chars_per_iter_ / std::max(train_seconds, 1e-9);
    const double per_iter = (seconds - before) / static_cast<double>(std::max<std::int64_t>(done, 1));
    double eta = per_iter * static_cast<double>(total_ - iteration);
    if (max_seconds_ > 0) eta = std::min(eta, max_seconds_ - seconds);
    std::fprintf(stderr, "%sepoch %.2f  iteration %lld/%lld  loss %.4f  %.1fk chars/s  elapsed %s  ETA %s%s",
                 tty_ ? "\r" : "", static_cast<double>(iteration) / static_cast<double>(per_epoch_),
                 static_cast<long long>(iteration), static_cast<long long>(total_), smooth, tps / 1000,
                 clock(seconds).c_str(), clock(eta).c_str(), tty_ ? "\033[K" : "\n");
  }
  /// Ends a live line before other output.
  void break_line() const {
    if (tty_) std::fprintf(stderr, "\n");
  }

 private:
  static std::string clock(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "--:--";
    const long s = static_cast<long>(seconds + 0.5);
    char buf[32];
    if (s >= 3600)
      std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
      std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
  }

  bool on_, tty_;
  std::int64_t per_epoch_, total_;
  double chars_per_iter_, max_seconds_;
  Clock::time_point last_ = Clock::now() - std::chrono::seconds(10);
};

}  // namespace char_rnn
