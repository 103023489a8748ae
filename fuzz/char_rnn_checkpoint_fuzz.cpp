// libFuzzer target: char_rnn's checkpoint reader (CharModel::from_file) on arbitrary bytes —
// the safetensors checks, then the metadata (strict numbers, ranges, vocabulary) checked
// against the tensors the file holds before a model is built. Any outcome but success or
// std::runtime_error is a bug, and so is a model built from a file smaller than its
// parameters (an allocation bomb): the reader must have refused it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto f = recur::safetensors::File::parse(std::vector<std::uint8_t>(data, data + size), "fuzz");
    auto m = char_rnn::CharModel::from_file(f);
    std::size_t n = 0;
    for (auto& p : m->parameters()) n += static_cast<std::size_t>(p.value.size());
    if (n * 2 > size) std::abort();  // every parameter came from at least 2 bytes of the input
  } catch (const std::runtime_error&) {
  }
  return 0;
}
