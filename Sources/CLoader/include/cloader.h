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

/* Declares, in an ELF note of the binary that contains it (section .note.dlopen, owner "FDO",
 * type 0x407c0c0a, as the freedesktop.org "dlopen metadata" convention has it), a library loaded
 * with dlopen: packaging tools read it as a dependency, as they read DT_NEEDED. `json` is a
 * string literal such as
 *   "[{\"soname\":[\"libcurl.so.4\"],\"feature\":\"etcd\",\"priority\":\"required\"}]". */
#define CLOADER_DLOPEN_NOTE(variable, json)                                                   \
    __attribute__((used, section(".note.dlopen"), aligned(4))) static const struct {          \
        unsigned int name_size, description_size, type;                                        \
        char owner[4];                                                                         \
        char description[(sizeof(json) + 3) / 4 * 4];                                          \
    } variable = {4, sizeof(json), 0x407c0c0a, "FDO", json}

/* Loads the library and its symbols the first time; 1 if they are there, 0 if not (with the
 * reason in loader->error). */
int cloader_ready(struct cloader *loader);

#endif
