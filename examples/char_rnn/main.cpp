// char_rnn: train a character-level language model on any text and generate new text, in the
// spirit of Karpathy's char-rnn (train.lua / sample.lua) and min-char-rnn.
//
//   char_rnn train [--data FILE] [--model lstm] [--rnn-size 128] [--num-layers 2] ...
//   char_rnn sample --checkpoint FILE [--length 2000] [--temperature 1] [--prime TEXT] ...
//
// Without --data, train uses a built-in corpus: recur's own public headers, embedded at build
// time. Run either subcommand with --help for every option.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>

#include "cli.hpp"
#include "log.hpp"
#include "model.hpp"
#include "sampler.hpp"
#include "text.hpp"

extern const char kBuiltinCorpus[];
extern const std::size_t kBuiltinCorpusSize;

namespace char_rnn {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t interrupted = 0;
extern "C" void on_sigint(int) { interrupted = 1; }

struct TrainOptions {
  std::string data, model = "lstm", optimizer = "adam", checkpoint_dir = "cv", init_from;
  std::int64_t rnn_size = 128, num_layers = 2, embedding_size = 64, seq_length = 50,
               batch_size = 50, lr_decay_after = 10, max_epochs = 50, max_iters = 0,
               eval_every = 1000, seed = 123, threads = 1, sample_length = 200;
  double dropout = 0, learning_rate = 2e-3, lr_decay = 0.97, grad_clip = 5, max_seconds = 0,
         val_frac = 0.05;
  bool quiet = false;
};

std::string read_text(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw std::runtime_error(path + ": is a directory, not a text file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream s;
  s << f.rdbuf();
  if (f.bad()) throw std::runtime_error(path + ": read error");
  std::string text = s.str();
  if (text.empty()) throw std::runtime_error(path + ": the file is empty");
  return text;
}

std::string optim_path(const std::string& model_path) {
  const std::string ext = ".safetensors";
  std::string base = model_path;
  if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0)
    base.resize(base.size() - ext.size());
  return base + ".optim" + ext;
}

std::string clock_str(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::unique_ptr<recur::Optimizer<T>> make_optimizer(const std::string& name,
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

// The carried hidden state as named tensors (for the training-state file).
std::vector<recur::TensorRef<T>> state_refs(recur::State<T>& s) {
  std::vector<recur::TensorRef<T>> out{{"carried.h", {s.h.dimension(0), s.h.dimension(1), s.h.dimension(2)}, s.h.data()}};
  if (s.c.size())
    out.push_back({"carried.c", {s.c.dimension(0), s.c.dimension(1), s.c.dimension(2)}, s.c.data()});
  return out;
}

// Mean nats/char of the model over `streams` (eval mode, state carried across chunks).
double evaluate(CharModel& m, const Streams& streams) {
  m.train(false);
  recur::State<T> state;
  recur::Tokens x, y;
  double total = 0;
  Index count = 0;
  for (Index i = 0; i < streams.chunks(); ++i) {
    streams.chunk(i, x, y);
    auto r = recur::cross_entropy(m.forward(x, state), y);
    total += r.loss * static_cast<double>(r.count);
    count += r.count;
  }
  m.train(true);
  return count ? total / static_cast<double>(count) : std::nan("");
}

std::string sample_text(CharModel& m, Index first, Index length, std::uint64_t seed) {
  SampleOptions so;
  Sampler s(m, so, seed);
  std::string out = m.vocab().chr(first);
  Index id = first;
  for (Index i = 0; i < length; ++i) {
    s.feed(id);
    id = s.next();
    out += m.vocab().chr(id);
  }
  return out;
}

int train(int argc, char** argv) {
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
      .add("seed", &o.seed, "random seed (initialisation, dropout)")
      .add("threads", &o.threads, "threads for Eigen's products (needs an OpenMP build)")
      .add("quiet", &o.quiet, "no progress line");
  if (!f.parse(argc, argv, 2)) {
    std::cout << f.help();
    return 0;
  }
  auto check = [](bool ok, const std::string& what) {
    if (!ok) throw UsageError(what);
  };
  check(o.model == "lstm" || o.model == "gru" || o.model == "rnn", "--model: '" + o.model + "' is not one of lstm, gru, rnn");
  check(o.rnn_size > 0 && o.rnn_size <= 65536, "--rnn-size must be in [1, 65536]");
  check(o.num_layers > 0 && o.num_layers <= 64, "--num-layers must be in [1, 64]");
  check(o.embedding_size > 0 && o.embedding_size <= 65536, "--embedding-size must be in [1, 65536]");
  check(o.dropout >= 0 && o.dropout < 1, "--dropout must be in [0, 1)");
  check(o.seq_length > 0, "--seq-length must be positive");
  check(o.batch_size > 0, "--batch-size must be positive");
  check(o.learning_rate > 0 && std::isfinite(o.learning_rate), "--learning-rate must be positive");
  check(o.lr_decay > 0 && o.lr_decay <= 1, "--lr-decay must be in (0, 1]");
  check(o.lr_decay_after >= 0, "--lr-decay-after must be >= 0");
  check(o.grad_clip >= 0, "--grad-clip must be >= 0");
  check(o.max_epochs > 0, "--max-epochs must be positive");
  check(o.max_iters >= 0 && o.max_seconds >= 0, "--max-iters and --max-seconds must be >= 0");
  check(o.val_frac >= 0 && o.val_frac < 1, "--val-frac must be in [0, 1)");
  check(o.eval_every > 0, "--eval-every must be positive");
  check(o.threads > 0, "--threads must be positive");
  check(o.sample_length >= 0, "--sample-length must be >= 0");
  make_optimizer(o.optimizer, {}, o.learning_rate);  // validates the name
  Eigen::setNbThreads(static_cast<int>(o.threads));

  // ---- data ----
  const std::string text = o.data.empty() ? std::string(kBuiltinCorpus, kBuiltinCorpusSize) : read_text(o.data);
  const std::string origin = o.data.empty() ? "the built-in corpus" : o.data;
  std::vector<std::string> chars;
  try {
    chars = utf8_chars(text);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(origin + ": " + e.what());
  }

  // ---- model: new, or rebuilt from the checkpoint ----
  std::unique_ptr<CharModel> model;
  if (!o.init_from.empty()) {
    model = CharModel::load(o.init_from);
    const Hyper& h = model->hyper();
    auto same = [&](const char* flag, bool ok, const std::string& saved) {
      if (f.given(flag) && !ok)
        throw std::runtime_error(o.init_from + ": the checkpoint has " + flag + " " + saved +
                                 ", which --" + flag + " contradicts");
    };
    same("model", o.model == h.model, h.model);
    same("rnn-size", o.rnn_size == h.rnn_size, std::to_string(h.rnn_size));
    same("num-layers", o.num_layers == h.num_layers, std::to_string(h.num_layers));
    same("embedding-size", o.embedding_size == h.embedding_size, std::to_string(h.embedding_size));
    for (auto& c : chars)
      if (!model->vocab().contains(c))
        throw std::runtime_error(origin + ": character " + Vocab::printable(c) +
                                 " is not in the vocabulary of " + o.init_from);
  } else {
    Hyper h;
    h.model = o.model;
    h.rnn_size = o.rnn_size;
    h.num_layers = o.num_layers;
    h.embedding_size = o.embedding_size;
    h.dropout = o.dropout;
    model = std::make_unique<CharModel>(h, Vocab::of(chars), static_cast<std::uint64_t>(o.seed));
  }
  const Vocab& vocab = model->vocab();
  const auto ids = vocab.encode(chars);
  const auto n_val = static_cast<std::size_t>(static_cast<double>(ids.size()) * o.val_frac);
  const std::vector<std::int32_t> train_ids(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(n_val));
  const std::vector<std::int32_t> val_ids(ids.end() - static_cast<std::ptrdiff_t>(n_val), ids.end());
  const Streams train_streams(train_ids, o.batch_size, o.seq_length);
  if (train_streams.full_chunks() < 1)
    throw std::runtime_error(origin + ": " + std::to_string(train_ids.size()) +
                             " training characters are fewer than one batch needs (batch-size " +
                             std::to_string(o.batch_size) + " x (seq-length " + std::to_string(o.seq_length) +
                             " + 1) = " + std::to_string(o.batch_size * (o.seq_length + 1)) + ")");
  const Index val_batch = std::max<Index>(1, std::min<Index>(o.batch_size, static_cast<Index>(val_ids.size()) / (o.seq_length + 1)));
  const Streams val_streams = val_ids.size() >= 2 ? Streams(val_ids, val_batch, o.seq_length) : Streams();
  const bool has_val = val_streams.chunks() > 0;
  const Index per_epoch = train_streams.full_chunks();
  const std::int64_t total_iters = o.max_iters > 0 ? std::min<std::int64_t>(o.max_iters, o.max_epochs * per_epoch)
                                                   : o.max_epochs * per_epoch;

  auto params = model->parameters();
  auto opt = make_optimizer(o.optimizer, params, o.learning_rate);
  std::int64_t iteration = 0;
  double smooth = std::nan(""), best = std::numeric_limits<double>::infinity(), elapsed_before = 0;
  recur::State<T> state;  // carried from chunk to chunk within an epoch
  auto zero_state = [&] {
    const Index L = model->hyper().num_layers, B = o.batch_size, H = model->hyper().rnn_size;
    state.h.resize(L, B, H);
    state.h.setZero();
    state.c = recur::Tensor3<T>();
    if (model->hyper().model == "lstm") {
      state.c.resize(L, B, H);
      state.c.setZero();
    }
  };
  zero_state();

  std::error_code ec;
  fs::create_directories(o.checkpoint_dir, ec);
  if (!fs::is_directory(o.checkpoint_dir))
    throw std::runtime_error(o.checkpoint_dir + ": cannot create the checkpoint folder");
  TrainingLog log;

  if (!o.init_from.empty() && fs::exists(optim_path(o.init_from))) {
    auto meta = recur::load_optimizer(optim_path(o.init_from), *opt, state_refs(state));
    try {
      iteration = std::stoll(meta.at("iteration"));
      smooth = std::stod(meta.at("smooth_loss"));
      best = std::stod(meta.at("best_loss"));
      elapsed_before = std::stod(meta.at("seconds"));
      model->set_rng_states(meta);
    } catch (const std::exception&) {
      throw std::runtime_error(optim_path(o.init_from) + ": not a char_rnn training state");
    }
    log.load(o.checkpoint_dir + "/log.csv", iteration);
    std::printf("resuming %s at iteration %lld\n", o.init_from.c_str(), static_cast<long long>(iteration));
  } else if (!o.init_from.empty()) {
    std::printf("starting from the weights of %s (no %s: fresh optimizer)\n", o.init_from.c_str(),
                optim_path(o.init_from).c_str());
  }

  double unigram = 0;  // entropy of the character frequencies: the loss of a model without memory
  {
    std::vector<double> count(static_cast<std::size_t>(vocab.size()), 0.0);
    for (auto id : train_ids) count[static_cast<std::size_t>(id)] += 1;
    for (double c : count)
      if (c > 0) unigram -= c / static_cast<double>(train_ids.size()) * std::log(c / static_cast<double>(train_ids.size()));
  }
  const auto& h = model->hyper();
  std::size_t n_params = 0;
  for (auto& p : params) n_params += static_cast<std::size_t>(p.value.size());
  std::printf("%s: %zu characters, vocabulary %lld; train %zu, validation %zu; unigram entropy %.4f nats/char\n",
              origin.c_str(), chars.size(), static_cast<long long>(vocab.size()), train_ids.size(), val_ids.size(),
              unigram);
  std::printf("model: %s, %lld x %lld, embedding %lld, dropout %g; %zu parameters\n", h.model.c_str(),
              static_cast<long long>(h.num_layers), static_cast<long long>(h.rnn_size),
              static_cast<long long>(h.embedding_size), h.dropout, n_params);
  std::printf("training: %lld iterations (%lld per epoch), batch %lld x %lld, %s lr %g, clip %g\n",
              static_cast<long long>(total_iters), static_cast<long long>(per_epoch),
              static_cast<long long>(o.batch_size), static_cast<long long>(o.seq_length), o.optimizer.c_str(),
              o.learning_rate, o.grad_clip);
  std::fflush(stdout);

  const bool tty = !o.quiet && ::isatty(2);
  const auto start = Clock::now();
  double train_seconds = 0;
  auto seconds = [&] { return elapsed_before + std::chrono::duration<double>(Clock::now() - start).count(); };
  auto lr_at = [&](std::int64_t it) {  // char-rnn: decay once per completed epoch after lr_decay_after
    const std::int64_t epochs_done = it / per_epoch, after = std::max<std::int64_t>(o.lr_decay_after, 1);
    return o.learning_rate * std::pow(o.lr_decay, static_cast<double>(std::max<std::int64_t>(0, epochs_done - after + 1)));
  };

  auto save = [&](double val) {
    char name[128];
    const double epoch = static_cast<double>(iteration) / static_cast<double>(per_epoch);
    std::snprintf(name, sizeof name, "lm_%s_epoch%.2f_%.4f.safetensors", h.model.c_str(), epoch,
                  std::isfinite(val) ? val : smooth);
    const std::string path = o.checkpoint_dir + "/" + name;
    std::map<std::string, std::string> train_meta = model->rng_states();
    train_meta["iteration"] = std::to_string(iteration);
    train_meta["smooth_loss"] = recur::detail::format_double(smooth);
    train_meta["seconds"] = recur::detail::format_double(seconds());
    const double score = std::isfinite(val) ? val : smooth;
    const bool is_best = score < best;
    if (is_best) best = score;
    train_meta["best_loss"] = recur::detail::format_double(best);
    std::map<std::string, std::string> model_meta{{"iteration", std::to_string(iteration)},
                                                  {"epoch", recur::detail::format_double(epoch)},
                                                  {"val_loss", recur::detail::format_double(val)},
                                                  {"seq_length", std::to_string(o.seq_length)},
                                                  {"batch_size", std::to_string(o.batch_size)}};
    model->save(path, model_meta);
    recur::save_optimizer(optim_path(path), *opt, train_meta, state_refs(state));
    if (is_best) {
      model->save(o.checkpoint_dir + "/best.safetensors", model_meta);
      recur::save_optimizer(o.checkpoint_dir + "/best.optim.safetensors", *opt, train_meta, state_refs(state));
    }
    return path;
  };

  std::signal(SIGINT, on_sigint);
  recur::Tokens x, y;
  auto last_print = Clock::now() - std::chrono::seconds(10);
  const std::int64_t first_iteration = iteration;
  std::int64_t done_here = 0, saved_at = -1;
  std::string stop_reason = "done";
  while (iteration < total_iters) {
    if (interrupted) {
      stop_reason = "interrupted";
      break;
    }
    if (o.max_seconds > 0 && seconds() >= o.max_seconds) {
      stop_reason = "time budget reached";
      break;
    }
    const Index chunk = iteration % per_epoch;
    if (chunk == 0) zero_state();
    opt->set_lr(lr_at(iteration));
    const auto t0 = Clock::now();
    train_streams.chunk(chunk, x, y);
    opt->zero_grad();
    auto r = recur::cross_entropy(model->forward(x, state), y);
    if (!std::isfinite(r.loss)) {
      std::fprintf(stderr, "%serror: the training loss is %g at iteration %lld: training diverged; try a lower "
                   "--learning-rate or --grad-clip\n", tty ? "\n" : "", r.loss, static_cast<long long>(iteration));
      return 1;
    }
    model->backward(r.d_logits);
    if (o.grad_clip > 0) recur::clip_grad_norm(params, o.grad_clip);
    opt->step();
    ++iteration;
    ++done_here;
    train_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    smooth = std::isnan(smooth) ? r.loss : 0.98 * smooth + 0.02 * r.loss;
    if (iteration % 10 == 0 || iteration == total_iters) log.add({iteration, seconds(), smooth, std::nan("")});

    const auto now = Clock::now();
    if (!o.quiet && (now - last_print > std::chrono::milliseconds(tty ? 250 : 5000) || iteration == total_iters)) {
      last_print = now;
      const double tps = static_cast<double>(done_here * o.batch_size * o.seq_length) / std::max(train_seconds, 1e-9);
      const double per_iter = (seconds() - elapsed_before) / static_cast<double>(iteration - first_iteration);
      double eta = per_iter * static_cast<double>(total_iters - iteration);
      if (o.max_seconds > 0) eta = std::min(eta, o.max_seconds - seconds());
      std::fprintf(stderr, "%sepoch %.2f  iteration %lld/%lld  loss %.4f  %.1fk chars/s  elapsed %s  ETA %s%s",
                   tty ? "\r" : "", static_cast<double>(iteration) / static_cast<double>(per_epoch),
                   static_cast<long long>(iteration), static_cast<long long>(total_iters), smooth, tps / 1000,
                   clock_str(seconds()).c_str(), clock_str(eta).c_str(), tty ? "\033[K" : "\n");
    }
    if (iteration % o.eval_every == 0 || iteration == total_iters) {
      const double val = has_val ? evaluate(*model, val_streams) : std::nan("");
      if (tty) std::fprintf(stderr, "\n");
      if (has_val)
        std::printf("iteration %lld: validation loss %.4f nats/char (%.4f bits/char)\n",
                    static_cast<long long>(iteration), val, val / std::log(2.0));
      log.add({iteration, seconds(), smooth, val});
      const std::string path = save(val);
      saved_at = iteration;
      log.write(o.checkpoint_dir);
      if (o.sample_length > 0) {
        const Index first = vocab.contains("\n") ? vocab.id("\n") : 0;
        std::printf("sample: %s\n", sample_text(*model, first, o.sample_length, 7).c_str());
      }
      std::printf("saved %s\n", path.c_str());
      std::fflush(stdout);
    }
  }
  if (tty) std::fprintf(stderr, "\n");
  if (saved_at != iteration) {
    const double val = has_val ? evaluate(*model, val_streams) : std::nan("");
    if (has_val)
      std::printf("validation loss %.4f nats/char (%.4f bits/char)\n", val, val / std::log(2.0));
    log.add({iteration, seconds(), smooth, val});
    const std::string path = save(val);
    log.write(o.checkpoint_dir);
    std::printf("%s: saved %s\n", stop_reason.c_str(), path.c_str());
  } else if (stop_reason != "done") {
    std::printf("%s\n", stop_reason.c_str());
  }
  const double tps = static_cast<double>(done_here * o.batch_size * o.seq_length) / std::max(train_seconds, 1e-9);
  std::printf("trained %lld iterations, %.0f chars/s; best loss %.4f; log and plot in %s\n",
              static_cast<long long>(done_here), tps, best, o.checkpoint_dir.c_str());
  return stop_reason == "interrupted" ? 130 : 0;
}

int sample(int argc, char** argv) {
  std::string checkpoint, prime;
  std::int64_t length = 2000, top_k = 0, seed = 123;
  double temperature = 1.0;
  bool argmax = false;
  Flags f("usage: char_rnn sample --checkpoint FILE [options]\n\nGenerates text from a trained model, "
          "streaming each character as it is drawn.");
  f.add("checkpoint", &checkpoint, "model file written by char_rnn train")
      .add("length", &length, "characters to generate")
      .add("temperature", &temperature, "softmax temperature (lower: more conservative)")
      .add("prime", &prime, "text to start from (default: a newline)")
      .add("top-k", &top_k, "draw only among the k likeliest characters (0: all)")
      .add("argmax", &argmax, "always take the likeliest character")
      .add("seed", &seed, "random seed");
  if (!f.parse(argc, argv, 2)) {
    std::cout << f.help();
    return 0;
  }
  if (checkpoint.empty()) throw UsageError("--checkpoint is required");
  if (length < 0) throw UsageError("--length must be >= 0");
  if (!(temperature > 0) || !std::isfinite(temperature)) throw UsageError("--temperature must be positive");
  if (top_k < 0) throw UsageError("--top-k must be >= 0");
  auto model = CharModel::load(checkpoint);
  model->train(false);
  const Vocab& vocab = model->vocab();
  std::vector<std::string> prime_chars;
  try {
    prime_chars = utf8_chars(prime);
  } catch (const std::runtime_error& e) {
    throw UsageError(std::string("--prime: ") + e.what());
  }
  std::vector<Index> prime_ids;
  for (auto& c : prime_chars) {
    if (!vocab.contains(c))
      throw UsageError("--prime: character " + Vocab::printable(c) + " is not in the model's vocabulary");
    prime_ids.push_back(vocab.id(c));
  }
  if (prime_ids.empty()) prime_ids.push_back(vocab.contains("\n") ? vocab.id("\n") : 0);
  SampleOptions so;
  so.temperature = temperature;
  so.top_k = top_k;
  so.argmax = argmax;
  Sampler s(*model, so, static_cast<std::uint64_t>(seed));
  if (!prime.empty()) std::fwrite(prime.data(), 1, prime.size(), stdout);
  for (Index id : prime_ids) s.feed(id);
  for (std::int64_t i = 0; i < length; ++i) {
    const Index id = s.next();
    const std::string& c = vocab.chr(id);
    std::fwrite(c.data(), 1, c.size(), stdout);
    std::fflush(stdout);
    s.feed(id);
  }
  std::fputc('\n', stdout);
  return 0;
}

const char* kUsage =
    "usage: char_rnn <command> [options]\n\n"
    "commands:\n"
    "  train     learn a text (default: a built-in corpus) and write checkpoints\n"
    "  sample    generate text from a checkpoint\n\n"
    "`char_rnn <command> --help` lists the options of each.\n";

}  // namespace
}  // namespace char_rnn

int main(int argc, char** argv) {
  using namespace char_rnn;
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "train") return train(argc, argv);
    if (cmd == "sample") return sample(argc, argv);
    std::fprintf(stderr, "char_rnn: unknown command '%s' (train or sample; see char_rnn --help)\n", cmd.c_str());
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "char_rnn %s: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "char_rnn %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
