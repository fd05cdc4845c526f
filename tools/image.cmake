# Optional image decoders of the kiln command (`kiln run --input cat.jpg`):
# JPEG through libjpeg (Debian: libjpeg62-turbo-dev) and PNG through libpng
# (libpng-dev).  Found when installed; without them kiln still builds and an
# image input fails with "built without JPEG support".  Turn one off with
# -DKILN_WITH_JPEG=OFF / -DKILN_WITH_PNG=OFF.
#
# Use: include(tools/image.cmake) after add_executable(kiln ...).  Included
# before the kiln target exists (e.g. through CMAKE_PROJECT_INCLUDE), it
# defers itself to the end of the top-level CMakeLists.txt.
option(KILN_WITH_JPEG "Decode JPEG images in the kiln command (libjpeg)" ON)
option(KILN_WITH_PNG "Decode PNG images in the kiln command (libpng)" ON)

function(kiln_tools_images)
  if(KILN_WITH_JPEG)
    find_package(JPEG QUIET)
    if(JPEG_FOUND)
      target_link_libraries(kiln PRIVATE JPEG::JPEG)
      target_compile_definitions(kiln PRIVATE KILN_HAVE_JPEG=1)
    endif()
  endif()
  if(KILN_WITH_PNG)
    find_package(PNG QUIET)
    if(PNG_FOUND)
      target_link_libraries(kiln PRIVATE PNG::PNG)
      target_compile_definitions(kiln PRIVATE KILN_HAVE_PNG=1)
    endif()
  endif()
  set(_have "")
  if(JPEG_FOUND AND KILN_WITH_JPEG)
    list(APPEND _have JPEG)
  endif()
  if(PNG_FOUND AND KILN_WITH_PNG)
    list(APPEND _have PNG)
  endif()
  if(_have)
    message(STATUS "kiln command image decoders: ${_have}")
  else()
    message(STATUS "kiln command image decoders: none (install libjpeg62-turbo-dev and libpng-dev)")
  endif()
endfunction()

if(TARGET kiln)
  kiln_tools_images()
else()
  cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL kiln_tools_images)
endif()
