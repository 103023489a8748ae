// safetensors checkpoints: every seed/corrupt file of fuzz/corpus/safetensors gives its
// expected result, files written by an independent writer (fuzz/make_corpus.py) load, save ->
// load reproduces a model's outputs bit for bit, a resumed run ends with exactly the
// parameters of an uninterrupted one, mismatches are refused, and writes are atomic.
#include <unistd.h>

#include <recur/checkpoint.hpp>

#include "support.hpp"

namespace recur::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::uint8_t> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(f), {});
}

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("recur_ckpt_" + std::to_string(::getpid()) + "_" +
                                                 ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

TEST(Corpus, EveryCaseGivesItsExpectedResult) {
  const fs::path dir = RECUR_CORPUS_DIR;
  std::map<std::string, std::string> expected;
  std::ifstream manifest(dir / "EXPECTED");
  ASSERT_TRUE(manifest) << "missing " << (dir / "EXPECTED");
  std::string line;
  while (std::getline(manifest, line)) {
    const auto tab = line.find('\t');
    if (tab != std::string::npos) expected[line.substr(0, tab)] = line.substr(tab + 1);
  }
  EXPECT_GE(expected.size(), 30u);
  std::size_t replayed = 0;
  for (auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name == "EXPECTED") continue;
    ++replayed;
    auto it = expected.find(name);
    try {
      const auto f = safetensors::File::parse(read_bytes(e.path()), name);
      for (auto& t : f.tensors()) {  // loading whatever is floating point must work too
        std::vector<double> out(static_cast<std::size_t>(t.numel()));
        if (t.dtype == safetensors::Dtype::F32 || t.dtype == safetensors::Dtype::F64 ||
            t.dtype == safetensors::Dtype::F16 || t.dtype == safetensors::Dtype::BF16)
          f.copy_to(t, out.data());
      }
      if (it != expected.end()) {
        EXPECT_EQ(it->second, "ok") << name << " parsed but should fail";
      }
    } catch (const std::runtime_error& err) {
      if (it != expected.end()) {
        EXPECT_NE(std::string(err.what()).find(it->second), std::string::npos)
            << name << ": expected '" << it->second << "', got: " << err.what();
      }
    }
  }
  EXPECT_EQ(replayed, expected.size()) << "EXPECTED and the corpus folder disagree";
}

TEST(Safetensors, ReadsFilesOfAnIndependentWriter) {
  const fs::path dir = RECUR_CORPUS_DIR;
  std::vector<double> w(6), b(2);
  std::vector<TensorRef<double>> into{{"weight", {2, 3}, w.data()}, {"bias", {2}, b.data()}};
  auto meta = safetensors::load((dir / "valid_f32.safetensors").string(), into);
  EXPECT_EQ(w, (std::vector<double>{0.5, -1.25, 2.0, 3.5, -0.75, static_cast<float>(1e-3)}));
  EXPECT_EQ(b, (std::vector<double>{0.25, -0.5}));
  EXPECT_EQ(meta.at("format"), "pt");
  std::vector<float> wf(6), bf(2);
  std::vector<TensorRef<float>> intof{{"weight", {2, 3}, wf.data()}, {"bias", {2}, bf.data()}};
  safetensors::load((dir / "valid_f64.safetensors").string(), intof);  // F64 -> float
  EXPECT_EQ(wf[5], 1e-3f);
  const auto other = safetensors::File::read((dir / "valid_other_dtypes.safetensors").string());
  double h[2], bf16;
  other.copy_to(*other.find("h"), h);
  other.copy_to(*other.find("b"), &bf16);
  EXPECT_EQ(h[0], 1.5);
  EXPECT_EQ(h[1], -2.0);
  EXPECT_EQ(bf16, 1.0);
  double i64[2];
  EXPECT_THROW(other.copy_to(*other.find("i"), i64), std::runtime_error);
}

