// recur: header-only recurrent neural-network layers (RNN, LSTM, GRU) on Eigen.
// The one header users include (checkpoints: <recur/checkpoint.hpp>, see below).
#pragma once

#include "recur/types.hpp"
#include "recur/threads.hpp"
#include "recur/sequence_layer.hpp"
#include "recur/cells/contract.hpp"
#include "recur/cells/rnn.hpp"
#include "recur/cells/lstm.hpp"
#include "recur/cells/gru.hpp"
#include "recur/recurrent.hpp"
#include "recur/bidirectional.hpp"
#include "recur/stack.hpp"
#include "recur/models.hpp"
#include "recur/stream.hpp"
#include "recur/layers.hpp"
#include "recur/loss.hpp"
#include "recur/parameters.hpp"
#include "recur/optim.hpp"
// Checkpoints (safetensors) need nlohmann/json: #include <recur/checkpoint.hpp> and link
// recur::checkpoint.

#define RECUR_VERSION_MAJOR 0
#define RECUR_VERSION_MINOR 1
#define RECUR_VERSION_PATCH 0

// The compiled mode (CMake target recur::compiled defines RECUR_COMPILED): the models, their
// streams and the toolkit for float and double are instantiated in the library, not here.
#if defined(RECUR_COMPILED)
#include "recur/detail/instantiations.hpp"
RECUR_EXTERN(RECUR_INSTANTIATE_MODELS)
#endif
