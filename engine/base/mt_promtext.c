/* mt_promtext.c — see mt_promtext.h. */
#include "mt_promtext.h"

void mt_promtext_family(mt_sbuf *b, const char *name, const char *type, const char *help)
{
    mt_sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void mt_promtext_one(mt_sbuf *b, const char *name, const char *type, const char *help, double v)
{
    mt_promtext_family(b, name, type, help);
    mt_sb_printf(b, "%s %.17g\n", name, v);
}
