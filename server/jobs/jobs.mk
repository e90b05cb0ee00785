# server/jobs: the job object, its table and SQLite store, the libuv queue,
# the resize and merge runners, requests held until their job ends, retention
server_libmsserver_a_SOURCES += \
	server/jobs/job.c server/jobs/job.h \
	server/jobs/job_table.c server/jobs/job_table.h \
	server/jobs/job_store.c server/jobs/job_store.h \
	server/jobs/store_reserve.c server/jobs/store_reserve.h \
	server/jobs/job_queue.c server/jobs/job_queue.h \
	server/jobs/job_runner.c server/jobs/job_runner.h \
	server/jobs/merge_job.c server/jobs/merge_job.h \
	server/jobs/merge_runner.c \
	server/jobs/merge_recovery.c server/jobs/merge_recovery.h \
	server/jobs/job_waiters.c server/jobs/job_waiters.h \
	server/jobs/retention.c server/jobs/retention.h