TEST(Safetensors, EveryTruncationOfAValidFileIsRejectedCleanly) {
  std::vector<float> v{1, 2, 3, 4, 5, 6};
  auto bytes = safetensors::serialize<float>({{"a", {2, 3}, v.data()}}, {{"k", "v"}});
  const auto full = safetensors::File::parse(bytes);
  EXPECT_EQ(full.tensors().size(), 1u);
  EXPECT_EQ(full.metadata().at("k"), "v");
  EXPECT_EQ((bytes.size() - 24) % 8, 0u) << "data section aligned to 8 bytes";
  for (std::size_t n = 0; n < bytes.size(); ++n)
    EXPECT_THROW(safetensors::File::parse(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n))),
                 std::runtime_error)
        << n << " bytes";
}

struct CharModel {
  Embedding<float> embedding;
  LSTM<float> rnn;
  Linear<float> head;
  explicit CharModel(std::uint64_t seed, double dropout = 0.0)
      : embedding(11, 6, seed), rnn(opts(6, 8, 2, false, dropout), seed + 1), head(8, 11, seed + 2) {}
  std::vector<Parameter<float>> parameters() {
    return gather(named("embedding", embedding), named("rnn", rnn), named("head", head));
  }
  Tensor3<float> logits(const Tokens& x, State<float>& state) {
    auto out = rnn.forward(embedding.forward(x), state);
    state = out.state;
    return head.forward(out.output);
  }
  void eval() {
    embedding.eval();
    rnn.eval();
    head.eval();
  }
};

Tokens random_tokens(Index B, Index S, std::mt19937_64& rng) {
  Tokens t(B, S);
  std::uniform_int_distribution<Index> u(0, 10);
  for (Index i = 0; i < t.size(); ++i) t.data()[i] = u(rng);
  return t;
}

TEST(Checkpoint, SaveThenLoadReproducesOutputsBitForBit) {
  TempDir dir;
  CharModel a(1), b(2);
  auto pa = a.parameters(), pb = b.parameters();
  std::vector<std::string> names;
  for (auto& p : pa) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0",
                       "rnn.bias_hh_l0", "rnn.weight_ih_l1", "rnn.weight_hh_l1", "rnn.bias_ih_l1",
                       "rnn.bias_hh_l1", "head.weight", "head.bias"}));
  save_model(dir / "m.safetensors", pa, {{"model", "lstm"}});
  auto meta = load_model(dir / "m.safetensors", pb);
  EXPECT_EQ(meta.at("model"), "lstm");
  std::mt19937_64 rng(5);
  Tokens x = random_tokens(3, 7, rng);
  a.eval();
  b.eval();
  State<float> sa, sb;
  auto ya = a.logits(x, sa), yb = b.logits(x, sb);
  for (Index i = 0; i < ya.size(); ++i) ASSERT_EQ(ya.data()[i], yb.data()[i]);
  // The file holds exactly the model's tensors, F32, with PyTorch's shapes.
  auto f = safetensors::File::read(dir / "m.safetensors");
  ASSERT_EQ(f.tensors().size(), pa.size());
  EXPECT_EQ(f.find("rnn.weight_ih_l0")->shape, (std::vector<std::int64_t>{32, 6}));
  EXPECT_EQ(f.find("head.bias")->dtype, safetensors::Dtype::F32);
  EXPECT_EQ(dir.files(), std::vector<std::string>{"m.safetensors"}) << "no temporary file left";
}

