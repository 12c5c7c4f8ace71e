/*
 * mt_format.h — the chunk's header (mt_codec.c writes and reads it; the
 * codec tests check it byte by byte). No code. Every on-disk format, this
 * one included, is described in docs/format.md; each other layout is
 * defined beside the one file that reads and writes it (mt_hourfile.c,
 * mt_head.c, mt_index.c, mt_kv.c).
 *
 * Changing anything here is a format change: bump the version, keep reading
 * the old one, and keep a fixture of it under tests/fixtures/.
 * All multi-byte integers in headers are little-endian unless noted;
 * LMDB keys are big-endian so that byte order is numeric order.
 */
#ifndef MT_FORMAT_H
#define MT_FORMAT_H

/*
 * Chunk: one series' points of one hour (mt_codec.c encodes the body).
 *
 * Version 2 (written):
 *   offset size
 *   0      2    magic 'M' 'C'
 *   2      1    format version (MT_CHUNK_VERSION)
 *   3      1    bits 0-3: value type (mt_vtype); bit 7: payload is zstd-compressed
 *   4      ...  uvarint number of points; if bit 7: uvarint body length (the
 *               payload once zstd-decompressed)
 *   then   4    checksum: low 32 bits of XXH3-64 over the header bytes before
 *               it, seeded with XXH3-64 of the payload
 *   then   ...  payload: the body, or one zstd frame holding it; it runs to the
 *               end of the chunk (the hour file's footer holds its length)
 *   A chunk of 360 points has a 10-byte header (11-12 when packed).
 *
 * Version 1 (read): a fixed 20-byte header:
 *   0 magic (2), 2 version 1, 3 type and flags, 4 u32 number of points,
 *   8 u32 payload length, 12 u32 body length, 16 u32 checksum over bytes
 *   0..15 seeded as above, 20 the payload. Its body is version 2's with
 *   timestamps in units of 1 (mt_codec.c).
 */
#define MT_CHUNK_MAGIC0         'M'
#define MT_CHUNK_MAGIC1         'C'
#define MT_CHUNK_VERSION        2
#define MT_CHUNK_VERSION_1      1
#define MT_CHUNK_V1_HEADER_SIZE 20
#define MT_CHUNK_TYPE_MASK      0x0F
#define MT_CHUNK_FLAG_ZSTD      0x80
#define MT_CHUNK_MAX_BODY       (1u << 28) /* a body larger than this is corrupt */

#endif
