# The version check of find_package(resock X.Y): the version is read from the installed
# resock.h, so this file needs no generating. Before 1.0 a minor release may break the
# API, so 0.x is compatible only with the same 0.x (and a newer patch).

get_filename_component(_resock_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
file(STRINGS "${_resock_prefix}/include/resock.h" _resock_defines
     REGEX "^#define RESOCK_VERSION_(MAJOR|MINOR|PATCH) [0-9]+")
foreach(_resock_line IN LISTS _resock_defines)
  string(REGEX MATCH "RESOCK_VERSION_([A-Z]+) ([0-9]+)" _resock_match "${_resock_line}")
  set(_resock_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}")
endforeach()
set(PACKAGE_VERSION "${_resock_MAJOR}.${_resock_MINOR}.${_resock_PATCH}")

if(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT PACKAGE_FIND_VERSION_MAJOR EQUAL _resock_MAJOR)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(_resock_MAJOR EQUAL 0 AND NOT PACKAGE_FIND_VERSION_MINOR EQUAL _resock_MINOR)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()

# A 64-bit library cannot serve a 32-bit build.
if(CMAKE_SIZEOF_VOID_P AND NOT CMAKE_SIZEOF_VOID_P EQUAL 8)
  set(PACKAGE_VERSION "${PACKAGE_VERSION} (64-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
