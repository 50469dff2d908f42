# npipe_host_headers(VAR HEADER [ENTRY...]): for a cross build (MinGW), a folder in the build tree
# holding only a header-only library of the build machine, as symbolic links to it: such headers
# (nlohmann-json, Asio, CLI11) are portable, but Debian installs them in /usr/include beside
# glibc's, which a cross compiler must never see. HEADER is a path the library's users include
# (nlohmann/json.hpp); the ENTRYs are what to link from its folder (default: HEADER's first
# component, here `nlohmann`). VAR is set to the folder, or to "" when the host lacks HEADER.
function(npipe_host_headers var header)
  string(MAKE_C_IDENTIFIER "npipe_host_${header}" found_var)
  find_path(${found_var} ${header} NO_CMAKE_FIND_ROOT_PATH)
  if(NOT ${found_var})
    set(${var} "" PARENT_SCOPE)
    return()
  endif()
  set(entries ${ARGN})
  if(NOT entries)
    string(REGEX REPLACE "/.*" "" entries ${header})
  endif()
  string(MAKE_C_IDENTIFIER "${header}" folder)
  set(dir ${CMAKE_BINARY_DIR}/host-headers/${folder})
  file(MAKE_DIRECTORY ${dir})
  foreach(entry IN LISTS entries)
    if(NOT EXISTS ${dir}/${entry})
      file(CREATE_LINK ${${found_var}}/${entry} ${dir}/${entry} SYMBOLIC)
    endif()
  endforeach()
  set(${var} ${dir} PARENT_SCOPE)
endfunction()
