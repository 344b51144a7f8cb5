# `cmake --install` puts the SDK where a user project finds it: find_package(sluice), then
# link sluice::sdk (consumers + RunWorker) and, for tests, sluice::testing (communicators).
# The binaries go to bin/. The static libraries behind sluice::sdk are exported too (their
# names are the package's business); the package finds the same system packages this build
# used (cmake/sluice-config.cmake.in).
include(CMakePackageConfigHelpers)

add_library(sluice_sdk_package INTERFACE)
target_link_libraries(sluice_sdk_package INTERFACE sluice_worker sluice_sdk)
add_library(sluice::sdk ALIAS sluice_sdk_package)
add_library(sluice::testing ALIAS sluice_testing)

set_target_properties(sluice_sdk_package PROPERTIES EXPORT_NAME sdk)
set_target_properties(sluice_sdk PROPERTIES EXPORT_NAME api)
set_target_properties(sluice_worker PROPERTIES EXPORT_NAME worker)
set_target_properties(sluice_testing PROPERTIES EXPORT_NAME testing)
set_target_properties(sluice_common PROPERTIES EXPORT_NAME common)
set_target_properties(sluice_protos PROPERTIES EXPORT_NAME protos)
set_target_properties(sluice_layer PROPERTIES EXPORT_NAME layer)

install(TARGETS sluice_sdk_package sluice_sdk sluice_worker sluice_testing sluice_common
                sluice_protos sluice_layer
  EXPORT sluiceTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS sluice-gateway sluice-demo-worker RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/sdk/include/sluice
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/sluice)
install(EXPORT sluiceTargets NAMESPACE sluice:: DESTINATION ${config_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sluice-config.cmake.in
  ${PROJECT_BINARY_DIR}/sluice-config.cmake INSTALL_DESTINATION ${config_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sluice-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sluice-config.cmake
              ${PROJECT_BINARY_DIR}/sluice-config-version.cmake
  DESTINATION ${config_dir})
