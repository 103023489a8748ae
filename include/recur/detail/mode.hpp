// Train/eval switch and the "one backward per training forward" rule, shared by every layer
// (the recurrent front end and the toolkit's layers).
#pragma once

#include <stdexcept>
#include <string>

namespace recur::detail {

// Training mode (the default) keeps what backward needs and applies dropout; eval mode
// keeps nothing. Each backward consumes the caches of one training forward: it calls
// check_backward first and clears has_forward_ once its own arguments are validated (a
// rejected call keeps the caches).
class Mode {
 public:
  void train(bool on = true) {
    training_ = on;
    has_forward_ = false;
  }
  void eval() { train(false); }
  bool training() const { return training_; }

 protected:
  void check_backward(const char* what) {
    if (!has_forward_)
      throw std::logic_error(std::string(what) +
                             ": needs a forward() in training mode first (eval-mode "
                             "forwards keep no caches, and each backward consumes the caches of "
                             "one forward)");
  }
  bool training_ = true;
  bool has_forward_ = false;
};

}  // namespace recur::detail
