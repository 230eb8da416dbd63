/* See Sources/CLoader/include/cloader.h. */
#define _GNU_SOURCE
#include "cloader.h"

#include <dlfcn.h>
#include <stdio.h>

/* pthread_once runs a function without arguments: the loader being set up is handed over here,
 * under a lock, for the duration of the call. */
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cloader *current;

static void load_current(void) {
    struct cloader *loader = current;
    void *handle = dlopen(loader->library, RTLD_LAZY | RTLD_LOCAL);
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
