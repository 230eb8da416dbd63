/* Loading a shared library on first use: dlopen(3) it and look up a table of symbols, once per
 * process, thread-safely. CCurl and CSystemd use it, so that programs pay for libcurl and
 * libsystemd (and everything those pull in) only when they use them. */
#ifndef LOCKSMITH_CLOADER_H
#define LOCKSMITH_CLOADER_H

#include <pthread.h>
#include <stddef.h>

struct cloader_symbol {
    const char *name;
    void **slot; /* where the address goes */
};

struct cloader {
    const char *library; /* e.g. "libcurl.so.4" */
    const struct cloader_symbol *symbols;
    size_t count;
    void (*after)(struct cloader *); /* optional: runs once after a successful load */
    pthread_once_t once;
    char error[512]; /* why loading failed; "" if it did not */
    int loaded;      /* set (atomically) once the attempt is over: the fast path */
};

/* Loads the library and its symbols the first time; 1 if they are there, 0 if not (with the
 * reason in loader->error). */
int cloader_ready(struct cloader *loader);

#endif
