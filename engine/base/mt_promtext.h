/*
 * mt_promtext.h — lines of the Prometheus text format 0.0.4 (/metrics), put
 * into an mt_sbuf: a family's HELP and TYPE before its samples, and a family
 * of one unlabelled sample. Labelled samples are the caller's (mt_sb_printf),
 * their label values already safe. The buffer's oom rule holds: check once,
 * at the end. Pure; thread-safe.
 */
#ifndef MT_PROMTEXT_H
#define MT_PROMTEXT_H

#include "mt_buf.h"

/* "# HELP name help\n# TYPE name type\n"; type is counter, gauge or histogram. */
void mt_promtext_family(mt_sbuf *b, const char *name, const char *type, const char *help);

/* The family, then its one sample "name v\n" (v as %.17g: a counter's integer exactly). */
void mt_promtext_one(mt_sbuf *b, const char *name, const char *type, const char *help, double v);

#endif
