bin_PROGRAMS += mergesvd
mergesvd_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(MICROHTTPD_CFLAGS) $(LIBUV_CFLAGS) $(SQLITE_CFLAGS) $(CRYPTO_CFLAGS)
mergesvd_SOURCES = server/main.c server/commands.h
mergesvd_LDADD = server/libmsserver.a $(MICROHTTPD_LIBS) $(LIBUV_LIBS) $(SQLITE_LIBS) $(API_LIBS)
# resize and inspect subcommands, terminal progress
include server/cli.mk
# serve: HTTP, job queue, job store, downloads
include server/service.mk
include server/merge.mk
# merge jobs in the service
include server/merge_service.mk
