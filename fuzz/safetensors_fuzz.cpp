// libFuzzer target: the whole load path of recur::safetensors on arbitrary bytes — parse, then
// load() into tensors shaped as the file says (every check of load: names, shapes, dtypes,
// non-finite values, with and without allow_non_finite), then the metadata helpers. Any
// outcome but success or std::runtime_error is a bug; ASan and UBSan (scripts/fuzz builds
// with both) catch out-of-bounds reads and overflows.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <recur/checkpoint.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace recur::safetensors;
  try {
    const File f = File::parse(std::vector<std::uint8_t>(data, data + size), "fuzz");
    std::vector<std::vector<double>> storage;
    std::vector<recur::TensorRef<double>> refs;
    std::uint64_t total = 0;
    for (const TensorInfo& t : f.tensors()) {
      total += t.numel();
      if (total > (1u << 22)) return 0;  // parse() bounds sizes by the input; keep runs fast
      storage.emplace_back(static_cast<std::size_t>(t.numel()));
      std::vector<recur::Index> shape(t.shape.begin(), t.shape.end());
      refs.push_back({t.name, shape, storage.back().data()});
    }
    for (bool allow : {false, true}) {
      try {
        LoadOptions o;
        o.allow_non_finite = allow;
        load(f, refs, o);
      } catch (const std::runtime_error&) {
      }
    }
    for (auto& [k, v] : f.metadata()) {
      try {
        recur::metadata_integer(f.metadata(), k, "fuzz", -5, 1 << 20);
      } catch (const std::runtime_error&) {
      }
      try {
        recur::metadata_number(f.metadata(), k, "fuzz");
      } catch (const std::runtime_error&) {
      }
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
