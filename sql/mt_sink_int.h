/*
 * mt_sink_int.h — what mt_sink.c shares with mt_quarantine.c (sql/ only).
 */
#ifndef MT_SINK_INT_H
#define MT_SINK_INT_H

#include <stdint.h>

/* The upsert the sink runs for a table (MT_QUAR_*), or NULL; its parameter count in *n. */
const char *mt__sink_statement(uint8_t table, int *n);

#endif
