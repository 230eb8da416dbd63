/* A stand-in libcurl.so.4 for the tests (never installed): forwards the functions liblocksmith
 * loads to the real libcurl, and can be told, through the environment, to misbehave the way an
 * old, broken or missing libcurl would:
 *   CURL_SHIM_REAL=PATH          the real library (default: libcurl.so.4 in Debian's libdir)
 *   CURL_SHIM_LOG=FILE           append "setopt NUMBER VALUE RESULT" for every curl_easy_setopt
 *   CURL_SHIM_REJECT=N,N,...     answer CURLE_UNKNOWN_OPTION (as libcurl before 7.85 does for
 *                                CURLOPT_PROTOCOLS_STR) for these option numbers
 *   CURL_SHIM_FAIL_INIT_IF=FILE  curl_easy_init() returns NULL while FILE exists
 * Arguments of setopt and getinfo are forwarded as one pointer-sized value: every option the
 * library sets is a long, a pointer or a curl_off_t, all passed alike on x86_64 and aarch64. */
#define _GNU_SOURCE
#define CURL_DISABLE_TYPECHECK /* the real functions are defined here, not the checking macros */
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CURL_SHIM_DEFAULT_REAL
#define CURL_SHIM_DEFAULT_REAL "/usr/lib/x86_64-linux-gnu/libcurl.so.4"
#endif

static void *real(const char *name) {
    static void *handle;
    if (!handle) {
        const char *path = getenv("CURL_SHIM_REAL");
        handle = dlopen(path && *path ? path : CURL_SHIM_DEFAULT_REAL, RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            fprintf(stderr, "curl-shim: %s\n", dlerror());
            abort();
        }
    }
    void *f = dlsym(handle, name);
    if (!f) abort();
    return f;
}

static int rejected(long option) {
    const char *list = getenv("CURL_SHIM_REJECT");
    if (!list) return 0;
    for (const char *p = list; *p;) {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p) break;
        if (n == option) return 1;
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

CURLcode curl_global_init(long flags) { return ((CURLcode(*)(long))real("curl_global_init"))(flags); }

CURL *curl_easy_init(void) {
    const char *flag = getenv("CURL_SHIM_FAIL_INIT_IF");
    if (flag && *flag && access(flag, F_OK) == 0) return NULL;
    return ((CURL * (*)(void)) real("curl_easy_init"))();
}

char *curl_version(void) { return ((char *(*)(void))real("curl_version"))(); }

void curl_easy_cleanup(CURL *h) { ((void (*)(CURL *))real("curl_easy_cleanup"))(h); }
void curl_easy_reset(CURL *h) { ((void (*)(CURL *))real("curl_easy_reset"))(h); }
CURLcode curl_easy_perform(CURL *h) { return ((CURLcode(*)(CURL *))real("curl_easy_perform"))(h); }
const char *curl_easy_strerror(CURLcode c) { return ((const char *(*)(CURLcode))real("curl_easy_strerror"))(c); }

struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s) {
    return ((struct curl_slist * (*)(struct curl_slist *, const char *)) real("curl_slist_append"))(l, s);
}

void curl_slist_free_all(struct curl_slist *l) { ((void (*)(struct curl_slist *))real("curl_slist_free_all"))(l); }

CURLcode curl_easy_setopt(CURL *h, CURLoption option, ...) {
    va_list ap;
    va_start(ap, option);
    void *value = va_arg(ap, void *);
    va_end(ap);
    CURLcode r = rejected((long)option) ? CURLE_UNKNOWN_OPTION
                                        : ((CURLcode(*)(CURL *, CURLoption, ...))real("curl_easy_setopt"))(h, option, value);
    const char *log = getenv("CURL_SHIM_LOG");
    if (log && *log) {
        FILE *f = fopen(log, "a");
        if (f) {
            /* Text options are shown as text (never the password), others as numbers. */
            int text = option == CURLOPT_URL || option == CURLOPT_PROXY || option == CURLOPT_NOPROXY ||
                       option == CURLOPT_CAINFO || option == CURLOPT_CAPATH || option == CURLOPT_SSLCERT ||
                       option == CURLOPT_SSLKEY || option == CURLOPT_CUSTOMREQUEST ||
                       option == CURLOPT_PROTOCOLS_STR || option == CURLOPT_REDIR_PROTOCOLS_STR;
            if (text && value)
                fprintf(f, "setopt %d \"%s\" %d\n", (int)option, (const char *)value, (int)r);
            else
                fprintf(f, "setopt %d %ld %d\n", (int)option, (long)value, (int)r);
            fclose(f);
        }
    }
    return r;
}

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...) {
    va_list ap;
    va_start(ap, info);
    void *value = va_arg(ap, void *);
    va_end(ap);
    return ((CURLcode(*)(CURL *, CURLINFO, ...))real("curl_easy_getinfo"))(h, info, value);
}