TEST(Checkpoint, MismatchesAreRefusedAndLeaveTheModelUntouched) {
  TempDir dir;
  CharModel a(1);
  save_model(dir / "m.safetensors", a.parameters());
  auto expect_error = [&](auto params, const std::string& what) {
    std::vector<std::vector<float>> before;
    for (auto& p : params) before.emplace_back(p.value.data(), p.value.data() + p.value.size());
    try {
      load_model(dir / "m.safetensors", params);
      ADD_FAILURE() << "loaded; expected " << what;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
    for (std::size_t i = 0; i < params.size(); ++i)
      EXPECT_TRUE(std::equal(before[i].begin(), before[i].end(), params[i].value.data()));
  };
  Embedding<float> e(11, 6);
  LSTM<float> rnn(opts(6, 8, 2));
  LSTM<float> wide(opts(6, 9, 2));
  GRU<float> gru(opts(6, 8, 2));
  Linear<float> head(8, 11);
  expect_error(gather(named("embedding", e), named("rnn", rnn)), "unexpected 'head.weight', 'head.bias'");
  expect_error(gather(named("embedding", e), named("rnn", rnn), named("head", head), named("extra", head)),
               "missing 'extra.weight', 'extra.bias'");
  expect_error(gather(named("embedding", e), named("rnn", wide), named("head", head)),
               "tensor 'rnn.weight_ih_l0' is [32, 6] in the file but [36, 6] in the model");
  expect_error(gather(named("embedding", e), named("rnn", gru), named("head", head)), "[32, 6] in the file but [24, 6]");
  EXPECT_THROW(load_model(dir / "absent.safetensors", a.parameters()), std::runtime_error);
}

// Training with dropout, Adam, clipping and carried state: 6 steps in one run == 3 steps,
// checkpoint (model + optimizer + generator states), fresh objects, load, 3 more steps.
TEST(Checkpoint, ResumedTrainingEndsWithExactlyTheParametersOfAnUninterruptedRun) {
  TempDir dir;
  auto train = [&](CharModel& m, Adam<float>& opt, std::mt19937_64& data, int steps) {
    auto params = m.parameters();
    for (int s = 0; s < steps; ++s) {
      Tokens x = random_tokens(4, 5, data), y = random_tokens(4, 5, data);
      opt.zero_grad();
      State<float> st;
      auto r = cross_entropy(m.logits(x, st), y);
      m.embedding.backward(m.rnn.backward(m.head.backward(r.d_logits)).input);
      clip_grad_norm(params, 0.5);
      opt.step();
    }
  };
  CharModel straight(7, 0.3);
  Adam<float> opt_straight(straight.parameters(), {0.01});
  std::mt19937_64 data_straight(3);
  train(straight, opt_straight, data_straight, 6);

  std::string data_state;
  {
    CharModel first(7, 0.3);
    Adam<float> opt(first.parameters(), {0.01});
    std::mt19937_64 data(3);
    train(first, opt, data, 3);
    save_model(dir / "m.safetensors", first.parameters());
    save_optimizer(dir / "m.optim.safetensors", opt,
                   {{"dropout_rng", first.rnn.rng_state()}, {"data_rng", detail::rng_state(data)}});
  }
  CharModel resumed(99, 0.3);  // different initialisation: everything must come from the files
  Adam<float> opt(resumed.parameters(), {0.5});
  load_model(dir / "m.safetensors", resumed.parameters());
  auto meta = load_optimizer(dir / "m.optim.safetensors", opt);
  EXPECT_EQ(opt.steps(), 3);
  EXPECT_EQ(opt.lr(), 0.01);
  resumed.rnn.set_rng_state(meta.at("dropout_rng"));
  std::mt19937_64 data;
  detail::set_rng_state(data, meta.at("data_rng"));
  train(resumed, opt, data, 3);

  auto a = straight.parameters(), b = resumed.parameters();
  for (std::size_t i = 0; i < a.size(); ++i)
    for (Index k = 0; k < a[i].value.size(); ++k)
      ASSERT_EQ(a[i].value.data()[k], b[i].value.data()[k]) << a[i].name << "[" << k << "]";
}

TEST(Checkpoint, OptimizerFileMustMatchTheOptimizer) {
  TempDir dir;
  CharModel m(1);
  Adam<float> adam(m.parameters(), {0.01});
  save_optimizer(dir / "o.safetensors", adam);
  auto f = safetensors::File::read(dir / "o.safetensors");
  EXPECT_EQ(f.metadata().at("optimizer"), "adam");
  EXPECT_NE(f.find("rnn.weight_hh_l1.exp_avg_sq"), nullptr);
  RMSprop<float> rms(m.parameters());
  EXPECT_THROW(load_optimizer(dir / "o.safetensors", rms), std::runtime_error);
  Adam<float> other_betas(m.parameters(), {0.01, 0.8});
  try {
    load_optimizer(dir / "o.safetensors", other_betas);
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("beta1 = 0.90000000000000002"), std::string::npos) << e.what();
  }
  Adam<float> amsgrad(m.parameters(), {0.01, 0.9, 0.999, 1e-8, 0, true});
  EXPECT_THROW(load_optimizer(dir / "o.safetensors", amsgrad), std::runtime_error);
  EXPECT_THROW(load_optimizer(dir / "absent", adam), std::runtime_error);
  save_model(dir / "model.safetensors", m.parameters());
  EXPECT_THROW(load_optimizer(dir / "model.safetensors", adam), std::runtime_error);
}

