# The compiled mode does what it claims (tests/CMakeLists.txt, compiled_mode_extern): a user's
# unit (bench/compile_cost/six_models.cpp) compiled with RECUR_COMPILED defines none of the
# models' work — no layer, time loop, cell pass or kernel — and refers to the library's
# instead. Run as cmake -DNM=nm -DOBJECTS=a.o;b.o -P compiled_extern.cmake.
set(defined "")
set(undefined "")
foreach(obj IN LISTS OBJECTS)
  execute_process(COMMAND "${NM}" -C --defined-only "${obj}" OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${obj}")
  endif()
  string(APPEND defined "${out}")
  execute_process(COMMAND "${NM}" -C --undefined-only "${obj}" OUTPUT_VARIABLE out)
  string(APPEND undefined "${out}")
endforeach()
# The work: any of these defined in the user's unit means the extern declarations failed.
string(REGEX MATCHALL "[^\n]*recur::(Recurrent|Bidirectional|Stack|Model|SequenceLayer|LSTMCell|GRUCell|RNNCell|detail::BatchSlices|detail::UnitSplit|detail::Gemm|detail::LayerCore)[^\n]*(forward|backward|::Model\\(|_rows|step)[^\n]*"
       found "${defined}")
if(found)
  list(LENGTH found n)
  list(SUBLIST found 0 10 some)
  string(REPLACE ";" "\n" some "${some}")
  message(FATAL_ERROR "the compiled-mode unit defines ${n} of the library's functions itself, e.g.\n${some}")
endif()
# And it calls the library's (the control: the unit does use the models).
foreach(wanted "recur::SequenceLayer<recur::Model<recur::LSTMCell<double> >, double, 2l>::forward("
               "recur::SequenceLayer<recur::Model<recur::GRUCell<float> >, float, 1l>::backward(")
  string(FIND "${undefined}" "${wanted}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the compiled-mode unit does not refer to ${wanted}...) of recur::compiled")
  endif()
endforeach()
message(STATUS "the compiled-mode unit defines none of the models' work and calls the library's")
