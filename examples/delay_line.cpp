// delay_line: the smallest complete training loop with recur. An LSTM learns to repeat its
// input three steps late (y_t = x_{t-3}): it has to remember. A linear read-out, the mean
// squared error and Adam are written out here in a few lines of Eigen.
//
//   delay_line [iterations]        (default 300)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include <recur/recur.hpp>

int main(int argc, char** argv) {
  using T = float;
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 300;
  const recur::Index B = 32, S = 40, H = 32, delay = 3;

  recur::RecurrentOptions opt;
  opt.input_size = 1;
  opt.hidden_size = H;
  recur::LSTM<T> lstm(opt, /*seed=*/1);

  std::mt19937_64 rng(7);
  std::uniform_real_distribution<T> u(-1, 1);
  recur::Matrix<T> w = recur::Matrix<T>::Zero(1, H), dw(1, H);  // read-out y = h w^T + c
  T c = 0, dc = 0;

  // Adam over the LSTM's parameters and the read-out.
  auto params = lstm.named_parameters();
  std::vector<recur::Matrix<T>> m1, m2;
  for (auto& p : params) {
    m1.push_back(recur::Matrix<T>::Zero(p.value.rows(), p.value.cols()));
    m2.push_back(m1.back());
  }
  recur::Matrix<T> wm1 = w, wm2 = w;
  T cm1 = 0, cm2 = 0;
  const T lr = 1e-2, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;

  recur::Tensor3<T> x(B, S, 1), dy(B, S, H);
  for (int it = 1; it <= iterations; ++it) {
    for (recur::Index i = 0; i < x.size(); ++i) x.data()[i] = u(rng);
    auto out = lstm.forward(x);  // out.output: [B, S, H]
    Eigen::Map<const recur::Matrix<T>> h(out.output.data(), B * S, H);
    recur::Matrix<T> y = (h * w.transpose()).array() + c;  // [B*S, 1]

    // Loss over the steps t >= delay: mean of (y_t - x_{t-delay})^2.
    recur::Matrix<T> dy_flat = recur::Matrix<T>::Zero(B * S, 1);
    double loss = 0;
    const double n = static_cast<double>(B * (S - delay));
    for (recur::Index b = 0; b < B; ++b)
      for (recur::Index t = delay; t < S; ++t) {
        const T e = y(b * S + t, 0) - x(b, t - delay, 0);
        loss += e * e / n;
        dy_flat(b * S + t, 0) = static_cast<T>(2 * e / n);
      }
    dw = dy_flat.transpose() * h;
    dc = dy_flat.sum();
    Eigen::Map<recur::Matrix<T>>(dy.data(), B * S, H) = dy_flat * w;

    lstm.zero_grad();
    lstm.backward(dy);

    const T c1 = 1 - std::pow(b1, static_cast<T>(it)), c2 = 1 - std::pow(b2, static_cast<T>(it));
    auto adam = [&](auto value, auto grad, auto& s1, auto& s2) {
      s1 = b1 * s1 + (1 - b1) * grad;
      s2 = b2 * s2 + (1 - b2) * grad.cwiseProduct(grad);
      value.array() -= lr * (s1.array() / c1) / ((s2.array() / c2).sqrt() + eps);
    };
    for (std::size_t i = 0; i < params.size(); ++i)
      adam(params[i].value, recur::Matrix<T>(params[i].grad), m1[i], m2[i]);
    adam(Eigen::Map<recur::Matrix<T>>(w.data(), 1, H), dw, wm1, wm2);
    cm1 = b1 * cm1 + (1 - b1) * dc;
    cm2 = b2 * cm2 + (1 - b2) * dc * dc;
    c -= lr * (cm1 / c1) / (std::sqrt(cm2 / c2) + eps);

    if (it == 1 || it % 25 == 0)
      std::printf("iteration %4d  mean squared error %.5f%s\n", it, loss,
                  it == 1 ? "   (predicting 0 scores 0.333)" : "");
  }
  return 0;
}
