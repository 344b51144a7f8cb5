# Writes a C++ source defining `const std::string_view NAME` (declared in HEADER) that holds
# the bytes of INPUT as a raw string literal. Run at build time:
#   cmake -DINPUT=file -DOUTPUT=file.cc -DHEADER=demo/x.h -DNAME=sluice::demo::kX -P embed.cmake
foreach(var INPUT OUTPUT HEADER NAME)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed.cmake: -D${var}=... is required")
  endif()
endforeach()
file(READ "${INPUT}" content)
set(delimiter "sluice_embed")
string(FIND "${content}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "embed.cmake: ${INPUT} contains the raw string's end, )${delimiter}\"")
endif()
string(FIND "${content}" "\r" carriage_return)
if(NOT carriage_return EQUAL -1)
  # A compiler may read CR LF in a source as LF, which would change the bytes.
  message(FATAL_ERROR "embed.cmake: ${INPUT} has CR characters; use LF line ends")
endif()
file(WRITE "${OUTPUT}" "// Generated from ${INPUT} by embed.cmake; do not edit.
#include \"${HEADER}\"

const std::string_view ${NAME} = R\"${delimiter}(${content})${delimiter}\";
")
