// char_rnn: train a character-level language model on any text and generate new text, in the
// spirit of Karpathy's char-rnn (train.lua / sample.lua) and min-char-rnn.
//
//   char_rnn train [--data FILE] [--model lstm] [--rnn-size 128] [--num-layers 2] ...
//   char_rnn sample --checkpoint FILE [--length 2000] [--temperature 1] [--prime TEXT] ...
//
// Without --data, train uses a built-in corpus: recur's own public headers, embedded at build
// time. Run either subcommand with --help for every option.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
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

#include "cluster.hpp"
#include "common/cli.hpp"
#include "common/training_log.hpp"
#include "model.hpp"
#include "sampler.hpp"
#include "text.hpp"
#include "train_options.hpp"
#include "training.hpp"

extern const char kBuiltinCorpus[];
extern const std::size_t kBuiltinCorpusSize;

namespace char_rnn {
using namespace recur_examples;  // Flags, UsageError, exact, TrainingLog
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t interrupted = 0;
extern "C" void on_sigint(int) { interrupted = 1; }

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

// Everything written to stdout must have reached it: a full disk or a closed pipe is an error.
void check_stdout() {
  if (std::fflush(stdout) != 0 || std::ferror(stdout))
    throw std::runtime_error(std::string("cannot write to standard output: ") + std::strerror(errno));
}

// The checkpoint folder, made ready before any training: created, writable (a lock file in it,
// held for the run, also keeps a second run from writing into it at the same time), and
// cleared of what an interrupted run left (temporary files, unreferenced training states).
void prepare_checkpoint_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir))
    throw std::runtime_error(dir + ": cannot create the checkpoint folder" + (ec ? " (" + ec.message() + ")" : ""));
  const std::string lock = dir + "/.char_rnn.lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);  // kept open: the lock
  if (fd < 0)
    throw std::runtime_error(dir + ": the checkpoint folder is not writable (" + std::strerror(errno) + ")");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
    throw std::runtime_error(dir + ": another char_rnn train is writing checkpoints into this folder");
  const auto removed = recur::remove_stale_checkpoint_files(dir);
  if (!removed.empty())
    std::printf("%s: removed %zu file(s) an interrupted save left behind\n", dir.c_str(), removed.size());
}

// What a run would allocate at least (parameters with their gradients and optimizer slots,
// the layers' caches, the logits and their gradient), checked against the machine's memory
// before anything is built: a model that cannot fit is a message, not std::bad_alloc.
void check_memory(const TrainOptions& o, Index vocab, Index rows_per_process) {
  Hyper h;
  h.model = o.model;
  h.rnn_size = o.rnn_size;
  h.num_layers = o.num_layers;
  h.embedding_size = o.embedding_size;
  const double params = static_cast<double>(CharModel::parameter_count(h, vocab));
  const double slots = o.optimizer == "adam" ? 2 : o.optimizer == "sgd" ? 0 : 1;
  const double G = o.model == "lstm" ? 4 : o.model == "gru" ? 3 : 1;
  const double rows = static_cast<double>(rows_per_process) * static_cast<double>(o.seq_length);
  const double bytes = sizeof(T) * ((2 + slots) * params +
                                    rows * static_cast<double>(o.num_layers * o.rnn_size) * (G + 4) +
                                    rows * static_cast<double>(vocab) * 3);
  const double have = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  if (have > 0 && bytes > have)
    throw std::runtime_error("this model needs at least " + std::to_string(static_cast<long long>(bytes / (1 << 20))) +
                             " MiB (" + std::to_string(static_cast<long long>(params)) +
                             " parameters with gradients and optimizer state, caches for batch " +
                             std::to_string(o.batch_size) + " x " + std::to_string(o.seq_length) +
                             ") but this machine has " + std::to_string(static_cast<long long>(have / (1 << 20))) +
                             " MiB; use a smaller --rnn-size, --num-layers, --batch-size or --seq-length");
}

