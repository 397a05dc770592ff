/* checkpoint.h - a fine-tune's state on disk, so that a run killed at any
 * moment (kill -9 included) resumes where its last checkpoint left it and ends
 * with the weights an uninterrupted run would have.
 *
 * The file is replaced atomically (file_write_atomic: a crash leaves the old
 * checkpoint or the new one, never a part). Layout, native little-endian:
 *   0   8  magic "PRSOCKPT"
 *   8   4  version (1)
 *   12  4  0x01020304 (byte-order mark)
 *   16 32  fingerprint: SHA-256 of everything the run's result depends on
 *          (model, data, policy, the finetune settings; the caller's choice)
 *   48 32  SHA-256 of the body
 *   80  8  body bytes
 *   88     body: i64 step (steps done), i64 n, f32[n] parameters (tnet order),
 *          i64 b, f32[b] BatchNorm running statistics, i64 a, f32[a] the
 *          activation quantization (tnet_act_quant_state), i64 optimizer updates,
 *          i64 m, f32[m] first optimizer state, i64 v, f32[v] second
 * A file whose fingerprint differs is another run's: loading it is an error
 * naming the file (delete it or start over), never a silent restart.
 */
#ifndef PRESSO_TRAIN_CHECKPOINT_H
#define PRESSO_TRAIN_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/sha256.h"
#include "base/status.h"
#include "train/optim.h"
#include "train/tnet.h"

/* Writes t's parameters and BatchNorm statistics, the optimizer's state and the
 * number of steps done to path, atomically. */
enum presso_status checkpoint_save(const char *path, const uint8_t fingerprint[SHA256_DIGEST_BYTES],
				   const struct tnet *t, const struct optim *o, int64_t step);

/* Reads a checkpoint back into t and o and sets *step. *found is false (and
 * nothing changes) when path does not exist. A damaged file, another run's
 * fingerprint or a different parameter count is PRESSO_E_FORMAT naming path. */
enum presso_status checkpoint_load(const char *path, const uint8_t fingerprint[SHA256_DIGEST_BYTES],
				   struct tnet *t, struct optim *o, int64_t *step, bool *found);

#endif
