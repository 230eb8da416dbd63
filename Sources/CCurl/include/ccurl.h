/* libcurl for Swift, loaded with dlopen(3) on first use: a daemon that is only waiting for an
 * update then carries neither libcurl nor the dozens of TLS and network libraries it pulls in,
 * and a program that never reaches etcd never loads them. The setopt/getinfo wrappers are typed
 * because curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call.
 * Every function returns CURLE_FAILED_INIT (or NULL) if libcurl cannot be loaded;
 * ccurl_load_error() says why. */
#ifndef LOCKSMITH_CCURL_H
#define LOCKSMITH_CCURL_H

#include <curl/curl.h>

/* Why libcurl could not be loaded ("" if it could, or was not tried yet). */
const char *ccurl_load_error(void);

/* Loads libcurl now if it is not loaded yet: 1 if it is usable, 0 if not (ccurl_load_error()). */
int ccurl_load(void);

/* libcurl's version text ("libcurl/7.88.1 OpenSSL/3.0.15 ..."), or the load error. */
const char *ccurl_version(void);

/* CURLPROTO_HTTP | CURLPROTO_HTTPS, for CURLOPT_PROTOCOLS (a macro expression Swift cannot import). */
static const long ccurl_proto_http_https = CURLPROTO_HTTP | CURLPROTO_HTTPS;

/* curl_global_init(CURL_GLOBAL_ALL) then curl_easy_init(), or NULL. */
CURL *ccurl_easy_init(void);
void ccurl_easy_cleanup(CURL *h);
void ccurl_easy_reset(CURL *h);
CURLcode ccurl_easy_perform(CURL *h);
const char *ccurl_easy_strerror(CURLcode code);
struct curl_slist *ccurl_slist_append(struct curl_slist *list, const char *text);
void ccurl_slist_free_all(struct curl_slist *list);

CURLcode ccurl_setopt_long(CURL *h, CURLoption o, long v);
CURLcode ccurl_setopt_string(CURL *h, CURLoption o, const char *v);
CURLcode ccurl_setopt_pointer(CURL *h, CURLoption o, void *v);
CURLcode ccurl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v);
CURLcode ccurl_setopt_write_function(CURL *h, size_t (*f)(char *, size_t, size_t, void *));
CURLcode ccurl_setopt_header_function(CURL *h, size_t (*f)(char *, size_t, size_t, void *));
CURLcode ccurl_setopt_xferinfo_function(CURL *h, int (*f)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t));
CURLcode ccurl_getinfo_long(CURL *h, CURLINFO i, long *v);

#endif
