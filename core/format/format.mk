# core/format: dtype conversions, the safetensors reader over mmap, the
# spooling and planned writers, their shared header and output-file rules,
# Python's float spelling for metadata
core_libmscore_a_SOURCES += \
	core/format/dtype.c core/format/dtype.h \
	core/format/header_build.c core/format/header_build.h \
	core/format/mapped_read.c core/format/mapped_read.h \
	core/format/output_file.c core/format/output_file.h \
	core/format/python_float.c core/format/python_float.h \
	core/format/safetensors.c core/format/safetensors.h \
	core/format/safetensors_header.c core/format/safetensors_header.h \
	core/format/writer.c core/format/writer_finish.c core/format/writer.h \
	core/format/writer_internal.h core/format/writer_legacy_hash.c \
	core/format/writer_names.c core/format/writer_names.h
