# serve: HTTP, job queue, job store, downloads (owned by the server engineer).
# Everything but the command entry point lives in libmsserver.a so the unit
# tests in tests/server_unit.mk can link it.
noinst_LIBRARIES += server/libmsserver.a
server_libmsserver_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(MICROHTTPD_CFLAGS) $(LIBUV_CFLAGS) $(SQLITE_CFLAGS) $(CRYPTO_CFLAGS)
server_libmsserver_a_CPPFLAGS = $(AM_CPPFLAGS) -DMS_SOURCE_DIR='"$(abs_top_srcdir)"' \
	-DMS_BUILD_DIR='"$(abs_top_builddir)"' -DMS_PKGDATA_DIR='"$(pkgdatadir)"'
server_libmsserver_a_SOURCES = \
	server/serve_options.c server/serve_options.h \
	server/clock.c server/clock.h \
	server/log.c server/log.h \
	server/http_worker.c server/http_worker.h \
	server/failpoint.c server/failpoint.h \
	server/thread_priority.c server/thread_priority.h \
	server/text.c server/text.h \
	server/printable.c server/printable.h \
	server/paths.c server/paths.h \
	server/range.c server/range.h \
	server/auth.c server/auth.h \
	server/job.c server/job.h \
	server/job_table.c server/job_table.h \
	server/job_store.c server/job_store.h \
	server/metrics.c server/metrics.h \
	server/retention.c server/retention.h \
	server/job_runner.c server/job_runner.h \
	server/job_queue.c server/job_queue.h \
	server/http_server.c server/http.h \
	server/routes.c server/routes.h \
	server/submit.c \
	server/download.c \
	server/models.c \
	server/service.c server/service.h

# Link order for anything using the server library (mergesvd, unit tests).
SERVER_LIBS = server/libmsserver.a $(MICROHTTPD_LIBS) $(LIBUV_LIBS) $(SQLITE_LIBS)

mergesvd_CPPFLAGS = $(AM_CPPFLAGS) -DMS_SOURCE_DIR='"$(abs_top_srcdir)"'
mergesvd_SOURCES += server/serve.c
