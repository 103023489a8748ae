// Unit tests of char_rnn's own parts that a hostile or careless input reaches: the UTF-8
// reader (strict: whatever trains can be saved) and the checkpoint reader (every number from
// a file checked, strictly parsed and against what the file holds, before a model is built).
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "model.hpp"
#include "text.hpp"

namespace char_rnn {
namespace {

namespace fs = std::filesystem;

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Utf8, StrictAsTheJsonWriter) {
  // Valid: ASCII, 2, 3 and 4 bytes at the edges of their ranges.
  for (const char* ok : {"a", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80",
                         "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "\xF0\x9F\x98\x80"})
    EXPECT_EQ(utf8_chars(ok).size(), 1u) << ok;
  struct Bad {
    std::string text;
    std::size_t at;
  };
  const std::vector<Bad> bad = {{"ab\xC0\xAF", 2},         // overlong '/'
                                {"\xC1\xBF", 0},           // overlong
                                {"\xE0\x9F\xBF", 0},       // overlong below U+0800
                                {"x\xED\xA0\x80", 1},      // surrogate U+D800
                                {"\xED\xBF\xBF", 0},       // surrogate U+DFFF
                                {"\xF0\x8F\xBF\xBF", 0},   // overlong below U+10000
                                {"\xF4\x90\x80\x80", 0},   // U+110000
                                {"\xF7\xBF\xBF\xBF", 0},   // F7 lead
                                {"\xF8\x88\x80\x80\x80", 0},
                                {"\xFF", 0},
                                {"abc\x80", 3},            // stray continuation
                                {"\xE2\x82", 0},           // truncated
                                {"\xE2\x28\xA1", 0}};      // bad continuation
  for (auto& b : bad) {
    const std::string err = error_of([&] { utf8_chars(b.text); });
    EXPECT_NE(err.find("not valid UTF-8 (byte " + std::to_string(b.at) + ","), std::string::npos)
        << err;
    // Whatever utf8_chars accepts, the JSON writer that saves the vocabulary accepts too.
  }
  for (int a = 0; a < 256; ++a)
    for (int b = 0x80; b < 0xC0; b += 7) {
      const std::string s{static_cast<char>(a), static_cast<char>(b), '\x80', '\x80'};
      bool ours = true, json = true;
      try {
        utf8_chars(s);
      } catch (const std::runtime_error&) {
        ours = false;
      }
      try {
        (void)nlohmann::json(s).dump();
      } catch (const nlohmann::json::exception&) {
        json = false;
      }
      EXPECT_EQ(ours, json) << std::hex << a << " " << b;
    }
}

class Files : public ::testing::Test {
 protected:
  Files() : dir_(fs::temp_directory_path() / ("char_rnn_test_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
  }
  ~Files() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // A small valid model, saved; returns its path.
  std::string saved_model(const std::string& name, std::map<std::string, std::string> change = {}) {
    Hyper h;
    h.rnn_size = 8;
    h.num_layers = 1;
    h.embedding_size = 4;
    CharModel m(h, Vocab::of({"a", "b", "c"}), 1);
    auto meta = m.metadata();
    for (auto& [k, v] : change) meta[k] = v;
    recur::save_model(path(name), m.parameters(), meta);
    return path(name);
  }
  fs::path dir_;
};

TEST_F(Files, AValidModelLoads) {
  auto m = CharModel::load(saved_model("ok.safetensors"));
  EXPECT_EQ(m->hyper().rnn_size, 8);
  EXPECT_EQ(m->vocab().size(), 3);
}

// Metadata alone (no tensors) describing a huge model: refused from the numbers, before the
// model is built (it was built and initialised, and the process OOM-killed).
TEST_F(Files, MetadataCannotMakeItAllocateMoreThanTheFileHolds) {
  recur::safetensors::save<float>(path("bomb.safetensors"), {},
                                  {{"model", "lstm"}, {"rnn_size", "16384"}, {"num_layers", "64"},
                                   {"embedding_size", "64"}, {"dropout", "0"}, {"vocab", "[\"a\",\"b\"]"}});
  EXPECT_LT(fs::file_size(path("bomb.safetensors")), 400u);
  const std::string err = error_of([&] { CharModel::load(path("bomb.safetensors")); });
  EXPECT_NE(err.find("describes a lstm of 64 x 16384 with"), std::string::npos) << err;
  EXPECT_NE(err.find("but the file holds 0 values"), std::string::npos) << err;
}

TEST_F(Files, EveryMetadataNumberIsStrictAndInRange) {
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"rnn_size", "8abc", "is not a whole number"},    {"rnn_size", "65537", "outside [1, 65536]"},
      {"num_layers", "0", "outside [1, 64]"},           {"num_layers", "1.0", "is not a whole number"},
      {"embedding_size", " 4", "is not a whole number"}, {"dropout", "0.5x", "is not a number"},
      {"dropout", "1", "outside [0, 1)"},               {"model", "transformer", "unknown model"},
      {"vocab", "[\"ab\"]", "is not one character"},     {"vocab", "[]", "0 characters"},
      {"vocab", "{", "bad vocabulary"},                  {"rnn_size", "16", "describes a lstm of 1 x 16"}};
  for (auto& [key, value, want] : cases) {
    const std::string err = error_of([&] { CharModel::load(saved_model("m.safetensors", {{key, value}})); });
    EXPECT_NE(err.find(want), std::string::npos) << key << "=" << value << ": " << err;
  }
}

TEST_F(Files, NonFiniteWeightsAreRefused) {
  Hyper h;
  h.rnn_size = 8;
  h.num_layers = 1;
  h.embedding_size = 4;
  CharModel m(h, Vocab::of({"a", "b"}), 1);
  m.parameters()[3].value(2, 0) = std::numeric_limits<float>::quiet_NaN();
  m.save(path("nan.safetensors"));
  const std::string err = error_of([&] { CharModel::load(path("nan.safetensors")); });
  EXPECT_NE(err.find("non-finite value"), std::string::npos) << err;
  EXPECT_NE(err.find(m.parameters()[3].name), std::string::npos) << err;
}

TEST_F(Files, ADirectoryIsNotACheckpoint) {
  EXPECT_NE(error_of([&] { CharModel::load(dir_.string()); }).find("is a directory"), std::string::npos);
}

}  // namespace
}  // namespace char_rnn
