/* See Sources/CGlibc/include/cglibc.h. */
#define _GNU_SOURCE
#include "cglibc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <sys/sysmacros.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

int cglibc_secure_execution(void) { return getauxval(AT_SECURE) != 0; }

const char *cglibc_secure_getenv(const char *name) { return secure_getenv(name); }

void cglibc_close_from(int first) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0) return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = first; fd < (max > 0 ? max : 65536); fd++) close((int)fd);
}

int cglibc_open_path(const char *path) { return open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC); }

unsigned cglibc_major(unsigned long long dev) { return major(dev); }

unsigned cglibc_minor(unsigned long long dev) { return minor(dev); }

int cglibc_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int cglibc_make_directories(const char *directory) {
    char partial[4096];
    size_t n = strlen(directory);
    if (n >= sizeof partial) return -ENAMETOOLONG;
    for (size_t i = 1; i <= n; i++) {
        if (directory[i] != '/' && directory[i] != '\0') continue;
        memcpy(partial, directory, i);
        partial[i] = '\0';
        if (mkdir(partial, 0755) != 0 && errno != EEXIST) return -errno;
    }
    return 0;
}

int cglibc_replace_file(const char *path, const char *text, int lock, int keep_open) {
    char temporary[4096];
    if (snprintf(temporary, sizeof temporary, "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof temporary) return -ENAMETOOLONG;
    unlink(temporary);
    /* Mode 0600 until it is locked: nobody else can open it (and take a lock of their own on it)
     * before the daemon's locks are on it. */
    int fd = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    size_t length = strlen(text), done = 0;
    int r = 0;
    if (lock && (flock(fd, LOCK_EX | LOCK_NB) != 0 || cglibc_write_lock(fd) < 0)) r = -errno;
    while (r == 0 && done < length) {
        ssize_t w = write(fd, text + done, length - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) r = w < 0 ? -errno : -EIO;
        else done += (size_t)w;
    }
    if (r == 0 && (fchmod(fd, 0644) != 0 || fsync(fd) != 0 || rename(temporary, path) != 0)) r = -errno;
    if (r < 0) {
        close(fd);
        unlink(temporary);
        return r;
    }
    if (keep_open) return fd;
    close(fd);
    return 0;
}

int cglibc_write_lock(int fd) {
    struct flock whole = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    return fcntl(fd, F_OFD_SETLK, &whole) == 0 ? 0 : -errno;
}

int cglibc_write_lock_held(int fd) {
    /* A read lock would conflict with a write lock only: the kernel names the conflicting lock,
     * or says F_UNLCK. Other users' flocks and read locks never count. */
    struct flock probe = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_OFD_GETLK, &probe) != 0) return -errno;
    return probe.l_type == F_WRLCK;
}

long cglibc_read_file(const char *path, long limit, int no_follow, unsigned char **ret) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (no_follow ? O_NOFOLLOW : 0));
    if (fd < 0) return -errno;
    unsigned char *data = NULL;
    long size = 0, capacity = 0;
    for (;;) {
        if (size == capacity) {
            long grown = capacity ? capacity * 2 : 4096;
            unsigned char *bigger = realloc(data, (size_t)grown + 1);
            if (!bigger) { free(data); close(fd); return -ENOMEM; }
            data = bigger, capacity = grown;
        }
        ssize_t n = read(fd, data + size, (size_t)(capacity - size));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { int e = errno; free(data); close(fd); return -e; }
        if (n == 0) break;
        size += n;
        if (size > limit) { free(data); close(fd); return -EFBIG; }
    }
    close(fd);
    *ret = data;
    return size;
}

int cglibc_spawn(char *const argv[], char *const envp[], int *ret_output) {
    if (!argv || !argv[0] || !envp || !ret_output) return -EINVAL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -errno;
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int r = posix_spawn(&pid, argv[0], &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    close(fds[1]);
    if (r != 0) {
        close(fds[0]);
        return -r;
    }
    *ret_output = fds[0];
    return pid;
}
