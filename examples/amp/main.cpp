// amp: learn an audio effect from a recording of it, then play it in real time.
//
//   amp train [--input clean.wav --target processed.wav] [--model lstm|gru --hidden 16 ...]
//   amp process --checkpoint amp_checkpoints/model.safetensors in.wav out.wav
//   amp synth --out-dir DIR          # the built-in training audio as WAV files
//
// Training: a small LSTM/GRU + Linear head with the input added back (model.hpp) learns to
// map the clean signal to the processed one. Each iteration takes a batch of random segments
// of the training part of the audio, runs a warm-up stretch to settle the state (no
// gradients), then truncated BPTT over consecutive chunks with the state carried, one Adam
// step per chunk. The loss is the error-to-signal ratio with a first-order pre-emphasis
// filter, the amp modellers' loss (Wright et al. 2019):
//   p(v)[t] = v[t] - a v[t-1],  ESR = sum (p(y^) - p(y))^2 / sum p(y)^2.
// The last part of the audio is held out; its ESR is measured every few seconds with the
// streaming engine (recur::Stream's block API, exactly what `amp process` runs) and the best
// model is kept in the checkpoint folder, with log.csv and loss.svg.
// Without --input/--target, amp synthesises its training audio (synth.hpp).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include <unistd.h>

#include "amp/audio.hpp"
#include "amp/model.hpp"
#include "amp/synth.hpp"
#include "common/cli.hpp"
#include "common/training_log.hpp"

