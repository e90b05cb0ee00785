/* Deleting large files off the paths that wait for the deletion.
 *
 * A file's blocks are freed when the last reference to its inode goes:
 * inside unlink(2) when nothing else holds it.  For a merge output of
 * gigabytes that is seconds (7 GB: 2.1-2.8 s measured on this project's
 * machines, ext4 mounted with online discard), and the deletions that
 * remove merges happen on paths somebody waits on: a /bbwm job removing
 * the web UI's older merges before it answers, result retention on the
 * event loop that starts the next job.
 *
 * The reaper removes the name at once (the caller, and any listing, sees
 * the file gone) after opening the file with O_PATH, which keeps the inode
 * and needs no permission on it; its own thread then closes that
 * descriptor, and the blocks are freed there.  Without a started reaper,
 * or with its queue full (64 descriptors), a deletion is a plain
 * unlinkat. */
#ifndef MS_FILE_REAPER_H
#define MS_FILE_REAPER_H

typedef struct ms_file_reaper ms_file_reaper;

/* Starts the reaper's thread; NULL when it cannot (out of memory or
 * threads): pass NULL on, deletions are then synchronous. */
ms_file_reaper *ms_file_reaper_start(void);

/* Closes what is still held (the blocks are freed now), joins the thread,
 * frees the reaper.  After the last caller of ms_file_reaper_unlinkat is
 * done.  NULL is fine. */
void ms_file_reaper_stop(ms_file_reaper *reaper);

/* unlinkat(directory_fd, name, 0): its return value and errno, the blocks
 * freed on the reaper's thread.  reaper may be NULL.  Not for a deletion
 * whose space the caller needs at once (the job store's reserve on a full
 * disk): that one is a plain unlinkat. */
int ms_file_reaper_unlinkat(ms_file_reaper *reaper, int directory_fd, const char *name);

/* Returns once every file handed over so far has been closed (its blocks
 * freed): a job calls it before it checks the disk for its output, so the
 * check counts the space of the files deleted before.  NULL is fine. */
void ms_file_reaper_wait_idle(ms_file_reaper *reaper);

#endif
