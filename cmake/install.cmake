# Install rules and the CMake package: recurTargets, recurConfig (find_dependency(Eigen3)),
# a version file (architecture-independent without recur::compiled), and a build-tree export.
include(CMakePackageConfigHelpers)

set(RECUR_CMAKE_DIR "${CMAKE_INSTALL_DATADIR}/cmake/recur")

install(TARGETS recur EXPORT recurTargets)
install(DIRECTORY include/recur DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(EXPORT recurTargets NAMESPACE recur:: DESTINATION "${RECUR_CMAKE_DIR}")
if(TARGET recur_checkpoint)
  install(TARGETS recur_checkpoint EXPORT recurCheckpointTargets)
  install(EXPORT recurCheckpointTargets NAMESPACE recur:: DESTINATION "${RECUR_CMAKE_DIR}")
  export(EXPORT recurCheckpointTargets NAMESPACE recur::
         FILE "${PROJECT_BINARY_DIR}/recurCheckpointTargets.cmake")
endif()
if(TARGET recur_mpi)
  install(TARGETS recur_mpi EXPORT recurMpiTargets)
  install(EXPORT recurMpiTargets NAMESPACE recur:: DESTINATION "${RECUR_CMAKE_DIR}")
  export(EXPORT recurMpiTargets NAMESPACE recur:: FILE "${PROJECT_BINARY_DIR}/recurMpiTargets.cmake")
endif()

if(TARGET recur_onnx)
  install(TARGETS recur_onnx EXPORT recurOnnxTargets)
  install(EXPORT recurOnnxTargets NAMESPACE recur:: DESTINATION "${RECUR_CMAKE_DIR}")
  export(EXPORT recurOnnxTargets NAMESPACE recur:: FILE "${PROJECT_BINARY_DIR}/recurOnnxTargets.cmake")
endif()

# recur::compiled (the compiled mode): built for this machine's instruction set, so the
# package is no longer architecture-independent.
set(recur_arch_independent ARCH_INDEPENDENT)
if(TARGET recur_compiled)
  install(TARGETS recur_compiled EXPORT recurCompiledTargets)
  install(EXPORT recurCompiledTargets NAMESPACE recur:: DESTINATION "${RECUR_CMAKE_DIR}")
  export(EXPORT recurCompiledTargets NAMESPACE recur::
         FILE "${PROJECT_BINARY_DIR}/recurCompiledTargets.cmake")
  set(recur_arch_independent "")
endif()

configure_package_config_file(cmake/recurConfig.cmake.in
  "${PROJECT_BINARY_DIR}/recurConfig.cmake"
  INSTALL_DESTINATION "${RECUR_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/recurConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion ${recur_arch_independent})
install(FILES "${PROJECT_BINARY_DIR}/recurConfig.cmake" "${PROJECT_BINARY_DIR}/recurConfigVersion.cmake"
  DESTINATION "${RECUR_CMAKE_DIR}")
install(FILES LICENSE README.md DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/recur")

# Build-tree export: find_package(recur) works against the build directory too.
export(EXPORT recurTargets NAMESPACE recur:: FILE "${PROJECT_BINARY_DIR}/recurTargets.cmake")
