/*
 * mt_schema_files.h — the schema migrations compiled into Metron
 * (generated from sql/schema/NNN_name.sql by sql/embed.cmake; sql/ only).
 */
#ifndef MT_SCHEMA_FILES_H
#define MT_SCHEMA_FILES_H

typedef struct mt_schema_file {
    const char *name; /* "001_monitoring.sql": the number is the version */
    const char *sql;
} mt_schema_file;

extern const mt_schema_file mt_schema_files[]; /* ascending versions 1, 2, ... */
extern const int mt_schema_nfiles;

#endif
