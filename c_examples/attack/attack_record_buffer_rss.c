/*
 * attack_record_buffer_rss.c - what RESOCK_CLIENT_MAX_RECORD_SIZE costs at start.
 *
 * Promise (resock_client_start): "ENOMEM when the record buffer cannot be allocated", and
 * the house rule "allocation failure never aborts the host". The buffer is reserved with
 * a fallible allocation but then zero-filled, so every page is touched in
 * resock_client_start: each client commits 64 MiB of RSS before it has connected. Under
 * Linux overcommit the fallible reservation succeeds and the zero-fill is what runs out of
 * memory: the host meets the OOM killer (SIGKILL), not ENOMEM. This program only
 * measures the RSS per started (never connected) client; it does not exhaust memory.
 *
 * Exit 0: RSS grew by less than 8 MiB per client (lazy); 2: it grew by ~64 MiB each.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resock.h"
#include "../check.h"

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = atol(line + 6);
    if (f)
        fclose(f);
    return v;
}

static void on_record(const void *r, size_t n, void *u) { (void)r; (void)n; (void)u; }

int main(void) {
    enum { N = 4 };
    resock_client *c[N];
    resock_client_config cfg;
    resock_client_config_init(&cfg);
    cfg.dial.host = "unix:/nonexistent/resock-attack.sock"; /* never connects */
    cfg.dial.backoff_initial_ms = 60000;
    cfg.dial.backoff_max_ms = 60000;
    cfg.record_size = RESOCK_CLIENT_MAX_RECORD_SIZE;
    cfg.on_record = on_record;
    long before = rss_kib();
    for (int i = 0; i < N; i++) {
        c[i] = resock_client_start(&cfg);
        CHECK(c[i] != NULL);
    }
    long after = rss_kib();
    for (int i = 0; i < N; i++)
        resock_client_free(c[i]);
    long per = (after - before) / N;
    printf("RSS before %ld KiB, after %d unconnected clients %ld KiB: %ld KiB each\n", before, N,
           after, per);
    if (per > 8 * 1024) {
        printf("FINDING: each client start commits its whole record buffer (%ld KiB) at once\n",
               per);
        return 2;
    }
    return 0;
}
