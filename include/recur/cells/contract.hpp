// The cell contract: what a cell provides so that Recurrent<Cell> (and with it directions,
// stacking, lengths, carried state, streaming and the fast products) can run it. The one
// place it is written down; Recurrent<Cell> checks it when it is instantiated, and a cell
// that breaks it fails to compile with a message that names the missing member.
//
// A cell computes one time step for a block of rows (samples). The layer hands it
//   a = x W_ih^T + b_ih   (the input part, precomputed for every step)   [rows, G*H]
//   r = h W_hh^T + b_hh   (the recurrent part of this step)               [rows, G*H]
// with the gates as G column blocks of width H, in the cell's (PyTorch's) order.
//
//   using Scalar;                          float or double
//   static constexpr Index kGates;         G >= 1: weight_ih is [G*H, input], weight_hh [G*H, H]
//   static constexpr Index kStates;        1 (h) or 2 (h, c); state 0 is the output h
//   static constexpr Index kExtra;         >= 0: extra per-step cache columns, in units of H
//   static constexpr bool kSameGateGrads;  true when d loss / d r == d loss / d a (the cell
//                                          then writes only d a)
//   using StatesIn  = std::array<ConstRows<Scalar>, kStates>;
//   using StatesOut = std::array<Rows<Scalar>, kStates>;
//
//   void forward_step(Rows a, Rows r, const StatesIn& prev, StatesOut next, Rows extra) const
//       writes the next states; overwrites a with what backward needs (e.g. the activations)
//       and fills extra [rows, kExtra*H]; r is scratch.
//   void backward_step(Rows a, Rows dr, const StatesIn& prev, ConstRows extra,
//                      const StatesIn& dnext, StatesOut dprev) const
//       given d loss / d next (dnext), writes with `=`: d loss / d a over a, d loss / d r
//       into dr (unless kSameGateGrads), and dprev = the part of d loss / d prev that does
//       not pass through W_hh (the layer adds dr W_hh to dprev[0]).
//
// Optional members, for cells whose shape depends on their options (the built-in cells'
// variants: peepholes, cell clip, GRU's reset gate before the product):
//
//   Index extra_columns() const;           the extra cache columns in units of H (instead
//                                          of kExtra, which is then an upper bound)
//   std::vector<CellParameter> cell_parameters(Index hidden) const;
//   void bind_parameters(const Scalar* values);   (with the backward_step below)
//   void backward_step(Rows a, Rows dr, const StatesIn& prev, ConstRows extra,
//                      const StatesIn& dnext, StatesOut dprev, Scalar* grads) const
//       the backward_step of a cell with parameters of its own (cell_parameters), which the
//       layer stores after bias_hh, names (+ its suffix), initialises and binds the cell to
//       before each call: as above, and it also ADDS these rows' gradients of its parameters
//       into grads (their layout; one buffer per thread, summed after the time loop), in the
//       same pass, while the rows are in cache. On a padded step (a sample past its length)
//       the layer passes dnext = 0, so such rows add nothing (a step's gradients are linear
//       in dnext). grads is null when cell_parameters() is empty.
//   bool same_gate_grads() const;          kSameGateGrads decided at run time (a variant
//                                          that makes d r differ from d a: layer norm)
//   Index late_gates() const;              L >= 0 gate blocks (the last L) whose recurrent
//                                          product multiplies a vector v the cell computes
//                                          from the others (GRU, reset before the product:
//                                          v = r * h), instead of h. When L > 0:
//   void early_step(Rows a, Rows r, const StatesIn& prev, Rows extra) const
//       r's first (G-L)*H columns hold the early product; writes v into extra's first H
//       columns (and may write a). The layer then computes r's last L*H columns
//       = v W_late^T + b_late and calls forward_step.
//   void backward_late(Rows a, Rows dr, const StatesIn& prev, ConstRows extra, ConstRows dv,
//                      StatesOut dprev) const
//       after backward_step (which writes the late columns of dr) and dv = dr_late W_late:
//       completes da and dr and adds to dprev. The layer then adds dr_early W_early to
//       dprev[0]; the weight gradient of the late rows is dr_late^T V.
//   Such a cell runs on whole rows (not split by units across threads).
//   bool sums_gates() const;               true: forward_step reads a and r only as a + r,
//                                          and accepts r with 0 columns, a then holding
//                                          the sum (the layer's inference may then compute
//                                          both products as one: [x h] [W_ih W_hh]^T).
//
// Both are const and must not allocate: the threads of a layer call them concurrently on
// disjoint rows, and on a contiguous range of units (H then being the range's width) when
// one sample is split across threads. Rows views may have a row stride. Cells are objects
// (RNNCell holds its nonlinearity), dispatched statically. tests/custom_cell.hpp is a cell
// written outside recur; recur/cells/chunks.hpp has the helpers the built-in cells use to
// fuse their gate math.
#pragma once

