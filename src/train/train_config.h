/* train_config.h - the `finetune` section of a study config, read into typed
 * settings (the config layer only checks that the section is an object; this
 * is its owner, as search/ owns `search`).
 *
 *   "finetune": {
 *     "epochs": 3,              passes over the training images [3]
 *     "max_steps": 0,           stop after this many steps in all (0: no cap) [0]
 *     "batch": 64,              images per step [64]
 *     "micro_batch": 16,        images per part of a step; parts run on the
 *                               threads and their gradients are summed in a
 *                               fixed order, so the result does not depend on
 *                               the thread count [16]
 *     "threads": 0,             OpenMP threads (0: all cores) [0]
 *     "optimizer": "sgd",       sgd (momentum) | adam (decoupled weight decay)
 *     "lr": 0.005, "lr_min": 0, "momentum": 0.9, "nesterov": true,
 *     "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0,
 *     "schedule": "cosine",     cosine | step | constant, after warmup_steps
 *                               of linear warm-up [cosine]
 *     "warmup_steps": 0, "step_epochs": 1, "gamma": 0.1,
 *     "kd_weight": 0.5,         a in loss.h: 0 = labels only, 1 = teacher only
 *     "temperature": 2,         T in loss.h
 *     "lambda": 0,              weight of sum (w - q(w))^2 over the
 *                               fake-quantized weights [0]
 *     "seed": 1,                order of the images [1]
 *     "batchnorm": "frozen",    frozen | batch: how BatchNormalization nodes of
 *                               an unfolded model train (tnet.h)
 *     "calib_every": 0,         steps between re-measurements of the
 *                               activation ranges (0: at every epoch) [0]
 *     "checkpoint_every": 200,  steps between checkpoints (and at every
 *                               epoch's end) [200]
 *     "log_every": 50           steps between progress lines [50]
 *   }
 * Unknown keys are errors naming the path ("finetune.lr: expected a number in
 * [0, 10], got -1").
 */
#ifndef PRESSO_TRAIN_CONFIG_H
#define PRESSO_TRAIN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

struct cJSON;

enum train_optimizer { OPTIM_SGD, OPTIM_ADAM, OPTIM_COUNT };
enum train_schedule { SCHED_COSINE, SCHED_STEP, SCHED_CONSTANT, SCHED_COUNT };
enum train_bn { TRAIN_BN_FROZEN, TRAIN_BN_BATCH };

struct train_config {
	int epochs;
	int64_t max_steps;
	int batch, micro_batch, threads;
	enum train_optimizer optimizer;
	double lr, lr_min, momentum, beta1, beta2, eps, weight_decay;
	bool nesterov;
	enum train_schedule schedule;
	int64_t warmup_steps;
	int step_epochs;
	double gamma;
	double kd_weight, temperature, lambda;
	uint64_t seed;
	enum train_bn batchnorm;
	int64_t calib_every, checkpoint_every, log_every;
};

/* The defaults above. */
struct train_config train_config_default(void);

/* Reads a `finetune` section (NULL: all defaults) into *out. Errors name the
 * field under `path` ("finetune"). */
enum presso_status train_config_parse(const struct cJSON *section, const char *path,
				      struct train_config *out);

/* The canonical JSON text of the settings that decide a fine-tune's result
 * (everything but threads, checkpoint_every and log_every), for fingerprints;
 * the caller free()s it. NULL when out of memory. */
char *train_config_canonical(const struct train_config *tc);

const char *train_optimizer_name(enum train_optimizer o);
const char *train_schedule_name(enum train_schedule s);

#endif
