# server/merge_service: merge jobs in the service (POST /v1/merge-models,
# /merge-models, /bbwm/merge-models): the submit, the run, the web UI's
# model names and the requests held until their job ends.
server_libmsserver_a_SOURCES += \
	server/submit.h \
	server/submit_merge.c \
	server/merge_job.c server/merge_job.h \
	server/merge_runner.c \
	server/model_match.c server/model_match.h \
	server/job_waiters.c server/job_waiters.h
