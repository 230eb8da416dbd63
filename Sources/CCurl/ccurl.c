/* See Sources/CCurl/include/ccurl.h: libcurl through dlopen(3), with typed wrappers. */
#define _GNU_SOURCE
#include "ccurl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloader.h"

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    char *(*version)(void);
} api;

extern char **environ;

/* libcurl opens the file that SSLKEYLOGFILE names when it is initialized (creating it, as whoever
 * runs us: root in the daemon, or in a PAM module under su) and appends every TLS secret to it.
 * The library never wants that: the variable is hidden from curl_global_init, which is the one
 * moment libcurl reads it. The filtered copy of the environment is kept for good, as another
 * thread may be reading it; it is made at most once per process, and only when the variable is
 * set. */
static void after_load(struct cloader *loader) {
    static const char name[] = "SSLKEYLOGFILE=";
    char **saved = environ, **filtered = NULL;
    if (getenv("SSLKEYLOGFILE")) {
        size_t n = 0, k = 0;
        while (saved[n]) n++;
        if (!(filtered = calloc(n + 1, sizeof *filtered))) {
            snprintf(loader->error, sizeof loader->error, "out of memory");
            return;
        }
        for (size_t i = 0; i < n; i++)
            if (strncmp(saved[i], name, sizeof name - 1) != 0) filtered[k++] = saved[i];
        environ = filtered;
    }
    CURLcode r = api.global_init(CURL_GLOBAL_ALL);
    if (filtered) environ = saved;
    if (r != CURLE_OK) snprintf(loader->error, sizeof loader->error, "curl_global_init failed");
}

static const struct cloader_symbol symbols[] = {
    {"curl_global_init", (void **)&api.global_init},
    {"curl_easy_init", (void **)&api.easy_init},
    {"curl_easy_cleanup", (void **)&api.easy_cleanup},
    {"curl_easy_reset", (void **)&api.easy_reset},
    {"curl_easy_perform", (void **)&api.easy_perform},
    {"curl_easy_strerror", (void **)&api.easy_strerror},
    {"curl_easy_setopt", (void **)&api.easy_setopt},
    {"curl_easy_getinfo", (void **)&api.easy_getinfo},
    {"curl_slist_append", (void **)&api.slist_append},
    {"curl_slist_free_all", (void **)&api.slist_free_all},
    {"curl_version", (void **)&api.version},
};

CLOADER_DLOPEN_NOTE(dlopen_note_libcurl,
                    "[{\"feature\":\"etcd\",\"description\":\"HTTP to etcd: every semaphore operation\","
                    "\"priority\":\"required\",\"soname\":[\"libcurl.so.4\"]}]");

static struct cloader loader = {"libcurl.so.4", symbols, sizeof symbols / sizeof symbols[0], after_load, PTHREAD_ONCE_INIT, ""};

static int ready(void) { return cloader_ready(&loader); }

const char *ccurl_load_error(void) { return loader.error; }
int ccurl_load(void) { return ready(); }
const char *ccurl_version(void) { return ready() ? api.version() : loader.error; }

CURL *ccurl_easy_init(void) { return ready() ? api.easy_init() : NULL; }
void ccurl_easy_cleanup(CURL *h) { if (h && ready()) api.easy_cleanup(h); }
void ccurl_easy_reset(CURL *h) { if (ready()) api.easy_reset(h); }
CURLcode ccurl_easy_perform(CURL *h) { return ready() ? api.easy_perform(h) : CURLE_FAILED_INIT; }
const char *ccurl_easy_strerror(CURLcode code) { return ready() ? api.easy_strerror(code) : loader.error; }
struct curl_slist *ccurl_slist_append(struct curl_slist *list, const char *text) {
    return ready() ? api.slist_append(list, text) : NULL;
}
void ccurl_slist_free_all(struct curl_slist *list) { if (list && ready()) api.slist_free_all(list); }

CURLcode ccurl_setopt_long(CURL *h, CURLoption o, long v) { return ready() ? api.easy_setopt(h, o, v) : CURLE_FAILED_INIT; }
CURLcode ccurl_setopt_string(CURL *h, CURLoption o, const char *v) { return ready() ? api.easy_setopt(h, o, v) : CURLE_FAILED_INIT; }
CURLcode ccurl_setopt_pointer(CURL *h, CURLoption o, void *v) { return ready() ? api.easy_setopt(h, o, v) : CURLE_FAILED_INIT; }
CURLcode ccurl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return ready() ? api.easy_setopt(h, o, v) : CURLE_FAILED_INIT; }
CURLcode ccurl_setopt_write_function(CURL *h, size_t (*f)(char *, size_t, size_t, void *)) {
    return ready() ? api.easy_setopt(h, CURLOPT_WRITEFUNCTION, f) : CURLE_FAILED_INIT;
}
CURLcode ccurl_setopt_header_function(CURL *h, size_t (*f)(char *, size_t, size_t, void *)) {
    return ready() ? api.easy_setopt(h, CURLOPT_HEADERFUNCTION, f) : CURLE_FAILED_INIT;
}
CURLcode ccurl_setopt_xferinfo_function(CURL *h, int (*f)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t)) {
    return ready() ? api.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, f) : CURLE_FAILED_INIT;
}
CURLcode ccurl_getinfo_long(CURL *h, CURLINFO i, long *v) { return ready() ? api.easy_getinfo(h, i, v) : CURLE_FAILED_INIT; }
