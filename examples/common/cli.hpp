// The examples' small command-line parser (char_rnn, amp): --name value, --name=value and boolean --name flags, each
// declared with its help text; unknown flags and bad values are errors that name the flag.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace recur_examples {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A double as text that reads back to the same double (checkpoint metadata).
inline std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

class Flags {
 public:
  explicit Flags(std::string usage) : usage_(std::move(usage)) {}

  Flags& add(const std::string& name, std::string* v, const std::string& help) {
    return define(name, help, "TEXT", *v, [v](const std::string& s) { *v = s; });
  }
  Flags& add(const std::string& name, double* v, const std::string& help) {
    return define(name, help, "X", num(*v), [v, name](const std::string& s) { *v = parse<double>(name, s); });
  }
  Flags& add(const std::string& name, std::int64_t* v, const std::string& help) {
    return define(name, help, "N", std::to_string(*v),
                  [v, name](const std::string& s) { *v = parse<std::int64_t>(name, s); });
  }
  Flags& add(const std::string& name, bool* v, const std::string& help) {
    Flag f{help, "", *v ? "on" : "off", [v](const std::string&) { *v = true; }, true};
    order_.push_back(name);
    flags_[name] = std::move(f);
    return *this;
  }

  /// Parses argv[first..]; returns false when --help was asked (the help is then printed).
  bool parse(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--help" || a == "-h") return false;
      if (a.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + a + "'");
      std::string name = a.substr(2), value;
      const auto eq = name.find('=');
      const bool inline_value = eq != std::string::npos;
      if (inline_value) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      auto it = flags_.find(name);
      if (it == flags_.end()) throw UsageError("unknown flag --" + name + " (see --help)");
      if (it->second.boolean) {
        if (inline_value) throw UsageError("--" + name + " takes no value");
      } else if (!inline_value) {
        if (i + 1 >= argc) throw UsageError("--" + name + " needs a value");
        value = argv[++i];
      }
      it->second.set(value);
      given_.push_back(name);
    }
    return true;
  }
  bool given(const std::string& name) const {
    for (auto& g : given_)
      if (g == name) return true;
    return false;
  }
  std::string help() const {
    std::ostringstream s;
    s << usage_ << "\n\nOptions:\n";
    for (auto& name : order_) {
      const Flag& f = flags_.at(name);
      std::string left = "  --" + name + (f.boolean ? "" : " " + f.metavar);
      if (left.size() < 26) left.resize(26, ' ');
      else left += "\n" + std::string(26, ' ');
      s << left << f.help;
      if (!f.boolean && !f.def.empty()) s << " (default: " << f.def << ")";
      s << "\n";
    }
    return s.str();
  }

 private:
  struct Flag {
    std::string help, metavar, def;
    std::function<void(const std::string&)> set;
    bool boolean = false;
  };
  Flags& define(const std::string& name, const std::string& help, const char* metavar,
                const std::string& def, std::function<void(const std::string&)> set) {
    order_.push_back(name);
    flags_[name] = Flag{help, metavar, def, std::move(set), false};
    return *this;
  }
  static std::string num(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
  }
  template <class V>
  static V parse(const std::string& name, const std::string& s) {
    std::istringstream in(s);
    V v{};
    in >> v;
    if (s.empty() || !in || !in.eof())
      throw UsageError("--" + name + ": '" + s + "' is not a " +
                       (std::is_floating_point_v<V> ? "number" : "whole number"));
    return v;
  }

  std::string usage_;
  std::vector<std::string> order_;
  std::map<std::string, Flag> flags_;
  std::vector<std::string> given_;
};

}  // namespace recur_examples
