// The built-in training audio: plucked-string notes (Karplus-Strong: a noise burst circulating
// in a delay line of one period, averaged and damped on each pass) at random pitches, lengths
// and strengths, single notes and chords, and the effect to learn — a drive stage between
// filters, the shape of an overdrive pedal:
//   high-pass (first order, 320 Hz)  ->  tanh(gain u + bias) - tanh(bias)  ->  low-pass
//   (first order, 3.2 kHz) -> level.
// The filters give it memory (the output depends on past input), the biased tanh an
// asymmetric, level-dependent distortion. Deterministic for a given seed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace amp {

inline std::vector<float> plucked_notes(double seconds, int rate, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const auto n = static_cast<std::size_t>(seconds * rate);
  std::vector<double> mix(n, 0.0);
  std::size_t at = 0;
  while (at < n) {
    const int voices = u(rng) < 0.3 ? 3 : 1;  // a chord now and then
    const double length = 0.2 + 1.3 * u(rng), strength = 0.15 + 0.6 * u(rng);
    const int root = 40 + static_cast<int>(u(rng) * 36);  // E2 .. E5
    for (int v = 0; v < voices; ++v) {
      const int note = root + (v == 0 ? 0 : v == 1 ? 4 + static_cast<int>(u(rng) * 2) : 7);
      const double f = 440.0 * std::pow(2.0, (note - 69) / 12.0);
      const auto period = std::max<std::size_t>(2, static_cast<std::size_t>(rate / f));
      std::vector<double> line(period);
      double prev = 0;
      for (auto& s : line) s = prev = 0.5 * prev + (u(rng) * 2 - 1);  // a darker burst
      const double damp = 0.996 - 0.004 * u(rng);
      const auto len = std::min(n - at, static_cast<std::size_t>(length * rate));
      for (std::size_t i = 0, k = 0; i < len; ++i) {
        const std::size_t next = (k + 1) % period;
        const double out = line[k];
        line[k] = damp * 0.5 * (line[k] + line[next]);
        k = next;
        mix[at + i] += strength / voices * out;
      }
    }
    at += static_cast<std::size_t>((0.15 + 0.9 * u(rng)) * rate);  // notes overlap
  }
  double peak = 1e-9;
  for (double v : mix) peak = std::max(peak, std::abs(v));
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(0.7 * mix[i] / peak);
  return out;
}

struct Drive {
  double gain = 30.0, bias = 0.3, level = 0.5, high_pass_hz = 320.0, low_pass_hz = 3200.0;

  std::vector<float> operator()(const std::vector<float>& x, int rate) const {
    const double pi = 3.14159265358979323846, dt = 1.0 / rate;
    const double rc_hp = 1.0 / (2 * pi * high_pass_hz), a_hp = rc_hp / (rc_hp + dt);
    const double rc_lp = 1.0 / (2 * pi * low_pass_hz), a_lp = dt / (rc_lp + dt);
    std::vector<float> y(x.size());
    double hp = 0, last_x = 0, lp = 0;
    const double offset = std::tanh(bias);
    for (std::size_t i = 0; i < x.size(); ++i) {
      hp = a_hp * (hp + x[i] - last_x);
      last_x = x[i];
      const double d = std::tanh(gain * hp + bias) - offset;
      lp += a_lp * (d - lp);
      y[i] = static_cast<float>(level * lp);
    }
    return y;
  }
};

}  // namespace amp
