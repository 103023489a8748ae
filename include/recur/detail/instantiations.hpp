// The compiled mode's one list: what the library target recur::compiled instantiates (src/,
// with X = `template`) and what a user's translation unit then declares `extern template`
// (X = `extern template`, when RECUR_COMPILED is defined: recur.hpp, checkpoint.hpp and
// torch_model.hpp apply the lists at their ends). One list for both sides, so that they cannot
// drift apart. Macros only: this file includes nothing.
//
// The compiled mode is an ABI: the library and the user's units must be compiled for the same
// instruction set and threading (recur's kernels and their data layout follow -march and
// OpenMP). Each unit that declares the lists also refers to a symbol whose name says what it
// was compiled for, and the library defines the one it was compiled for: a mismatch is a link
// error naming it (e.g. `recur::detail::compiled_for_avx512_openmp`), never a silent ODR
// violation.
#pragma once

// A cell's layers, the model around them and its stream.
#define RECUR_INSTANTIATE_CELL(X, Cell, ModelT)                                                    \
  X class recur::Recurrent<Cell>;                                                                  \
  X class recur::SequenceLayer<recur::Recurrent<Cell>, Cell::Scalar, Cell::kStates>;               \
  X class recur::Bidirectional<Cell>;                                                              \
  X class recur::SequenceLayer<recur::Bidirectional<Cell>, Cell::Scalar, Cell::kStates>;           \
  X class recur::Stack<recur::Recurrent<Cell>>;                                                    \
  X class recur::SequenceLayer<recur::Stack<recur::Recurrent<Cell>>, Cell::Scalar, Cell::kStates>; \
  X class recur::Stack<recur::Bidirectional<Cell>>;                                                \
  X class recur::SequenceLayer<recur::Stack<recur::Bidirectional<Cell>>, Cell::Scalar,             \
                               Cell::kStates>;                                                     \
  X class recur::Model<Cell>;                                                                      \
  X class recur::SequenceLayer<recur::Model<Cell>, Cell::Scalar, Cell::kStates>;                   \
  X class ModelT;                                                                                  \
  X class recur::Stream<ModelT>;

// The toolkit (layers, losses, optimizers, clipping) for scalar T.
#define RECUR_INSTANTIATE_TOOLKIT(X, T)                                                       \
  X class recur::Embedding<T>;                                                                \
  X class recur::Linear<T>;                                                                   \
  X class recur::Dropout<T>;                                                                  \
  X class recur::SGD<T>;                                                                      \
  X class recur::Adam<T>;                                                                     \
  X class recur::AdamW<T>;                                                                    \
  X class recur::Adagrad<T>;                                                                  \
  X class recur::RMSprop<T>;                                                                  \
  X recur::Loss<T> recur::cross_entropy<T>(const recur::Tensor3<T>&, const recur::Tokens&,    \
                                           const std::vector<recur::Index>&, recur::Index);   \
  X double recur::clip_grad_norm<T>(const std::vector<recur::Parameter<T>>&, double, double); \
  X void recur::clip_grad_value<T>(const std::vector<recur::Parameter<T>>&, double);

// <recur/recur.hpp>: the three models and the toolkit for scalar T.
#define RECUR_INSTANTIATE_MODELS(X, T)                          \
  RECUR_INSTANTIATE_CELL(X, recur::RNNCell<T>, recur::RNN<T>)   \
  RECUR_INSTANTIATE_CELL(X, recur::LSTMCell<T>, recur::LSTM<T>) \
  RECUR_INSTANTIATE_CELL(X, recur::GRUCell<T>, recur::GRU<T>)   \
  RECUR_INSTANTIATE_TOOLKIT(X, T)