#include <array>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "recur/types.hpp"

namespace recur {
/// How reset_parameters() initialises a parameter a cell owns.
enum class ParameterInit { Uniform, Zeros, Ones };
/// A parameter a cell owns beyond its layer's four (recur/cells/contract.hpp): its name (the
/// layer appends its suffix, e.g. `_l0`), its shape and how it is initialised.
struct CellParameter {
  std::string name;
  std::vector<Index> shape;
  ParameterInit init = ParameterInit::Uniform;
};
}  // namespace recur

namespace recur::detail {

template <class C, class = void>
struct has_scalar : std::false_type {};
template <class C>
struct has_scalar<C, std::void_t<typename C::Scalar>> : std::true_type {};
template <class C, class = void>
struct has_gates : std::false_type {};
template <class C>
struct has_gates<C, std::void_t<decltype(C::kGates)>> : std::true_type {};
template <class C, class = void>
struct has_states : std::false_type {};
template <class C>
struct has_states<C, std::void_t<decltype(C::kStates)>> : std::true_type {};
template <class C, class = void>
struct has_extra : std::false_type {};
template <class C>
struct has_extra<C, std::void_t<decltype(C::kExtra)>> : std::true_type {};
template <class C, class = void>
struct has_same_gate_grads : std::false_type {};
template <class C>
struct has_same_gate_grads<C, std::void_t<decltype(C::kSameGateGrads)>> : std::true_type {};

// Scalar and kStates when the cell has them, stand-ins otherwise (so that a cell missing
// them reaches the contract's messages instead of an error in a base class).
template <class C, bool = has_scalar<C>::value>
struct cell_scalar {
  using type = float;
};
template <class C>
struct cell_scalar<C, true> {
  using type = typename C::Scalar;
};
template <class C>
using cell_scalar_t = typename cell_scalar<C>::type;
template <class C>
constexpr Index cell_states() {
  if constexpr (has_states<C>::value)
    return (C::kStates == 1 || C::kStates == 2) ? static_cast<Index>(C::kStates) : 1;
  else
    return 1;
}

template <class C>
using StatesInOf =
    std::array<ConstRows<cell_scalar_t<C>>, static_cast<std::size_t>(cell_states<C>())>;
template <class C>
using StatesOutOf = std::array<Rows<cell_scalar_t<C>>, static_cast<std::size_t>(cell_states<C>())>;

template <class C, class = void>
struct has_forward_step : std::false_type {};
template <class C>
struct has_forward_step<
    C, std::void_t<decltype(std::declval<const C&>().forward_step(
           std::declval<Rows<cell_scalar_t<C>>>(), std::declval<Rows<cell_scalar_t<C>>>(),
           std::declval<const StatesInOf<C>&>(), std::declval<StatesOutOf<C>>(),
           std::declval<Rows<cell_scalar_t<C>>>()))>> : std::true_type {};
// backward_step, without or with the cell's parameter gradients (its last argument).
template <class Void, class C, class... Grads>
struct backward_step_with : std::false_type {};
template <class C, class... Grads>
struct backward_step_with<
    std::void_t<decltype(std::declval<const C&>().backward_step(
        std::declval<Rows<cell_scalar_t<C>>>(), std::declval<Rows<cell_scalar_t<C>>>(),
        std::declval<const StatesInOf<C>&>(), std::declval<ConstRows<cell_scalar_t<C>>>(),
        std::declval<const StatesInOf<C>&>(), std::declval<StatesOutOf<C>>(),
        std::declval<Grads>()...))>,
    C, Grads...> : std::true_type {};
template <class C>
using has_backward_step = backward_step_with<void, C>;
template <class C>
using has_backward_step_grads = backward_step_with<void, C, cell_scalar_t<C>*>;

// The optional members.
template <class C, class = void>
struct has_extra_columns : std::false_type {};
template <class C>
struct has_extra_columns<C, std::void_t<decltype(std::declval<const C&>().extra_columns())>>
    : std::true_type {};
template <class C, class = void>
struct has_cell_parameters : std::false_type {};
template <class C>
struct has_cell_parameters<C,
                           std::void_t<decltype(std::declval<const C&>().cell_parameters(Index{}))>>
    : std::true_type {};
template <class C, class = void>
struct has_same_gate_grads_member : std::false_type {};
template <class C>
struct has_same_gate_grads_member<C,
                                  std::void_t<decltype(std::declval<const C&>().same_gate_grads())>>
    : std::true_type {};
template <class C, class = void>
struct has_late_gates : std::false_type {};
template <class C>
struct has_late_gates<C, std::void_t<decltype(std::declval<const C&>().late_gates())>>
    : std::true_type {};

template <class C, class = void>
struct has_sums_gates : std::false_type {};
template <class C>
struct has_sums_gates<C, std::void_t<decltype(std::declval<const C&>().sums_gates())>>
    : std::true_type {};

/// Extra cache columns (units of H), late gate blocks and owned parameters of a cell.
template <class C>
Index extra_columns(const C& c) {
  if constexpr (has_extra_columns<C>::value)
    return c.extra_columns();
  else
    return C::kExtra;
}
template <class C>
bool sums_gates(const C& c) {
  if constexpr (has_sums_gates<C>::value)
    return c.sums_gates();
  else
    return false;
}
template <class C>
bool same_gate_grads(const C& c) {
  if constexpr (has_same_gate_grads_member<C>::value)
    return c.same_gate_grads();
  else
    return C::kSameGateGrads;
}
template <class C>
Index late_gates(const C& c) {
  if constexpr (has_late_gates<C>::value)
    return c.late_gates();
  else
    return 0;
}
template <class C>
std::vector<CellParameter> cell_parameters(const C& c, Index hidden) {
  if constexpr (has_cell_parameters<C>::value)
    return c.cell_parameters(hidden);
  else
    return {};
}
template <class C, class T>
void bind_parameters(C& c, const T* values) {
  if constexpr (has_cell_parameters<C>::value) c.bind_parameters(values);
}
inline Index parameter_size(const CellParameter& p) {
  Index n = 1;
  for (Index d : p.shape) n *= d;
  return n;
}

template <class C>
constexpr bool constants_valid() {
  if constexpr (has_gates<C>::value && has_states<C>::value && has_extra<C>::value)
    return C::kGates >= 1 && (C::kStates == 1 || C::kStates == 2) && C::kExtra >= 0;
  else
    return true;  // (the missing member is reported on its own)
}

/// True for a type that meets the cell contract.
template <class C>
constexpr bool is_cell_v =
    (has_scalar<C>::value && has_gates<C>::value && has_states<C>::value && has_extra<C>::value &&
     has_same_gate_grads<C>::value && constants_valid<C>() &&
     std::is_floating_point_v<cell_scalar_t<C>> && has_forward_step<C>::value &&
     (has_cell_parameters<C>::value ? has_backward_step_grads<C>::value
                                    : has_backward_step<C>::value));

// One static_assert per clause of the contract, each naming what is missing.
template <class C>
constexpr bool check_cell() {
  static_assert(has_scalar<C>::value,
                "recur cell contract: the cell has no member type `Scalar` (float or double); "
                "see recur/cells/contract.hpp");
  static_assert(std::is_floating_point_v<cell_scalar_t<C>>,
                "recur cell contract: the cell's `Scalar` must be float or double");
  static_assert(has_gates<C>::value,
                "recur cell contract: the cell has no `static constexpr Index kGates` (gate "
                "blocks of weight_ih and weight_hh); see recur/cells/contract.hpp");
  static_assert(has_states<C>::value,
                "recur cell contract: the cell has no `static constexpr Index kStates` (1: h, "
                "2: h and c); see recur/cells/contract.hpp");
  static_assert(has_extra<C>::value,
                "recur cell contract: the cell has no `static constexpr Index kExtra` (extra "
                "cache columns per step, in units of H; 0 for none); see "
                "recur/cells/contract.hpp");
  static_assert(has_same_gate_grads<C>::value,
                "recur cell contract: the cell has no `static constexpr bool kSameGateGrads` "
                "(true when d loss / d r equals d loss / d a); see recur/cells/contract.hpp");
  static_assert(constants_valid<C>(),
                "recur cell contract: need kGates >= 1, kStates 1 or 2 and kExtra >= 0");
  static_assert(has_forward_step<C>::value,
                "recur cell contract: the cell has no `void forward_step(Rows a, Rows r, const "
                "StatesIn& prev, StatesOut next, Rows extra) const`; see "
                "recur/cells/contract.hpp");
  static_assert(has_cell_parameters<C>::value || has_backward_step<C>::value,
                "recur cell contract: the cell has no `void backward_step(Rows a, Rows dr, "
                "const StatesIn& prev, ConstRows extra, const StatesIn& dnext, StatesOut "
                "dprev) const`; see recur/cells/contract.hpp");
  static_assert(!has_cell_parameters<C>::value || has_backward_step_grads<C>::value,
                "recur cell contract: a cell with cell_parameters() takes their gradients in "
                "`void backward_step(Rows a, Rows dr, const StatesIn& prev, ConstRows extra, "
                "const StatesIn& dnext, StatesOut dprev, Scalar* grads) const`; see "
                "recur/cells/contract.hpp");
  return true;
}

}  // namespace recur::detail

namespace recur {
#if defined(__cpp_concepts) && __cpp_concepts >= 201907L
/// C++20: the cell contract as a concept (recur/cells/contract.hpp).
template <class C>
concept RecurrentCell = detail::is_cell_v<C>;
#endif
}  // namespace recur
