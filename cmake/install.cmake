# Install rules: the shared library (SONAME libaidb.so.<ABI> plus symlinks), the
# static library, the public header, a pkg-config file and a CMake package
# (find_package(aidb) -> aidb::aidb, aidb::aidb_static).
#
# The shared library is exported with install(EXPORT): its engine dependencies
# are PRIVATE, so consumers see nothing but the header directory. The static
# library's link interface is the engine's third-party targets (Cap'n Proto,
# simdjson, ISA-L, ...), which are not ours to export; aidbConfig.cmake
# therefore declares aidb::aidb_static itself as an IMPORTED target with the
# same third-party link interface, found again with find_dependency.

include(CMakePackageConfigHelpers)

set(AIDB_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/aidb)

install(TARGETS aidb
  EXPORT aidbTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    COMPONENT runtime NAMELINK_COMPONENT devel
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(TARGETS aidb_static
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT devel)

install(FILES ${PROJECT_BINARY_DIR}/include/aidb.h  # generated from aidb.h.in
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT devel)

# --- pkg-config -------------------------------------------------------------
# Paths are made relative to ${prefix} when they live under it, so the file
# stays right when the tree is relocated (e.g. `cmake --install --prefix X`).
set(AIDB_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(AIDB_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(AIDB_PC_LIBDIR "\${exec_prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(AIDB_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(AIDB_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# The prefix is written at install time (--prefix may differ from the
# configure-time CMAKE_INSTALL_PREFIX), hence the placeholder substituted by
# the install(CODE) below.
set(AIDB_PC_PREFIX "@AIDB_INSTALL_PREFIX@")
configure_file(${PROJECT_SOURCE_DIR}/pkgconfig/aidb.pc.in
  ${PROJECT_BINARY_DIR}/pkgconfig/aidb.pc.tmpl @ONLY)
install(CODE "
  set(AIDB_INSTALL_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${PROJECT_BINARY_DIR}/pkgconfig/aidb.pc.tmpl\"
                 \"${PROJECT_BINARY_DIR}/pkgconfig/aidb.pc\" @ONLY)
" COMPONENT devel)
install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/aidb.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT devel)

# --- CMake package ------------------------------------------------------------
install(EXPORT aidbTargets
  NAMESPACE aidb::
  FILE aidbTargets.cmake
  DESTINATION ${AIDB_CMAKE_INSTALL_DIR} COMPONENT devel)

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/aidbConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/aidbConfig.cmake
  INSTALL_DESTINATION ${AIDB_CMAKE_INSTALL_DIR}
  PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/cmake/aidbConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  # ABI major 0: every minor release may break; after 1.0, SameMajorVersion.
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/cmake/aidbConfig.cmake
  ${PROJECT_BINARY_DIR}/cmake/aidbConfigVersion.cmake
  DESTINATION ${AIDB_CMAKE_INSTALL_DIR} COMPONENT devel)
