# container: dtype conversions, safetensors reader, streamed atomic writer and the
# output-file rules every writer shares
core_libmscore_a_SOURCES += \
	core/dtype.c core/dtype.h \
	core/header_build.c core/header_build.h \
	core/mapped_read.c core/mapped_read.h \
	core/output_file.c core/output_file.h \
	core/safetensors.c core/safetensors.h \
	core/safetensors_header.c core/safetensors_header.h \
	core/writer.c core/writer_finish.c core/writer.h core/writer_internal.h \
	core/writer_names.c core/writer_names.h
