/*
 * version.h — what a Metron binary is: its version (the project's, in
 * CMakeLists.txt), the git commit it was built from ("-dirty" when the
 * tree had uncommitted changes; "unknown" outside a git checkout), the
 * build type, and the versions of the libraries it runs with (as they
 * report themselves at run time, which is what a bug report needs).
 *
 * The InfluxDB API version metrond imitates for clients is another thing
 * (the X-Influxdb-Version header: server/mt_http.c).
 */
#ifndef MT_TOOLS_VERSION_H
#define MT_TOOLS_VERSION_H

#include <stdio.h>

/* "0.1.0" */
const char *mt_version(void);
/* The git commit, e.g. "3c82de2a1b2c" or "unknown". */
const char *mt_version_commit(void);
/* The build type: "Release", "Debug", ... */
const char *mt_version_build(void);
/* Print `prog VERSION (commit C, BUILD build)` and a line of library versions to f. */
void mt_version_print(FILE *f, const char *prog);

#endif