// <recur/checkpoint.hpp>: model and training-state files for scalar T.
#define RECUR_INSTANTIATE_CHECKPOINT(X, T)                                                  \
  X void recur::save_model<T>(const std::string&, const std::vector<recur::Parameter<T>>&,  \
                              const std::map<std::string, std::string>&);                   \
  X std::map<std::string, std::string> recur::load_model<T>(                                \
      const std::string&, const std::vector<recur::Parameter<T>>&,                          \
      const recur::safetensors::LoadOptions&);                                              \
  X std::map<std::string, std::string> recur::load_model<T>(                                \
      const recur::safetensors::File&, const std::vector<recur::Parameter<T>>&,             \
      const recur::safetensors::LoadOptions&);                                              \
  X void recur::save_optimizer<T>(const std::string&, recur::Optimizer<T>&,                 \
                                  const std::map<std::string, std::string>&,                \
                                  const std::vector<recur::TensorRef<T>>&);                 \
  X std::map<std::string, std::string> recur::load_optimizer<T>(                            \
      const std::string&, recur::Optimizer<T>&, const std::vector<recur::TensorRef<T>>&);   \
  X std::string recur::save_checkpoint<T>(                                                  \
      const std::string&, const std::vector<recur::Parameter<T>>&, recur::Optimizer<T>&,    \
      const std::map<std::string, std::string>&, const std::map<std::string, std::string>&, \
      const std::vector<recur::TensorRef<T>>&);                                             \
  X std::optional<std::map<std::string, std::string>> recur::load_training_state<T>(        \
      const std::string&, recur::Optimizer<T>&, const std::vector<recur::TensorRef<T>>&);

// <recur/torch_model.hpp>: a PyTorch state_dict's model (and head) for scalar T.
#define RECUR_INSTANTIATE_TORCH_MODEL(X, T)                                             \
  X recur::TorchModel<recur::RNN<T>> recur::load_torch_model<recur::RNN<T>>(            \
      const std::string&, const std::string&, const std::string&, recur::Nonlinearity); \
  X recur::TorchModel<recur::LSTM<T>> recur::load_torch_model<recur::LSTM<T>>(          \
      const std::string&, const std::string&, const std::string&, recur::Nonlinearity); \
  X recur::TorchModel<recur::GRU<T>> recur::load_torch_model<recur::GRU<T>>(            \
      const std::string&, const std::string&, const std::string&, recur::Nonlinearity);

// The name of the symbol that ties a unit to a library built the same way.
#if defined(__AVX512F__)
#define RECUR_COMPILED_ISA avx512
#elif defined(__AVX2__) && defined(__FMA__)
#define RECUR_COMPILED_ISA avx2_fma
#elif defined(__AVX__)
#define RECUR_COMPILED_ISA avx
#else
#define RECUR_COMPILED_ISA baseline
#endif
#if defined(_OPENMP)
#define RECUR_COMPILED_THREADS openmp
#else
#define RECUR_COMPILED_THREADS serial
#endif
#define RECUR_COMPILED_CAT2(a, b, c, d) a##b##_##c##d
#define RECUR_COMPILED_CAT(a, b, c, d) RECUR_COMPILED_CAT2(a, b, c, d)
#define RECUR_COMPILED_ABI \
  RECUR_COMPILED_CAT(compiled_for_, RECUR_COMPILED_ISA, RECUR_COMPILED_THREADS, )

// The scalars the library holds (RECUR_COMPILED_SCALARS in CMake: RECUR_COMPILED_FLOAT,
// RECUR_COMPILED_DOUBLE; RECUR_COMPILED alone: both), and the lists a unit applies for them:
// RECUR_EXTERN(RECUR_INSTANTIATE_MODELS) declares the models extern for each.
#if defined(RECUR_COMPILED) && !defined(RECUR_COMPILED_FLOAT) && !defined(RECUR_COMPILED_DOUBLE)
#define RECUR_COMPILED_FLOAT
#define RECUR_COMPILED_DOUBLE
#endif
#if defined(RECUR_COMPILED_FLOAT)
#define RECUR_EXTERN_FLOAT(LIST) LIST(extern template, float)
#else
#define RECUR_EXTERN_FLOAT(LIST)
#endif
#if defined(RECUR_COMPILED_DOUBLE)
#define RECUR_EXTERN_DOUBLE(LIST) LIST(extern template, double)
#else
#define RECUR_EXTERN_DOUBLE(LIST)
#endif
#define RECUR_EXTERN(LIST) RECUR_EXTERN_FLOAT(LIST) RECUR_EXTERN_DOUBLE(LIST)

// A unit compiled in the compiled mode refers to the library's symbol (once per unit).
#if defined(RECUR_COMPILED)
namespace recur::detail {
extern const int RECUR_COMPILED_ABI;
#if defined(__GNUC__)
[[maybe_unused]] __attribute__((used)) static const int* const compiled_abi = &RECUR_COMPILED_ABI;
#endif
}  // namespace recur::detail
#endif
