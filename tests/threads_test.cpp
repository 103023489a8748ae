// Threads: every threaded path equals a single-threaded run.
#include "support.hpp"

namespace recur::test {
namespace {



}  // namespace
}  // namespace recur::test
