/* The few glibc facilities Swift's Glibc module does not import. */
#ifndef LOCKSMITH_CGLIBC_H
#define LOCKSMITH_CGLIBC_H

/* 1 under secure execution (a setuid or setgid program, or one with file capabilities: the
 * kernel's AT_SECURE), when the environment belongs to a less privileged caller; 0 otherwise. */
int cglibc_secure_execution(void);

/* secure_getenv(3): NULL under secure execution. */
const char *cglibc_secure_getenv(const char *name);

/* Closes every descriptor from `first` up (close_range(2), else one by one). */
void cglibc_close_from(int first);

/* open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC): a descriptor that names a file without opening
 * it (no device driver is called, a FIFO is not opened), or -1 with errno. */
int cglibc_open_path(const char *path);

/* The major and minor numbers of a device number (st_rdev). */
unsigned cglibc_major(unsigned long long dev);
unsigned cglibc_minor(unsigned long long dev);

/* Starts the program at path argv[0] with exactly envp: standard input from /dev/null, standard
 * output and error into a new pipe whose reading end (O_CLOEXEC) goes to *ret_output, in a
 * process group of its own (so that it and its children can be stopped together), with an empty
 * signal mask and every signal at its default action. Returns the process id, or -errno. */
int cglibc_spawn(char *const argv[], char *const envp[], int *ret_output);

/* pipe2(fds, O_CLOEXEC). */
int cglibc_pipe_cloexec(int fds[2]);

/* mkdir -p with mode 0755: creates `directory` and its missing parents. 0, or -errno. */
int cglibc_make_directories(const char *directory);

/* Replaces `path` with `text` (mode 0644) atomically: `path`.<pid>.tmp is created new (O_EXCL,
 * which also refuses a symbolic link in its place; a leftover of a crashed run is removed
 * first) with mode 0600, locked if `lock` (flock(LOCK_EX|LOCK_NB), the original's convention,
 * and cglibc_write_lock, the one only a writer can take), written, made 0644, synced and
 * renamed over `path`.
 * Returns the new file's descriptor when `keep_open` (the lock stays with it), else 0; -errno on
 * failure, with nothing left behind. */
int cglibc_replace_file(const char *path, const char *text, int lock, int keep_open);

/* Takes an open-file-description write lock (F_OFD_SETLK, F_WRLCK) on the whole file: it needs a
 * descriptor open for writing, so only who may write the file can hold it, and it stays with the
 * open file (and its copies across fork) until the last copy is closed. 0, or -errno. */
int cglibc_write_lock(int fd);

/* Whether anyone holds a write lock on the file open at `fd` (any mode of open), asked of the
 * kernel for this file alone (F_OFD_GETLK): 1 or 0, or -errno. */
int cglibc_write_lock_held(int fd);

/* Reads the whole file `path` (not following a final symbolic link when `no_follow`) into a
 * malloc()ed buffer: its size, or -errno (-EFBIG past `limit` bytes). */
long cglibc_read_file(const char *path, long limit, int no_follow, unsigned char **ret);

#endif
