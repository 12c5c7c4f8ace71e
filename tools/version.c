/* version.c — what a Metron binary is (version.h). */
#include "version.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <uv.h>

#include "mt_engine.h"
#include "mt_pg.h"
#include "mt_version_gen.h"

const char *mt_version(void)
{
    return MT_VERSION;
}

const char *mt_version_commit(void)
{
    return MT_GIT_COMMIT;
}

const char *mt_version_build(void)
{
    return MT_BUILD_TYPE;
}

void mt_version_print(FILE *f, const char *prog)
{
    int pq = mt_pg_lib_version(); /* 150018: 15.18 */
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    char storage[128];
    mt_engine_lib_versions(storage, sizeof storage);
    fprintf(f, "%s %s (commit %s, %s build)\n", prog, MT_VERSION, MT_GIT_COMMIT, MT_BUILD_TYPE);
    fprintf(f, "libraries: %s, libuv %s, libpq %d.%d, libcurl %s, %s\n", storage,
            uv_version_string(), pq / 10000, pq % 100, cv && cv->version ? cv->version : "?",
            OpenSSL_version(OPENSSL_VERSION));
}
