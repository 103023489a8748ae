// The options of `char_rnn train`, parsed and validated in one step.
#pragma once

#include <cmath>
#include <cstdint>
#include <iostream>
#include <optional>
#include <set>
#include <string>

#include "common/cli.hpp"

namespace char_rnn {
using namespace recur_examples;  // Flags, UsageError, exact, TrainingLog

struct TrainOptions {
  std::string data, model = "lstm", optimizer = "adam", checkpoint_dir = "cv", init_from;
  std::int64_t rnn_size = 128, num_layers = 2, embedding_size = 64, seq_length = 50,
               batch_size = 50, lr_decay_after = 10, max_epochs = 50, max_iters = 0,
               eval_every = 1000, seed = 123, threads = 0, sample_length = 200;
  double dropout = 0, learning_rate = 2e-3, lr_decay = 0.97, grad_clip = 5, max_seconds = 0,
         val_frac = 0.05;
  bool quiet = false, weights_only = false;
  std::set<std::string> given;  // of the flags a checkpoint can contradict, those given

  bool was_given(const std::string& flag) const { return given.count(flag) > 0; }
};

/// The options of `char_rnn train` from argv (argv[1] is "train"), validated; nullopt after
/// printing the help (--help). Throws UsageError naming the bad flag.
inline std::optional<TrainOptions> parse_train_options(int argc, char** argv) {
  TrainOptions o;
  Flags f("usage: char_rnn train [options]\n\nTrains a character-level language model on a text file (default: a built-in\n"
          "corpus, recur's own headers) and writes safetensors checkpoints.");
  f.add("data", &o.data, "UTF-8 text file to learn (default: the built-in corpus)")
      .add("model", &o.model, "lstm, gru or rnn")
      .add("rnn-size", &o.rnn_size, "hidden units per layer")
      .add("num-layers", &o.num_layers, "recurrent layers")
      .add("embedding-size", &o.embedding_size, "size of the character embedding")
      .add("dropout", &o.dropout, "dropout between layers and before the head")
      .add("seq-length", &o.seq_length, "time steps per chunk (truncated BPTT length)")
      .add("batch-size", &o.batch_size, "parallel streams per batch")
      .add("optimizer", &o.optimizer, "adam, rmsprop, adagrad or sgd")
      .add("learning-rate", &o.learning_rate, "learning rate")
      .add("lr-decay", &o.lr_decay, "learning rate factor per epoch, after --lr-decay-after")
      .add("lr-decay-after", &o.lr_decay_after, "epochs before the decay starts")
      .add("grad-clip", &o.grad_clip, "clip the gradients' global norm (0: off)")
      .add("max-epochs", &o.max_epochs, "passes over the training text")
      .add("max-iters", &o.max_iters, "stop after this many iterations in all (0: no limit)")
      .add("max-seconds", &o.max_seconds, "stop after this much training time (0: no limit)")
      .add("val-frac", &o.val_frac, "fraction of the text, at its end, held out for validation")
      .add("eval-every", &o.eval_every, "iterations between evaluations and checkpoints")
      .add("sample-length", &o.sample_length, "characters of the sample shown at each evaluation")
      .add("checkpoint-dir", &o.checkpoint_dir, "folder for checkpoints, log.csv and loss.svg")
      .add("init-from", &o.init_from, "resume from this checkpoint (model file)")
      .add("weights-only", &o.weights_only, "with --init-from: take only its weights (fresh optimizer, iteration 0)")
      .add("seed", &o.seed, "random seed (initialisation, dropout)")
      .add("threads", &o.threads, "threads for recur's layers and Eigen (0: every core)")
      .add("quiet", &o.quiet, "no progress line");
  if (!f.parse(argc, argv, 2)) {
    std::cout << f.help();
    return std::nullopt;
  }
  for (const char* flag : {"model", "rnn-size", "num-layers", "embedding-size"})
    if (f.given(flag)) o.given.insert(flag);

  auto check = [](bool ok, const std::string& what) {
    if (!ok) throw UsageError(what);
  };
  check(o.model == "lstm" || o.model == "gru" || o.model == "rnn",
        "--model: '" + o.model + "' is not one of lstm, gru, rnn");
  check(o.optimizer == "adam" || o.optimizer == "rmsprop" || o.optimizer == "adagrad" ||
            o.optimizer == "sgd",
        "--optimizer: '" + o.optimizer + "' is not one of adam, rmsprop, adagrad, sgd");
  check(o.rnn_size > 0 && o.rnn_size <= 65536, "--rnn-size must be in [1, 65536]");
  check(o.num_layers > 0 && o.num_layers <= 64, "--num-layers must be in [1, 64]");
  check(o.embedding_size > 0 && o.embedding_size <= 65536, "--embedding-size must be in [1, 65536]");
  check(o.dropout >= 0 && o.dropout < 1, "--dropout must be in [0, 1)");
  // Bounds that keep every product of sizes far from overflow (and memory is checked later).
  check(o.seq_length > 0 && o.seq_length <= (1 << 20), "--seq-length must be in [1, 1048576]");
  check(o.batch_size > 0 && o.batch_size <= (1 << 20), "--batch-size must be in [1, 1048576]");
  check(o.learning_rate > 0 && std::isfinite(o.learning_rate), "--learning-rate must be positive");
  check(o.lr_decay > 0 && o.lr_decay <= 1, "--lr-decay must be in (0, 1]");
  check(o.lr_decay_after >= 0 && o.lr_decay_after <= 1'000'000'000,
        "--lr-decay-after must be in [0, 1000000000]");
  check(o.grad_clip >= 0 && std::isfinite(o.grad_clip), "--grad-clip must be >= 0");
  check(o.max_epochs > 0 && o.max_epochs <= 1'000'000'000, "--max-epochs must be in [1, 1000000000]");
  check(o.max_iters >= 0 && o.max_seconds >= 0 && std::isfinite(o.max_seconds),
        "--max-iters and --max-seconds must be >= 0");
  check(o.val_frac >= 0 && o.val_frac < 1, "--val-frac must be in [0, 1)");
  check(o.eval_every > 0, "--eval-every must be positive");
  check(o.threads >= 0 && o.threads <= 4096, "--threads must be in [0, 4096] (0: every core)");
  check(o.sample_length >= 0 && o.sample_length <= (1 << 24), "--sample-length must be in [0, 16777216]");
  check(!o.weights_only || !o.init_from.empty(), "--weights-only needs --init-from");
  return o;
}

}  // namespace char_rnn