TEST(Checkpoint, WritesAreAtomic) {
  TempDir dir;
  std::vector<double> v{1, 2, 3}, w{4, 5, 6};
  const std::string path = dir / "c.safetensors";
  safetensors::save<double>(path, {{"v", {3}, v.data()}});
  // Overwriting replaces the whole file.
  safetensors::save<double>(path, {{"v", {3}, w.data()}});
  std::vector<double> back(3);
  safetensors::load<double>(path, {{"v", {3}, back.data()}});
  EXPECT_EQ(back, w);
  // A write that cannot complete leaves the previous file (or nothing) and no temporary file.
  fs::create_directories(dir / "taken");
  EXPECT_THROW(safetensors::save<double>(dir / "taken", {{"v", {3}, v.data()}}), std::runtime_error);
  EXPECT_TRUE(fs::is_directory(dir / "taken"));
  EXPECT_THROW(safetensors::save<double>(dir / "no/such/folder/c.safetensors", {{"v", {3}, v.data()}}),
               std::runtime_error);
  EXPECT_EQ(dir.files(), (std::vector<std::string>{"c.safetensors", "taken"}));
  safetensors::load<double>(path, {{"v", {3}, back.data()}});
  EXPECT_EQ(back, w);
  EXPECT_THROW(safetensors::save<double>(path, {{"v", {3}, v.data()}, {"v", {3}, w.data()}}),
               std::invalid_argument);
}

