// The examples' training log (char_rnn, amp): rows (iteration, seconds, train loss, val loss)
// kept in memory and rewritten, atomically, as log.csv and as an SVG plot of both loss curves
// (loss.svg) titled with what the loss is.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <recur/safetensors.hpp>

namespace recur_examples {

struct LogRow {
  std::int64_t iteration;
  double seconds, train_loss, val_loss;  // val_loss NaN when not evaluated
};

class TrainingLog {
 public:
  /// title: the plot's, e.g. "char_rnn loss (nats/char)".
  explicit TrainingLog(std::string title) : title_(std::move(title)) {}

  /// Reads an existing log.csv (when resuming), keeping the rows up to `up_to` iterations.
  void load(const std::string& csv, std::int64_t up_to) {
    std::ifstream f(csv);
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
      LogRow r{};
      std::string val;
      std::istringstream s(line);
      char comma;
      if (!(s >> r.iteration >> comma >> r.seconds >> comma >> r.train_loss >> comma)) continue;
      std::getline(s, val);
      r.val_loss = val.empty() ? std::nan("") : std::atof(val.c_str());
      if (r.iteration <= up_to) rows_.push_back(r);
    }
  }
  void add(const LogRow& r) { rows_.push_back(r); }
  const std::vector<LogRow>& rows() const { return rows_; }

  void write(const std::string& dir) const {
    std::ostringstream csv;
    csv << "iteration,seconds,train_loss,val_loss\n";
    for (auto& r : rows_) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "%lld,%.3f,%.6f,", static_cast<long long>(r.iteration),
                    r.seconds, r.train_loss);
      csv << buf;
      if (!std::isnan(r.val_loss)) {
        std::snprintf(buf, sizeof buf, "%.6f", r.val_loss);
        csv << buf;
      }
      csv << "\n";
    }
    put(dir + "/log.csv", csv.str());
    put(dir + "/loss.svg", svg());
  }

 private:
  static void put(const std::string& path, const std::string& text) {
    recur::safetensors::write_atomically(path, std::vector<std::uint8_t>(text.begin(), text.end()));
  }

  std::string svg() const {
    const double W = 720, H = 420, left = 60, right = 20, top = 30, bottom = 50;
    double xmax = 1, ymin = 1e300, ymax = -1e300;
    for (auto& r : rows_) {
      xmax = std::max(xmax, static_cast<double>(r.iteration));
      for (double v : {r.train_loss, r.val_loss})
        if (std::isfinite(v)) {
          ymin = std::min(ymin, v);
          ymax = std::max(ymax, v);
        }
    }
    if (ymin > ymax) ymin = 0, ymax = 1;
    if (ymax - ymin < 1e-9) ymax = ymin + 1;
    auto X = [&](double x) { return left + (W - left - right) * x / xmax; };
    auto Y = [&](double y) { return top + (H - top - bottom) * (ymax - y) / (ymax - ymin); };
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << W / 2 << "\" y=\"18\" text-anchor=\"middle\">" << title_ << "</text>\n";
    for (int k = 0; k <= 5; ++k) {  // grid and labels
      const double y = ymin + (ymax - ymin) * k / 5, x = xmax * k / 5;
      s << "<line x1=\"" << left << "\" x2=\"" << W - right << "\" y1=\"" << Y(y) << "\" y2=\""
        << Y(y) << "\" stroke=\"#ddd\"/>\n"
        << "<text x=\"" << left - 6 << "\" y=\"" << Y(y) + 4 << "\" text-anchor=\"end\">"
        << fmt(y, "%.2f") << "</text>\n"
        << "<text x=\"" << X(x) << "\" y=\"" << H - bottom + 18 << "\" text-anchor=\"middle\">"
        << fmt(x, "%.0f") << "</text>\n";
    }
    s << "<text x=\"" << W / 2 << "\" y=\"" << H - 10 << "\" text-anchor=\"middle\">iteration</text>\n";
    auto series = [&](bool val, const char* color, const char* label, double ly) {
      std::ostringstream pts;
      int n = 0;
      for (auto& r : rows_) {
        const double v = val ? r.val_loss : r.train_loss;
        if (!std::isfinite(v)) continue;
        pts << X(static_cast<double>(r.iteration)) << "," << Y(v) << " ";
        ++n;
      }
      if (n == 0) return;
      s << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\""
        << pts.str() << "\"/>\n"
        << "<text x=\"" << W - right - 90 << "\" y=\"" << ly << "\" fill=\"" << color << "\">"
        << label << "</text>\n";
    };
    series(false, "#1f77b4", "train", top + 14);
    series(true, "#d62728", "validation", top + 30);
    s << "</svg>\n";
    return s.str();
  }
  static std::string fmt(double v, const char* f) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
  }

  std::string title_;
  std::vector<LogRow> rows_;
};

}  // namespace recur_examples
