# dtype, safetensors reader, writer, inspect: add files here as they land
core_libmscore_a_SOURCES +=
