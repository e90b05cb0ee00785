# lora modules, rank rule, low-rank SVD, resize driver: add files here as they land
core_libmscore_a_SOURCES +=
