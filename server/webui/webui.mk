# server/webui: the web UI beside the service (serve --webui): its client
# (libcurl), merges handed to it (destination "memory", load_into_webui) and
# the pass-through of /sdapi and /bbwm requests.
server_libmsserver_a_SOURCES += \
	server/webui/webui_client.c server/webui/webui_client.h \
	server/webui/webui_load.c server/webui/webui_load.h \
	server/webui/passthrough.c server/webui/passthrough.h
server_libmsserver_a_CFLAGS += $(CURL_CFLAGS)
mergesvd_CFLAGS += $(CURL_CFLAGS)
mergesvd_LDADD += $(CURL_LIBS)
SERVER_LIBS += $(CURL_LIBS)
