/* train_config.c - reading the `finetune` section (train_config.h). */
#define _POSIX_C_SOURCE 200809L
#include "train/train_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_get.h"

#define MAX_EPOCHS 100000
#define MAX_BATCH 4096
#define MAX_THREADS 256
#define MAX_STEPS ((int64_t)1 << 40)

static const char *const keys[] = {
	"epochs", "max_steps", "batch", "micro_batch", "threads", "optimizer", "lr",
	"lr_min", "momentum", "nesterov", "beta1", "beta2", "eps", "weight_decay", "schedule",
	"warmup_steps", "step_epochs", "gamma", "kd_weight", "temperature", "lambda", "seed",
	"batchnorm", "calib_every", "checkpoint_every", "log_every", NULL};
static const char *const optimizers[] = {[OPTIM_SGD] = "sgd", [OPTIM_ADAM] = "adam", NULL};
static const char *const schedules[] = {[SCHED_COSINE] = "cosine", [SCHED_STEP] = "step",
					[SCHED_CONSTANT] = "constant", NULL};
static const char *const bn_modes[] = {[TRAIN_BN_FROZEN] = "frozen", [TRAIN_BN_BATCH] = "batch",
				       NULL};
_Static_assert(sizeof optimizers / sizeof optimizers[0] == OPTIM_COUNT + 1, "optimizer names");
_Static_assert(sizeof schedules / sizeof schedules[0] == SCHED_COUNT + 1, "schedule names");

struct train_config train_config_default(void)
{
	return (struct train_config){
		.epochs = 3, .max_steps = 0, .batch = 64, .micro_batch = 16,
		.threads = 0, .optimizer = OPTIM_SGD, .lr = 0.005, .lr_min = 0.0, .momentum = 0.9,
		.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0, .nesterov = true,
		.schedule = SCHED_COSINE, .warmup_steps = 0, .step_epochs = 1, .gamma = 0.1,
		.kd_weight = 0.5, .temperature = 2.0, .lambda = 0.0, .seed = 1,
		.batchnorm = TRAIN_BN_FROZEN, .calib_every = 0, .checkpoint_every = 200,
		.log_every = 50,
	};
}

static int index_of(const char *const *names, const char *s)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

#define GET_INT(key, lo, hi, field)                                                         \
	do {                                                                                \
		int64_t v_ = (int64_t)(field);                                              \
		if ((s = json_get_int(sec, path, key, false, lo, hi, &v_)) != PRESSO_OK)    \
			return s;                                                           \
		field = v_;                                                                 \
	} while (0)
#define GET_DOUBLE(key, lo, hi, field)                                                      \
	do {                                                                                \
		if ((s = json_get_double(sec, path, key, false, lo, hi, &(field))) != PRESSO_OK) \
			return s;                                                           \
	} while (0)
#define GET_CHOICE(key, names, field, type)                                                 \
	do {                                                                                \
		const char *v_ = NULL;                                                      \
		if ((s = json_get_string(sec, path, key, false, names, &v_)) != PRESSO_OK)  \
			return s;                                                           \
		if (v_)                                                                     \
			field = (type)index_of(names, v_);                                  \
	} while (0)