namespace amp {
using namespace recur_examples;  // Flags, UsageError, exact, TrainingLog
using recur::Index;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The pair to learn from: input and target, same rate and length.
struct Pair {
  Audio input, target;
};

Pair load_pair(const std::string& input, const std::string& target) {
  Pair p{read_wav(input), read_wav(target)};
  if (p.input.sample_rate != p.target.sample_rate)
    throw AudioError(input + " is " + std::to_string(p.input.sample_rate) + " Hz but " + target +
                     " is " + std::to_string(p.target.sample_rate) + " Hz; both must have the same rate");
  if (p.input.samples.size() != p.target.samples.size())
    throw AudioError(input + " has " + std::to_string(p.input.samples.size()) + " samples but " +
                     target + " has " + std::to_string(p.target.samples.size()) +
                     "; they must be the same recording, sample for sample");
  return p;
}

Pair synthesised(double seconds, int rate, std::uint64_t seed) {
  Pair p;
  p.input.sample_rate = p.target.sample_rate = rate;
  p.input.samples = plucked_notes(seconds, rate, seed);
  p.target.samples = Drive{}(p.input.samples, rate);
  return p;
}

// Error-to-signal ratio with pre-emphasis over y[from, n) (prediction yp, target y).
double esr(const float* yp, const float* y, std::size_t n, std::size_t from, double a) {
  double num = 0, den = 0;
  for (std::size_t t = std::max<std::size_t>(from, 1); t < n; ++t) {
    const double py = y[t] - a * y[t - 1], pp = yp[t] - a * yp[t - 1];
    num += (pp - py) * (pp - py);
    den += py * py;
  }
  return num / std::max(den, 1e-20);
}

// The model over a whole signal, streamed in blocks (the real-time engine), input added back.
template <class Rnn>
std::vector<float> run(Rnn& rnn, recur::Linear<T>& head, const float* x, std::size_t n, Index block) {
  recur::Stream<Rnn> stream(rnn, head, 1, block);
  std::vector<float> y(n);
  for (std::size_t t = 0; t < n; t += static_cast<std::size_t>(block)) {
    const Index m = static_cast<Index>(std::min<std::size_t>(static_cast<std::size_t>(block), n - t));
    stream.process(x + t, m, y.data() + t);
  }
  for (std::size_t t = 0; t < n; ++t) y[t] += x[t];
  return y;
}

struct TrainOptions {
  std::string input, target, model = "lstm", checkpoint_dir = "amp_checkpoints";
  std::int64_t hidden = 16, batch = 16, chunk = 1024, chunks = 4, warmup = 1000, seed = 1;
  std::int64_t threads = 1, max_steps = 0, eval_every_steps = 0;
  double max_seconds = 180, lr = 5e-3, val_fraction = 0.2, pre_emphasis = 0.95, grad_clip = 1.0;
  double eval_every = 10, synth_seconds = 60;
  bool quiet = false;
};

bool parse_train(int argc, char** argv, TrainOptions& o) {
  Flags f("usage: amp train [--input clean.wav --target processed.wav] [options]\n\n"
          "Learns the effect that turns --input into --target (mono WAV files of the same rate\n"
          "and length; without them, synthesised plucked strings through a drive pedal).");
  f.add("input", &o.input, "the clean (dry) recording")
      .add("target", &o.target, "the same recording through the effect")
      .add("model", &o.model, "lstm or gru")
      .add("hidden", &o.hidden, "hidden units")
      .add("max-seconds", &o.max_seconds, "training time")
      .add("max-steps", &o.max_steps, "stop after this many optimizer steps (0: no limit)")
      .add("checkpoint-dir", &o.checkpoint_dir, "folder for model.safetensors (the best), log.csv, loss.svg")
      .add("batch-size", &o.batch, "segments per iteration")
      .add("chunk", &o.chunk, "samples per truncated-BPTT chunk (one optimizer step each)")
      .add("chunks", &o.chunks, "chunks per segment, the state carried between them")
      .add("warmup", &o.warmup, "samples run before a segment's first chunk, to settle the state")
      .add("learning-rate", &o.lr, "Adam's learning rate")
      .add("grad-clip", &o.grad_clip, "gradient norm clip (0: off)")
      .add("val-fraction", &o.val_fraction, "the held-out end of the audio")
      .add("pre-emphasis", &o.pre_emphasis, "the loss filter's coefficient a in y[t] - a y[t-1]")
      .add("eval-every", &o.eval_every, "seconds between validations")
      .add("eval-every-steps", &o.eval_every_steps, "also validate every this many steps (0: off)")
      .add("synth-seconds", &o.synth_seconds, "length of the built-in audio")
      .add("seed", &o.seed, "initial weights, segments and built-in audio")
      .add("threads", &o.threads, "threads (the model is small: 1 is usually fastest)")
      .add("quiet", &o.quiet, "no progress line");
  if (!f.parse(argc, argv, 2)) {
    std::printf("%s", f.help().c_str());
    return false;
  }
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw UsageError(what);
  };
  need(o.input.empty() == o.target.empty(), "--input and --target go together");
  need(o.hidden >= 1 && o.hidden <= 1024, "--hidden must be in [1, 1024]");
  need(o.batch >= 1 && o.batch <= 4096, "--batch-size must be in [1, 4096]");
  need(o.chunk >= 2 && o.chunk <= (1 << 20), "--chunk must be in [2, 2^20]");
  need(o.chunks >= 1 && o.chunks <= 1024, "--chunks must be in [1, 1024]");
  need(o.warmup >= 0 && o.warmup <= (1 << 20), "--warmup must be in [0, 2^20]");
  need(o.max_seconds > 0 && std::isfinite(o.max_seconds), "--max-seconds must be positive");
  need(o.max_steps >= 0, "--max-steps must be >= 0");
  need(o.eval_every_steps >= 0, "--eval-every-steps must be >= 0");
  need(o.lr > 0 && std::isfinite(o.lr), "--learning-rate must be positive");
  need(o.grad_clip >= 0 && std::isfinite(o.grad_clip), "--grad-clip must be >= 0");
  need(o.val_fraction > 0 && o.val_fraction < 1, "--val-fraction must be in (0, 1)");
  need(o.pre_emphasis >= 0 && o.pre_emphasis < 1, "--pre-emphasis must be in [0, 1)");
  need(o.eval_every > 0 && std::isfinite(o.eval_every), "--eval-every must be positive");
  need(o.synth_seconds >= 1 && o.synth_seconds <= 3600, "--synth-seconds must be in [1, 3600]");
  need(o.threads >= 1 && o.threads <= 256, "--threads must be in [1, 256]");
  if (o.model != "lstm" && o.model != "gru") throw UsageError("--model: '" + o.model + "' is not lstm or gru");
  return true;
}