// Mean nats/char of the model over `streams` (eval mode, state carried across chunks), over
// every rank's streams.
double evaluate(CharModel& m, const Streams& streams, const Cluster& cluster) {
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
  return cluster.mean(count ? total / static_cast<double>(count) : std::nan(""), static_cast<double>(count));
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

// The model of a run: rebuilt from --init-from (which the flags given must not contradict,
// and whose vocabulary must cover the text), or new.
std::unique_ptr<CharModel> make_model(const TrainOptions& o, const std::vector<std::string>& chars,
                                      const std::string& origin) {
  if (o.init_from.empty()) {
    Hyper h;
    h.model = o.model;
    h.rnn_size = o.rnn_size;
    h.num_layers = o.num_layers;
    h.embedding_size = o.embedding_size;
    h.dropout = o.dropout;
    return std::make_unique<CharModel>(h, Vocab::of(chars), static_cast<std::uint64_t>(o.seed));
  }
  auto model = CharModel::load(o.init_from);
  const Hyper& h = model->hyper();
  auto same = [&](const char* flag, bool ok, const std::string& saved) {
    if (o.was_given(flag) && !ok)
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
  return model;
}

// Entropy of the character frequencies: the loss of a model without memory.
double unigram_entropy(const std::vector<std::int32_t>& ids, Index vocab_size) {
  std::vector<double> count(static_cast<std::size_t>(vocab_size), 0.0);
  for (auto id : ids) count[static_cast<std::size_t>(id)] += 1;
  double h = 0;
  const double n = static_cast<double>(ids.size());
  for (double c : count)
    if (c > 0) h -= c / n * std::log(c / n);
  return h;
}

int train(int argc, char** argv, Cluster& cluster) {
  const auto parsed = parse_train_options(argc, argv);
  if (!parsed) return 0;  // --help
  TrainOptions o = *parsed;
  // Under MPI (mpirun -np N): --batch-size is the global batch, each rank trains B / N of its
  // streams; rank 0 alone prints, logs and writes checkpoints. The ranks draw dropout masks
  // from their own generators (the weights are rank 0's, broadcast).
  const int ranks = cluster.size(), rank = cluster.rank();
  if (o.batch_size % ranks != 0)
    throw UsageError("--batch-size " + std::to_string(o.batch_size) + " does not divide among " +
                     std::to_string(ranks) + " ranks (each trains batch-size / ranks streams)");
  const Index per_rank = o.batch_size / ranks;
  if (!cluster.root()) {
    o.quiet = true;
    o.seed += 7919 * rank;
  }
  // recur's layers and Eigen's own products: o.threads threads (0: every core).
  recur::set_num_threads(static_cast<int>(o.threads));
  Eigen::setNbThreads(recur::num_threads());

  // ---- data and model ----
  const std::string text = o.data.empty() ? std::string(kBuiltinCorpus, kBuiltinCorpusSize) : read_text(o.data);
  const std::string origin = o.data.empty() ? "the built-in corpus" : o.data;
  std::vector<std::string> chars;
  try {
    chars = utf8_chars(text);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(origin + ": " + e.what());
  }
  if (o.init_from.empty()) check_memory(o, static_cast<Index>(Vocab::of(chars).size()), per_rank);
  std::unique_ptr<CharModel> model = make_model(o, chars, origin);
  const Vocab& vocab = model->vocab();
  const auto ids = vocab.encode(chars);
  const auto n_val = static_cast<std::size_t>(static_cast<double>(ids.size()) * o.val_frac);
  const std::vector<std::int32_t> train_ids(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(n_val));
  const std::vector<std::int32_t> val_ids(ids.end() - static_cast<std::ptrdiff_t>(n_val), ids.end());
  const Streams train_streams(train_ids, o.batch_size, o.seq_length, per_rank * rank, per_rank);
  if (train_streams.full_chunks() < 1)
    throw std::runtime_error(origin + ": " + std::to_string(train_ids.size()) +
                             " training characters are fewer than one batch needs (batch-size " +
                             std::to_string(o.batch_size) + " x (seq-length " + std::to_string(o.seq_length) +
                             " + 1) = " + std::to_string(o.batch_size * (o.seq_length + 1)) + ")");
  const Index val_batch = std::max<Index>(1, std::min<Index>(o.batch_size, static_cast<Index>(val_ids.size()) / (o.seq_length + 1)));
  const bool has_val = val_ids.size() >= 2 && Streams(val_ids, val_batch, o.seq_length).chunks() > 0;
  // This rank's share of the validation streams (possibly none: its count is then 0).
  const Index val_first = val_batch * rank / ranks, val_rows = val_batch * (rank + 1) / ranks - val_first;
  const Streams val_streams = has_val && val_rows > 0
                                  ? Streams(val_ids, val_batch, o.seq_length, val_first, val_rows)
                                  : Streams();
  const Index per_epoch = train_streams.full_chunks();
  const std::int64_t all_epochs = per_epoch > std::numeric_limits<std::int64_t>::max() / o.max_epochs
                                     ? std::numeric_limits<std::int64_t>::max()
                                     : o.max_epochs * per_epoch;  // saturated, never overflowed
  const std::int64_t total_iters = o.max_iters > 0 ? std::min<std::int64_t>(o.max_iters, all_epochs) : all_epochs;

  // ---- the run's state: new, or resumed ----
  if (cluster.root()) prepare_checkpoint_dir(o.checkpoint_dir);
  TrainingState state(*model, o, cluster);
  TrainingLog log("char_rnn loss (nats/char)");
  const bool resumed = !o.init_from.empty() && !o.weights_only && state.resume(o.init_from);
  cluster.broadcast(state.params(), resumed ? &state.optimizer() : nullptr);  // rank 0's, everywhere
  if (resumed && rank > 0) {
    // The checkpoint holds rank 0's dropout generators: the other ranks draw from their own
    // (seeded by rank and iteration), not from copies of rank 0's masks.
    const CharModel fresh(model->hyper(), model->vocab(),
                          static_cast<std::uint64_t>(o.seed) + static_cast<std::uint64_t>(state.iteration));
    model->set_rng_states(fresh.rng_states());
  }
  if (resumed) {
    if (cluster.root()) log.load(o.checkpoint_dir + "/log.csv", state.iteration);
    std::printf("resuming %s at iteration %lld\n", o.init_from.c_str(), static_cast<long long>(state.iteration));
  } else if (!o.init_from.empty()) {
    std::printf("starting from the weights of %s (%s: fresh optimizer, iteration 0)\n", o.init_from.c_str(),
                o.weights_only ? "--weights-only" : "it has no training state");
  }

  const auto& h = model->hyper();
  std::size_t n_params = 0;
  for (auto& p : state.params()) n_params += static_cast<std::size_t>(p.value.size());
  std::printf("%s: %zu characters, vocabulary %lld; train %zu, validation %zu; unigram entropy %.4f nats/char\n",
              origin.c_str(), chars.size(), static_cast<long long>(vocab.size()), train_ids.size(), val_ids.size(),
              unigram_entropy(train_ids, vocab.size()));
  std::printf("model: %s, %lld x %lld, embedding %lld, dropout %g; %zu parameters\n", h.model.c_str(),
              static_cast<long long>(h.num_layers), static_cast<long long>(h.rnn_size),
              static_cast<long long>(h.embedding_size), h.dropout, n_params);
  std::printf("training: %lld iterations (%lld per epoch), batch %lld x %lld, %s lr %g, clip %g, %d threads%s\n",
              static_cast<long long>(total_iters), static_cast<long long>(per_epoch),
              static_cast<long long>(o.batch_size), static_cast<long long>(o.seq_length), o.optimizer.c_str(),
              o.learning_rate, o.grad_clip, recur::num_threads(),
              ranks > 1 ? (" per rank, " + std::to_string(ranks) + " MPI ranks of " + std::to_string(per_rank) +
                           " streams").c_str()
                        : "");
  std::fflush(stdout);

  const auto start = Clock::now();
  auto seconds = [&] { return state.seconds_before + std::chrono::duration<double>(Clock::now() - start).count(); };
  auto lr_at = [&](std::int64_t it) {  // char-rnn: decay once per completed epoch after lr_decay_after
    const std::int64_t epochs_done = it / per_epoch, after = std::max<std::int64_t>(o.lr_decay_after, 1);
    return o.learning_rate * std::pow(o.lr_decay, static_cast<double>(std::max<std::int64_t>(0, epochs_done - after + 1)));
  };
  // Evaluation, then a checkpoint (model + training state, best.* when it is the best) and
  // the log; returns the checkpoint's path.
  auto evaluate_and_save = [&](bool announce) {
    const double val = has_val ? evaluate(*model, val_streams, cluster) : std::nan("");
    const std::string when = announce ? "iteration " + std::to_string(state.iteration) + ": " : "";
    if (has_val)
      std::printf("%svalidation loss %.4f nats/char (%.4f bits/char)\n", when.c_str(), val, val / std::log(2.0));
    log.add({state.iteration, seconds(), state.smooth, val});
    const double epoch = static_cast<double>(state.iteration) / static_cast<double>(per_epoch);
    const double score = std::isfinite(val) ? val : state.smooth;
    char name[128];
    std::snprintf(name, sizeof name, "lm_%s_epoch%.2f_%.4f.safetensors", h.model.c_str(), epoch, score);
    const std::string path = o.checkpoint_dir + "/" + name;
    state.save(path,
               {{"iteration", std::to_string(state.iteration)},
                {"epoch", exact(epoch)},
                {"val_loss", exact(val)},
                {"seq_length", std::to_string(o.seq_length)},
                {"batch_size", std::to_string(o.batch_size)}},
               score, seconds());
    if (cluster.root()) log.write(o.checkpoint_dir);
    return path;
  };

  // ---- the loop ----
  std::signal(SIGINT, on_sigint);
  Progress progress(o, per_epoch, total_iters);
  recur::Tokens x, y;
  std::int64_t done_here = 0, saved_at = -1;
  double train_seconds = 0;
  std::string stop_reason = "done";
  while (state.iteration < total_iters) {
    // Every rank stops at the same iteration (under MPI: when any rank would).
    const bool out_of_time = o.max_seconds > 0 && seconds() >= o.max_seconds;
    if (cluster.any(interrupted || out_of_time)) {
      stop_reason = interrupted ? "interrupted" : "time budget reached";
      break;
    }
    const Index chunk = state.iteration % per_epoch;
    if (chunk == 0) state.zero_carried();
    state.optimizer().set_lr(lr_at(state.iteration));
    const auto t0 = Clock::now();
    train_streams.chunk(chunk, x, y);
    const double loss = train_step(*model, state, x, y, o.grad_clip, cluster);
    if (!std::isfinite(loss)) {  // the same loss on every rank: they all stop here
      if (cluster.root())
        std::fprintf(stderr, "%serror: the training loss is %g at iteration %lld: training diverged; try a lower "
                   "--learning-rate or --grad-clip\n", progress.tty() ? "\n" : "", loss,
                   static_cast<long long>(state.iteration));
      return 1;
    }
    ++done_here;
    train_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    const std::int64_t it = state.iteration;
    if (it % 10 == 0 || it == total_iters) log.add({it, seconds(), state.smooth, std::nan("")});
    progress.update(it, state.smooth, seconds(), train_seconds, done_here, state.seconds_before);
    if (it % o.eval_every == 0 || it == total_iters) {
      progress.break_line();
      const std::string path = evaluate_and_save(true);
      saved_at = it;
      if (o.sample_length > 0 && cluster.root()) {
        const Index first = vocab.contains("\n") ? vocab.id("\n") : 0;
        std::printf("sample: %s\n", sample_text(*model, first, o.sample_length, 7).c_str());
      }
      std::printf("saved %s\n", path.c_str());
      std::fflush(stdout);
    }
  }
  progress.break_line();
  if (saved_at != state.iteration) {
    const std::string path = evaluate_and_save(false);
    std::printf("%s: saved %s\n", stop_reason.c_str(), path.c_str());
  } else if (stop_reason != "done") {
    std::printf("%s\n", stop_reason.c_str());
  }
  const double tps = static_cast<double>(done_here * o.batch_size * o.seq_length) / std::max(train_seconds, 1e-9);
  std::printf("trained %lld iterations, %.0f chars/s; best loss %.4f; log and plot in %s\n",
              static_cast<long long>(done_here), tps, state.best, o.checkpoint_dir.c_str());
  if (ranks > 1)
    std::printf("MPI: %d ranks; gradient allreduce %.2f ms per iteration (%.1f%% of the training time)\n", ranks,
                1e3 * cluster.reduce_seconds() / static_cast<double>(std::max<std::int64_t>(done_here, 1)),
                100 * cluster.reduce_seconds() / std::max(train_seconds, 1e-9));
  check_stdout();
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
    check_stdout();  // streamed; stops at the first failed write
    s.feed(id);
  }
  std::fputc('\n', stdout);
  check_stdout();
  return 0;
}

// Verifies checkpoints: each model file loads (every check of sample and --init-from), and the
// training state it names is there, from the same save, and loads too.
int check(int argc, char** argv) {
  if (argc < 3 || std::string(argv[2]) == "--help" || std::string(argv[2]) == "-h") {
    std::fputs("usage: char_rnn check PATH...\n\nVerifies char_rnn checkpoints: each model file (a PATH, or every model file\n"
               "in a folder PATH) loads, with the training state it names. Exit 1 if any fails.\n",
               argc < 3 ? stderr : stdout);
    return argc < 3 ? 2 : 0;
  }
  std::vector<std::string> files;
  for (int i = 2; i < argc; ++i) {
    std::error_code ec;
    if (fs::is_directory(argv[i], ec)) {
      std::vector<std::string> in_dir;
      for (auto& e : fs::directory_iterator(argv[i])) {
        const std::string name = e.path().filename().string();
        if (name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0 &&
            name.find(".optim.safetensors") == std::string::npos)
          in_dir.push_back(e.path().string());
      }
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else {
      files.push_back(argv[i]);
    }
  }
  int bad = 0;
  for (auto& path : files) {
    try {
      auto model = CharModel::load(path);
      const auto meta = recur::safetensors::File::read(path, false).metadata();
      std::string what = "weights only";
      if (meta.count(recur::kTrainingStateKey)) {
        const std::string dir = path.find('/') == std::string::npos ? "" : path.substr(0, path.rfind('/') + 1);
        const auto state = recur::safetensors::File::read(dir + meta.at(recur::kTrainingStateKey), false);
        const recur::safetensors::TensorInfo* h = state.find("carried.h");
        if (!state.metadata().count("optimizer") || !h || h->shape.size() != 3)
          throw std::runtime_error(state.origin() + ": not a char_rnn training state");
        TrainOptions o;
        o.optimizer = state.metadata().at("optimizer");
        o.batch_size = h->shape[1];
        TrainingState st(*model, o);
        st.resume(path);
        what = "training state at iteration " + std::to_string(st.iteration);
      }
      std::printf("ok %s (%s)\n", path.c_str(), what.c_str());
    } catch (const std::exception& e) {
      std::printf("FAILED %s\n", e.what());
      ++bad;
    }
  }
  check_stdout();
  if (files.empty()) throw std::runtime_error("no model files to check");
  return bad ? 1 : 0;
}

std::string rank_prefix(const Cluster& cluster) {
  return cluster.size() > 1 ? "rank " + std::to_string(cluster.rank()) + ": " : "";
}

const char* kUsage =
    "usage: char_rnn <command> [options]\n\n"
    "commands:\n"
    "  train     learn a text (default: a built-in corpus) and write checkpoints\n"
    "  sample    generate text from a checkpoint\n"
    "  check     verify checkpoints (each model file with its training state)\n\n"
    "`char_rnn <command> --help` lists the options of each.\n";

}  // namespace
}  // namespace char_rnn

