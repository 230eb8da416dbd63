/* See include/cglibc.h. */
#define _GNU_SOURCE
#include "cglibc.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/sysmacros.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
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
