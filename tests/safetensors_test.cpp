// The safetensors reader as a hostile file would test it: the tensors must cover the data
// section exactly (as the reference implementation), sizes are checked against the file
// before anything is allocated (a 2 GB file with a bad header costs nothing; a big header
// costs memory in proportion to its tensors, counted here by a replaced operator new), a
// directory is refused, non-finite values are refused unless allowed, and metadata numbers
// are parsed strictly.
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include <recur/checkpoint.hpp>

#include "support.hpp"

namespace {
std::atomic<long long> live{0}, peak{0};
}  // namespace

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  const long long now = live += static_cast<long long>(malloc_usable_size(p));
  long long old = peak.load();
  while (now > old && !peak.compare_exchange_weak(old, now)) {
  }
  return p;
}
void operator delete(void* p) noexcept {
  if (p) live -= static_cast<long long>(malloc_usable_size(p));
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace recur::test {
namespace {

namespace fs = std::filesystem;
using safetensors::File;

// Bytes of a safetensors file with the header `json` (padded as given) and `data`.
std::vector<std::uint8_t> file_bytes(const std::string& json, std::size_t data) {
  // Byte by byte: GCC 12 misreads the bounds of insert/replace here (-Warray-bounds, -Wrestrict).
  std::vector<std::uint8_t> out;
  out.reserve(8 + json.size() + data);
  for (std::size_t i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(json.size() >> (8 * i)));
  for (char c : json) out.push_back(static_cast<std::uint8_t>(c));
  for (std::size_t i = 0; i < data; ++i) out.push_back(0);
  return out;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("recur_st_" + std::to_string(::getpid()) + "_" + name)).string();
}

TEST(Safetensors, TensorsMustCoverTheDataSectionExactly) {
  const std::string a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string b = R"("b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]})";
  const std::string b_at8 = R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]})";
  EXPECT_NO_THROW(File::parse(file_bytes("{" + a + "," + b_at8 + "}", 12)));
  EXPECT_NE(error_of([&] { File::parse(file_bytes("{" + a + "," + b + "}", 16)); })
                .find("gap of 4 bytes before tensor 'b'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { File::parse(file_bytes("{" + a + "}", 9)); }).find("1 bytes after the last tensor"),
            std::string::npos);
  EXPECT_NE(error_of([&] { File::parse(file_bytes("{}", 3)); }).find("3 bytes after"), std::string::npos);
  EXPECT_NE(error_of([&] { File::parse(file_bytes("{" + a + "," + R"("c":{"dtype":"F32","shape":[1],"data_offsets":[4,8]})" + "}", 8)); })
                .find("overlap"),
            std::string::npos);
  EXPECT_NO_THROW(File::parse(file_bytes("{}", 0)));
  // Fields twice in one tensor, and an unknown field.
  EXPECT_NE(error_of([&] { File::parse(file_bytes(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8)); })
                .find("twice"),
            std::string::npos);
  EXPECT_NE(error_of([&] { File::parse(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8)); })
                .find("unknown field 'x'"),
            std::string::npos);
}

