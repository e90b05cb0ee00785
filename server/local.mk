# The mergesvd binary: the command line (server/cli) on top of libmsserver.a
# (HTTP in server/http, jobs in server/jobs, what both share here).
bin_PROGRAMS += mergesvd
mergesvd_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(MICROHTTPD_CFLAGS) $(LIBUV_CFLAGS) $(SQLITE_CFLAGS) $(CRYPTO_CFLAGS)
mergesvd_CPPFLAGS = $(AM_CPPFLAGS) -DMS_SOURCE_DIR='"$(abs_top_srcdir)"'
mergesvd_SOURCES =
mergesvd_LDADD = server/libmsserver.a $(MICROHTTPD_LIBS) $(LIBUV_LIBS) $(SQLITE_LIBS) $(API_LIBS)

# Everything but the commands lives in libmsserver.a so the unit tests in
# tests/server_unit.mk can link it.
noinst_LIBRARIES += server/libmsserver.a
server_libmsserver_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(MICROHTTPD_CFLAGS) $(LIBUV_CFLAGS) $(SQLITE_CFLAGS) $(CRYPTO_CFLAGS)
server_libmsserver_a_CPPFLAGS = $(AM_CPPFLAGS) -DMS_SOURCE_DIR='"$(abs_top_srcdir)"' \
	-DMS_BUILD_DIR='"$(abs_top_builddir)"' -DMS_PKGDATA_DIR='"$(pkgdatadir)"'
# shared by HTTP and jobs: options, the service, paths under the models
# roots, logging, clock, text, metrics, test hooks
server_libmsserver_a_SOURCES = \
	server/serve_options.c server/serve_options.h \
	server/service.c server/service.h \
	server/clock.c server/clock.h \
	server/log.c server/log.h \
	server/failpoint.c server/failpoint.h \
	server/thread_priority.c server/thread_priority.h \
	server/text.c server/text.h \
	server/printable.c server/printable.h \
	server/paths.c server/paths.h \
	server/file_reaper.c server/file_reaper.h \
	server/model_match.c server/model_match.h \
	server/metrics.c server/metrics.h

# Link order for anything using the server library (mergesvd, unit tests).
SERVER_LIBS = server/libmsserver.a $(MICROHTTPD_LIBS) $(LIBUV_LIBS) $(SQLITE_LIBS)

# requests, routes, submits, downloads, the models listing
include server/http/http.mk
# jobs: table, store, queue, runners, waiters, retention
include server/jobs/jobs.mk
# subcommands: resize, merge, inspect, serve; terminal progress
include server/cli/cli.mk
# the web UI beside the service: client, merges handed to it, pass-through
include server/webui/webui.mk
