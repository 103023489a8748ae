// Every public class template of recur, explicitly instantiated for the scalar RECUR_SCALAR
// (every member function compiled, called or not), and the public function templates that take
// a scalar. tests/CMakeLists.txt compiles this file once for float and once for double, with the
// project's -Wall -Wextra -Wpedantic -Werror: the check that the headers compile warning-free at
// a given C++ standard. scripts/test builds it under C++20, where the whole suite runs under C++17
// (and under the sanitizers).
#include <recur/checkpoint.hpp>
#include <recur/recur.hpp>
#include <recur/stream.hpp>
#include <recur/torch_model.hpp>

#define RECUR_INSTANTIATE(T)                                                                   \
  template class recur::RNNCell<T>;                                                           \
  template class recur::LSTMCell<T>;                                                          \
  template class recur::GRUCell<T>;                                                           \
  template class recur::Recurrent<recur::RNNCell<T>>;                                         \
  template class recur::Recurrent<recur::LSTMCell<T>>;                                        \
  template class recur::Recurrent<recur::GRUCell<T>>;                                         \
  template class recur::Bidirectional<recur::LSTMCell<T>>;                                    \
  template class recur::Bidirectional<recur::GRUCell<T>>;                                     \
  template class recur::Bidirectional<recur::RNNCell<T>>;                                     \
  template class recur::Stack<recur::Recurrent<recur::LSTMCell<T>>>;                          \
  template class recur::Stack<recur::Bidirectional<recur::GRUCell<T>>>;                       \
  template class recur::Model<recur::RNNCell<T>>;                                             \
  template class recur::Model<recur::LSTMCell<T>>;                                            \
  template class recur::Model<recur::GRUCell<T>>;                                             \
  template class recur::RNN<T>;                                                               \
  template class recur::LSTM<T>;                                                              \
  template class recur::GRU<T>;                                                               \
  template class recur::Embedding<T>;                                                         \
  template class recur::Linear<T>;                                                            \
  template class recur::Dropout<T>;                                                           \
  template class recur::SGD<T>;                                                               \
  template class recur::Adam<T>;                                                              \
  template class recur::AdamW<T>;                                                               \
  template class recur::Adagrad<T>;                                                           \
  template class recur::RMSprop<T>;                                                           \
  template class recur::Stream<recur::RNN<T>>;                                                \
  template class recur::Stream<recur::LSTM<T>>;                                               \
  template class recur::Stream<recur::GRU<T>>;                                                \
  template class recur::Stream<recur::Recurrent<recur::LSTMCell<T>>>;                         \
  template class recur::Stream<recur::Stack<recur::Recurrent<recur::GRUCell<T>>>>;            \
  template recur::Loss<T> recur::cross_entropy<T>(const recur::Tensor3<T>&,                   \
                                                  const recur::Tokens&,                      \
                                                  const std::vector<recur::Index>&,           \
                                                  recur::Index);                              \
  template double recur::clip_grad_norm<T>(const std::vector<recur::Parameter<T>>&, double,  \
                                           double);                                           \
  template void recur::clip_grad_value<T>(const std::vector<recur::Parameter<T>>&, double);   \
  template recur::TorchModel<recur::LSTM<T>> recur::load_torch_model<recur::LSTM<T>>(         \
      const std::string&, const std::string&, const std::string&, recur::Nonlinearity);

RECUR_INSTANTIATE(RECUR_SCALAR)
