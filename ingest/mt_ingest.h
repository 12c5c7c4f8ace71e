/*
 * mt_ingest.h — the ingest façade: parsed line protocol into engine
 * batches. (The TCP, UDP and HTTP listeners of metrond join this module.)
 */
#ifndef MT_INGEST_H
#define MT_INGEST_H

#include "mt_engine.h"
#include "mt_lp.h"

/*
 * Append one point per field of line to b: the series key is the line's
 * measurement, sorted tags and the field key; the value keeps its type.
 * Returns MT_OK, MT_ELIMIT when the series key would exceed
 * MT_SERIES_MAX_KEY (nothing of the line is added), or -ENOMEM.
 * Thread-safe for distinct batches.
 */
int mt_ingest_line(mt_batch *b, const mt_lp_line *line);

#endif
