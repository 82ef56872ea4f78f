/*
 * record.h - the fixed-size record that seed_server streams and seed_client reads.
 *
 * 64 bytes: a sequence number, the connection it was sent on, a payload derived from
 * both, and an FNV-1a checksum over the rest. A torn or shifted record fails the check.
 */
#ifndef RECORD_H
#define RECORD_H

#include <stdint.h>
#include <string.h>

#define RECORD_SIZE 64

struct record {
    uint32_t seq;          /* 0, 1, 2, ... within one connection */
    uint32_t conn;         /* which connection of the server sent it */
    unsigned char payload[RECORD_SIZE - 12];
    uint32_t sum;          /* FNV-1a of the 60 bytes above */
};

static inline uint32_t record_checksum(const struct record *rec)
{
    const unsigned char *p = (const unsigned char *) rec;
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < RECORD_SIZE - 4; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static inline void record_fill(struct record *rec, uint32_t conn, uint32_t seq)
{
    size_t i;

    memset(rec, 0, sizeof(*rec));
    rec->seq = seq;
    rec->conn = conn;
    for (i = 0; i < sizeof(rec->payload); i++)
        rec->payload[i] = (unsigned char) (seq * 31 + conn * 7 + i);
    rec->sum = record_checksum(rec);
}

/* Returns 1 if rec is intact and is record number `seq` of its connection. */
static inline int record_ok(const struct record *rec, uint32_t seq)
{
    struct record expect;

    record_fill(&expect, rec->conn, seq);
    return rec->sum == record_checksum(rec) && memcmp(rec, &expect, sizeof(expect)) == 0;
}

#endif /* RECORD_H */
