/* Downloads in flight, for the shutdown: they get --grace-seconds too. */
#ifndef MS_HTTP_DOWNLOAD_H
#define MS_HTTP_DOWNLOAD_H

#include <stddef.h>

struct ms_service;

/* Result downloads (GET and HEAD of /v1/jobs/{id}/result) not yet ended. */
size_t ms_download_count_in_flight(struct ms_service *service);

#endif
