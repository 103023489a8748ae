// recur_onnx: ONNX models of recurrent nodes, through recur (recur/onnx.hpp).
//
//   recur_onnx info MODEL.onnx     the graph's recurrent nodes and their attributes
//   recur_onnx check [--float] DIR runs an ONNX backend-test case: DIR/model.onnx on every
//                                  DIR/test_data_set_*/input_*.pb, compares with output_*.pb;
//                                  prints each output's max abs / rel difference; exit 0 only
//                                  when every output is within ONNX's backend-test tolerance
//                                  (|y - ref| <= 1e-7 + 1e-3 |ref|)
// check computes in double by default: ONNX's expected outputs are float64 computations
// rounded to float32, and an absolute tolerance of 1e-7 is below what a float32 computation
// of the same model keeps where it cancels (test_gru_seq_length: (1 - z) * n with z within
// 1e-7 of 1); --float runs recur's float path instead.
// A corrupt model, a missing file or an unsupported attribute: one error line, exit 1.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "recur/onnx.hpp"

namespace fs = std::filesystem;
using recur::Index;

namespace {

const char* kUsage =
    "usage: recur_onnx info MODEL.onnx\n"
    "       recur_onnx check [--float] DIR   (DIR/model.onnx, DIR/test_data_set_*/{input,output}_*.pb)\n";

int info(const std::string& path) {
  const auto model = recur::onnx::read_model(path);
  const recur::onnx::Graph<float> graph(model);
  std::printf("%s: opset", path.c_str());
  for (const auto& o : model.opset_import())
    std::printf(" %s%s%lld", o.domain().c_str(), o.domain().empty() ? "" : ":", static_cast<long long>(o.version()));
  std::printf(", inputs:");
  for (const auto& n : graph.input_names()) std::printf(" %s", n.c_str());
  std::printf(", outputs:");
  for (const auto& n : graph.output_names()) std::printf(" %s", n.c_str());
  std::printf("\n");
  for (const auto& n : graph.nodes()) {
    std::printf("%s %s: hidden_size=%lld direction=%s layout=%lld", n.op.c_str(), n.name.c_str(),
                static_cast<long long>(n.hidden_size), n.direction.c_str(), static_cast<long long>(n.layout));
    if (n.op == "GRU") std::printf(" linear_before_reset=%d", n.linear_before_reset ? 1 : 0);
    if (n.clip > 0) std::printf(" clip=%g", n.clip);
    if (!n.activations.empty()) {
      std::printf(" activations=");
      for (std::size_t i = 0; i < n.activations.size(); ++i) std::printf("%s%s", i ? "," : "", n.activations[i].c_str());
    }
    std::printf(" inputs=");
    for (std::size_t i = 0; i < n.inputs.size(); ++i) std::printf("%s%s", i ? "," : "", n.inputs[i].empty() ? "-" : n.inputs[i].c_str());
    std::printf(" outputs=");
    for (std::size_t i = 0; i < n.outputs.size(); ++i) std::printf("%s%s", i ? "," : "", n.outputs[i].empty() ? "-" : n.outputs[i].c_str());
    std::printf("\n");
  }
  return 0;
}

std::vector<fs::path> numbered(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> files;
  for (int i = 0;; ++i) {
    const fs::path p = dir / (prefix + std::to_string(i) + ".pb");
    if (!fs::exists(p)) break;
    files.push_back(p);
  }
  return files;
}

template <class T>
int check_with(const ::onnx::ModelProto& model, const fs::path& dir) {
  const recur::onnx::Graph<T> graph(model);
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) throw std::runtime_error("no test_data_set_* directory in " + dir.string());
  bool ok = true;
  for (const auto& set : sets) {
    const auto in_files = numbered(set, "input_"), out_files = numbered(set, "output_");
    if (in_files.size() != graph.input_names().size())
      throw std::runtime_error(set.string() + " holds " + std::to_string(in_files.size()) +
                               " inputs, the graph takes " + std::to_string(graph.input_names().size()));
    if (out_files.size() != graph.output_names().size())
      throw std::runtime_error(set.string() + " holds " + std::to_string(out_files.size()) +
                               " outputs, the graph has " + std::to_string(graph.output_names().size()));
    std::map<std::string, recur::onnx::Tensor<T>> inputs;
    for (std::size_t i = 0; i < in_files.size(); ++i)
      inputs[graph.input_names()[i]] = recur::onnx::read_tensor<T>(in_files[i].string());
    const auto outputs = graph.run(inputs);
    for (std::size_t i = 0; i < out_files.size(); ++i) {
      const auto ref = recur::onnx::read_tensor<double>(out_files[i].string());
      const auto& got = outputs.at(graph.output_names()[i]);
      const std::string name = set.filename().string() + "/" + graph.output_names()[i];
      if (got.shape != ref.shape) {
        std::printf("%s: shape %s, expected %s  FAIL\n", name.c_str(), got.shape_string().c_str(), ref.shape_string().c_str());
        ok = false;
        continue;
      }
      double max_abs = 0, max_rel = 0;
      bool within = true;
      for (std::size_t k = 0; k < ref.values.size(); ++k) {
        const double r = ref.values[k], y = static_cast<double>(got.values[k]), d = std::abs(y - r);
        max_abs = std::max(max_abs, d);
        if (r != 0) max_rel = std::max(max_rel, d / std::abs(r));
        if (!(d <= 1e-7 + 1e-3 * std::abs(r))) within = false;
      }
      std::printf("%s %s: max abs diff %.3g, max rel diff %.3g  %s\n", name.c_str(), got.shape_string().c_str(),
                  max_abs, max_rel, within ? "ok" : "FAIL");
      ok = ok && within;
    }
  }
  return ok ? 0 : 1;
}

int check(const std::string& dir_arg, bool in_float) {
  const fs::path dir(dir_arg);
  if (!fs::is_directory(dir)) throw std::runtime_error(dir_arg + " is not a directory");
  const auto model = recur::onnx::read_model((dir / "model.onnx").string());
  const bool dbl = !in_float;
  return dbl ? check_with<double>(model, dir) : check_with<float>(model, dir);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && (args[0] == "-h" || args[0] == "--help")) {
    std::cout << kUsage;
    return 0;
  }
  const bool in_float = args.size() == 3 && args[0] == "check" && args[1] == "--float";
  if (!(args.size() == 2 || in_float) || (args[0] != "info" && args[0] != "check")) {
    std::cerr << "recur_onnx: error: expected a command and one path\n" << kUsage;
    return 2;
  }
  try {
    return args[0] == "info" ? info(args[1]) : check(args.back(), in_float);
  } catch (const std::exception& e) {
    std::cerr << "recur_onnx " << args[0] << ": error: " << e.what() << "\n";
    return 1;
  }
}
