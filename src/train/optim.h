/* optim.h - optimizers and learning-rate schedules for fine-tuning.
 *
 * SGD with momentum (PyTorch's form: v = mu v + g, w -= lr v, or with
 * Nesterov w -= lr (g + mu v)); weight decay is added to the gradient
 * (L2). Adam with decoupled weight decay (AdamW: w -= lr wd w before the Adam
 * step) and bias-corrected moments. Weight decay applies to layer weights
 * only, never to biases or BatchNorm parameters (as the shipped models were
 * trained). The state is plain arrays the checkpoint saves and restores.
 *
 * Schedules give the learning rate of step s (0-based) of `total` steps:
 * linear warm-up from lr/warmup to lr over the first `warmup` steps, then
 *   cosine:   lr_min + (lr - lr_min) (1 + cos(pi t)) / 2, t = progress in [0, 1]
 *   step:     lr * gamma^floor(epoch / step_epochs)
 *   constant: lr.
 */
#ifndef PRESSO_TRAIN_OPTIM_H
#define PRESSO_TRAIN_OPTIM_H

#include <stdint.h>

#include "base/status.h"
#include "train/train_config.h"
#include "train/tnet.h"

struct optim {
	enum train_optimizer kind;
	int64_t n;        /* parameter elements */
	float *m, *v;     /* momentum (SGD) / first moment (Adam); second moment (Adam) */
	int64_t t;        /* updates made */
};

/* Zeroed state for t's parameters. Free with optim_free(). */
enum presso_status optim_create(const struct train_config *tc, const struct tnet *t,
				struct optim **out);
void optim_free(struct optim *o);

/* One update of t's parameters from the reduced gradient grad (finished by
 * tnet_apply_ste) at learning rate lr. */
void optim_step(struct optim *o, const struct train_config *tc, struct tnet *t,
		const float *grad, double lr);

/* The learning rate of step `step` of `total`, steps_per_epoch giving epochs. */
double optim_lr(const struct train_config *tc, int64_t step, int64_t total,
		int64_t steps_per_epoch);

#endif
