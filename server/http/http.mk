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
	server/http/models.c \
	server/http/model_index.c server/http/model_index.h server/http/model_position.c \
	server/http/query.c server/http/query.h
# slow clients (--request-timeout, room for new clients), the request head's
# limits, downloads counted for the shutdown's grace
server_libmsserver_a_SOURCES += \
	server/http/connection_guard.c server/http/connection_guard.h \
	server/http/request_limits.c server/http/request_limits.h \
	server/http/request_head.c server/http/request_head.h \
	server/http/request_gate.c server/http/request_gate.h \
	server/http/download.h