enum presso_status train_config_parse(const cJSON *sec, const char *path, struct train_config *out)
{
	enum presso_status s;
	struct train_config tc = train_config_default();
	if (sec && (s = json_check_keys(sec, path, keys)) != PRESSO_OK)
		return s;
	GET_INT("epochs", 0, MAX_EPOCHS, tc.epochs);
	GET_INT("max_steps", 0, MAX_STEPS, tc.max_steps);
	GET_INT("batch", 1, MAX_BATCH, tc.batch);
	GET_INT("micro_batch", 1, MAX_BATCH, tc.micro_batch);
	GET_INT("threads", 0, MAX_THREADS, tc.threads);
	GET_CHOICE("optimizer", optimizers, tc.optimizer, enum train_optimizer);
	GET_DOUBLE("lr", 0.0, 10.0, tc.lr);
	GET_DOUBLE("lr_min", 0.0, 10.0, tc.lr_min);
	GET_DOUBLE("momentum", 0.0, 0.9999, tc.momentum);
	if ((s = json_get_bool(sec, path, "nesterov", false, &tc.nesterov)) != PRESSO_OK)
		return s;
	GET_DOUBLE("beta1", 0.0, 0.9999, tc.beta1);
	GET_DOUBLE("beta2", 0.0, 0.999999, tc.beta2);
	GET_DOUBLE("eps", 1e-12, 1.0, tc.eps);
	GET_DOUBLE("weight_decay", 0.0, 1.0, tc.weight_decay);
	GET_CHOICE("schedule", schedules, tc.schedule, enum train_schedule);
	GET_INT("warmup_steps", 0, MAX_STEPS, tc.warmup_steps);
	GET_INT("step_epochs", 1, MAX_EPOCHS, tc.step_epochs);
	GET_DOUBLE("gamma", 0.0, 1.0, tc.gamma);
	GET_DOUBLE("kd_weight", 0.0, 1.0, tc.kd_weight);
	GET_DOUBLE("temperature", 0.05, 100.0, tc.temperature);
	GET_DOUBLE("lambda", 0.0, 1e6, tc.lambda);
	int64_t seed = (int64_t)tc.seed;
	if ((s = json_get_int(sec, path, "seed", false, 0, INT64_MAX, &seed)) != PRESSO_OK)
		return s;
	tc.seed = (uint64_t)seed;
	GET_CHOICE("batchnorm", bn_modes, tc.batchnorm, enum train_bn);
	GET_INT("calib_every", 0, MAX_STEPS, tc.calib_every);
	GET_INT("checkpoint_every", 1, MAX_STEPS, tc.checkpoint_every);
	GET_INT("log_every", 1, MAX_STEPS, tc.log_every);
	if (tc.micro_batch > tc.batch)
		return status_fail(PRESSO_E_CONFIG,
				   "%s.micro_batch: %d is larger than %s.batch (%d); expected at most the batch",
				   path, tc.micro_batch, path, tc.batch);
	if (tc.lr_min > tc.lr)
		return status_fail(PRESSO_E_CONFIG,
				   "%s.lr_min: %.15g is above %s.lr (%.15g); expected at most lr",
				   path, tc.lr_min, path, tc.lr);
	*out = tc;
	return PRESSO_OK;
}

char *train_config_canonical(const struct train_config *tc)
{
	size_t cap = 1024;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	snprintf(s, cap,
		 "{\"epochs\":%d,\"max_steps\":%lld,\"batch\":%d,\"micro_batch\":%d,"
		 "\"optimizer\":\"%s\",\"lr\":%.17g,\"lr_min\":%.17g,\"momentum\":%.17g,"
		 "\"nesterov\":%s,\"beta1\":%.17g,\"beta2\":%.17g,\"eps\":%.17g,"
		 "\"weight_decay\":%.17g,\"schedule\":\"%s\",\"warmup_steps\":%lld,"
		 "\"step_epochs\":%d,\"gamma\":%.17g,\"kd_weight\":%.17g,\"temperature\":%.17g,"
		 "\"lambda\":%.17g,\"seed\":%llu,\"batchnorm\":\"%s\",\"calib_every\":%lld}",
		 tc->epochs, (long long)tc->max_steps, tc->batch, tc->micro_batch,
		 optimizers[tc->optimizer], tc->lr, tc->lr_min, tc->momentum,
		 tc->nesterov ? "true" : "false", tc->beta1, tc->beta2, tc->eps, tc->weight_decay,
		 schedules[tc->schedule], (long long)tc->warmup_steps, tc->step_epochs, tc->gamma,
		 tc->kd_weight, tc->temperature, tc->lambda, (unsigned long long)tc->seed,
		 bn_modes[tc->batchnorm], (long long)tc->calib_every);
	return s;
}

const char *train_optimizer_name(enum train_optimizer o)
{
	return (unsigned)o < OPTIM_COUNT ? optimizers[o] : "?";
}

const char *train_schedule_name(enum train_schedule sc)
{
	return (unsigned)sc < SCHED_COUNT ? schedules[sc] : "?";
}
