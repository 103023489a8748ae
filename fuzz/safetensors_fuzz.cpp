// libFuzzer target: recur::safetensors::File::parse on arbitrary bytes, then loading every
// floating-point tensor it accepts. Any outcome but success or std::runtime_error is a bug;
// ASan and UBSan (scripts/fuzz builds with both) catch out-of-bounds reads and overflows.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <recur/safetensors.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace recur::safetensors;
  try {
    const File f = File::parse(std::vector<std::uint8_t>(data, data + size), "fuzz");
    for (const TensorInfo& t : f.tensors()) {
      if (t.dtype != Dtype::F32 && t.dtype != Dtype::F64 && t.dtype != Dtype::F16 &&
          t.dtype != Dtype::BF16)
        continue;
      std::vector<double> out(static_cast<std::size_t>(t.numel()));
      f.copy_to(t, out.data());
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