// A training checkpoint is one unit: the model file names its training state and both carry
// one stamp; resuming restores exactly what was saved; a pair of different saves, a missing
// state or a weights-only file are told apart; saving again removes the old state file; and
// what an interrupted save leaves is cleared without touching the pairs.
TEST(Checkpoint, ModelAndTrainingStateAreOneUnit) {
  TempDir dir;
  CharModel m(5);
  Adam<float> opt(m.parameters(), {0.01});
  std::vector<float> carried(6, 0.5f);
  const std::vector<TensorRef<float>> extra{{"carried", {2, 3}, carried.data()}};
  auto step = [&] {
    std::mt19937_64 data(opt.steps());
    Tokens x = random_tokens(4, 5, data), y = random_tokens(4, 5, data);
    opt.zero_grad();
    State<float> st;
    auto r = cross_entropy(m.logits(x, st), y);
    m.embedding.backward(m.rnn.backward(m.head.backward(r.d_logits)).input);
    opt.step();
  };
  step();
  const std::string path = dir / "m.safetensors";
  const std::string first_state = save_checkpoint(path, m.parameters(), opt, {{"k", "v"}}, {{"it", "1"}}, extra);
  EXPECT_EQ(dir.files().size(), 2u);
  const std::string kept = dir / "kept";
  fs::copy_file(first_state, kept);
  step();
  carried[0] = 2.f;
  const std::string second_state = save_checkpoint(path, m.parameters(), opt, {{"k", "v"}}, {{"it", "2"}}, extra);
  EXPECT_NE(first_state, second_state);
  EXPECT_FALSE(fs::exists(first_state)) << "the previous save's state was not removed";
  EXPECT_EQ(safetensors::File::read(path, false).metadata().at("k"), "v");

  // Resume: exactly the second save.
  CharModel back(9);
  Adam<float> opt_back(back.parameters(), {0.3});
  std::vector<float> carried_back(6, 0.f);
  load_model(path, back.parameters());
  auto meta = load_training_state<float>(path, opt_back, {{"carried", {2, 3}, carried_back.data()}});
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->at("it"), "2");
  EXPECT_EQ(opt_back.steps(), 2);
  EXPECT_EQ(carried_back, carried);

  // The first save's state under the second's name: another save, refused before restoring.
  fs::copy_file(second_state, dir / "second", fs::copy_options::overwrite_existing);
  fs::copy_file(kept, second_state, fs::copy_options::overwrite_existing);
  Adam<float> opt3(back.parameters(), {0.3});
  const std::vector<TensorRef<float>> extra3{{"carried", {2, 3}, carried_back.data()}};
  try {
    load_training_state(path, opt3, extra3);
    ADD_FAILURE() << "a mixed pair was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("are from different saves"), std::string::npos) << e.what();
  }
  EXPECT_EQ(opt3.steps(), 0);
  // Missing: refused, naming it.
  fs::remove(second_state);
  try {
    load_training_state(path, opt3, extra3);
    ADD_FAILURE() << "a missing state was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is missing"), std::string::npos) << e.what();
  }
  fs::copy_file(dir / "second", second_state);
  // A model file without a training state: weights only.
  save_model(dir / "plain.safetensors", m.parameters());
  EXPECT_FALSE(load_training_state(dir / "plain.safetensors", opt3));

  // What interrupted saves leave: a temporary file and an unreferenced state; the pair stays.
  // Files that look alike but are not a stamped state are never removed (a state file of the
  // old naming, a user's file).
  std::ofstream(dir / "best.optim.safetensors") << "old naming";
  std::ofstream(dir / "model-2024-01-01-abcdef0123456789.optim.safetensors") << "a user's";
  std::ofstream(dir / "x.s12-0123456789abcdeg.optim.safetensors") << "not hex";
  std::ofstream(dir / "m.safetensors.tmp.AbC123") << "partial";
  std::ofstream(dir / "log.csv.tmp.x1y2z3") << "partial";
  fs::copy_file(kept, dir / "m.s9-0123456789abcdef.optim.safetensors");
  auto removed = remove_stale_checkpoint_files(dir / "");
  std::sort(removed.begin(), removed.end());
  EXPECT_EQ(removed, (std::vector<std::string>{"log.csv.tmp.x1y2z3", "m.s9-0123456789abcdef.optim.safetensors",
                                               "m.safetensors.tmp.AbC123"}));
  EXPECT_TRUE(fs::exists(second_state));
  EXPECT_TRUE(fs::exists(dir / "best.optim.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "model-2024-01-01-abcdef0123456789.optim.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "x.s12-0123456789abcdeg.optim.safetensors"));
  EXPECT_TRUE(load_training_state(path, opt3, extra3));
  EXPECT_TRUE(remove_stale_checkpoint_files(dir / "").empty());
}

// A failed model write keeps the previous pair intact and leaves no new state file.
TEST(Checkpoint, AFailedSaveKeepsThePreviousPair) {
  TempDir dir;
  CharModel m(5);
  Adam<float> opt(m.parameters(), {0.01});
  const std::string path = dir / "m.safetensors";
  const std::string state = save_checkpoint(path, m.parameters(), opt);
  const auto before = dir.files();
  // Metadata the writer refuses: the state file is written first, then removed again.
  EXPECT_THROW(save_checkpoint(path, m.parameters(), opt, {{"bad", std::string("\xC0\xAF")}}),
               std::invalid_argument);
  EXPECT_EQ(dir.files(), before);
  EXPECT_TRUE(load_training_state(path, opt));
}

}  // namespace
}  // namespace recur::test
