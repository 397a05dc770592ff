/* loss.h - the fine-tuning loss: cross-entropy on the labels plus knowledge
 * distillation from a teacher (Hinton, Vinyals and Dean, 2015).
 *
 * Per image, with student logits z, label y, teacher logits t, weight a
 * (kd_weight) and temperature T:
 *   L = (1 - a) * CE(softmax(z), y) + a * T^2 * KL(softmax(t / T) || softmax(z / T))
 *   dL/dz = (1 - a) (softmax(z) - onehot(y)) + a * T * (softmax(z / T) - softmax(t / T))
 * The T^2 keeps the soft term's gradient on the scale of the hard one's as T
 * changes. Without a teacher (t == NULL) or with a = 0 it is plain
 * cross-entropy. Softmaxes are computed in double after subtracting the row's
 * maximum, so no logit overflows.
 */
#ifndef PRESSO_TRAIN_LOSS_H
#define PRESSO_TRAIN_LOSS_H

#include <stdint.h>

#include "base/status.h"

/* The loss of n images (rows of `classes` logits) summed over the images,
 * into *loss; dz (may be NULL) gets dL/dz times grad_scale (1 / batch for a
 * mean loss); *n_correct (may be NULL) the images whose largest logit is
 * their label's (ties go to the lower class, as the evaluators count).
 * PRESSO_E_NOMEM when its scratch row cannot be allocated (nothing written
 * then). Labels outside 0..classes-1 are a broken invariant (the data feed
 * checks them). */
enum presso_status train_loss(int n, int classes, const float *z, const int32_t *labels,
			      const float *teacher, double kd_weight, double temperature,
			      float grad_scale, float *dz, int *n_correct, double *loss);

#endif