int train(int argc, char** argv) {
  TrainOptions o;
  if (!parse_train(argc, argv, o)) return 0;
  recur::set_num_threads(static_cast<int>(o.threads));
  Eigen::setNbThreads(static_cast<int>(o.threads));
  const Pair data = o.input.empty() ? synthesised(o.synth_seconds, 48000, static_cast<std::uint64_t>(o.seed))
                                    : load_pair(o.input, o.target);
  const std::size_t n = data.input.samples.size();
  const auto n_val = static_cast<std::size_t>(static_cast<double>(n) * o.val_fraction);
  const std::size_t n_train = n - n_val;
  const auto segment = static_cast<std::size_t>(o.warmup + o.chunk * o.chunks);
  if (n_train < segment + 1 || n_val <= static_cast<std::size_t>(o.warmup) + 1)
    throw AudioError("the audio has " + std::to_string(n) + " samples: too short for a training part of " +
                     "one segment (--warmup + --chunk x --chunks = " + std::to_string(segment) +
                     ") and a held-out part longer than --warmup (--val-fraction " +
                     std::to_string(o.val_fraction) + ")");
  std::filesystem::create_directories(o.checkpoint_dir);
  const std::string model_path = o.checkpoint_dir + "/model.safetensors";
  std::printf("amp: %s of %lld units, %.1f s of audio at %d Hz (%s), %.1f s held out\n",
              o.model.c_str(), static_cast<long long>(o.hidden), static_cast<double>(n) / data.input.sample_rate,
              data.input.sample_rate, o.input.empty() ? "built-in: plucked strings through a drive pedal" : o.input.c_str(),
              static_cast<double>(n_val) / data.input.sample_rate);

  AmpModel model(o.model, o.hidden, static_cast<std::uint64_t>(o.seed));
  auto params = model.parameters();
  recur::AdamOptions ao;
  ao.lr = o.lr;
  recur::Adam<T> adam(params, ao);
  std::mt19937_64 rng(static_cast<std::uint64_t>(o.seed) * 7919 + 1);
  std::uniform_int_distribution<std::size_t> pick(1, n_train - segment);
  const Index B = o.batch, K = o.chunk, W = o.warmup;
  const double a = o.pre_emphasis;
  const float* x_all = data.input.samples.data();
  const float* y_all = data.target.samples.data();
  const float* x_val = x_all + n_train;
  const float* y_val = y_all + n_train;

  auto validate = [&] {
    return std::visit(
        [&](auto& rnn) {
          const auto yp = run(rnn, model.head(), x_val, n_val, 4096);
          return esr(yp.data(), y_val, n_val, static_cast<std::size_t>(W), a);
        },
        model.rnn());
  };
  TrainingLog log("amp: error-to-signal ratio (pre-emphasis " + exact(a).substr(0, 4) + ")");
  double best = validate(), smooth = std::nan("");
  std::printf("amp: validation ESR before training %.4f\n", best);
  model.save(model_path, {{"sample_rate", std::to_string(data.input.sample_rate)}, {"val_esr", exact(best)}});
  log.add({0, 0.0, std::nan(""), best});

  recur::Tensor3<T> x(B, K, 1), y(B, K, 1), xw(B, std::max<Index>(W, 1), 1);
  std::vector<std::size_t> starts(static_cast<std::size_t>(B));
  std::vector<double> prev_p(static_cast<std::size_t>(B)), prev_y(static_cast<std::size_t>(B));
  std::vector<double> e(static_cast<std::size_t>(K + 1));
  const auto t0 = Clock::now();
  auto next_eval = o.eval_every;
  std::int64_t next_eval_step = o.eval_every_steps;
  std::int64_t step = 0;
  double last_progress = -1;
  while (true) {
    for (auto& s : starts) s = pick(rng);
    std::visit(
        [&](auto& rnn) {
          // Warm-up: the state from W samples before the first chunk, no gradients.
          recur::State<T> state;
          if (W > 0) {
            for (Index b = 0; b < B; ++b)
              for (Index t = 0; t < W; ++t) xw(b, t, 0) = x_all[starts[static_cast<std::size_t>(b)] + static_cast<std::size_t>(t)];
            rnn.eval();
            state = rnn.forward(xw).state;
            rnn.train();
          }
          for (Index b = 0; b < B; ++b) {
            const std::size_t s = starts[static_cast<std::size_t>(b)] + static_cast<std::size_t>(W);
            prev_p[static_cast<std::size_t>(b)] = prev_y[static_cast<std::size_t>(b)] = y_all[s - 1];
          }
          for (Index c = 0; c < o.chunks; ++c) {
            for (Index b = 0; b < B; ++b) {
              const std::size_t s = starts[static_cast<std::size_t>(b)] + static_cast<std::size_t>(W + c * K);
              for (Index t = 0; t < K; ++t) {
                x(b, t, 0) = x_all[s + static_cast<std::size_t>(t)];
                y(b, t, 0) = y_all[s + static_cast<std::size_t>(t)];
              }
            }
            auto out = rnn.forward(x, state);
            state = out.state;
            recur::Tensor3<T> z = model.head().forward(out.output);  // [B, K, 1]
            // ESR with pre-emphasis over the chunk, and its gradient with respect to y^ = x + z.
            double num = 0, den = 0;
            recur::Tensor3<T> dz(B, K, 1);
            std::vector<double> es(static_cast<std::size_t>(B * K));
            for (Index b = 0; b < B; ++b) {
              double pp = prev_p[static_cast<std::size_t>(b)], py = prev_y[static_cast<std::size_t>(b)];
              for (Index t = 0; t < K; ++t) {
                const double yp = x(b, t, 0) + z(b, t, 0), yt = y(b, t, 0);
                const double ep = (yp - a * pp) - (yt - a * py);
                es[static_cast<std::size_t>(b * K + t)] = ep;
                num += ep * ep;
                den += (yt - a * py) * (yt - a * py);
                pp = yp;
                py = yt;
              }
              prev_p[static_cast<std::size_t>(b)] = pp;
              prev_y[static_cast<std::size_t>(b)] = py;
            }
            den = std::max(den, 1e-20);
            for (Index b = 0; b < B; ++b)
              for (Index t = 0; t < K; ++t) {
                const double next = t + 1 < K ? es[static_cast<std::size_t>(b * K + t + 1)] : 0.0;
                dz(b, t, 0) = static_cast<T>(2.0 / den * (es[static_cast<std::size_t>(b * K + t)] - a * next));
              }
            const double loss = num / den;
            adam.zero_grad();
            rnn.backward(model.head().backward(dz));
            if (o.grad_clip > 0) recur::clip_grad_norm(params, o.grad_clip);
            adam.step();
            ++step;
            if (std::isfinite(loss)) smooth = std::isnan(smooth) ? loss : 0.95 * smooth + 0.05 * loss;
          }
        },
        model.rnn());
    const double elapsed = seconds_since(t0);
    const bool done = elapsed >= o.max_seconds || (o.max_steps > 0 && step >= o.max_steps);
    const bool step_due = o.eval_every_steps > 0 && step >= next_eval_step;
    if (elapsed >= next_eval || step_due || done) {
      next_eval = elapsed + o.eval_every;
      if (step_due) next_eval_step += o.eval_every_steps;
      const double v = validate();
      const bool better = v < best;
      if (better) {
        best = v;
        model.save(model_path, {{"sample_rate", std::to_string(data.input.sample_rate)},
                                {"val_esr", exact(v)},
                                {"seconds", exact(elapsed)},
                                {"steps", std::to_string(step)}});
      }
      log.add({step, elapsed, smooth, v});
      log.write(o.checkpoint_dir);
      if (!o.quiet)
        std::printf("amp: %6.1f s  step %6lld  train ESR %.4f  validation ESR %.4f%s\n", elapsed,
                    static_cast<long long>(step), smooth, v, better ? "  (best, saved)" : "");
      std::fflush(stdout);
    } else if (!o.quiet && elapsed - last_progress >= 2 && ::isatty(2)) {
      last_progress = elapsed;
      std::fprintf(stderr, "\ramp: %6.1f s  step %6lld  train ESR %.4f\033[K\r", elapsed,
                   static_cast<long long>(step), smooth);
    }
    if (done) break;
  }
  std::printf("amp: best validation ESR %.4f after %.0f s; model in %s\n", best, seconds_since(t0),
              model_path.c_str());
  return 0;
}

