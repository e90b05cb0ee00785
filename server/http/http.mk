# server/http: libmicrohttpd, routes, auth, submits (resize, merge, the web UI
# extension's body), downloads with Range, the models listing
server_libmsserver_a_SOURCES += \
	server/http/http_server.c server/http/http.h \
	server/http/http_worker.c server/http/http_worker.h \
	server/http/routes.c server/http/routes.h \
	server/http/auth.c server/http/auth.h \
	server/http/range.c server/http/range.h \
	server/http/request_values.c server/http/request_values.h \
	server/http/submit.c server/http/submit.h server/http/submit_merge.c \
	server/http/download.c \
	server/http/models.c