// The 8-byte length and the header are checked before the data is read: a 2 GB (sparse)
// file whose header is garbage fails after reading a few bytes.
TEST(Safetensors, TheHeaderIsCheckedBeforeTheBodyIsRead) {
  const std::string path = temp_path("big");
  {
    auto bytes = file_bytes("{not json}", 0);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                static_cast<std::streamsize>(bytes.size()));
  }
  ASSERT_EQ(::truncate(path.c_str(), 2'000'000'000), 0);
  const long long before = peak = live.load();
  const std::string err = error_of([&] { File::read(path); });
  EXPECT_NE(err.find("not valid JSON"), std::string::npos) << err;
  EXPECT_LT(peak - before, 1 << 20) << "bytes allocated to reject a bad header";
  // A header length past the end, and one over the limit.
  for (std::uint64_t n : {std::uint64_t{3'000'000'000}, std::uint64_t{1} << 62}) {
    std::vector<std::uint8_t> head(8);
    for (int i = 0; i < 8; ++i) head[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(head.data()), 8);
    ASSERT_EQ(::truncate(path.c_str(), 2'000'000'000), 0);
    peak = live.load();
    EXPECT_NE(error_of([&] { File::read(path); }).find("header length"), std::string::npos);
    EXPECT_LT(peak - before, 1 << 20);
  }
  fs::remove(path);
}

// A header's memory is in proportion to its tensors, not to its size as a JSON document (a DOM
// of a 90 MB header took 2.2 GB): 200k tensors in a 12 MB header.
TEST(Safetensors, AHeaderCostsMemoryInProportionToItsSize) {
  std::string json = "{";
  const int n = 200'000;
  for (int i = 0; i < n; ++i)
    json.append(i ? ",\"tensor." : "\"tensor.")
        .append(std::to_string(i))
        .append(R"(":{"dtype":"F32","shape":[0,7],"data_offsets":[0,0]})");
  json += "}";
  const auto bytes = file_bytes(json, 0);
  const long long before = peak = live.load();
  const File f = File::parse(bytes);
  const long long used = peak - before;
  EXPECT_EQ(f.tensors().size(), static_cast<std::size_t>(n));
  EXPECT_LT(used, 6 * static_cast<long long>(json.size()))
      << used << " bytes to parse a header of " << json.size();
  std::printf("parsing a %zu-byte header of %d tensors took at most %lld bytes (%.1fx)\n", json.size(), n,
              used, static_cast<double>(used) / static_cast<double>(json.size()));
}

TEST(Safetensors, ADirectoryOrAMissingFileIsAnError) {
  const std::string dir = temp_path("dir");
  fs::create_directories(dir);
  EXPECT_NE(error_of([&] { File::read(dir); }).find("is a directory"), std::string::npos);
  EXPECT_NE(error_of([&] { File::read(dir + "/missing"); }).find("cannot open"), std::string::npos);
  fs::remove_all(dir);
}

// NaN and infinity, in every floating-point dtype, are refused naming the tensor and the
// element, unless the caller allows them; nothing is written into the model on refusal.
TEST(Safetensors, NonFiniteValuesAreRefusedUnlessAllowed) {
  struct Case {
    const char* dtype;
    std::vector<std::uint8_t> bad;  // one value's bytes, little-endian
  };
  const std::vector<Case> cases = {{"F32", {0x00, 0x00, 0xC0, 0x7F}},  // NaN
                                   {"F64", {0, 0, 0, 0, 0, 0, 0xF0, 0x7F}},  // +inf
                                   {"F16", {0x00, 0xFC}},  // -inf
                                   {"BF16", {0xC1, 0x7F}}};  // NaN
  for (auto& c : cases) {
    const std::size_t w = c.bad.size();
    const std::string json = std::string(R"({"w":{"dtype":")") + c.dtype + R"(","shape":[3],"data_offsets":[0,)" +
                             std::to_string(3 * w) + "]}}";
    auto bytes = file_bytes(json, 3 * w);
    std::copy(c.bad.begin(), c.bad.end(), bytes.end() - static_cast<std::ptrdiff_t>(w));  // element 2
    const File f = File::parse(bytes, c.dtype);
    std::vector<float> into(3, 7.f);
    const std::vector<TensorRef<float>> refs{{"w", {3}, into.data()}};
    const std::string err = error_of([&] { safetensors::load(f, refs); });
    EXPECT_NE(err.find("tensor 'w' [3] holds a non-finite value (NaN or infinity) at element 2"), std::string::npos)
        << err;
    EXPECT_EQ(into[0], 7.f) << "written into the model before the check";
    safetensors::LoadOptions allow;
    allow.allow_non_finite = true;
    safetensors::load(f, refs, allow);
    EXPECT_FALSE(std::isfinite(into[2])) << c.dtype;
    EXPECT_EQ(into[0], 0.f);
  }
}

TEST(Safetensors, MetadataNumbersAreParsedStrictly) {
  const std::map<std::string, std::string> m = {{"a", "8abc"}, {"b", " 8"}, {"c", ""},
                                                {"d", "99999999999999999999"}, {"e", "8"},
                                                {"f", "-3"}, {"g", "1.5x"}, {"h", "0.25"},
                                                {"i", "nan"}, {"j", "8.0"}};
  for (const char* k : {"a", "b", "c", "d", "j"})
    EXPECT_NE(error_of([&] { metadata_integer(m, k, "f.safetensors", 0, 100); }).find("is not a whole number"),
              std::string::npos)
        << k;
  EXPECT_EQ(metadata_integer(m, "e", "f", 0, 100), 8);
  EXPECT_NE(error_of([&] { metadata_integer(m, "f", "f", 0, 100); }).find("outside [0, 100]"), std::string::npos);
  EXPECT_NE(error_of([&] { metadata_integer(m, "zz", "f", 0, 100); }).find("no 'zz'"), std::string::npos);
  for (const char* k : {"a", "b", "c", "g"})
    EXPECT_NE(error_of([&] { metadata_number(m, k, "f"); }).find("is not a number"), std::string::npos) << k;
  EXPECT_EQ(metadata_number(m, "h", "f"), 0.25);
  EXPECT_TRUE(std::isnan(metadata_number(m, "i", "f")));
}

// Metadata the JSON writer cannot write (invalid UTF-8) is refused naming the file and the
// entry, and no file is left behind.
TEST(Safetensors, InvalidUtf8MetadataIsRefusedBeforeWriting) {
  const std::string path = temp_path("utf8.safetensors");
  std::vector<float> v(2, 1.f);
  const std::vector<TensorRef<float>> refs{{"w", {2}, v.data()}};
  try {
    safetensors::save(path, refs, {{"vocab", std::string("\xED\xA0\x80")}});
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'vocab' is not valid UTF-8"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace recur::test
