# find_package(resock) support: the imported targets resock::resock (the shared library)
# and resock::resock_static (the static library and the system libraries the Rust runtime
# needs). Relocatable: everything is found relative to this file, installed by
# scripts/install.sh in <prefix>/lib/cmake/resock and by cargo cinstall in
# <prefix>/share/cmake/resock.

get_filename_component(_resock_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

set(_resock_libdir "")
foreach(_resock_dir lib lib64 "lib/${CMAKE_LIBRARY_ARCHITECTURE}")
  if(NOT _resock_libdir AND EXISTS "${_resock_prefix}/${_resock_dir}/libresock.a")
    set(_resock_libdir "${_resock_prefix}/${_resock_dir}")
  endif()
endforeach()
if(NOT _resock_libdir OR NOT EXISTS "${_resock_prefix}/include/resock.h")
  set(resock_FOUND FALSE)
  set(resock_NOT_FOUND_MESSAGE
      "libresock.a or resock.h is missing under ${_resock_prefix}: reinstall resock")
  return()
endif()

include(CMakeFindDependencyMacro)
find_dependency(Threads)

# The soname's major is RESOCK_ABI_VERSION - 1, as build.rs and scripts/install.sh set it.
file(STRINGS "${_resock_prefix}/include/resock.h" _resock_abi
     REGEX "^#define RESOCK_ABI_VERSION [0-9]+")
string(REGEX MATCH "[0-9]+$" _resock_abi "${_resock_abi}")
math(EXPR _resock_major "${_resock_abi} - 1")

if(NOT TARGET resock::resock)
  add_library(resock::resock SHARED IMPORTED)
  set_target_properties(resock::resock PROPERTIES
    IMPORTED_LOCATION "${_resock_libdir}/libresock.so"
    IMPORTED_SONAME "libresock.so.${_resock_major}"
    INTERFACE_INCLUDE_DIRECTORIES "${_resock_prefix}/include")
endif()

if(NOT TARGET resock::resock_static)
  add_library(resock::resock_static STATIC IMPORTED)
  set_target_properties(resock::resock_static PROPERTIES
    IMPORTED_LOCATION "${_resock_libdir}/libresock.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${_resock_prefix}/include"
    # `rustc --print native-static-libs` for a staticlib on Linux.
    INTERFACE_LINK_LIBRARIES "Threads::Threads;gcc_s;util;rt;m;dl;c")
endif()

unset(_resock_abi)
unset(_resock_major)
unset(_resock_dir)
unset(_resock_libdir)
unset(_resock_prefix)
