/* mt_fs.c — durable directory entries (contract in mt_fs.h). */
#include "mt_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt_err.h"
#include "mt_fault.h"

int mt_fs_sync_dir(const char *dir)
{
    if (mt_fault_hit("fs.dirsync")) return -EIO;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = fsync(fd) ? -errno : MT_OK;
    close(fd);
    return rc;
}

int mt_fs_sync_parent(const char *path)
{
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s", path) >= sizeof dir) return -ENAMETOOLONG;
    char *slash = strrchr(dir, '/');
    if (!slash) return mt_fs_sync_dir(".");
    slash[slash == dir ? 1 : 0] = '\0'; /* "/x" -> "/" */
    return mt_fs_sync_dir(dir);
}

int mt_fs_make_dirs(const char *dir)
{
    char tmp[4096];
    size_t n = (size_t)snprintf(tmp, sizeof tmp, "%s/", dir);
    if (n >= sizeof tmp) return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) == 0) {
            int rc = mt_fs_sync_parent(tmp);
            if (rc) return rc;
        } else if (errno != EEXIST) {
            return -errno;
        }
        *p = '/';
    }
    return MT_OK;
}