int process(int argc, char** argv) {
  std::string checkpoint, target;
  std::int64_t block = 512;
  Flags f("usage: amp process --checkpoint FILE in.wav out.wav [options]\n\n"
          "Runs a trained model over a recording, block by block as an audio callback would,\n"
          "writes the result (32-bit float WAV) and prints the speed as a multiple of real time.");
  f.add("checkpoint", &checkpoint, "a model from amp train (or a PyTorch state_dict of the same module)")
      .add("block", &block, "samples per call (an audio callback's buffer)")
      .add("target", &target, "also print the ESR against this recording of the real effect");
  std::vector<char*> args;  // the flags (each takes a value), apart from the two file names
  std::vector<std::string> files;
  for (int i = 2; i < argc; ++i) {
    const std::string s = argv[i];
    if (s.rfind("--", 0) == 0 || s == "-h") {
      args.push_back(argv[i]);
      if (s.find('=') == std::string::npos && s != "--help" && s != "-h" && i + 1 < argc) args.push_back(argv[++i]);
    } else {
      files.push_back(s);
    }
  }
  std::vector<char*> fargv{argv[0], argv[1]};
  fargv.insert(fargv.end(), args.begin(), args.end());
  if (!f.parse(static_cast<int>(fargv.size()), fargv.data(), 2)) {
    std::printf("%s", f.help().c_str());
    return 0;
  }
  if (checkpoint.empty()) throw UsageError("--checkpoint is required");
  if (files.size() != 2) throw UsageError("needs an input and an output file: amp process --checkpoint FILE in.wav out.wav");
  if (block < 1 || block > (1 << 20)) throw UsageError("--block must be in [1, 2^20]");
  std::map<std::string, std::string> meta;
  AmpModel model = AmpModel::load(checkpoint, &meta);
  const Audio in = read_wav(files[0]);
  if (meta.count("sample_rate") && meta.at("sample_rate") != std::to_string(in.sample_rate))
    throw AudioError(files[0] + " is " + std::to_string(in.sample_rate) + " Hz but the model was trained at " +
                     meta.at("sample_rate") + " Hz");
  const std::size_t n = in.samples.size();
  const auto t0 = Clock::now();
  const auto out = std::visit([&](auto& rnn) { return run(rnn, model.head(), in.samples.data(), n, block); },
                              model.rnn());
  const double secs = seconds_since(t0), audio = static_cast<double>(n) / in.sample_rate;
  write_wav(files[1], out, in.sample_rate);
  std::printf("amp: %s (%s, %lld units): %.2f s of audio in %.3f s, %.0fx real time (blocks of %lld)\n",
              files[1].c_str(), model.kind().c_str(), static_cast<long long>(model.hidden_size()), audio,
              secs, audio / std::max(secs, 1e-9), static_cast<long long>(block));
  if (!target.empty()) {
    const Audio t = read_wav(target);
    if (t.samples.size() != n || t.sample_rate != in.sample_rate)
      throw AudioError(target + " is not the same length and rate as " + files[0]);
    std::printf("amp: ESR against %s: %.4f (pre-emphasis 0.95), %.4f (plain)\n", target.c_str(),
                esr(out.data(), t.samples.data(), n, 0, 0.95), esr(out.data(), t.samples.data(), n, 0, 0.0));
  }
  return 0;
}

