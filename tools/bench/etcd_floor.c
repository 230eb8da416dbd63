/* The floor for etcd_latency: the same HTTP requests liblocksmith makes for a lock and an unlock
 * by a client that wrote last (a compare-and-swap on the index its previous write returned,
 * twice), made directly with libcurl on one reused connection, with the least parsing that can
 * find the next index. usage: etcd_floor ENDPOINT API ITERATIONS */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY "coreos.com/updateengine/rebootlock/groups/bench-floor/semaphore"
#define KEY64 "Y29yZW9zLmNvbS91cGRhdGVlbmdpbmUvcmVib290bG9jay9ncm91cHMvYmVuY2gtZmxvb3Ivc2VtYXBob3Jl"
/* {"semaphore":0,"max":1,"holders":["bench-node"]} and {"semaphore":1,"max":1,"holders":[]} */
#define LOCKED "%7B%22semaphore%22%3A0%2C%22max%22%3A1%2C%22holders%22%3A%5B%22bench-node%22%5D%7D"
#define FREE "%7B%22semaphore%22%3A1%2C%22max%22%3A1%2C%22holders%22%3A%5B%5D%7D"
#define LOCKED64 "eyJzZW1hcGhvcmUiOjAsIm1heCI6MSwiaG9sZGVycyI6WyJiZW5jaC1ub2RlIl19"
#define FREE64 "eyJzZW1hcGhvcmUiOjEsIm1heCI6MSwiaG9sZGVycyI6W119"

static char body[65536];
static size_t body_len;

static size_t sink(char *p, size_t s, size_t n, void *u) {
    (void)u;
    size_t k = s * n;
    if (body_len + k < sizeof body - 1) { memcpy(body + body_len, p, k); body_len += k; body[body_len] = 0; }
    return k;
}

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static CURL *h;
static const char *endpoint;

static int request(const char *method, const char *path, const char *data) {
    char url[1024];
    snprintf(url, sizeof url, "%s%s", endpoint, path);
    body_len = 0;
    body[0] = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") == 0 ? NULL : method);
    if (data) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    return curl_easy_perform(h) == CURLE_OK ? 0 : -1;
}

/* The number after "name":, with or without quotes. */
static long long field(const char *name) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", name);
    const char *p = strstr(body, pattern);
    if (!p) return -1;
    p += strlen(pattern);
    if (*p == '"') p++;
    return atoll(p);
}

static long long idx;

static int step_v2(const char *value) {
    char path[512], data[512];
    snprintf(path, sizeof path, "/v2/keys/" KEY "?prevIndex=%lld", idx);
    snprintf(data, sizeof data, "value=%s", value);
    if (request("PUT", path, data) < 0 || !strstr(body, "compareAndSwap")) return -1;
    idx = field("modifiedIndex");
    return 0;
}

static int step_v3(const char *value64) {
    char data[1024];
    snprintf(data, sizeof data,
             "{\"compare\":[{\"key\":\"" KEY64 "\",\"result\":\"EQUAL\",\"target\":\"MOD\",\"mod_revision\":\"%lld\"}],"
             "\"success\":[{\"request_put\":{\"key\":\"" KEY64 "\",\"value\":\"%s\"}}],"
             "\"failure\":[{\"request_range\":{\"key\":\"" KEY64 "\"}}]}",
             idx, value64);
    if (request("POST", "/v3/kv/txn", data) < 0 || !strstr(body, "\"succeeded\":true")) return -1;
    idx = field("revision");
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    endpoint = argv[1];
    int v3 = strcmp(argv[2], "v3") == 0, n = atoi(argv[3]);
    curl_global_init(CURL_GLOBAL_ALL);
    h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    /* create the key */
    if (v3) {
        request("POST", "/v3/kv/put", "{\"key\":\"" KEY64 "\",\"value\":\"" FREE64 "\"}");
        idx = field("revision");
    } else {
        request("PUT", "/v2/keys/" KEY, "value=" FREE);
        idx = field("modifiedIndex");
    }
    for (int i = 0; i < n; i++) {
        long long t = now_us();
        if ((v3 ? step_v3(LOCKED64) : step_v2(LOCKED)) < 0 || (v3 ? step_v3(FREE64) : step_v2(FREE)) < 0) {
            fprintf(stderr, "request failed: %s\n", body);
            return 1;
        }
        printf("%lld\n", now_us() - t);
    }
    curl_easy_cleanup(h);
    return 0;
}
