// Optimizers and schedules against torch.optim (tests/reference/optim_reference.txt, made by
// make_optim_reference.py with Debian's python3-torch), clipping against direct computation,
// and optimizer state restored mid-run continuing exactly as an uninterrupted run.
#include "support.hpp"

namespace recur::test {
namespace {

struct Reference {
  std::string kind;                       // "optimizer" or "schedule"
  std::string name;                       // sgd, adam, ... / step, exponential, cosine
  std::map<std::string, double> args;
  std::vector<std::vector<double>> values;  // params after the steps, or the lrs
};

std::vector<Reference> read_reference() {
  std::ifstream f(std::string(RECUR_REFERENCE_DIR) + "/optim_reference.txt");
  if (!f) throw std::runtime_error("cannot open optim_reference.txt");
  std::vector<Reference> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream s(line);
    std::string head;
    s >> head;
    if (head == "optimizer" || head == "schedule") {
      Reference r;
      r.kind = head;
      s >> r.name;
      std::string kv;
      while (s >> kv) {
        const auto eq = kv.find('=');
        r.args[kv.substr(0, eq)] = std::stod(kv.substr(eq + 1));
      }
      out.push_back(r);
    } else {
      std::size_t n = 0;
      s >> n;
      std::vector<double> v(n);
      for (auto& x : v) s >> x;
      if (!s) throw std::runtime_error("bad line in optim_reference.txt: " + head);
      out.back().values.push_back(v);
    }
  }
  return out;
}

double arg(const Reference& r, const std::string& k, double def) {
  auto it = r.args.find(k);
  return it == r.args.end() ? def : it->second;
}

// Two parameters as in the script: a 3x4 weight and a 5-vector.
template <class T>
struct Toy {
  std::vector<T> value = std::vector<T>(17), grad = std::vector<T>(17), target =
                                                                            std::vector<T>(17);
  Toy() {
    for (int i = 0; i < 12; ++i) value[i] = static_cast<T>(0.1 * (i % 7) - 0.3 + 0.05 * i / 12);
    for (int i = 0; i < 5; ++i) value[12 + i] = static_cast<T>(0.2 - 0.15 * i);
    for (int i = 0; i < 12; ++i) target[i] = static_cast<T>(((i * 37) % 11) / 10.0 - 0.5);
    for (int i = 0; i < 5; ++i) target[12 + i] = static_cast<T>(((i * 37) % 11) / 10.0 - 0.5);
  }
  std::vector<Parameter<T>> params() {
    return {Parameter<T>{"w", {3, 4}, Eigen::Map<Matrix<T>>(value.data(), 3, 4),
                         Eigen::Map<Matrix<T>>(grad.data(), 3, 4)},
            Parameter<T>{"b", {5}, Eigen::Map<Matrix<T>>(value.data() + 12, 5, 1),
                         Eigen::Map<Matrix<T>>(grad.data() + 12, 5, 1)}};
  }
  void compute_grad() {  // g = (p - c)^3 + 0.5 p
    for (std::size_t i = 0; i < value.size(); ++i) {
      const T d = value[i] - target[i];
      grad[i] = d * d * d + T(0.5) * value[i];
    }
  }
};

template <class T>
std::unique_ptr<Optimizer<T>> make(const Reference& r, std::vector<Parameter<T>> p) {
  if (r.name == "sgd")
    return std::make_unique<SGD<T>>(
        p, SGDOptions{arg(r, "lr", 1e-3), arg(r, "momentum", 0), arg(r, "dampening", 0),
                      arg(r, "weight_decay", 0), arg(r, "nesterov", 0) != 0});
  if (r.name == "adam" || r.name == "adamw") {
    const double wd = arg(r, "weight_decay", r.name == "adam" ? 0 : 1e-2);
    if (r.name == "adam")
      return std::make_unique<Adam<T>>(
          p, AdamOptions{arg(r, "lr", 1e-3), arg(r, "beta1", 0.9), arg(r, "beta2", 0.999),
                         arg(r, "eps", 1e-8), wd, arg(r, "amsgrad", 0) != 0});
    return std::make_unique<AdamW<T>>(
        p, AdamWOptions{arg(r, "lr", 1e-3), arg(r, "beta1", 0.9), arg(r, "beta2", 0.999),
                        arg(r, "eps", 1e-8), wd, arg(r, "amsgrad", 0) != 0});
  }
  if (r.name == "adagrad")
    return std::make_unique<Adagrad<T>>(
        p, AdagradOptions{arg(r, "lr", 1e-2), arg(r, "lr_decay", 0), arg(r, "weight_decay", 0),
                          arg(r, "initial_accumulator_value", 0), arg(r, "eps", 1e-10)});
  if (r.name == "rmsprop")
    return std::make_unique<RMSprop<T>>(
        p, RMSpropOptions{arg(r, "lr", 1e-2), arg(r, "alpha", 0.99), arg(r, "eps", 1e-8),
                          arg(r, "weight_decay", 0), arg(r, "momentum", 0),
                          arg(r, "centered", 0) != 0});
  throw std::runtime_error("unknown optimizer " + r.name);
}

template <class T>
void check_against_torch(double tol) {
  int checked = 0;
  for (const auto& r : read_reference()) {
    if (r.kind != "optimizer") continue;
    Toy<T> toy;
    auto opt = make<T>(r, toy.params());
    for (int s = 0; s < 12; ++s) {
      opt->zero_grad();
      toy.compute_grad();
      opt->step();
    }
    std::vector<double> expect = r.values[0];
    expect.insert(expect.end(), r.values[1].begin(), r.values[1].end());
    std::string what = r.name;
    for (auto& [k, v] : r.args) what += " " + k + "=" + std::to_string(v);
    EXPECT_TRUE(close(what, toy.value.data(), expect, tol));
    ++checked;
  }
  EXPECT_EQ(checked, 11);
}

TEST(Optimizers, MatchTorchOptimInDouble) { check_against_torch<double>(1e-13); }
TEST(Optimizers, MatchTorchOptimInFloat) { check_against_torch<float>(2e-5); }

TEST(Schedules, MatchTorchLrScheduler) {
  int checked = 0;
  for (const auto& r : read_reference()) {
    if (r.kind != "schedule") continue;
    Schedule s = r.name == "step"          ? Schedule::step(static_cast<std::int64_t>(arg(r, "step_size", 0)),
                                                             arg(r, "gamma", 0))
                 : r.name == "exponential" ? Schedule::exponential(arg(r, "gamma", 0))
                                           : Schedule::cosine(static_cast<std::int64_t>(arg(r, "t_max", 0)),
                                                              arg(r, "eta_min", 0));
    if (r.args.count("warmup"))
      s.warmup(static_cast<std::int64_t>(arg(r, "warmup", 0)), arg(r, "start_factor", 0));
    const auto& lrs = r.values[0];
    for (std::size_t e = 0; e < lrs.size(); ++e)
      EXPECT_NEAR(s.lr(arg(r, "base", 0), static_cast<std::int64_t>(e)), lrs[e], 1e-15 + 1e-12 * lrs[e])
          << r.name << " step " << e;
    ++checked;
  }
  EXPECT_EQ(checked, 6);
  // Past t_max the cosine schedule stays at eta_min.
  EXPECT_DOUBLE_EQ(Schedule::cosine(10, 0.01).lr(1.0, 15), 0.01);
  EXPECT_DOUBLE_EQ(Schedule::constant().lr(0.3, 1000), 0.3);
  EXPECT_THROW(Schedule::step(0), std::invalid_argument);
  EXPECT_THROW(Schedule::constant().warmup(3, 0.0), std::invalid_argument);
}

TEST(Clipping, GlobalNormAsTorchAndByValue) {
  Toy<double> toy;
  auto p = toy.params();
  toy.compute_grad();
  const std::vector<double> g = toy.grad;
  double sq = 0, l1 = 0, linf = 0;
  for (double v : g) {
    sq += v * v;
    l1 += std::abs(v);
    linf = std::max(linf, std::abs(v));
  }
  const double norm = std::sqrt(sq);
  // Above the norm: untouched, the norm returned.
  EXPECT_NEAR(clip_grad_norm(p, norm * 2), norm, 1e-15);
  for (std::size_t i = 0; i < g.size(); ++i) EXPECT_EQ(toy.grad[i], g[i]);
  // Below: scaled by max_norm / (norm + 1e-6), as torch.nn.utils.clip_grad_norm_.
  EXPECT_NEAR(clip_grad_norm(p, 0.1), norm, 1e-15);
  for (std::size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(toy.grad[i], g[i] * 0.1 / (norm + 1e-6), 1e-16);
  toy.grad = g;
  EXPECT_NEAR(clip_grad_norm(p, 0.1, 1.0), l1, 1e-14);
  toy.grad = g;
  EXPECT_EQ(clip_grad_norm(p, 0.1, std::numeric_limits<double>::infinity()), linf);
  for (std::size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(toy.grad[i], g[i] * 0.1 / (linf + 1e-6), 1e-16);
  toy.grad = g;
  clip_grad_value(p, 0.05);
  for (std::size_t i = 0; i < g.size(); ++i) EXPECT_EQ(toy.grad[i], std::clamp(g[i], -0.05, 0.05));
  toy.grad[3] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(std::isnan(clip_grad_norm(p, 1.0)));
  EXPECT_THROW(clip_grad_norm(p, -1.0), std::invalid_argument);
}

// Copying the state tensors, step count and lr into a fresh optimizer mid-run continues
// exactly like the uninterrupted run, for every optimizer of the reference list.
TEST(Optimizers, StateRestoredMidRunContinuesExactly) {
  for (const auto& r : read_reference()) {
    if (r.kind != "optimizer") continue;
    Toy<double> a, b;
    auto oa = make<double>(r, a.params());
    auto ob = make<double>(r, b.params());
    for (int s = 0; s < 12; ++s) {
      if (s == 5) {  // b restarts from a's state
        b.value = a.value;
        auto ob2 = make<double>(r, b.params());
        auto from = oa->state(), to = ob2->state();
        ASSERT_EQ(from.size(), to.size());
        for (std::size_t i = 0; i < from.size(); ++i) {
          EXPECT_EQ(from[i].name, to[i].name);
          std::copy_n(from[i].data, from[i].size(), to[i].data);
        }
        ob2->set_steps(oa->steps());
        ob2->set_lr(oa->lr());
        ob = std::move(ob2);
      }
      for (auto* t : {&a, &b}) t->compute_grad();
      oa->step();
      ob->step();
    }
    for (std::size_t i = 0; i < a.value.size(); ++i) ASSERT_EQ(a.value[i], b.value[i]) << r.name;
  }
}

TEST(Optimizers, RejectInvalidHyperparameters) {
  Toy<float> toy;
  EXPECT_THROW(SGD<float>(toy.params(), {0.1, 0, 0, 0, true}), std::invalid_argument);
  EXPECT_THROW(SGD<float>(toy.params(), {-0.1}), std::invalid_argument);
  EXPECT_THROW(Adam<float>(toy.params(), {1e-3, 1.0}), std::invalid_argument);
  EXPECT_THROW(Adagrad<float>(toy.params(), {1e-2, -1}), std::invalid_argument);
  EXPECT_THROW(RMSprop<float>(toy.params(), {1e-2, -0.5}), std::invalid_argument);
  Adam<float> ok(toy.params());
  EXPECT_THROW(ok.set_lr(std::nan("")), std::invalid_argument);
  EXPECT_EQ(ok.hyperparameters().at("beta2"), "0.999");
  EXPECT_EQ(ok.state().size(), 4u);
  EXPECT_EQ(ok.state()[1].name, "w.exp_avg_sq");
}

TEST(Optimizers, ThreadedStepEqualsOneThread) {
  // Large parameters take the threaded path (slices per thread); the updates are element-wise,
  // so every configuration must give exactly the single-thread result, and clip_grad_norm
  // the same norm up to rounding of the partial sums.
  const Index n1 = 300001, n2 = 12345;
  for (const auto& r : read_reference()) {
    if (r.kind != "optimizer") continue;
    std::vector<double> result[2];
    double norms[2] = {0, 0};
    for (int threads : {1, 2}) {
      recur::set_num_threads(threads);
      std::vector<double> value(n1 + n2), grad(n1 + n2);
      for (std::size_t i = 0; i < value.size(); ++i) value[i] = std::sin(0.37 * static_cast<double>(i));
      std::vector<Parameter<double>> p{
          Parameter<double>{"w", {n1}, Eigen::Map<Matrix<double>>(value.data(), n1, 1),
                            Eigen::Map<Matrix<double>>(grad.data(), n1, 1)},
          Parameter<double>{"b", {n2}, Eigen::Map<Matrix<double>>(value.data() + n1, n2, 1),
                            Eigen::Map<Matrix<double>>(grad.data() + n1, n2, 1)}};
      auto opt = make<double>(r, p);
      for (int s = 0; s < 3; ++s) {
        opt->zero_grad();
        for (std::size_t i = 0; i < grad.size(); ++i)
          grad[i] += std::cos(0.11 * static_cast<double>(i) + s) * value[i];
        norms[threads - 1] = recur::clip_grad_norm(p, 1e9);
        opt->step();
      }
      result[threads - 1] = value;
    }
    recur::set_num_threads(0);
    ASSERT_EQ(result[0], result[1]) << r.name;
    EXPECT_NEAR(norms[0], norms[1], 1e-12 * norms[0]) << r.name;
  }
}

}  // namespace
}  // namespace recur::test