int synth(int argc, char** argv) {
  std::string dir = ".";
  double seconds = 60;
  std::int64_t seed = 1, rate = 48000;
  Flags f("usage: amp synth [--out-dir DIR]\n\nWrites the built-in training audio: DIR/clean.wav "
          "(plucked strings) and DIR/processed.wav (through the drive pedal).");
  f.add("out-dir", &dir, "folder").add("seconds", &seconds, "length").add("seed", &seed, "notes")
      .add("rate", &rate, "sample rate");
  if (!f.parse(argc, argv, 2)) {
    std::printf("%s", f.help().c_str());
    return 0;
  }
  if (!(seconds >= 0.01 && seconds <= 3600)) throw UsageError("--seconds must be in [0.01, 3600]");
  if (rate < 8000 || rate > 384000) throw UsageError("--rate must be in [8000, 384000]");
  std::filesystem::create_directories(dir);
  const Pair p = synthesised(seconds, static_cast<int>(rate), static_cast<std::uint64_t>(seed));
  write_wav(dir + "/clean.wav", p.input.samples, p.input.sample_rate);
  write_wav(dir + "/processed.wav", p.target.samples, p.target.sample_rate);
  std::printf("amp: wrote %s/clean.wav and %s/processed.wav (%.1f s at %lld Hz)\n", dir.c_str(), dir.c_str(),
              seconds, static_cast<long long>(rate));
  return 0;
}

}  // namespace amp

int main(int argc, char** argv) {
  const std::string usage =
      "usage: amp train [options]      learn an effect (default: built-in audio)\n"
      "       amp process --checkpoint FILE in.wav out.wav\n"
      "       amp synth --out-dir DIR   write the built-in audio as WAV files\n"
      "(amp COMMAND --help for the options)\n";
  try {
    const std::string cmd = argc > 1 ? argv[1] : "train";
    if (argc <= 1) {
      char* args[] = {argv[0], const_cast<char*>("train")};
      return amp::train(2, args);
    }
    if (cmd == "train") return amp::train(argc, argv);
    if (cmd == "process") return amp::process(argc, argv);
    if (cmd == "synth") return amp::synth(argc, argv);
    if (cmd == "--help" || cmd == "-h") {
      std::printf("%s", usage.c_str());
      return 0;
    }
    std::fprintf(stderr, "amp: unknown command '%s' (amp --help lists them)\n", cmd.c_str());
    return 2;
  } catch (const recur_examples::UsageError& e) {
    std::fprintf(stderr, "amp: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "amp: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "amp: %s\n", e.what());
    return 1;
  }
}
