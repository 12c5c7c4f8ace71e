/*
 * mt_fs.h — making directory entries durable. A file renamed or created in
 * a directory survives a power cut only once that directory is fsynced
 * (strict POSIX; ext4's default ordering hides it, other file systems do
 * not), and a new directory only once its parent is. Every path Metron
 * creates on the way to a file a transaction names goes through here.
 */
#ifndef MT_FS_H
#define MT_FS_H

/* fsync the directory dir. MT_OK or -errno (the open or the fsync). */
int mt_fs_sync_dir(const char *dir);

/* fsync the directory that holds path ("." for a bare name). MT_OK or -errno. */
int mt_fs_sync_parent(const char *path);

/*
 * mkdir -p of dir (mode 0755), fsyncing the parent of every directory it
 * creates. MT_OK (also when all exist) or -errno.
 */
int mt_fs_make_dirs(const char *dir);

#endif
