/* mt_err.c — the message and name tables generated from MT_ERR_MAP. */
#include "mt_err.h"

#include <errno.h>
#include <string.h>

const char *mt_strerror(int err)
{
    switch (err) {
    case MT_OK: return "success";
#define MT__ERR_MSG(name, value, msg)                                                              \
    case name: return msg;
        MT_ERR_MAP(MT__ERR_MSG)
#undef MT__ERR_MSG
    default: break;
    }
    if (err < 0 && err > -4096) return strerror(-err);
    return "unknown error";
}

const char *mt_err_name(int err)
{
    switch (err) {
    case MT_OK: return "MT_OK";
#define MT__ERR_NAME(name, value, msg)                                                             \
    case name: return #name;
        MT_ERR_MAP(MT__ERR_NAME)
#undef MT__ERR_NAME
    default: break;
    }
    if (err < 0 && err > -4096) {
        const char *name = strerrorname_np(-err);
        if (name) return name;
    }
    return "UNKNOWN";
}

int mt_err_from_errno(void)
{
    return errno ? -errno : -EIO;
}
