/* See Sources/CLoader/include/cloader.h. */
#define _GNU_SOURCE
#include "cloader.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* pthread_once runs a function without arguments: the loader being set up is handed over here,
 * under a lock, for the duration of the call. */
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cloader *current;

/* Whether anything in the process takes a symbol's place ahead of the libraries that define it: a
 * preloaded object (LD_PRELOAD, /etc/ld.so.preload: valgrind, a user's allocator or shim), or an
 * allocator linked into the program (ASan, TSan, jemalloc), seen as malloc not being libc's. */
static int interposed(void) {
    const char *preload = getenv("LD_PRELOAD");
    if (preload && *preload) return 1;
    if (access("/etc/ld.so.preload", F_OK) == 0) return 1;
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (!libc) return 1;
    void *own = dlsym(libc, "malloc");
    dlclose(libc);
    return own == NULL || own != dlsym(RTLD_DEFAULT, "malloc");
}

/* RTLD_DEEPBIND when nothing is interposed: the loaded library and its own libraries then look
 * their symbols up in their own scope first, not first in the program's (the program, liblocksmith,
 * libm, libc, ld.so) and then theirs. For libcurl's 30 libraries that is 1.9 million instructions
 * of relocation fewer, about 0.5 ms of every locksmithctl command that talks to etcd (issue 29,
 * docs/decisions.md). With an interposer it stays off: it would bind those libraries past it (to
 * libc's malloc under ASan or valgrind, which refuses it, or past a user's preloaded allocator). */
static int open_flags(void) {
    static int flags = -1;
    if (flags < 0) flags = RTLD_LAZY | RTLD_LOCAL | (interposed() ? 0 : RTLD_DEEPBIND);
    return flags;
}

static void load_current(void) {
    struct cloader *loader = current;
    void *handle = dlopen(loader->library, open_flags());
    if (!handle) {
        snprintf(loader->error, sizeof loader->error, "cannot load %s: %s", loader->library, dlerror());
        return;
    }
    for (size_t i = 0; i < loader->count; i++) {
        *loader->symbols[i].slot = dlsym(handle, loader->symbols[i].name);
        if (!*loader->symbols[i].slot) {
            snprintf(loader->error, sizeof loader->error, "%s has no %s", loader->library, loader->symbols[i].name);
            return;
        }
    }
    if (loader->after) loader->after(loader);
}

static void load_current_and_mark(void) {
    load_current();
    __atomic_store_n(&current->loaded, 1, __ATOMIC_RELEASE);
}

int cloader_ready(struct cloader *loader) {
    if (!__atomic_load_n(&loader->loaded, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&current_lock);
        current = loader;
        pthread_once(&loader->once, load_current_and_mark);
        pthread_mutex_unlock(&current_lock);
    }
    return loader->error[0] == 0;
}