int main(int argc, char** argv) {
  using namespace char_rnn;
  Cluster cluster(&argc, &argv);  // an MPI job under mpirun (built with MPI), else one process
  if (!cluster.root() && !std::freopen("/dev/null", "w", stdout)) {  // rank 0 alone reports
    std::fprintf(stderr, "char_rnn: rank %d: cannot silence its standard output\n", cluster.rank());
    return 1;
  }
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "train") return train(argc, argv, cluster);
    if (cmd == "sample") return sample(argc, argv);
    if (cmd == "check") return check(argc, argv);
    std::fprintf(stderr, "char_rnn: unknown command '%s' (train, sample or check; see char_rnn --help)\n", cmd.c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "char_rnn %s: error: %sout of memory (the model or the text is too large for this machine)\n",
                 cmd.c_str(), rank_prefix(cluster).c_str());
    cluster.abort_job(1);
    return 1;
  } catch (const UsageError& e) {  // the same on every rank (the same flags): rank 0 says it
    if (cluster.root()) std::fprintf(stderr, "char_rnn %s: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    // Under MPI: this rank failed; the others would wait for it forever. End the job.
    std::fprintf(stderr, "char_rnn %s: error: %s%s\n", cmd.c_str(), rank_prefix(cluster).c_str(), e.what());
    cluster.abort_job(1);
    return 1;
  }
}
